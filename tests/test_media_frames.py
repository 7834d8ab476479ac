"""bot.media.frames: a clip's first and last frames, and two clips joined with their sound."""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from PIL import Image

from bot.media.fit import VideoFitError
from bot.media.frames import JoinResult, extract_frame, join_clips
from tests.fakes.mp4 import RGB, make_mp4

RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
FRAME = 1 / 24


def mean_colour(image: Image.Image) -> RGB:
    return image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))


def assert_colour(actual: RGB, expected: RGB) -> None:
    assert all(abs(a - e) <= 16 for a, e in zip(actual, expected, strict=True)), (actual, expected)


@pytest.fixture(scope="module")
def marked_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s with only the first frame red and only the last one blue; long enough for later keyframes."""
    path = tmp_path_factory.mktemp("marked") / "marked.mp4"
    frames = 12 * 24
    make_mp4(path, 320, 240, 12, colours=[RED] + [GREEN] * (frames - 2) + [BLUE])
    return path


@pytest.mark.parametrize(("which", "colour"), [("first", RED), ("last", BLUE)])
def test_frame_extracted_at_exact_size(marked_clip: Path, tmp_path: Path, which: str, colour: RGB) -> None:
    dest = tmp_path / "frame.jpg"

    prepared = extract_frame(marked_clip, which, 200, 200, dest)

    assert (prepared.path, prepared.mime_type, prepared.width, prepared.height) == (
        dest,
        "image/jpeg",
        200,
        200,
    )
    with Image.open(dest) as image:
        assert (image.format, image.size) == ("JPEG", (200, 200))
        assert_colour(mean_colour(image), colour)


def write_text(path: Path) -> None:
    path.write_text("not a video at all\n")


def write_random(path: Path) -> None:
    path.write_bytes(random.Random(3).randbytes(50_000))


def write_index_without_data(path: Path) -> None:
    """A faststart MP4 cut right after its index: it promises frames it does not hold."""
    make_mp4(path, 320, 240, 1, faststart=True)
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"mdat") + 4])


@pytest.mark.parametrize("which", ["first", "last"])
@pytest.mark.parametrize("make", [write_text, write_random, write_index_without_data])
def test_non_video_refused_with_plain_reason(
    tmp_path: Path, make: Callable[[Path], None], which: str
) -> None:
    source, dest = tmp_path / "clip.mp4", tmp_path / "frame.jpg"
    make(source)

    with pytest.raises(VideoFitError) as info:
        extract_frame(source, which, 320, 240, dest)

    assert info.value.reason == "The video file is damaged or not a video."
    assert not dest.exists()


def decoded_samples(path: Path) -> list[float]:
    """Every decoded sample of the (mono) sound track, from time 0."""
    samples: list[float] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            if not samples:
                assert frame.time == pytest.approx(0.0)
            samples += struct.unpack_from(f"<{frame.samples}f", frame.planes[0])
    return samples


def window(samples: list[float], start: float, stop: float) -> list[float]:
    return samples[round(start * 48_000) : round(stop * 48_000)]


def zero_crossings(samples: list[float]) -> int:
    return sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))


def stream_seconds(path: Path) -> dict[str, float]:
    with av.open(str(path)) as container:
        return {s.type: float(s.duration * s.time_base) for s in container.streams}


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> JoinResult:
    """2 s red then yellow at 24 fps, 275 Hz; then 1.5 s green then blue, wider, at 30 fps, 440 Hz."""
    folder = tmp_path_factory.mktemp("join")
    first, second = folder / "first.mp4", folder / "second.mp4"
    make_mp4(first, 320, 240, 2, seed=1, colours=[RED, YELLOW])
    make_mp4(second, 480, 240, 1.5, seed=4, fps=30, colours=[GREEN, BLUE])
    return join_clips(first, second, folder / "joined.mp4")


def test_joined_clip_has_both_streams_in_sync(joined: JoinResult) -> None:
    assert (joined.width, joined.height) == (320, 240)
    assert joined.duration == pytest.approx(3.5, abs=FRAME)
    lengths = stream_seconds(joined.path)
    assert sorted(lengths) == ["audio", "video"]
    assert lengths["video"] == pytest.approx(3.5, abs=FRAME)
    assert lengths["audio"] == pytest.approx(lengths["video"], abs=0.025)  # one AAC frame


def test_joined_picture_is_continuous(joined: JoinResult) -> None:
    with av.open(str(joined.path)) as container:
        frames = [(frame.time, mean_colour(frame.to_image())) for frame in container.decode(video=0)]

    times = [time for time, _ in frames]
    expected = [i / 24 for i in range(48)] + [2 + i / 30 for i in range(45)]
    assert times == pytest.approx(expected, abs=1e-4)  # no gap, no overlap, every frame kept
    colours = [RED] * 24 + [YELLOW] * 24 + [GREEN] * 23 + [BLUE] * 22
    for (_, colour), wanted in zip(frames, colours, strict=True):
        assert_colour(colour, wanted)


def test_joined_sound_switches_with_the_picture(joined: JoinResult) -> None:
    samples = decoded_samples(joined.path)

    before, after = window(samples, 1.8, 1.98), window(samples, 2.02, 2.2)
    assert zero_crossings(before) == pytest.approx(2 * 275 * 0.18, abs=4)
    assert zero_crossings(after) == pytest.approx(2 * 440 * 0.18, abs=4)


@pytest.mark.parametrize("silent_first", [True, False])
def test_clip_without_sound_joined_as_silence(tmp_path: Path, silent_first: bool) -> None:
    silent, sounding = tmp_path / "silent.mp4", tmp_path / "sounding.mp4"
    make_mp4(silent, 320, 240, 1, colours=[RED], audio=False)
    make_mp4(sounding, 320, 240, 1, colours=[BLUE])
    order = (silent, sounding) if silent_first else (sounding, silent)

    result = join_clips(*order, tmp_path / "joined.mp4")

    lengths = stream_seconds(result.path)
    assert lengths["video"] == pytest.approx(2.0, abs=FRAME)
    assert lengths["audio"] == pytest.approx(2.0, abs=0.025)
    samples = decoded_samples(result.path)
    quiet, loud = (0.05, 0.95), (1.05, 1.95)
    if not silent_first:
        quiet, loud = loud, quiet
    assert max(map(abs, window(samples, *quiet))) < 0.001
    assert max(map(abs, window(samples, *loud))) > 0.2


def test_clips_without_sound_give_a_silent_film(tmp_path: Path) -> None:
    first, second = tmp_path / "one.mp4", tmp_path / "two.mp4"
    make_mp4(first, 320, 240, 1, audio=False)
    make_mp4(second, 320, 240, 1, audio=False)

    result = join_clips(first, second, tmp_path / "joined.mp4")

    assert list(stream_seconds(result.path)) == ["video"]
    assert result.duration == pytest.approx(2.0, abs=FRAME)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (write_random, "The video file is damaged or not a video."),
        (write_index_without_data, "A clip is damaged and could not be joined."),
    ],
)
def test_unjoinable_clip_leaves_nothing(tmp_path: Path, make: Callable[[Path], None], reason: str) -> None:
    good, bad = tmp_path / "good.mp4", tmp_path / "bad.mp4"
    make_mp4(good, 320, 240, 1)
    make(bad)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(VideoFitError) as info:
        join_clips(good, bad, out / "joined.mp4")

    assert info.value.reason == reason
    assert list(out.iterdir()) == []
