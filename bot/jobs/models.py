"""A job as stored in SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    RECEIVED = "received"  # written before the acknowledgement; checks running; nothing reserved yet
    QUEUED = "queued"  # accepted and reserved, waiting for a free slot in the server (card posted)
    RESERVED = "reserved"  # accepted: budget reserved; card posted (or being posted), not yet submitted
    SUBMITTING = "submitting"  # written just before the provider call; its outcome may be unknown
    SUBMITTED = "submitted"  # the provider has it (provider_video_id stored)
    COMPLETED = "completed"  # the provider finished; the clip is not posted yet
    POSTING = "posting"  # written just before the clip (or its fallback) is posted
    POSTED = "posted"  # delivered (or its fallback); charged
    FAILED = "failed"  # ended without a clip; refunded


FINISHED = frozenset({JobStatus.POSTED, JobStatus.FAILED})
#: Jobs that hold a reservation and count against MAX_CONCURRENT_JOBS_PER_GUILD.
IN_FLIGHT = (
    JobStatus.RESERVED,
    JobStatus.SUBMITTING,
    JobStatus.SUBMITTED,
    JobStatus.COMPLETED,
    JobStatus.POSTING,
)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    guild_id: int
    channel_id: int
    member_id: int
    application_id: int
    interaction_token: str | None
    token_expires_at: float | None
    upload_limit: int
    remixed_from: int | None
    model: str
    size: str
    seconds: int
    prompt: str
    image_path: str | None
    image_mime: str | None
    status: JobStatus
    provider_video_id: str | None
    progress: int
    error: str | None
    card_message_id: int | None
    clip_message_id: int | None
    cost_micros: int
    result_url: str | None
    expires_at: float | None
    compressed: bool
    created_at: float
    updated_at: float
    submitted_at: float | None
    completed_at: float | None
    finished_at: float | None
    nonce: str
    alive_at: float | None
    provider_locator: str | None
    audio: bool | None
    actual_cost_micros: int | None
    extended_from: int | None
    started_at: float | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Job:
        """A row of the columns `JOB_SELECT` names, in that order (by position: a lookup by name in a
        sqlite3.Row compares it with every column's)."""
        values = list(row)
        values[_STATUS] = _STATUSES[values[_STATUS]]
        values[_COMPRESSED] = bool(values[_COMPRESSED])
        if values[_AUDIO] is not None:
            values[_AUDIO] = bool(values[_AUDIO])
        return cls(*values)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def width_height(self) -> tuple[int, int]:
        width, height = self.size.split("x")
        return int(width), int(height)


JOB_COLUMNS = tuple(field.name for field in fields(Job))
#: What to select (or return) for `Job.from_row`.
JOB_SELECT = ", ".join(JOB_COLUMNS)
_STATUSES = {status.value: status for status in JobStatus}  # cheaper than JobStatus(value)
_STATUS, _COMPRESSED, _AUDIO = (JOB_COLUMNS.index(name) for name in ("status", "compressed", "audio"))
