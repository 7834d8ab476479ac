"""Real, small media files for tests and the fake Videos API.

`make_mp4` writes a genuine MP4 (H.264 yuv420p video + AAC audio) with PyAV, without numpy:
frames are flat colours with a moving bar, optionally covered in seeded noise so the encoder
has to spend bits (that is how the large clips for the fitting tests are made). Everything is
derived from ``seed``, so two seeds give different bytes and one seed gives the same picture.
With ``colours`` the frames are solid RGB colours instead, so a test can tell frames apart
after decoding (e.g. a red first frame and a blue last one).

`make_thumbnail_webp` / `make_spritesheet_jpeg` return the bytes the provider serves for
``variant=thumbnail`` and ``variant=spritesheet``.
"""

from __future__ import annotations

import io
import math
import random
import struct
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

SAMPLE_RATE = 48_000
RGB = tuple[int, int, int]
_AUDIO_CHUNK = 1024  # samples per AudioFrame handed to the encoder


def make_mp4(
    path: Path,
    width: int,
    height: int,
    seconds: float,
    *,
    seed: int = 0,
    fps: int = 24,
    noise: float = 0.0,
    bit_rate: int | None = None,
    audio: bool = True,
    faststart: bool = False,
    colours: Sequence[RGB] = (),
) -> None:
    """Write an MP4 of exactly ``round(seconds * fps)`` frames with a tone on the audio track.

    ``noise`` (0..1) is the amplitude of random luma noise; with ``bit_rate`` (bits/s) the
    encoder targets that rate instead of a constant quality. Noise plus a high bit rate gives a
    large file quickly, e.g. ``noise=0.5, bit_rate=28_000_000`` ≈ 3.5 MB per second at 720p.
    The default (no noise, constant quality) makes a 4 s 1280x720 clip of about 120 kB.
    ``audio=False`` leaves the sound out; ``faststart=True`` puts the index before the data.
    ``colours`` makes every frame one solid colour, shared out in order over equal runs of frames:
    ``[RED, BLUE]`` gives a red first half and a blue second half (``noise`` and the bar are unused).
    """
    if width % 2 or height % 2:
        raise ValueError("yuv420p needs even width and height")
    rng = random.Random(seed)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", container_options=options) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        if bit_rate:
            video.bit_rate = bit_rate
            video.options = {"preset": "ultrafast", "maxrate": str(bit_rate), "bufsize": str(bit_rate)}
        else:
            video.options = {"preset": "ultrafast", "crf": "30"}
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if audio else None
        count = round(seconds * fps)
        for index in range(count):
            if colours:
                frame = _solid_frame(width, height, colours[index * len(colours) // count])
            else:
                frame = _video_frame(width, height, index, rng, seed, noise)
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))

        if sound is not None:
            sound.bit_rate = 96_000
            for frame in _tone_frames(220.0 + 55.0 * (seed % 16), round(seconds * SAMPLE_RATE)):
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))


def _video_frame(
    width: int, height: int, index: int, rng: random.Random, seed: int, noise: float
) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    base = 40 + (seed * 37) % 160
    luma_plane = frame.planes[0]
    stride = luma_plane.line_size
    if noise > 0:
        spread = max(1, round(noise * 110))
        table = bytes(min(255, max(0, base - spread + (v * 2 * spread) // 255)) for v in range(256))
        luma = bytearray(rng.randbytes(stride * height).translate(table))
    else:
        luma = bytearray([base]) * (stride * height)
    bar = max(2, height // 12)
    top = (index * 4) % max(1, height - bar)
    luma[top * stride : (top + bar) * stride] = bytes([235]) * (bar * stride)
    luma_plane.update(bytes(luma))
    for plane, value in zip(frame.planes[1:], ((seed * 53) % 256, (seed * 97) % 256), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


def _solid_frame(width: int, height: int, colour: RGB) -> av.VideoFrame:
    """One colour, in the BT.601 limited-range YUV a decoder assumes for untagged H.264."""
    red, green, blue = colour
    luma = 16 + (65.481 * red + 128.553 * green + 24.966 * blue) / 255
    cb = 128 + (-37.797 * red - 74.203 * green + 112.0 * blue) / 255
    cr = 128 + (112.0 * red - 93.786 * green - 18.214 * blue) / 255
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, (luma, cb, cr), strict=True):
        plane.update(bytes([round(value)]) * plane.buffer_size)
    return frame


def _tone_frames(frequency: float, total_samples: int) -> Iterator[av.AudioFrame]:
    step = 2 * math.pi * frequency / SAMPLE_RATE
    for start in range(0, total_samples, _AUDIO_CHUNK):
        count = min(_AUDIO_CHUNK, total_samples - start)
        samples = [0.3 * math.sin(step * (start + i)) for i in range(count)]
        frame = av.AudioFrame(format="fltp", layout="mono", samples=count)
        frame.planes[0].update(struct.pack(f"<{count}f", *samples))
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = Fraction(1, SAMPLE_RATE)
        frame.pts = start
        yield frame


def _picture(width: int, height: int, seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    image.paste(tuple(rng.randrange(256) for _ in range(3)), (0, height // 3, width, 2 * height // 3))
    return image


def make_thumbnail_webp(width: int = 1280, height: int = 720, *, seed: int = 0) -> bytes:
    """WebP bytes like the provider's ``variant=thumbnail``."""
    out = io.BytesIO()
    _picture(width, height, seed).save(out, "WEBP", quality=60)
    return out.getvalue()


def make_spritesheet_jpeg(width: int = 1280, height: int = 720, *, seed: int = 0) -> bytes:
    """JPEG bytes like the provider's ``variant=spritesheet``."""
    out = io.BytesIO()
    _picture(width, height, seed).save(out, "JPEG", quality=70)
    return out.getvalue()
