"""Reading a clip's shape from its MP4 boxes: what PyAV says for whole files, refusals for broken ones."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import pytest

from bot.media.fit import probe_video
from bot.media.mp4_boxes import DamagedClip, read_shape
from tests.fakes.mp4 import make_mp4
from tests.test_media_fit import write_random, write_sound_only


@pytest.mark.parametrize(
    ("width", "height", "seconds", "faststart", "audio"),
    [(320, 240, 2, False, True), (240, 426, 1.5, True, True), (160, 90, 3, False, False)],
)
def test_the_shape_is_what_pyav_reads(
    tmp_path: Path, width: int, height: int, seconds: float, faststart: bool, audio: bool
) -> None:
    clip = tmp_path / "clip.mp4"
    make_mp4(clip, width, height, seconds, faststart=faststart, audio=audio)
    shape = read_shape(clip)
    probe = probe_video(clip)
    assert shape is not None
    assert (shape.width, shape.height) == (probe.width, probe.height) == (width, height)
    assert shape.duration == pytest.approx(probe.duration, abs=0.05)


@pytest.mark.parametrize("faststart", [False, True])
def test_a_download_cut_short_is_damaged_wherever_its_index_is(tmp_path: Path, faststart: bool) -> None:
    clip = tmp_path / "clip.mp4"
    make_mp4(clip, 320, 240, 2, noise=0.4, faststart=faststart)
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size - 100])
    with pytest.raises(DamagedClip, match="damaged"):
        read_shape(clip)


def test_sound_without_a_picture_is_no_video(tmp_path: Path) -> None:
    clip = tmp_path / "sound.mp4"
    write_sound_only(clip)
    with pytest.raises(DamagedClip, match="no video"):
        read_shape(clip)


def test_brands_without_an_index_are_damaged(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(
        struct.pack(">I4s4sI", 16, b"ftyp", b"isom", 0) + struct.pack(">I4s", 12, b"mdat") + b"abcd"
    )
    with pytest.raises(DamagedClip, match="damaged"):
        read_shape(clip)


def test_a_64_bit_box_size_is_followed(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    make_mp4(clip, 320, 240, 1, faststart=True)
    data = clip.read_bytes()
    at = data.index(b"mdat") - 4
    (length,) = struct.unpack_from(">I", data, at)
    wide = struct.pack(">I4sQ", 1, b"mdat", length + 8) + data[at + 8 : at + length]
    clip.write_bytes(data[:at] + wide + data[at + length :])
    shape = read_shape(clip)
    assert shape is not None and (shape.width, shape.height) == (320, 240)


def test_files_it_cannot_judge_are_left_to_pyav(tmp_path: Path) -> None:
    noise = tmp_path / "noise.mp4"
    write_random(noise)
    fragmented = tmp_path / "fragmented.mp4"
    with av.open(
        str(fragmented), "w", format="mp4", container_options={"movflags": "frag_keyframe+empty_moov"}
    ) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(24):
            frame = av.VideoFrame(64, 64, "yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert read_shape(noise) is None
    assert read_shape(fragmented) is None
