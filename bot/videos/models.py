"""Provider-neutral data returned by every Videos API dialect."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

# Substrings that mark an error as a moderation refusal, wherever it shows up
# (error code, type or message); providers have no official list of codes.
_MODERATION_MARKERS = ("moderation", "content_policy", "content policy", "content_filter")


def looks_like_moderation(*texts: str | None) -> bool:
    """True if any of the texts (error code, type, message) names a moderation refusal."""
    return any(marker in text.lower() for text in texts if text for marker in _MODERATION_MARKERS)


class VideoStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (VideoStatus.COMPLETED, VideoStatus.FAILED, VideoStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class VideoError:
    """Why a job failed (``error`` of a failed Video); ``code`` is a free string."""

    code: str | None
    message: str | None

    @property
    def is_moderation(self) -> bool:
        return looks_like_moderation(self.code, self.message)


@dataclass(frozen=True, slots=True)
class ReferenceImage:
    """A prepared image file (already at the requested size) to start the video from."""

    path: Path
    mime_type: str


@dataclass(frozen=True, slots=True)
class Video:
    id: str
    status: VideoStatus
    progress: int | None = None
    model: str | None = None
    size: str | None = None
    seconds: int | None = None
    prompt: str | None = None
    created_at: float | None = None
    completed_at: float | None = None
    expires_at: float | None = None
    error: VideoError | None = None
    result_url: str | None = None
    remixed_from_video_id: str | None = None
    poll_after: float | None = None
    """Seconds the provider asks us to wait before the next poll (``openai-poll-after-ms``)."""
    queue_position: int | None = None
    """Place in the provider's own queue, when it says (fal's ``queue_position``; 0 = next)."""
    cost_micros: int | None = None
    """What the provider says the finished job cost (OpenRouter ``usage.cost``), in micro-dollars."""
    locator: str | None = None
    """Opaque client data needed to find this job again (see ``VideoClient``); stored with the job."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VideoPage:
    """One page of ``list_recent``: pass ``last_id`` as ``after`` to get the next one."""

    videos: tuple[Video, ...]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
