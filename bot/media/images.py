"""Preparing a member's image for the Videos API's ``input_reference``.

The API only accepts jpeg/png/webp whose pixel size equals the requested video size exactly, so
every accepted image is oriented (EXIF), flattened to RGB, scaled to cover the target, centre-
cropped, and re-encoded as a metadata-free JPEG. Everything here is synchronous and CPU-bound:
callers run it with ``asyncio.to_thread``.

Decisions:
- The type comes from the file's magic bytes only; the name and the declared type are ignored.
- Transparent pixels are flattened onto white (most artwork with alpha expects a light page).
- Animated images (APNG, animated WebP) contribute their first frame.
- Decompression bombs are refused from the header's declared size, before any pixel is decoded.
  Pillow's own ``DecompressionBombError`` is also caught; its warning threshold (89 MP) lies
  above ours, so no warning filter (process-global, not thread-safe) is needed.
- Truncated files are refused: ``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False (the
  default); this module never sets it.
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, JpegImagePlugin

from bot.reasons import PlainError

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
JPEG_QUALITY = 90

_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112
# What a damaged file can make Pillow raise while parsing or decoding.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)


class ImageRejected(PlainError):
    """The image cannot be used; ``reason`` is a sentence to show the member."""


@dataclass(frozen=True, slots=True)
class PreparedImage:
    path: Path
    mime_type: str
    width: int
    height: int


def sniff_image_type(head: bytes) -> str | None:
    """The MIME type of a jpeg, png or webp file from its first 12+ bytes, else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def prepare_reference_image(source: Path, width: int, height: int, dest: Path) -> PreparedImage:
    """Check ``source`` and write it to ``dest`` as a JPEG of exactly ``width`` x ``height``.

    Raises ImageRejected when the file is empty, too large, not jpeg/png/webp by its bytes,
    damaged, or declares too many pixels.
    """
    mime_type = _check_file(source)
    try:
        with Image.open(source, formats=[_PIL_FORMATS[mime_type]]) as image:
            _check_pixels(image)
            _draft_for(image, width, height)
            image.load()
            upright = _to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels() from exc
    except _DECODE_ERRORS as exc:
        log.info("rejected image %s: %r", source.name, exc)
        raise ImageRejected("The image looks damaged or incomplete; please upload it again.") from exc
    return save_fitted_jpeg(upright, width, height, dest)


def save_fitted_jpeg(image: Image.Image, width: int, height: int, dest: Path) -> PreparedImage:
    """Cover-scale and centre-crop an RGB ``image`` to exactly ``width`` x ``height``; save as JPEG."""
    _save_jpeg(_fit(image, width, height), dest)
    return PreparedImage(path=dest, mime_type="image/jpeg", width=width, height=height)


def _check_file(source: Path) -> str:
    size = source.stat().st_size
    if size == 0:
        raise ImageRejected("The image is empty.")
    if size > MAX_IMAGE_BYTES:
        raise image_too_large()
    with source.open("rb") as file:
        mime_type = sniff_image_type(file.read(16))
    if mime_type is None:
        raise ImageRejected("Only JPEG, PNG or WebP images can be used.")
    return mime_type


def image_too_large() -> ImageRejected:
    return ImageRejected(
        f"The image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB. Please use a smaller one."
    )


def _too_many_pixels() -> ImageRejected:
    return ImageRejected(f"The image has more than {MAX_IMAGE_PIXELS // 1_000_000} megapixels.")


def _check_pixels(image: Image.Image) -> None:
    """Refuse from the header's declared size, before decoding anything."""
    declared_width, declared_height = image.size
    if declared_width * declared_height > MAX_IMAGE_PIXELS:
        raise _too_many_pixels()


def _draft_for(image: Image.Image, width: int, height: int) -> None:
    """Let the JPEG decoder downscale while decoding (saves time and memory on big photos).

    The draft is never smaller than the target in either dimension, so cover-cropping still works;
    for EXIF orientations that rotate by 90 degrees the target is swapped first.
    """
    if not isinstance(image, JpegImagePlugin.JpegImageFile):  # includes MPO (phone photos)
        return
    if image.getexif().get(_EXIF_ORIENTATION) in _ROTATED_ORIENTATIONS:
        width, height = height, width
    image.draft("RGB", (width, height))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(page, rgba).convert("RGB")


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover ``width`` x ``height`` and crop the centre."""
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)


def _save_jpeg(image: Image.Image, dest: Path) -> None:
    """Write a fresh JPEG: no EXIF, ICC profile or comments are carried over."""
    image.info.clear()
    try:
        image.save(dest, "JPEG", quality=JPEG_QUALITY)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
