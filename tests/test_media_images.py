"""bot.media.images: checking and preparing a member's reference image."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from bot.media.images import (
    MAX_IMAGE_BYTES,
    ImageRejected,
    PreparedImage,
    prepare_reference_image,
    sniff_image_type,
)

RED, BLUE = (255, 0, 0), (0, 0, 255)


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """Incompressible pixels, so a truncated file really lacks image data."""
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
        + chunk(b"IEND", b"")
    )


def assert_rejected(source: Path, tmp_path: Path, fragment: str) -> None:
    dest = tmp_path / "out.jpg"
    with pytest.raises(ImageRejected) as info:
        prepare_reference_image(source, 1280, 720, dest)
    assert fragment in info.value.reason
    assert not dest.exists()


def prepare(source: Path, tmp_path: Path, width: int = 1280, height: int = 720) -> PreparedImage:
    return prepare_reference_image(source, width, height, tmp_path / "out.jpg")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\0\x10JFIF\0", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\x0d", "image/png"),
        (b"RIFF\x10\0\0\0WEBPVP8 ", "image/webp"),
        (b"RIFF\x10\0\0\0WAVEfmt ", None),
        (b"GIF89a\x01\0\x01\0", None),
        (b"hello, world", None),
        (b"", None),
    ],
)
def test_sniff_image_type(head: bytes, expected: str | None) -> None:
    assert sniff_image_type(head) == expected


@settings(max_examples=200)
@given(st.binary(max_size=32))
def test_sniff_never_fails(head: bytes) -> None:
    assert sniff_image_type(head) in (None, "image/jpeg", "image/png", "image/webp")


def test_truncated_images_are_not_loaded_by_default() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_empty_file_rejected(tmp_path: Path) -> None:
    source = tmp_path / "empty.png"
    source.touch()
    assert_rejected(source, tmp_path, "empty")


def test_too_large_file_rejected(tmp_path: Path) -> None:
    source = tmp_path / "huge.jpg"
    with source.open("wb") as file:
        file.write(b"\xff\xd8\xff")
        file.truncate(MAX_IMAGE_BYTES + 1)
    assert_rejected(source, tmp_path, "larger than")


def test_text_named_png_rejected(tmp_path: Path) -> None:
    source = tmp_path / "notes.png"
    source.write_text("not an image at all\n" * 20)
    assert_rejected(source, tmp_path, "JPEG, PNG or WebP")


def test_gif_rejected(tmp_path: Path) -> None:
    source = tmp_path / "anim.gif"
    Image.new("RGB", (20, 20), RED).save(source, "GIF")
    assert_rejected(source, tmp_path, "JPEG, PNG or WebP")


def test_png_magic_with_garbage_rejected(tmp_path: Path) -> None:
    source = tmp_path / "fake.png"
    source.write_bytes(b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(500))
    assert_rejected(source, tmp_path, "damaged")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_image_rejected(tmp_path: Path, fmt: str) -> None:
    whole = tmp_path / "whole"
    noise_image(300, 200).save(whole, fmt)
    source = tmp_path / "cut"
    source.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert_rejected(source, tmp_path, "damaged")


@pytest.mark.parametrize(
    ("width", "height"),
    [(20_000, 20_000), (8_000, 6_000)],  # beyond Pillow's own limit; beyond ours only
)
def test_decompression_bomb_rejected(tmp_path: Path, width: int, height: int) -> None:
    source = tmp_path / "bomb.png"
    source.write_bytes(png_declaring(width, height))
    assert source.stat().st_size < 1000
    assert_rejected(source, tmp_path, "megapixels")


def test_exif_orientation_applied(tmp_path: Path) -> None:
    # Stored landscape with a red top-left quadrant; orientation 6 = rotate 90° clockwise
    # to display, so the red quadrant is shown top-right of a portrait picture.
    stored = Image.new("RGB", (400, 200), BLUE)
    stored.paste(RED, (0, 0, 200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    source = tmp_path / "phone.jpg"
    stored.save(source, "JPEG", quality=95, exif=exif)

    result = prepare(source, tmp_path, 720, 1280)

    with Image.open(result.path) as out:
        assert out.size == (720, 1280)
        assert is_near(out.getpixel((700, 20)), RED)
        assert is_near(out.getpixel((20, 20)), BLUE)
        assert is_near(out.getpixel((700, 1260)), BLUE)
        assert not out.getexif()


def test_large_rotated_jpeg_uses_draft_and_keeps_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    source = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), RED).save(source, "JPEG", exif=exif)
    result = prepare(source, tmp_path, 720, 1280)
    with Image.open(result.path) as out:
        assert out.size == (720, 1280)


@pytest.mark.parametrize("source_size", [(333, 777), (1001, 99), (7, 5), (641, 359)])
@pytest.mark.parametrize("target", [(1280, 720), (720, 1280), (1792, 1024), (1024, 1792)])
def test_exact_output_size(tmp_path: Path, source_size: tuple[int, int], target: tuple[int, int]) -> None:
    source = tmp_path / "in.png"
    noise_image(*source_size).save(source, "PNG")
    result = prepare(source, tmp_path, *target)
    assert (result.width, result.height) == target
    with Image.open(result.path) as out:
        assert out.size == target
        assert out.mode == "RGB"


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.sampled_from([(1280, 720), (720, 1280)]))
def test_any_shape_fits_exactly(
    tmp_path_factory: pytest.TempPathFactory, width: int, height: int, target: tuple[int, int]
) -> None:
    tmp_path = tmp_path_factory.mktemp("shape")
    source = tmp_path / "in.png"
    Image.new("L", (width, height), 128).save(source, "PNG")
    with Image.open(prepare(source, tmp_path, *target).path) as out:
        assert out.size == target


def test_webp_with_alpha_flattened_on_white(tmp_path: Path) -> None:
    picture = Image.new("RGBA", (160, 90), (0, 0, 0, 0))
    picture.paste((255, 0, 0, 255), (60, 30, 100, 60))
    source = tmp_path / "sticker.png"  # the name lies; the bytes decide
    picture.save(source, "WEBP", lossless=True)

    result = prepare(source, tmp_path)

    with Image.open(result.path) as out:
        assert is_near(out.getpixel((10, 10)), (255, 255, 255))
        assert is_near(out.getpixel((640, 360)), RED)


def test_animated_webp_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (64, 36), colour) for colour in (RED, BLUE)]
    source = tmp_path / "anim.webp"
    frames[0].save(source, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    with Image.open(prepare(source, tmp_path).path) as out:
        assert is_near(out.getpixel((640, 360)), RED)


def test_output_mime_matches_bytes_and_metadata_stripped(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    source = tmp_path / "photo.webp"
    noise_image(640, 480).save(source, "PNG", exif=exif)  # PNG bytes behind a .webp name

    result = prepare(source, tmp_path)

    assert result.mime_type == sniff_image_type(result.path.read_bytes()[:16]) == "image/jpeg"
    with Image.open(result.path) as out:
        assert out.format == "JPEG"
        assert not out.getexif()
        assert "icc_profile" not in out.info


def is_near(pixel: object, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))
