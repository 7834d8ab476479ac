"""bot.media.fit: fitting a clip under the upload limit, keeping its sound."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import pytest

from bot.media.fit import FitResult, VideoFitError, fit_video
from tests.fakes.mp4 import make_mp4

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reported case: a ~14 MiB 720p clip with sound (short, but at a high bit rate)."""
    path = tmp_path_factory.mktemp("big") / "big.mp4"
    make_mp4(path, 1280, 720, 4, seed=3, noise=0.5, bit_rate=27_000_000)
    assert 13 * MiB < path.stat().st_size < 15 * MiB
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def streams_of(path: Path) -> tuple[list[str], float, tuple[int, int]]:
    """Decode every frame (proving the file plays) and describe it."""
    with av.open(str(path)) as container:
        for _ in container.decode(*container.streams):
            pass
        video = container.streams.video[0]
        kinds = sorted(stream.type for stream in container.streams)
        return kinds, container.duration / av.time_base, (video.width, video.height)


def test_big_clip_fitted_under_limit_with_sound(big_clip: Path, workdir: Path) -> None:
    result = fit_video(big_clip, 10 * MiB, workdir)

    assert result.compressed
    assert result.path.parent == workdir
    assert result.size_bytes == result.path.stat().st_size <= 10 * MiB
    kinds, duration, size = streams_of(result.path)
    assert kinds == ["audio", "video"]
    assert abs(duration - 4.0) <= 0.2
    assert abs(result.duration - 4.0) <= 0.2
    assert size == (result.width, result.height) == (1280, 720)
    assert b"moov" in result.path.read_bytes()[:256]  # faststart: playable while downloading
    assert list(workdir.iterdir()) == [result.path]


def test_clip_within_limit_returned_unchanged(tmp_path: Path, workdir: Path) -> None:
    source = tmp_path / "small.mp4"
    make_mp4(source, 320, 240, 1, seed=1)
    before = source.read_bytes()

    result = fit_video(source, len(before), workdir)

    assert result == FitResult(source, False, len(before), 320, 240, result.duration)
    assert abs(result.duration - 1.0) <= 0.1
    assert source.read_bytes() == before
    assert list(workdir.iterdir()) == []


def test_tight_limit_scales_picture_down(tmp_path: Path, workdir: Path) -> None:
    source = tmp_path / "wide.mp4"
    make_mp4(source, 640, 360, 2, seed=2, noise=0.3, bit_rate=3_000_000)

    result = fit_video(source, 60_000, workdir)

    assert result.size_bytes <= 60_000
    assert result.width < 640 and result.height < 360
    assert result.width % 2 == 0 and result.height % 2 == 0
    assert result.width / result.height == pytest.approx(640 / 360, rel=0.02)
    kinds, duration, _ = streams_of(result.path)
    assert kinds == ["audio", "video"]
    assert abs(duration - 2.0) <= 0.2
    assert list(workdir.iterdir()) == [result.path]


def test_clip_without_sound_is_fitted(tmp_path: Path, workdir: Path) -> None:
    source = tmp_path / "silent.mp4"
    make_mp4(source, 320, 240, 1, noise=0.4, bit_rate=4_000_000, audio=False)
    limit = source.stat().st_size // 2

    result = fit_video(source, limit, workdir)

    assert result.compressed and result.size_bytes <= limit
    assert streams_of(result.path)[0] == ["video"]


def test_absurd_limit_fails_cleanly(tmp_path: Path, workdir: Path) -> None:
    source = tmp_path / "clip.mp4"
    make_mp4(source, 640, 360, 2, noise=0.3, bit_rate=3_000_000)
    with pytest.raises(VideoFitError, match="too small"):
        fit_video(source, 20_000, workdir)
    assert list(workdir.iterdir()) == []


def write_random(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(200_000))


def write_without_index(path: Path) -> None:
    """An MP4 cut in half: its index (moov, at the end) is gone."""
    make_mp4(path, 320, 240, 2, noise=0.4, bit_rate=2_000_000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def write_missing_data(path: Path) -> None:
    """A faststart MP4 cut in half: the index promises frames the file no longer holds."""
    make_mp4(path, 320, 240, 2, noise=0.4, bit_rate=2_000_000, faststart=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def write_sound_only(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48_000, layout="mono")
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        frame.planes[0].update(bytes(4096))
        frame.sample_rate = 48_000
        for index in range(100):
            frame.pts = index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (write_random, "damaged"),
        (write_without_index, "damaged"),
        (write_missing_data, "damaged"),
        (write_sound_only, "no video"),
    ],
)
def test_unusable_source_rejected(
    tmp_path: Path, workdir: Path, make: Callable[[Path], None], reason: str
) -> None:
    source = tmp_path / "bad.mp4"
    make(source)
    with pytest.raises(VideoFitError, match=reason):
        fit_video(source, 60_000, workdir)
    assert list(workdir.iterdir()) == []


def test_results_and_errors_cross_process_boundaries(tmp_path: Path, workdir: Path) -> None:
    source = tmp_path / "small.mp4"
    make_mp4(source, 320, 240, 1)
    with ProcessPoolExecutor(max_workers=1) as pool:
        result = pool.submit(fit_video, source, 10 * MiB, workdir).result()
    assert result.path == source and not result.compressed
    error = pickle.loads(pickle.dumps(VideoFitError("The file has no video in it.")))
    assert error.reason == "The file has no video in it."
