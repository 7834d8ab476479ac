"""A clip's shape from its MP4 boxes alone: no decoder, a few reads, well under a millisecond.

A clip that is already small enough is posted as it is, so all the bot needs to know is that it is
a whole MP4 with a picture in it, and its size and length. Opening it with FFmpeg (PyAV) to learn
that costs milliseconds of CPU per clip, which a thousand clips feel; reading the ISO-BMFF boxes
costs almost nothing, and is stricter: the top-level boxes must tile the file exactly, so a
download cut short is caught even when its index (`moov`) came first.

Files that are not plain MP4/MOV (WebM, fragmented MP4 without a duration in `mvhd`) give None:
the caller then asks PyAV.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Larger indexes than this are left to PyAV rather than read into memory.
MAX_MOOV_BYTES = 32 << 20
_ISO_BRANDS_BOX = b"ftyp"


class DamagedClip(ValueError):
    """The file is an MP4 that cannot be played as it is; the message says why, in plain words."""


@dataclass(frozen=True, slots=True)
class ClipShape:
    width: int
    height: int
    duration: float  # seconds


def read_shape(path: Path) -> ClipShape | None:
    """The clip's picture size and length from its boxes; None if the file is not one we can judge.

    Raises DamagedClip for an MP4 that is cut short, has no index or data, or has no picture.
    """
    with path.open("rb") as file:
        size = path.stat().st_size
        first = _header(file, 0, size)
        if first is None or first[0] != _ISO_BRANDS_BOX:
            return None
        moov: bytes | None = None
        has_data = False
        offset = 0
        while offset < size:
            header = _header(file, offset, size)
            if header is None:
                raise DamagedClip("The video file is damaged or not a video.")
            kind, start, end = header
            if kind == b"moov":
                if end - start > MAX_MOOV_BYTES:
                    return None
                file.seek(start)
                moov = file.read(end - start)
            elif kind == b"mdat":
                has_data = has_data or end > start
            elif kind == b"moof":
                return None  # fragmented: the length is spread over the fragments
            offset = end
    if moov is None or not has_data:
        raise DamagedClip("The video file is damaged or not a video.")
    return _shape(moov)


def _header(file: BinaryIO, offset: int, size: int) -> tuple[bytes, int, int] | None:
    """The top-level box at `offset` of a file of `size` bytes (see `_parse_header`)."""
    file.seek(offset)
    return _parse_header(file.read(16), offset, size)


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """The child boxes of a box's payload, as (type, payload); DamagedClip if they do not fit it."""
    children = []
    offset = 0
    while offset + 8 <= len(data):
        header = _parse_header(data[offset : offset + 16], offset, len(data))
        if header is None:
            raise DamagedClip("The video file is damaged or not a video.")
        kind, start, end = header
        children.append((kind, data[start:end]))
        offset = end
    return children


def _parse_header(head: bytes, offset: int, limit: int) -> tuple[bytes, int, int] | None:
    """(type, payload start, end) of the box whose first bytes are `head`, at `offset` in something
    `limit` bytes long; None if it does not fit there."""
    if len(head) < 8:
        return None
    length, kind = struct.unpack_from(">I4s", head)
    start = offset + 8
    if length == 1:  # a 64-bit size follows the type
        if len(head) < 16:
            return None
        (length,) = struct.unpack_from(">Q", head, 8)
        start = offset + 16
    elif length == 0:  # the box runs to the end
        length = limit - offset
    end = offset + length
    return (kind, start, end) if start <= end <= limit else None


def _shape(moov: bytes) -> ClipShape | None:
    duration = None
    width = height = 0
    for kind, payload in _boxes(moov):
        if kind == b"mvhd":
            duration = _movie_duration(payload)
        elif kind == b"trak":
            track = dict(_boxes(payload))
            media = dict(_boxes(track.get(b"mdia", b"")))
            handler = media.get(b"hdlr", b"")
            tkhd = track.get(b"tkhd", b"")
            if handler[8:12] == b"vide" and len(tkhd) >= 8 and not width:
                width, height = (value >> 16 for value in struct.unpack(">II", tkhd[-8:]))
    if duration is None or duration <= 0:
        return None  # no length in the header (e.g. fragmented): PyAV works it out
    if not width or not height:
        raise DamagedClip("The file has no video in it.")
    return ClipShape(width, height, duration)


def _movie_duration(mvhd: bytes) -> float | None:
    """Seconds from the movie header (version 0: 32-bit times, version 1: 64-bit)."""
    if mvhd[:1] == b"\x01" and len(mvhd) >= 32:
        timescale, duration = struct.unpack_from(">IQ", mvhd, 20)
    elif len(mvhd) >= 20:
        timescale, duration = struct.unpack_from(">II", mvhd, 12)
    else:
        return None
    return duration / timescale if timescale else None
