"""Single frames out of a clip, and two clips joined into one.

A model without a remix endpoint remixes a clip from its first frame ("frame" remix); Extend
continues a clip from its last frame and then joins the continuation after it. Everything here is
synchronous and CPU-bound (callers run it with ``asyncio.to_thread``) and streams frames one at a time.

Joining, decided:
- Each clip takes exactly its picture's length on the joined timeline. Its sound is trimmed or padded
  with silence to that length, so the second clip's sound starts with its picture; a clip without
  sound contributes silence. If neither clip has sound, neither does the result.
- The picture is re-encoded to H.264 at the first clip's size (the second is cover-scaled and
  centre-cropped to it, as images.py does for pictures), on a 90 kHz clock so that clips of
  different frame rates keep every frame.
- Constant quality, no size target: fitting under the upload limit is ``fit_video``'s job.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer

from bot.media.fit import (
    VideoFitError,
    VideoProbe,
    add_aac_stream,
    add_h264_stream,
    decoded_frames,
    even_dimension,
    open_mp4_output,
    probe_video,
    reading_errors,
)
from bot.media.images import PreparedImage, save_fitted_jpeg

JOIN_CRF = "20"  # near-transparent; fit_video squeezes the result afterwards if it must
VIDEO_TIME_BASE = Fraction(1, 90_000)  # a whole number of ticks per frame at 24, 25, 30, 60 and 29.97 fps
SILENCE_CHUNK = 1024  # samples per frame of inserted silence
_SAMPLE_FORMAT = "fltp"  # what the AAC encoder takes
_DAMAGED = "The video file is damaged or not a video."
_UNJOINABLE = "A clip is damaged and could not be joined."


@dataclass(frozen=True, slots=True)
class JoinResult:
    path: Path
    duration: float
    width: int
    height: int


def extract_frame(
    video: Path, which: Literal["first", "last"], width: int, height: int, dest: Path
) -> PreparedImage:
    """Save the clip's first or last frame to ``dest`` as a JPEG of exactly ``width`` x ``height``.

    The frame is cover-scaled and centre-cropped like a member's image. Raises VideoFitError if
    ``video`` is not a readable video.
    """
    probe = probe_video(video)
    with reading_errors(_DAMAGED), av.open(str(video)) as container:
        frame = _last_frame(container, probe) if which == "last" else _first_frame(container)
        image = frame.to_image()
    return save_fitted_jpeg(image, width, height, dest)


def _first_frame(container: InputContainer) -> av.VideoFrame:
    for frame in container.decode(container.streams.video[0]):
        return frame
    raise VideoFitError(_DAMAGED)


def _last_frame(container: InputContainer, probe: VideoProbe) -> av.VideoFrame:
    """Seek to the last keyframe before the end and decode forward from there, not the whole clip."""
    container.seek(round(probe.duration * av.time_base), backward=True)
    last = deque(container.decode(container.streams.video[0]), maxlen=1)
    if not last:
        raise VideoFitError(_DAMAGED)
    return last[0]


def join_clips(first: Path, second: Path, dest: Path) -> JoinResult:
    """Write to ``dest`` one MP4 that plays ``first`` and then ``second``, with their sound.

    Raises VideoFitError if either is not a readable video; nothing is left at ``dest`` on failure.
    """
    size = probe_video(first)
    probe_video(second)
    try:
        with (
            reading_errors(_UNJOINABLE),
            av.open(str(first)) as one,
            av.open(str(second)) as two,
            open_mp4_output(dest) as out,
        ):
            _join([one, two], out, size)
        result = probe_video(dest)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return JoinResult(dest, result.duration, result.width, result.height)


def _join(inputs: Sequence[InputContainer], out: OutputContainer, size: VideoProbe) -> None:
    video = _VideoTrack(out, even_dimension(size.width), even_dimension(size.height), size.fps)
    sounds = [inp.streams.audio[0] for inp in inputs if inp.streams.audio]
    audio = _AudioTrack(out, sounds[0]) if sounds else None
    offset = 0.0
    for inp in inputs:
        offset = _append(inp, video, audio, offset)
    video.finish()
    if audio is not None:
        audio.finish()


def _append(inp: InputContainer, video: _VideoTrack, audio: _AudioTrack | None, offset: float) -> float:
    """Add one clip starting ``offset`` seconds into the joined timeline; return where it ends."""
    start, length = _picture_span(inp)
    origin, end = offset - start, offset + length  # origin: where the clip's own time 0 lands
    in_video = inp.streams.video[0]
    in_video.thread_type = "AUTO"
    in_audio = inp.streams.audio[0] if inp.streams.audio and audio is not None else None
    scale = _CoverScaler(video.width, video.height)
    pictures = 0
    for frame in decoded_frames(inp, [s for s in (in_video, in_audio) if s is not None]):
        if isinstance(frame, av.VideoFrame):
            pictures += 1
            at = origin + frame.time
            if at < end:
                video.add(scale(frame), at, min(end, at + float(frame.duration * frame.time_base)))
            if audio is not None and in_audio is None:
                audio.silence_until(at)  # keep pace with the picture, so the muxer need not hold it back
        elif audio is not None:
            audio.add(frame, origin, end)
    if pictures == 0:
        raise VideoFitError(_UNJOINABLE)
    if audio is not None:
        audio.end_clip(origin, end)
    return end


def _picture_span(inp: InputContainer) -> tuple[float, float]:
    """When the clip's picture starts and how long it lasts, in seconds (its sound may run longer)."""
    stream = inp.streams.video[0]
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if stream.duration:
        return start, float(stream.duration * stream.time_base)
    return start, inp.duration / av.time_base


class _CoverScaler:
    """Scales each frame to cover ``width`` x ``height``, crops the centre and converts to yuv420p."""

    def __init__(self, width: int, height: int) -> None:
        self._width, self._height = width, height
        self._graph: av.filter.Graph | None = None

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self._graph is None:  # built from a decoded frame: a stream may not know its pixel format
            self._graph = self._build(frame)
        self._graph.vpush(frame)
        return self._graph.vpull()

    def _build(self, template: av.VideoFrame) -> av.filter.Graph:
        size = f"{self._width}:{self._height}"
        graph = av.filter.Graph()
        graph.link_nodes(
            graph.add_buffer(template=template),
            graph.add("scale", f"{size}:force_original_aspect_ratio=increase"),
            graph.add("crop", size),
            graph.add("format", "yuv420p"),
            graph.add("buffersink"),
        ).configure()
        return graph


class _VideoTrack:
    """The joined picture: each frame encoded at its place on the joined timeline."""

    def __init__(self, out: OutputContainer, width: int, height: int, fps: Fraction) -> None:
        self.width, self.height = width, height
        self._out = out
        self._stream = add_h264_stream(out, width, height, fps, {"crf": JOIN_CRF})
        self._stream.codec_context.time_base = VIDEO_TIME_BASE
        self._last_pts = -1
        self._durations: dict[int, int] = {}  # by pts, for frames still inside the encoder

    def add(self, frame: av.VideoFrame, at: float, until: float) -> None:
        """Show ``frame`` from ``at`` to ``until`` seconds."""
        pts = round(at / VIDEO_TIME_BASE)
        if pts <= self._last_pts:  # before the clip's start: the encoder needs rising timestamps
            return
        frame.pts, frame.time_base = pts, VIDEO_TIME_BASE
        self._last_pts = pts
        self._durations[pts] = round(until / VIDEO_TIME_BASE) - pts
        self._mux(self._stream.encode(frame))

    def finish(self) -> None:
        self._mux(self._stream.encode(None))

    def _mux(self, packets: list[av.Packet]) -> None:
        """Give each packet its frame's own length, not x264's guess from the first clip's frame rate.

        The last frame's length decides where the picture ends, which should be where the sound ends.
        """
        for packet in packets:
            packet.duration = self._durations.pop(packet.pts, 0) or packet.duration
        self._out.mux(packets)


class _AudioTrack:
    """The joined sound: one unbroken run of samples in which each clip fills exactly its span."""

    def __init__(self, out: OutputContainer, template: AudioStream) -> None:
        self._out = out
        self._stream = add_aac_stream(out, template)
        self._rate = self._stream.sample_rate
        self._layout = self._stream.layout.name
        self._written = 0  # samples so far
        self._resampler = self._converter()

    def _converter(self) -> av.AudioResampler:
        return av.AudioResampler(_SAMPLE_FORMAT, self._layout, self._rate)

    def add(self, frame: av.AudioFrame | None, origin: float, end: float) -> None:
        """Place a decoded frame (``None`` flushes the converter); nothing at or after ``end`` is kept."""
        stop = round(end * self._rate)
        for piece in self._resampler.resample(frame):
            first = round((origin + piece.time) * self._rate)
            self._pad_to(min(first, stop))  # a gap in the clip's sound
            skip = self._written - first  # an overlap with what is already written
            take = min(piece.samples, stop - first) - skip
            if take > 0:
                self._write(self._samples(piece, skip, take))

    def end_clip(self, origin: float, end: float) -> None:
        """Flush and pad this clip's sound to ``end``; the next clip (rate, layout) gets a new converter."""
        self.add(None, origin, end)
        self.silence_until(end)
        self._resampler = self._converter()

    def silence_until(self, seconds: float) -> None:
        self._pad_to(round(seconds * self._rate))

    def finish(self) -> None:
        self._out.mux(self._stream.encode(None))

    def _pad_to(self, sample: int) -> None:
        while self._written < sample:
            count = min(SILENCE_CHUNK, sample - self._written)
            silence = av.AudioFrame(format=_SAMPLE_FORMAT, layout=self._layout, samples=count)
            for plane in silence.planes:
                plane.update(bytes(plane.buffer_size))
            self._write(silence)

    def _samples(self, frame: av.AudioFrame, skip: int, take: int) -> av.AudioFrame:
        """``take`` samples of ``frame`` from ``skip`` on (the frame itself if that is all of it)."""
        if skip == 0 and take == frame.samples:
            return frame
        part = av.AudioFrame(format=_SAMPLE_FORMAT, layout=self._layout, samples=take)
        width = frame.format.bytes
        for source, target in zip(frame.planes, part.planes, strict=True):
            target.update(bytes(memoryview(source)[skip * width : (skip + take) * width]))
        return part

    def _write(self, frame: av.AudioFrame) -> None:
        frame.pts, frame.time_base, frame.sample_rate = self._written, Fraction(1, self._rate), self._rate
        self._written += frame.samples
        self._out.mux(self._stream.encode(frame))
