"""multipart/form-data bodies built in one piece (RFC 7578, quoted as browsers and the WHATWG do).

A create request is a few short text fields and at most one reference image that is already in
memory (it is small: bot.media.images). Built as one bytes body, it is written to the socket at
once, where aiohttp's streaming form writer makes a write per part header and body.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

_ESCAPES = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A"})


@dataclass(frozen=True, slots=True)
class FilePart:
    name: str
    data: bytes
    filename: str
    content_type: str


def encode_form(fields: Sequence[tuple[str, str]], files: Sequence[FilePart] = ()) -> tuple[bytes, str]:
    """The body and its Content-Type (with a random boundary)."""
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for name, value in fields:
        chunks += (_head(boundary, f'name="{_quoted(name)}"'), value.encode(), b"\r\n")
    for part in files:
        disposition = f'name="{_quoted(part.name)}"; filename="{_quoted(part.filename)}"'
        chunks += (_head(boundary, disposition, part.content_type), part.data, b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _head(boundary: str, disposition: str, content_type: str | None = None) -> bytes:
    head = f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return (head + "\r\n").encode()


def _quoted(text: str) -> str:
    return text.translate(_ESCAPES)
