"""Fitting a clip under Discord's upload limit while keeping its sound.

``fit_video`` is synchronous and CPU-bound. It is a top-level function taking and returning
picklable values, so callers may run it with ``asyncio.to_thread`` or in a
``ProcessPoolExecutor`` (which also bounds its memory to a separate process).

How it fits: one H.264/AAC re-encode with PyAV (libx264, a fast preset). The video bit rate comes
from the byte budget minus the audio and the MP4 index, and is enforced as a VBV cap
(maxrate = bit rate, a half-second buffer), which bounds the total size instead of merely
aiming at it. If the clip is still too large (e.g. noise the encoder cannot squeeze even at its
coarsest quantiser), one more pass at a bit rate scaled down by the overshoot. When the bit rate per pixel
would fall below a floor, the picture is scaled down (aspect kept, even dimensions) instead of
letting it turn to mush. Frames are streamed one at a time; nothing holds the whole clip.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

from bot.media.mp4_boxes import ClipShape, DamagedClip, read_shape
from bot.reasons import PlainError

log = logging.getLogger(__name__)

AUDIO_BIT_RATE = 96_000
# Below this many bits per pixel per frame H.264 at a fast preset falls apart; scale down instead.
MIN_BITS_PER_PIXEL = 0.04
MIN_SHORT_SIDE = 144  # never go below 144p: better to refuse than to post a smear
SIZE_MARGIN = 0.02  # audio rate and index size are estimates: keep this fraction spare
MUX_OVERHEAD_BYTES = 16_384  # ftyp/moov headers
INDEX_BYTES_PER_SECOND = 1_500  # the moov's per-sample tables for ~24 video + ~47 audio frames
X264_PRESET = "veryfast"  # ~1.3x real time at 720p even on noise, on 2 cores
VBV_BUFFER_SECONDS = 0.5  # video bits <= rate * (duration + this), whatever the content
DEFAULT_FPS = Fraction(24)


class VideoFitError(PlainError):
    """The clip cannot be fitted; ``reason`` says why in plain words."""


@dataclass(frozen=True, slots=True)
class FitResult:
    path: Path
    compressed: bool
    size_bytes: int
    width: int
    height: int
    duration: float


@dataclass(frozen=True, slots=True)
class VideoProbe:
    """A readable clip: its picture size, length (its longest stream's), frame rate and sound."""

    width: int
    height: int
    duration: float
    fps: Fraction
    has_audio: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    width: int
    height: int
    video_bit_rate: int
    audio_bit_rate: int


def fit_video(source: Path, limit_bytes: int, workdir: Path) -> FitResult:
    """Return ``source`` unchanged if it is within ``limit_bytes``, else a smaller copy in ``workdir``.

    Raises VideoFitError if the source cannot be read as a video or no acceptable encode fits.
    Nothing is left in ``workdir`` except a successful result.
    """
    size = source.stat().st_size
    if size <= limit_bytes:
        return _as_it_is(source, size)
    probe = probe_video(source)
    dest = workdir / f"fit-{uuid.uuid4().hex}.mp4"
    try:
        plan, out_size = _encode_within(source, dest, probe, limit_bytes)
        result = probe_video(dest)
        _check_complete(probe, result)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    log.info(
        "fitted %s: %d -> %d bytes at %dx%d, %d kbit/s video",
        source.name,
        size,
        out_size,
        plan.width,
        plan.height,
        plan.video_bit_rate // 1000,
    )
    return FitResult(dest, True, out_size, result.width, result.height, result.duration)


def _as_it_is(source: Path, size: int) -> FitResult:
    """A clip within the limit, checked from its boxes (PyAV only for files they cannot judge)."""
    try:
        shape = read_shape(source)
    except DamagedClip as exc:
        raise VideoFitError(str(exc)) from None
    if shape is None:
        probe = probe_video(source)
        shape = ClipShape(probe.width, probe.height, probe.duration)
    return FitResult(source, False, size, shape.width, shape.height, shape.duration)


def _encode_within(source: Path, dest: Path, probe: VideoProbe, limit_bytes: int) -> tuple[_Plan, int]:
    """Encode once at the computed rate and, if that overshoots, once more at a scaled-down rate."""
    plan = _plan(probe, _video_bits_per_second(limit_bytes, probe))
    out_size = _encode(source, dest, plan, probe)
    if out_size > limit_bytes:
        log.info("fit of %s overshot (%d > %d bytes); second pass", source.name, out_size, limit_bytes)
        plan = _plan(probe, _rescaled_rate(plan, out_size, limit_bytes, probe.duration))
        out_size = _encode(source, dest, plan, probe)
    if out_size > limit_bytes:
        raise VideoFitError("The video could not be made small enough to upload.")
    return plan, out_size


def _check_complete(source: VideoProbe, result: VideoProbe) -> None:
    """A source whose index promises more than its data holds decodes short: call it damaged."""
    if abs(result.duration - source.duration) > max(0.5, 0.05 * source.duration):
        raise VideoFitError("The video file is damaged or incomplete.")


def probe_video(path: Path) -> VideoProbe:
    """Describe the clip at ``path``; VideoFitError if it is not a readable video."""
    try:
        with av.open(str(path)) as container:
            return _describe(container)
    except av.FFmpegError as exc:
        raise VideoFitError("The video file is damaged or not a video.") from exc


def _describe(container: InputContainer) -> VideoProbe:
    if not container.streams.video:
        raise VideoFitError("The file has no video in it.")
    video = container.streams.video[0]
    if container.duration:
        duration = container.duration / av.time_base
    elif video.duration and video.time_base:
        duration = float(video.duration * video.time_base)
    else:
        raise VideoFitError("The video file is damaged or not a video.")
    if not video.width or not video.height or duration <= 0:
        raise VideoFitError("The video file is damaged or not a video.")
    fps = video.average_rate or video.guessed_rate or DEFAULT_FPS
    return VideoProbe(video.width, video.height, duration, Fraction(fps), bool(container.streams.audio))


def _video_bits_per_second(limit_bytes: int, probe: VideoProbe) -> int:
    """The video bit rate that leaves room for the audio and the MP4 index within the limit."""
    budget = limit_bytes * (1 - SIZE_MARGIN) - MUX_OVERHEAD_BYTES
    budget -= INDEX_BYTES_PER_SECOND * probe.duration
    audio = AUDIO_BIT_RATE if probe.has_audio else 0
    return math.floor((budget * 8 - audio * probe.duration) / (probe.duration + VBV_BUFFER_SECONDS))


def _rescaled_rate(plan: _Plan, out_size: int, limit_bytes: int, duration: float) -> int:
    """Shrink the video rate by the overshoot, as if the audio and index took no part in it."""
    fixed_bytes = plan.audio_bit_rate * duration / 8 + MUX_OVERHEAD_BYTES
    video_bytes = max(1.0, out_size - fixed_bytes)
    wanted = limit_bytes * (1 - 2 * SIZE_MARGIN) - fixed_bytes
    return math.floor(plan.video_bit_rate * wanted / video_bytes)


def _plan(probe: VideoProbe, video_bit_rate: int) -> _Plan:
    """Keep the resolution if the rate allows it, else scale down to the bits-per-pixel floor."""
    if video_bit_rate <= 0:
        raise VideoFitError("The upload limit is too small for this video.")
    pixels_per_second = probe.width * probe.height * float(probe.fps)
    bits_per_pixel = video_bit_rate / pixels_per_second
    scale = min(1.0, math.sqrt(bits_per_pixel / MIN_BITS_PER_PIXEL))
    width, height = even_dimension(probe.width * scale), even_dimension(probe.height * scale)
    if scale < 1.0 and min(width, height) < MIN_SHORT_SIDE:
        raise VideoFitError("The upload limit is too small for this video.")
    audio = AUDIO_BIT_RATE if probe.has_audio else 0
    return _Plan(width, height, video_bit_rate, audio)


def even_dimension(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _encode(source: Path, dest: Path, plan: _Plan, probe: VideoProbe) -> int:
    """Re-encode ``source`` into ``dest`` following ``plan``; return the output's size."""
    with (
        reading_errors("The video file is damaged and could not be re-encoded."),
        av.open(str(source)) as inp,
        open_mp4_output(dest) as out,
    ):
        _transcode(inp, out, plan, probe)
    return dest.stat().st_size


def _transcode(inp: InputContainer, out: OutputContainer, plan: _Plan, probe: VideoProbe) -> None:
    in_video = inp.streams.video[0]
    in_video.thread_type = "AUTO"
    out_video = add_h264_stream(
        out,
        plan.width,
        plan.height,
        probe.fps,
        {"maxrate": str(plan.video_bit_rate), "bufsize": str(int(plan.video_bit_rate * VBV_BUFFER_SECONDS))},
    )
    out_video.bit_rate = plan.video_bit_rate
    in_audio = inp.streams.audio[0] if inp.streams.audio else None
    out_audio = add_aac_stream(out, in_audio) if in_audio is not None else None

    frames = 0
    streams = [s for s in (in_video, in_audio) if s is not None]
    for frame in decoded_frames(inp, streams):
        if isinstance(frame, av.VideoFrame):
            frames += 1
            scaled = frame.reformat(plan.width, plan.height, "yuv420p", interpolation="BILINEAR")
            out.mux(out_video.encode(scaled))
        elif out_audio is not None:
            out.mux(out_audio.encode(frame))
    if frames == 0:
        raise VideoFitError("The video file is damaged or not a video.")
    out.mux(out_video.encode(None))
    if out_audio is not None:
        out.mux(out_audio.encode(None))


@contextmanager
def reading_errors(reason: str) -> Iterator[None]:
    """Turn FFmpeg's complaints about the input into VideoFitError(reason); failed writes pass through."""
    try:
        yield
    except av.FFmpegError as exc:
        if isinstance(exc, OSError):  # writing failed (disk full, workdir gone): not the clip's fault
            raise
        raise VideoFitError(reason) from exc


def open_mp4_output(dest: Path) -> OutputContainer:
    """An MP4 with its index up front, so Discord can play it while it downloads."""
    return av.open(str(dest), "w", format="mp4", container_options={"movflags": "+faststart"})


def add_h264_stream(
    out: OutputContainer, width: int, height: int, fps: Fraction, options: dict[str, str]
) -> VideoStream:
    """A yuv420p H.264 stream (High profile, the fast preset); ``options`` set its rate control."""
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": X264_PRESET, "profile": "high", **options}
    return stream


def add_aac_stream(out: OutputContainer, template: AudioStream) -> AudioStream:
    """AAC at the template's rate, in its layout if mono or stereo, else down-mixed to stereo."""
    layout = template.layout.name if template.channels <= 2 else "stereo"
    stream = out.add_stream("aac", rate=template.sample_rate or 48_000, layout=layout)
    stream.bit_rate = AUDIO_BIT_RATE
    return stream


def decoded_frames(inp: InputContainer, streams: list[av.stream.Stream]) -> Iterator[av.frame.Frame]:
    for packet in inp.demux(*streams):
        yield from packet.decode()
