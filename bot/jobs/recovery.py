"""Finding a submission whose answer we never stored (killed between the provider's answer and our write)."""

from __future__ import annotations

from bot.jobs.models import Job
from bot.videos import VideoClient
from bot.videos.models import Video

#: How far the provider's creation time may be from our submission time (clock skew, queueing).
BEFORE_SUBMIT = 120.0
AFTER_SUBMIT = 900.0
MAX_PAGES = 5


def matches(video: Video, job: Job) -> bool:
    """Same request, created around the time we sent it."""
    if video.prompt is not None and video.prompt.strip() != job.prompt.strip():
        return False
    if video.model is not None and not video.model.startswith(job.model):
        return False
    if video.size is not None and video.size != job.size:
        return False
    if video.seconds is not None and video.seconds != job.seconds:
        return False
    sent = job.submitted_at or job.created_at
    if video.created_at is None or not sent - BEFORE_SUBMIT <= video.created_at <= sent + AFTER_SUBMIT:
        return False
    # Without the prompt nothing ties the video to this job.
    return video.prompt is not None


async def find_lost_submission(client: VideoClient, job: Job, taken: set[str]) -> Video | None:
    """Newest first through the provider's list; the match closest to our submission time wins.

    `taken` holds ids already adopted by other jobs, so two identical requests never share one video.
    Raises the client's error when the provider cannot list (the caller decides what that means).
    """
    sent = job.submitted_at or job.created_at
    found: list[Video] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.list_recent(limit=100, after=after)
        found.extend(video for video in page.videos if video.id not in taken and matches(video, job))
        oldest = page.videos[-1].created_at if page.videos else None
        if not page.has_more or not page.last_id or (oldest is not None and oldest < sent - BEFORE_SUBMIT):
            break
        after = page.last_id
    if not found:
        return None
    return min(found, key=lambda video: abs((video.created_at or 0) - sent))
