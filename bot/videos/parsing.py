"""Tolerant parsing of provider answers into the shared models.

Everything here is pure (no I/O) so it can be tested with odd inputs directly. Gateways and
resellers bend the OpenAI shape in many small ways (string progress, upper-case statuses,
millisecond timestamps, missing keys, wrapped answers); each function accepts all known
variants and returns ``None`` rather than raising when a value is missing or unusable.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bot.money import MICROS_PER_DOLLAR

from .models import Video, VideoError, VideoPage, VideoStatus

log = logging.getLogger(__name__)

_QUEUED = {"queued", "pending", "submitted", "not_start", "not_started", "preparing", "unknown", "waiting"}
_RUNNING = {"processing", "in_progress", "running", "generating", "active"}
_COMPLETED = {"completed", "complete", "success", "succeeded", "finished"}
_FAILED = {"failed", "failure", "fail", "error", "cancelled", "canceled", "expired"}
#: Each spelling above as it is most often sent, looked up before any normalisation.
_STATUS_WORDS = {
    word: status
    for words, status in (
        (_RUNNING, VideoStatus.IN_PROGRESS),
        (_QUEUED, VideoStatus.QUEUED),
        (_COMPLETED, VideoStatus.COMPLETED),
        (_FAILED, VideoStatus.FAILED),
    )
    for word in words
}
_NUMBER = re.compile(r"\s*([-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*(?:%|s|sec|seconds)?\s*")

_logged_unknown_statuses: set[str] = set()
_MAX_LOGGED_UNKNOWN = 100  # a misbehaving provider must not grow this set without bound

# Epoch values above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MS_THRESHOLD = 1e11

_ID_KEYS = ("id", "task_id", "video_id", "generation_id")
_URL_KEYS = ("video_url", "url", "result_url", "download_url", "output_url")
_URL_CONTAINERS = ("metadata", "video", "output", "result")
_SUCCESS_CODES = {"success", "ok", "0", "200"}


def normalize_status(value: object) -> VideoStatus:
    """Map any provider spelling of a job status onto the four we use.

    Unknown (or missing) statuses count as still running, so a new spelling delays a job
    rather than failing it; each is logged once at debug level.
    """
    if isinstance(value, str) and value in _STATUS_WORDS:
        return _STATUS_WORDS[value]
    text = re.sub(r"[\s-]+", "_", str(value).strip().lower()) if value is not None else ""
    if text in _RUNNING:
        return VideoStatus.IN_PROGRESS
    if text in _QUEUED:
        return VideoStatus.QUEUED
    if text in _COMPLETED:
        return VideoStatus.COMPLETED
    if text in _FAILED:
        return VideoStatus.FAILED
    if text not in _logged_unknown_statuses and len(_logged_unknown_statuses) < _MAX_LOGGED_UNKNOWN:
        _logged_unknown_statuses.add(text)
        log.debug("unknown video status %r, treating it as in progress", value)
    return VideoStatus.IN_PROGRESS


def _number(value: object) -> float | None:
    """A finite number from an int, float or numeric string (``"37"``, ``"37.5%"``, ``" 4s "``)."""
    if type(value) is int:  # the usual case, first
        return float(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = _NUMBER.fullmatch(value)
        if match is None:
            return None
        number = float(match.group(1))
    else:
        return None
    return number if math.isfinite(number) else None


def parse_progress(value: object) -> int | None:
    """Percent complete as an int 0–100 from ``37``, ``37.9``, ``"37%"``, ``"37.0%"``; else None."""
    number = _number(value)
    if number is None:
        return None
    return max(0, min(100, int(number)))


def _positive_int(value: object) -> int | None:
    number = _number(value)
    if number is None or number <= 0 or not number.is_integer():
        return None
    return int(number)


def parse_seconds(value: object) -> int | None:
    """Clip length from ``4``, ``"4"``, ``"4.0"`` or ``"4s"``; None unless a whole positive number."""
    return _positive_int(value)


def parse_timestamp(value: object) -> float | None:
    """Unix seconds from seconds, milliseconds (numbers or numeric strings) or an ISO 8601 string."""
    number = _number(value)
    if number is None and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if parsed.tzinfo is None:  # APIs speak UTC unless they say otherwise
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if number is None or number <= 0:
        return None
    return number / 1000 if number >= _MS_THRESHOLD else number


def _text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def unwrap(payload: Any) -> Any:
    """Strip a New-API style envelope ``{"code": "success", "data": {...}}`` off a single object."""
    if (
        isinstance(payload, dict)
        and isinstance(payload.get("data"), dict)
        and not any(key in payload for key in (*_ID_KEYS, "status"))
    ):
        return payload["data"]
    return payload


def _find_url(payload: Mapping[str, Any]) -> str | None:
    containers = [payload, *(payload[key] for key in _URL_CONTAINERS if isinstance(payload.get(key), dict))]
    for container in containers:
        for key in _URL_KEYS:
            value = container.get(key)
            if isinstance(value, str) and value.startswith(("https://", "http://")):
                return value
    return None


def _parse_video_error(payload: Mapping[str, Any]) -> VideoError | None:
    error = payload.get("error")
    code: str | None = None
    if isinstance(error, dict):  # AI/ML API names its code ``name``
        code = _text(error.get("code")) or _text(error.get("name"))
        message = _text(error.get("message"))
    else:
        message = _text(error) or _text(payload.get("fail_reason")) or _text(payload.get("failure_reason"))
    if message:
        plain = _unnest(ErrorDetails(message=message, code=code))
        code, message = plain.code, plain.message
    return VideoError(code=code, message=message) if code or message else None


def _size(payload: Mapping[str, Any]) -> str | None:
    size = _text(payload.get("size"))
    if size:
        return size.replace("*", "x").replace("×", "x")
    width, height = _positive_int(payload.get("width")), _positive_int(payload.get("height"))
    return f"{width}x{height}" if width and height else None


def parse_video(payload: Any, *, poll_after: float | None = None) -> Video:
    """Build a Video from one provider object; raises ValueError when it has no id at all."""
    payload = unwrap(payload)
    if not isinstance(payload, dict):
        raise ValueError(f"expected a video object, got {type(payload).__name__}")
    video_id = None
    for key in _ID_KEYS:
        video_id = _text(payload.get(key))
        if video_id:
            break
    if video_id is None:
        raise ValueError("video object has no id")
    return Video(
        id=video_id,
        status=normalize_status(payload.get("status")),
        progress=parse_progress(payload.get("progress")),
        model=_text(payload.get("model")),
        size=_size(payload),
        seconds=parse_seconds(payload.get("seconds", payload.get("duration"))),
        prompt=payload.get("prompt") if isinstance(payload.get("prompt"), str) else None,
        created_at=parse_timestamp(payload.get("created_at")),
        completed_at=parse_timestamp(payload.get("completed_at")),
        expires_at=parse_timestamp(payload.get("expires_at")),
        error=_parse_video_error(payload),
        result_url=_find_url(payload),
        remixed_from_video_id=_text(payload.get("remixed_from_video_id")),
        poll_after=poll_after,
        raw=payload,
    )


def parse_video_page(payload: Any) -> VideoPage:
    """Build a VideoPage from a list answer; items without an id are skipped."""
    payload = unwrap(payload)
    items: Any = payload
    if isinstance(payload, dict):
        items = payload.get("data", payload.get("items", []))
    if not isinstance(items, list):
        raise ValueError("list answer has no list of videos")
    videos: list[Video] = []
    for item in items:
        try:
            videos.append(parse_video(item))
        except ValueError:
            log.debug("skipping a list item without an id")
    meta = payload if isinstance(payload, dict) else {}
    return VideoPage(
        videos=tuple(videos),
        first_id=_text(meta.get("first_id")) or (videos[0].id if videos else None),
        last_id=_text(meta.get("last_id")) or (videos[-1].id if videos else None),
        has_more=meta.get("has_more") is True,
    )


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """The fields of an error answer, whatever shape it came in."""

    message: str
    code: str | None = None
    type: str | None = None
    param: str | None = None


_MAX_MESSAGE = 500


def parse_error_body(body: str, *, reason: str = "") -> ErrorDetails:
    """Read an error answer's body: JSON in any of the shapes :func:`error_details` knows, plain
    text, or HTML from a proxy (replaced by ``reason``)."""
    fallback = reason or "no details given"
    try:
        data = json.loads(body)
    except ValueError:
        text = body.strip()
        if not text or text.startswith("<"):
            return ErrorDetails(message=fallback)
        return ErrorDetails(message=text[:_MAX_MESSAGE])
    return error_details(data, reason=fallback)


def error_details(data: Any, *, reason: str = "no details given") -> ErrorDetails:
    """The fields of a decoded error answer: OpenAI ``{"error": {...}}``, ``{"error": "..."}``,
    New-API ``{"code", "message"}``, ``{"detail": ...}`` or ``{"msg": ...}``."""
    if not isinstance(data, dict):
        return ErrorDetails(message=reason)
    inner = data.get("error")
    source = inner if isinstance(inner, dict) else data
    message = (
        _text(source.get("message"))
        or _text(inner)
        or _text(data.get("detail"))
        or _text(data.get("msg"))
        or reason
    )
    details = _unnest(
        ErrorDetails(
            message=message,
            code=_text(source.get("code")),
            type=_text(source.get("type")),
            param=_text(source.get("param")),
        )
    )
    return replace(details, message=details.message[:_MAX_MESSAGE])


def _unnest(details: ErrorDetails) -> ErrorDetails:
    """The upstream's own reason when ``message`` is an error answer as a JSON string.

    New-API relays an upstream refusal as ``{"code": "fail_to_fetch_task", "message": "<upstream
    JSON>"}``; the member should read the upstream's words, and its code (a moderation code, say)
    decides how the refusal is handled.
    """
    if not details.message.lstrip().startswith("{"):
        return details
    try:
        inner = json.loads(details.message)
    except ValueError:
        return details
    found = error_details(inner, reason="")
    if not found.message:
        return details
    return ErrorDetails(
        message=found.message,
        code=found.code or details.code,
        type=found.type or details.type,
        param=found.param or details.param,
    )


def is_error_envelope(payload: Any) -> bool:
    """True for a 2xx answer that is really an error (``{"error": {...}}`` or New-API ``code`` != success).

    An answer that names its job is a status, even with an ``error`` (fal's ``request_id``: a failed run)."""
    if not isinstance(payload, dict) or any(key in payload for key in (*_ID_KEYS, "request_id")):
        return False
    if isinstance(payload.get("error"), dict | str) and payload.get("error"):
        return True
    code = payload.get("code")
    return code is not None and str(code).lower() not in _SUCCESS_CODES and payload.get("data") is None


def parse_amount(value: object) -> float | None:
    """A count or amount (a number or numeric string); None unless finite and >= 0."""
    number = _number(value)
    return number if number is not None and number >= 0 else None


def parse_usd_micros(value: object) -> int | None:
    """A USD amount (a number or numeric string) as integer micro-dollars; None unless finite and >= 0."""
    number = parse_amount(value)
    return None if number is None else round(number * MICROS_PER_DOLLAR)


#: How many first bytes :func:`sniff_media` needs.
SNIFF_BYTES = 12


def sniff_media(head: bytes) -> str | None:
    """What a file is by its first bytes: ``mp4`` (any ISO-BMFF ``ftyp`` file: MP4, MOV), ``webm``,
    ``jpeg``, ``png``, ``webp``; None when none of these."""
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date.

    ``headers`` must look names up case-insensitively (aiohttp's headers do) or use lower case.
    """
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC of unknown origin
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_poll_after(headers: Mapping[str, str]) -> float | None:
    """The delay before the next status poll suggested by ``openai-poll-after-ms``, in seconds."""
    millis = _number(headers.get("openai-poll-after-ms"))
    return max(0.0, millis / 1000) if millis is not None else None
