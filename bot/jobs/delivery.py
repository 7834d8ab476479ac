"""What the runner needs from the chat side. The Discord implementation lives in bot/discord_delivery.py."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bot.jobs.models import Job
from bot.reasons import PlainError


class DeliveryError(PlainError):
    """The chat side refused for good (channel gone, permission lost, file too large); `reason` is plain.

    Any other exception from a Delivery call is transient: the runner tries the step again later.
    """


class Delivery(Protocol):
    async def ensure_card(self, job: Job) -> int:
        """Post the job's public card unless it exists; returns its message id. Safe to repeat."""

    async def update_card(
        self, job: Job, *, note: str | None = None, final: bool = False, next_look: float | None = None
    ) -> None:
        """Show the job's state on its card; throttled (finals too); `next_look`: in how many seconds
        the job is looked at again, which a progress state may wait for."""

    def looking(self, job: Job, next_look: float) -> None:
        """The job is looked at again in `next_look` seconds (a look that changed nothing on its card)."""

    async def post_clip(self, job: Job, clip: Path, *, compressed: bool) -> int:
        """Post the clip as a reply to the card, with the job's nonce; returns the message id."""

    async def post_fallback(self, job: Job, reason: str, thumbnail: Path | None) -> int:
        """Post the thumbnail (or just the reason) when the clip cannot be posted; returns the message id."""

    async def find_posted(self, job: Job) -> int | None:
        """The id of this job's clip (or fallback) if it is already in the channel, else None."""

    async def fetch_clip(self, job: Job, dest: Path, max_bytes: int) -> bool:
        """Download the job's posted clip to `dest`; False when it is not there anymore."""

    def forget(self, job_id: int) -> None:
        """Drop what is kept in memory about a job whose task ended."""

    async def tell_interrupted(self, job: Job) -> None:
        """Tell the member privately that their request was interrupted before it started."""

    def upload_limit(self, job: Job) -> int:
        """Bytes a file may have when posted for this job."""
