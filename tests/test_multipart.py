"""The one-piece multipart/form-data bodies, read back by a standard multipart parser."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP

from bot.videos.multipart import FilePart, encode_form


def parts(body: bytes, content_type: str) -> list[tuple[str | None, str | None, str, bytes]]:
    """(name, filename, content type, bytes) of each part, as the stdlib's MIME parser reads them."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart() and not message.defects
    return [
        (
            part.get_param("name", header="content-disposition"),
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    ]


def test_text_fields_and_a_file_part_arrive_intact() -> None:
    image = bytes(range(256)) * 4  # every byte value, CR and LF included
    body, content_type = encode_form(
        [("prompt", 'a "cat"\r\non a mat — ünïcode'), ("seconds", "8")],
        [FilePart("input_reference", image, "job-7.png", "image/png")],
    )
    assert content_type.startswith("multipart/form-data; boundary=")
    assert parts(body, content_type) == [
        ("prompt", None, "text/plain", 'a "cat"\r\non a mat — ünïcode'.encode()),
        ("seconds", None, "text/plain", b"8"),
        ("input_reference", "job-7.png", "image/png", image),
    ]


def test_quotes_and_line_breaks_in_names_cannot_break_out_of_the_header() -> None:
    body, content_type = encode_form([('we"ird\r\nX-Injected: 1', "v")])
    assert b"X-Injected: 1\r\n" not in body
    ((name, _, _, value),) = parts(body, content_type)
    assert (name, value) == ("we%22ird%0D%0AX-Injected: 1", b"v")


def test_each_body_has_its_own_boundary() -> None:
    assert encode_form([("a", "b")])[1] != encode_form([("a", "b")])[1]
