"""Drives each accepted job to its end: submit, poll, download, fit, post — and resumes after a restart.

One asyncio task per unfinished job. Every step reads the job's stored state and writes the next
state before acting on it, so a task killed anywhere (crash, SIGTERM, cancellation) is resumed by
`start()` on the next run without submitting or posting twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.jobs.delivery import Delivery, DeliveryError
from bot.jobs.models import Job, JobStatus
from bot.jobs.recovery import find_lost_submission
from bot.jobs.store import JobStore
from bot.media.fit import VideoFitError, fit_video
from bot.videos import VideoClient
from bot.videos.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModerationError,
    NotFoundError,
    VideoAPIError,
)
from bot.videos.models import ReferenceImage, Video, VideoStatus
from bot.videos.retry import RetryPolicy

log = logging.getLogger(__name__)

MISCONFIGURED = "The bot is misconfigured for the video provider; please tell an admin."


@dataclass(frozen=True)
class RunnerTiming:
    """How often the runner talks to the provider; tests shrink these."""

    poll_interval: float = 5.0
    card_edit_interval: float = 3.0  # at most one card edit per job this often (slower after an hour)
    poll_jitter: float = 0.2  # ± this fraction of poll_interval
    max_job_age: float = 6 * 3600.0  # give up (and refund) on a provider that never finishes
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(cap=60.0))


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        client: VideoClient,
        delivery: Delivery,
        *,
        work_dir: Path,
        timing: RunnerTiming = RunnerTiming(),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.client = client
        self.delivery = delivery
        self.timing = timing
        self.clock = clock
        self._sleep = sleep
        self.tmp_dir = work_dir / "tmp"
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Clean leftovers of a previous run and resume every unfinished job."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp_dir.iterdir():
            leftover.unlink(missing_ok=True)
        for job in await self.store.unfinished():
            if job.status is JobStatus.RECEIVED:
                await self._interrupted(job)
            else:
                log.info("Resuming job %s (%s)", job.id, job.status)
                self.launch(job.id)

    async def stop(self) -> None:
        """Cancel every job task; their state is in the database and they resume on the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if tasks:
            log.info("Stopped %d job(s) in flight; they resume on the next start", len(tasks))

    def launch(self, job_id: int) -> None:
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._drive(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def wait_idle(self) -> None:
        """Wait until no job task runs (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _interrupted(self, job: Job) -> None:
        log.warning("Job %s was interrupted before it was accepted; telling the member", job.id)
        job = await self.store.fail(
            job.id, "Interrupted by a restart before it started; nothing was charged."
        )
        await self.delivery.tell_interrupted(job)

    async def _drive(self, job_id: int) -> None:
        """Step the job until it ends; an unexpected error is logged and the step retried with backoff."""
        failures = 0
        job = await self.store.require(job_id)
        while not job.finished:
            try:
                job = await self._step(job)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Job %s: step %s failed; retrying", job_id, job.status)
                await self._sleep(self.timing.retry.delay(failures))
                failures += 1
                job = await self.store.require(job_id)

    async def _step(self, job: Job) -> Job:
        match job.status:
            case JobStatus.RESERVED:
                return await self._submit(await self.ensure_card(job))
            case JobStatus.SUBMITTING:
                return await self._recover(job)
            case JobStatus.SUBMITTED:
                return await self._poll(job)
            case JobStatus.COMPLETED:
                return await self._deliver(job)
            case _:
                raise RuntimeError(f"job {job.id} cannot run from status {job.status}")

    async def ensure_card(self, job: Job) -> Job:
        """Post the job's public card (once) and store its message id."""
        if job.card_message_id is not None:
            return job
        try:
            card_id = await self.delivery.ensure_card(job)
        except DeliveryError as error:
            return await self._fail(job, error.reason)
        return await self.store.update(job.id, card_message_id=card_id)

    async def _fail(self, job: Job, reason: str) -> Job:
        job = await self.store.fail(job.id, reason)
        self._discard_input(job)
        await self.delivery.update_card(job, final=True)
        return job

    # -- submission ---------------------------------------------------------------------------------

    async def _submit(self, job: Job) -> Job:
        job = await self.store.update(job.id, status=JobStatus.SUBMITTING.value, submitted_at=self.clock())
        try:
            video = await self._send(job)
        except ModerationError as error:
            return await self._fail(
                job, f"The provider's safety system refused this request: {error.message}"
            )
        except AuthenticationError as error:
            log.error("Job %s: the provider refused our credentials: %s", job.id, error)
            return await self._fail(job, MISCONFIGURED)
        except InvalidRequestError as error:
            return await self._fail(job, f"The provider refused the request: {error.message}")
        except NotFoundError as error:
            log.error("Job %s: the provider has no such endpoint, model or source video: %s", job.id, error)
            return await self._fail(
                job, "The video provider does not offer this (anymore); please tell an admin."
            )
        except VideoAPIError as error:
            # 5xx or network trouble: the provider may have accepted it, so look before anything else.
            log.warning(
                "Job %s: submission outcome unknown (%s); looking it up at the provider", job.id, error
            )
            await self._sleep(self.timing.retry.delay(0, error))
            return await self._recover(job)
        self._discard_input(job)
        return await self._accepted(job, video)

    async def _send(self, job: Job) -> Video:
        if job.remixed_from is not None:
            source = await self.store.require(job.remixed_from)
            assert source.provider_video_id is not None
            return await self.client.remix(source.provider_video_id, prompt=job.prompt)
        image = None
        if job.image_path and job.image_mime:
            image = ReferenceImage(Path(job.image_path), job.image_mime)
        return await self.client.create(
            prompt=job.prompt, model=job.model, size=job.size, seconds=job.seconds, image=image
        )

    async def _accepted(self, job: Job, video: Video) -> Job:
        log.info("Job %s is video %s at the provider", job.id, video.id)
        job = await self.store.update(
            job.id, status=JobStatus.SUBMITTED.value, provider_video_id=video.id, progress=video.progress or 0
        )
        await self.delivery.update_card(job)
        return job

    async def _recover(self, job: Job) -> Job:
        """The provider may have the job but we never stored its id: adopt it, or fail and refund."""
        for attempt in range(self.timing.retry.attempts):
            try:
                video = await find_lost_submission(self.client, job, await self.store.provider_video_ids())
                break
            except VideoAPIError as error:
                if not self.timing.retry.is_retryable(error):
                    log.warning("Job %s: cannot list the provider's videos: %s", job.id, error)
                    video = None
                    break
                await self._sleep(self.timing.retry.delay(attempt, error))
        else:
            video = None
        if video is None:
            return await self._fail(
                job,
                "The video provider did not confirm this request, so it was cancelled; nothing was charged.",
            )
        log.info("Job %s: adopted provider video %s found after an interruption", job.id, video.id)
        self._discard_input(job)
        return await self._accepted(job, video)

    def _discard_input(self, job: Job) -> None:
        if job.image_path:
            Path(job.image_path).unlink(missing_ok=True)

    # -- polling ------------------------------------------------------------------------------------

    async def _poll(self, job: Job) -> Job:
        assert job.provider_video_id is not None
        failures = 0
        while True:
            if self.clock() - job.created_at > self.timing.max_job_age:
                return await self._fail(
                    job, "The provider did not finish this video in time; nothing was charged."
                )
            try:
                video = await self.client.retrieve(job.provider_video_id)
            except NotFoundError:
                return await self._fail(job, "The provider no longer has this video; nothing was charged.")
            except VideoAPIError as error:
                if isinstance(error, AuthenticationError):
                    log.error("Job %s: the provider refused our credentials while polling: %s", job.id, error)
                else:
                    log.warning("Job %s: polling failed (%s); retrying", job.id, error)
                await self._sleep(self.timing.retry.delay(failures, error))
                failures += 1
                continue
            failures = 0
            if video.status is VideoStatus.COMPLETED:
                return await self.store.update(
                    job.id,
                    status=JobStatus.COMPLETED.value,
                    progress=100,
                    completed_at=self.clock(),
                    result_url=video.result_url,
                    expires_at=video.expires_at,
                )
            if video.status is VideoStatus.FAILED:
                return await self._fail(job, failure_reason(video))
            if video.progress is not None and video.progress != job.progress:
                job = await self.store.update(job.id, progress=video.progress)
            await self.delivery.update_card(job)
            await self._sleep(self._poll_delay(video))

    def _poll_delay(self, video: Video) -> float:
        spread = self.timing.poll_interval * self.timing.poll_jitter
        delay = self.timing.poll_interval + random.uniform(-spread, spread)
        return max(delay, video.poll_after or 0.0)

    # -- delivery -----------------------------------------------------------------------------------

    async def _deliver(self, job: Job) -> Job:
        assert job.provider_video_id is not None
        stem = self.tmp_dir / f"job-{job.id}-{secrets.token_hex(4)}"
        download = stem.with_suffix(".mp4")
        fitted: Path | None = None
        try:
            video = await self.client.retrieve(job.provider_video_id)
            await self.client.download(video, download)
            limit = self.delivery.upload_limit(job)
            if download.stat().st_size > limit:
                await self.delivery.update_card(job, note="Compressing for Discord…", final=True)
            try:
                fit = await asyncio.to_thread(fit_video, download, limit, self.tmp_dir)
            except VideoFitError as error:
                return await self._post_fallback(job, video, error.reason, stem)
            fitted = fit.path
            message_id = await self.delivery.post_clip(job, fit.path, compressed=fit.compressed)
        except NotFoundError:
            return await self._fail(
                job, "The provider's file had expired before it could be posted; nothing was charged."
            )
        except DeliveryError as error:
            log.warning("Job %s: could not post the clip: %s", job.id, error.reason)
            return await self._fail(job, error.reason)
        finally:
            download.unlink(missing_ok=True)
            if fitted is not None:
                fitted.unlink(missing_ok=True)
        job = await self.store.mark_posted(job.id, message_id, compressed=int(fit.compressed))
        await self.delivery.update_card(job, final=True)
        return job

    async def _post_fallback(self, job: Job, video: Video, reason: str, stem: Path) -> Job:
        log.warning("Job %s: the clip cannot be fitted (%s); posting its thumbnail", job.id, reason)
        thumbnail = stem.with_suffix(".thumbnail")
        try:
            with contextlib.suppress(VideoAPIError):
                await self.client.download(video, thumbnail, variant="thumbnail")
            present = thumbnail if thumbnail.exists() else None
            message_id = await self.delivery.post_fallback(job, reason, present)
        finally:
            thumbnail.unlink(missing_ok=True)
        job = await self.store.mark_posted(job.id, message_id, error=reason)
        await self.delivery.update_card(job, final=True)
        return job


def failure_reason(video: Video) -> str:
    """A plain sentence for a job the provider failed."""
    if video.error is not None and video.error.is_moderation:
        return "The provider's safety system blocked this video. Try a different prompt; nothing was charged."
    detail = video.error.message if video.error and video.error.message else "no reason given"
    return f"The provider could not make this video ({detail}); nothing was charged."
