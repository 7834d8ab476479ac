"""Drives each accepted job to its end, exactly once — and resumes after a restart.

The runner is one state machine. `STEPS` maps a stored state to the step that leaves it; a step
performs one transition (written, guarded by the state it expects, *before* its effect) and returns
how long to wait before the next step. Trouble is raised, never looped on inside a step:

- `Retry` — transient (a 429, a 5xx, the network): the same step runs again later;
- `JobEnded` — permanent: the job ends with a plain reason on its card, and its reservation is refunded;
- anything else is a bug: logged with the job, retried a few times, then the job ends with an apology.

One loop (`_drive`) owns the waiting, with one failure counter and two ends: `max_failures` unexpected
errors in a row, and `max_job_age` without a sign of life from the provider (counted from the last
progress, or from this process's start for a resumed job, so a bot that was down does not fail them all).

| state      | step           | transition                                                        |
|------------|----------------|-------------------------------------------------------------------|
| reserved   | `_start`       | post the card (once); then → submitting → submitted               |
| submitting | `_recover`     | outcome unknown: adopt the provider's job (→ submitted) or end    |
| submitted  | `_poll`        | one status request: → completed, end, or poll again later         |
| completed  | `_deliver`     | download + fit, → posting, post, → posted (charged)               |
| posting    | `_find_posted` | after a restart or a doubtful post: found in the channel → posted |
|            |                | (charged), else → completed (post again, with the same nonce)     |
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from bot.catalogue import ModelSpec, Remix
from bot.errors import new_reference
from bot.jobs.delivery import Delivery, DeliveryError
from bot.jobs.durations import UsualDurations
from bot.jobs.leases import Adopted, Leases
from bot.jobs.models import Job, JobStatus
from bot.jobs.recovery import find_lost_submission
from bot.jobs.store import JobStore, StaleJob
from bot.media.fit import FitResult, VideoFitError, fit_video
from bot.media.frames import join_clips
from bot.ratelimit import PROVIDER_PRIORITY
from bot.videos import VideoClient
from bot.videos.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModerationError,
    NotFoundError,
    RateLimitedError,
    UnsupportedOperation,
    VideoAPIError,
)
from bot.videos.models import ReferenceImage, Video, VideoStatus
from bot.videos.retry import RetryPolicy

log = logging.getLogger(__name__)

PROVIDER_REFUSED = "The bot's video provider refused the request (its key or credits); please tell an admin."
NOT_OFFERED = "The video provider does not offer this (anymore); please tell an admin."
TOO_SLOW = "The provider did not finish this video in time; nothing was charged."
GONE = "The provider no longer has this video; nothing was charged."
EXPIRED = "The provider's file had expired before it could be posted; nothing was charged."
NOT_CONFIRMED = "The video provider did not confirm this request, so it was cancelled; nothing was charged."
CANNOT_CONFIRM = (
    "The video provider could not confirm whether it started this video, so it was cancelled here and "
    "your budget was refunded; an admin can check the provider's dashboard."
)
INTERRUPTED = "Interrupted by a restart before it started; nothing was charged."
CANCELLED = "Cancelled by <@{member_id}>; nothing was charged."
#: States that end when nothing moves for `max_job_age`, and the reason given (a queued job waits its
#: turn however long; a posting job is never ended blind: its clip may be in the channel).
AGEING = {
    JobStatus.RESERVED: TOO_SLOW,
    JobStatus.SUBMITTING: TOO_SLOW,
    JobStatus.SUBMITTED: TOO_SLOW,
    JobStatus.COMPLETED: "Discord kept refusing the clip for hours, so it was given up; nothing was charged.",
}


class Retry(Exception):
    """Transient trouble: run the same step again after `retry_after` seconds (capped by the policy),
    or after the loop's backoff when None."""

    def __init__(self, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.retry_after = retry_after


class JobEnded(Exception):
    """Permanent trouble: end the job with `reason` (plain, shown on the card) and refund it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RunnerTiming:
    """How often the runner talks to the provider, and when it gives up; tests shrink these."""

    poll_interval: float = 5.0
    card_edit_interval: float = 3.0  # at most one card edit per job this often (slower after an hour)
    poll_jitter: float = 0.2  # a poll comes up to this fraction of its delay later (spreads jobs out)
    max_poll_hint: float = 60.0  # a provider's poll-after hint is honoured up to this
    max_poll_gap: float = 60.0  # the longest wait between two polls of a job far from done
    max_job_age: float = 6 * 3600.0  # without a sign of life from the provider: give up and refund
    max_failures: int = 5  # unexpected errors in a row before a job is given up
    card_wait: float = 10.0  # how long the intake waits for the card before answering without a link
    queue_recheck: float = 60.0  # a queued job looks at the queue at least this often
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(cap=60.0))


Step = Callable[[Job], Awaitable[float | None]]
T = TypeVar("T")
#: Priorities in the provider budget (lower first): submissions and deliveries, polls of jobs close to
#: completion, the rest.
DELIVERY, CLOSE, FAR = 0, 1, 2
#: A job far from done is polled again after this share of the time its progress says is left.
PACE_MARGIN = 0.8
#: A job that reports no progress is polled again after this share of its model's usual time left.
USUAL_MARGIN = 0.5


class OperatorAlarm:
    """One clear log line when the provider starts refusing our key or credits, not one per job or poll."""

    def __init__(self) -> None:
        self._raised = False

    def raise_(self, job_id: int, error: VideoAPIError) -> None:
        if not self._raised:
            log.error(
                "The video provider refuses the bot's requests (%s): check VIDEO_API_KEY and the account's "
                "credits; jobs end with a note to tell an admin until it works again (first: job %s)",
                error,
                job_id,
            )
        self._raised = True

    def clear(self) -> None:
        if self._raised:
            log.info("The video provider accepts the bot's requests again")
        self._raised = False


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        client: VideoClient,
        delivery: Delivery,
        models: Callable[[str], ModelSpec | None],
        *,
        work_dir: Path,
        timing: RunnerTiming = RunnerTiming(),
        max_download_bytes: int = 512 << 20,
        max_in_flight: Callable[[int], Awaitable[int]] | None = None,
        encoders: int | None = None,
        leases: Leases | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.client = client
        self.delivery = delivery
        self.models = models
        self.timing = timing
        self.clock = clock
        self._sleep = sleep
        self.work_dir = work_dir
        self.tmp_dir = work_dir / "tmp"
        self.inputs_dir = work_dir / "inputs"
        self.max_download_bytes = max_download_bytes
        self.max_in_flight = max_in_flight
        self._turns: dict[int, asyncio.Event] = {}  # per server: set when a slot may have freed
        #: Last (progress, provider queue position) seen per job; progress reaches the store by tens.
        self._seen: dict[int, tuple[int, int | None]] = {}
        #: Per model, how long its jobs took lately: what paces the polls of a job whose provider
        #: reports no progress yet.
        self._usual = UsualDurations(store, clock=clock)
        #: One encode at a time per core: a burst of oversize clips must not starve the bot.
        self._encode_slots = asyncio.Semaphore(encoders or os.cpu_count() or 1)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._cards: dict[int, asyncio.Event] = {}
        self._finished_videos: dict[int, Video] = {}  # seen completed: download without asking again
        self._clips: dict[int, FitResult] = {}  # fitted and ready to post (survives a failed post)
        self._started_at = clock()
        self.alarm = OperatorAlarm()
        #: With leases, a job is driven only while this process holds its lease (bot/jobs/leases.py).
        self.leases = leases
        self._leased: set[int] = set()  # jobs whose lease this process's tasks hold
        self._lease_keeper: asyncio.Task[None] | None = None
        self.steps: dict[JobStatus, Step] = {
            JobStatus.QUEUED: self._wait_turn,
            JobStatus.RESERVED: self._start,
            JobStatus.SUBMITTING: self._recover,
            JobStatus.SUBMITTED: self._poll,
            JobStatus.COMPLETED: self._deliver,
            JobStatus.POSTING: self._find_posted,
        }

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Clean the work folder of a previous run and resume every unfinished job."""
        self._started_at = self.clock()
        await self._usual.load()
        unfinished = await self.store.unfinished()
        keep = {Path(job.image_path) for job in unfinished if job.image_path}
        clean_work_dir(self.work_dir, keep=keep)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        forgotten = await self.store.forget_expired_tokens()
        if forgotten:
            log.info("Deleted %d expired interaction token(s)", forgotten)
        if self.leases is not None:
            await self.leases.check_in()  # before any request: it sets this process's share of the budgets
        for job in unfinished:
            if self.leases is not None and not await self._claim(job.id):
                continue  # another process drives it
            if job.status is JobStatus.RECEIVED:
                await self._interrupted(job)
            else:
                log.info("Resuming job %s (%s)", job.id, job.status)
                self.launch(job.id)
        if self.leases is not None:
            self._lease_keeper = asyncio.create_task(
                self.leases.keep(driving=lambda: set(self._leased), lost=self._lost, adopted=self._adopt),
                name="job-leases",
            )

    async def stop(self) -> None:
        """Cancel every job task; their state is in the database and they resume on the next start."""
        if self._lease_keeper is not None:
            self._lease_keeper.cancel()
            await asyncio.gather(self._lease_keeper, return_exceptions=True)
            self._lease_keeper = None
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if tasks:
            log.info("Stopped %d job(s) in flight; they resume on the next start", len(tasks))
        await self._usual.save()
        if self.leases is not None:
            try:
                await self.leases.check_out()
            except Exception as error:  # its row expires on its own
                log.warning("Could not tell the other processes this one stops: %s", error)

    def launch(self, job_id: int) -> None:
        """Drive the job in its own task (once: a job already running is left alone)."""
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._drive_leased(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda done: self._task_done(job_id, done))

    def _task_done(self, job_id: int, task: asyncio.Task[None]) -> None:
        self._tasks.pop(job_id, None)
        self._finished_videos.pop(job_id, None)
        self._seen.pop(job_id, None)
        self._discard_clip(job_id)
        self.delivery.forget(job_id)
        self._card_event(job_id).set()
        self._cards.pop(job_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("Job %s: its task died", job_id, exc_info=task.exception())

    # -- leases (several processes on one database) -------------------------------------------------

    async def _drive_leased(self, job_id: int) -> None:
        """`_drive` while this process holds the job's lease, released at the end (no leases: just it)."""
        if self.leases is None:
            return await self._drive(job_id)
        if not await self._claim(job_id):
            return  # another process drives it
        self._leased.add(job_id)
        try:
            await self._drive(job_id)
        finally:
            self._leased.discard(job_id)
            try:
                await self.leases.release(job_id)
            except Exception as error:  # it expires on its own
                log.warning("Job %s: could not release its lease: %s", job_id, error)

    async def _claim(self, job_id: int) -> bool:
        assert self.leases is not None
        try:
            return await self.leases.claim(job_id)
        except Exception as error:  # adopted later, once the lease has expired
            log.warning("Job %s: could not claim its lease: %s", job_id, error)
            return False

    def _lost(self, job_ids: set[int]) -> None:
        """Stop driving jobs whose lease another process took over (it drives them now)."""
        for job_id in sorted(job_ids):
            task = self._tasks.get(job_id)
            if task is not None:
                log.warning("Job %s: its lease was taken over by another process; stopping here", job_id)
                task.cancel()

    async def _adopt(self, jobs: list[Adopted]) -> None:
        """Drive jobs whose lease this process has just taken (their process stopped renewing it)."""
        for job_id, status in jobs:
            if job_id in self._tasks:
                continue
            if status is JobStatus.RECEIVED:
                await self._interrupted(await self.store.require(job_id))
            else:
                log.info("Adopting job %s (%s): its lease had expired", job_id, status)
                self.launch(job_id)

    async def wait_idle(self) -> None:
        """Wait until no job task runs (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def wait_for_card(self, job_id: int) -> Job:
        """The job once its card is posted or it ended (or after `card_wait`), for the private answer."""
        event = self._card_event(job_id)
        try:
            await asyncio.wait_for(event.wait(), self.timing.card_wait)
        except TimeoutError:
            pass
        return await self.store.require(job_id)

    def _card_event(self, job_id: int) -> asyncio.Event:
        return self._cards.setdefault(job_id, asyncio.Event())

    async def _ask(self, priority: int, call: Callable[[], Awaitable[T]]) -> T:
        """A provider call whose requests wait in `priority` in the client's budget (which a 429 slows)."""
        with PROVIDER_PRIORITY(priority):
            return await call()

    # -- the loop -----------------------------------------------------------------------------------

    async def _drive(self, job_id: int) -> None:
        job = await self.store.require(job_id)
        try:
            await self._step_until_done(job_id)
        finally:
            self._wake_queue(job.guild_id)  # a slot may have freed

    async def _step_until_done(self, job_id: int) -> None:
        failures = 0  # trouble in a row: sets the backoff
        crashes = 0  # unexpected errors in a row: a bug, so the job is given up after a few
        while True:
            job = await self.store.require(job_id)
            if job.finished:
                return
            try:
                if job.status in AGEING and self._silent_for(job) > self.timing.max_job_age:
                    raise JobEnded(AGEING[job.status])
                delay = await self.steps[job.status](job)
                failures = crashes = 0
            except StaleJob:
                continue  # the job moved on meanwhile (e.g. ended elsewhere): read it again
            except JobEnded as end:
                await self._end(job_id, end.reason)
                return
            except Retry as retry:
                log.info("Job %s (%s): %s; trying again", job_id, job.status, retry)
                delay = self.timing.retry.delay(failures, retry)
                failures += 1
            except Exception:
                failures += 1
                crashes += 1
                reference = new_reference()
                log.exception("Job %s: step %s failed [ref %s]", job_id, job.status, reference)
                if crashes >= self.timing.max_failures:
                    await self._end(
                        job_id,
                        f"Sorry, something went wrong on our side (reference `{reference}`); "
                        "nothing was charged.",
                    )
                    return
                delay = self.timing.retry.delay(failures - 1)
            if delay:
                await self._sleep(delay)

    def _silent_for(self, job: Job) -> float:
        """Seconds since the last sign of life; time this process was not running does not count."""
        alive = max(job.alive_at or job.created_at, self._started_at)
        return self.clock() - alive

    async def _end(self, job_id: int, reason: str) -> None:
        job = await self.store.fail(job_id, reason)
        log.info("Job %s ended: %s", job_id, job.error)
        self._discard_input(job)
        self._card_event(job_id).set()
        await self.delivery.update_card(job, final=True)

    async def _interrupted(self, job: Job) -> None:
        log.warning("Job %s was interrupted before it was accepted; telling the member", job.id)
        ended = await self.store.fail(job.id, INTERRUPTED)  # the stored token is deleted with it
        await self.delivery.tell_interrupted(replace(ended, interaction_token=job.interaction_token))

    # -- queued: wait for a free slot in the server -------------------------------------------------

    async def _wait_turn(self, job: Job) -> float | None:
        """Post the card, then start when the server has a free slot (members take turns)."""
        if job.card_message_id is None:
            card_id = await chat(self.delivery.ensure_card(job))
            await self.store.transition(job.id, JobStatus.QUEUED, card_message_id=card_id)
            self._card_event(job.id).set()
            self._wake_queue(job.guild_id)  # by turns it may go ahead of others: they look again
            return 0
        self._card_event(job.id).set()
        turn = self._turns.setdefault(job.guild_id, asyncio.Event())
        limit = await self.max_in_flight(job.guild_id) if self.max_in_flight else 1
        started = await self.store.start_next(job.guild_id, limit)
        if started:
            for job_id in started:
                self.launch(job_id)
            self._wake_queue(job.guild_id)  # the others move up
            return 0
        order = await self.store.queue_order(job.guild_id)
        if job.id in order:
            note = f"Queued — #{order.index(job.id) + 1} in this server's queue"
            await self.delivery.update_card(job, note=note)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(turn.wait(), self.timing.queue_recheck)
        return 0

    def _wake_queue(self, guild_id: int) -> None:
        turn = self._turns.pop(guild_id, None)
        if turn is not None:
            turn.set()

    # -- cancel -------------------------------------------------------------------------------------

    def cancellable(self, job: Job) -> bool:
        """Whether Cancel can still stop this job (before the provider has it, or at one that can cancel)."""
        if job.status in (JobStatus.QUEUED, JobStatus.RESERVED):
            return True
        return job.status is JobStatus.SUBMITTED and self.client.can_cancel

    async def cancel(self, job_id: int, member_id: int) -> Job:
        """Stop the job and refund it if it can still be stopped; the returned job says what happened
        (failed with the cancel reason, or unchanged: finished meanwhile, or past cancelling)."""
        job = await self.store.require(job_id)
        if not self.cancellable(job):
            return job
        if job.status is JobStatus.SUBMITTED:
            assert job.provider_video_id is not None
            video_id, locator = job.provider_video_id, job.provider_locator
            if not await self._ask(DELIVERY, lambda: self.client.cancel(video_id, locator)):
                return job  # the provider had finished it: it is delivered and charged as usual
        job = await self.store.fail(job.id, CANCELLED.format(member_id=member_id), only_from=(job.status,))
        if job.status is JobStatus.FAILED:
            log.info("Job %s was cancelled by %s", job.id, member_id)
            self._discard_input(job)
            await self.delivery.update_card(job, final=True)
            self._wake_queue(job.guild_id)
        return job

    # -- reserved: the card, then the submission ----------------------------------------------------

    async def _start(self, job: Job) -> float | None:
        changes: dict[str, int] = {}
        if job.card_message_id is None:  # its id is written with the submission's start: one write
            changes["card_message_id"] = await chat(self.delivery.ensure_card(job))
        job = await self.store.transition(
            job.id, JobStatus.RESERVED, JobStatus.SUBMITTING, submitted_at=self.clock(), **changes
        )
        self._card_event(job.id).set()
        try:
            video = await self._send(job)
        except RateLimitedError as error:
            # A 429 certainly created nothing: back to reserved, and wait as long as asked.
            await self.store.transition(job.id, JobStatus.SUBMITTING, JobStatus.RESERVED)
            raise Retry(f"the provider is rate limiting ({error})", error.retry_after) from error
        except ModerationError as error:
            raise JobEnded(f"The provider's safety system refused this request: {error.message}") from error
        except InvalidRequestError as error:
            raise JobEnded(f"The provider refused the request: {error.message}") from error
        except VideoAPIError as error:
            self._raise_if_permanent(job, error)
            # 5xx or network trouble: the provider may have accepted it; the next step looks it up.
            raise Retry(f"submission outcome unknown ({error})", error.retry_after) from error
        self._discard_input(job)
        return await self._accepted(job, video)

    async def _send(self, job: Job) -> Video:
        spec = self.models(job.model)
        if spec is None:
            log.error("Job %s: model %s is no longer in the catalogue", job.id, job.model)
            raise JobEnded(NOT_OFFERED)
        source = await self.store.require(job.remixed_from) if job.remixed_from is not None else None
        if source is not None and spec.remix_of(source) is Remix.NATIVE:
            if source.provider_video_id is None:
                raise JobEnded("The source clip is no longer at the provider; nothing was charged.")
            source_id, locator = source.provider_video_id, source.provider_locator
            return await self._ask(
                DELIVERY, lambda: self.client.remix(source_id, prompt=job.prompt, model=spec, locator=locator)
            )
        image = None
        if job.image_path and job.image_mime:
            image = ReferenceImage(Path(job.image_path), job.image_mime)
        return await self._ask(
            DELIVERY,
            lambda: self.client.create(
                prompt=job.prompt,
                model=spec,
                size=job.size,
                seconds=job.seconds,
                image=image,
                audio=job.audio,
            ),
        )

    def _raise_if_permanent(self, job: Job, error: VideoAPIError) -> None:
        """End the job for errors no retry can mend (key, credits, a model or route that is gone)."""
        if isinstance(error, AuthenticationError):
            self.alarm.raise_(job.id, error)
            raise JobEnded(PROVIDER_REFUSED) from error
        if isinstance(error, NotFoundError | UnsupportedOperation):
            log.error("Job %s: the provider has no such endpoint, model or video: %s", job.id, error)
            raise JobEnded(NOT_OFFERED) from error

    async def _accepted(self, job: Job, video: Video) -> float:
        log.info("Job %s is video %s at the provider", job.id, video.id)
        self.alarm.clear()
        job = await self.store.transition(
            job.id,
            JobStatus.SUBMITTING,
            JobStatus.SUBMITTED,
            provider_video_id=video.id,
            provider_locator=video.locator,
            progress=video.progress or 0,
            alive_at=self.clock(),
            actual_cost_micros=video.cost_micros,  # some providers say it only here (AI/ML API)
        )
        delay = self._poll_after(job, video)
        await self.delivery.update_card(job, next_look=delay)
        return delay

    # -- submitting: the outcome is unknown ---------------------------------------------------------

    async def _recover(self, job: Job) -> float | None:
        """The provider may have the job but we never stored its id: adopt it, or end and refund."""
        if not self.client.can_list:
            raise JobEnded(CANNOT_CONFIRM)
        try:
            taken = await self.store.provider_video_ids()
            video = await self._ask(DELIVERY, lambda: find_lost_submission(self.client, job, taken))
        except VideoAPIError as error:
            if self.timing.retry.is_retryable(error):
                raise Retry(f"cannot list the provider's videos yet ({error})", error.retry_after) from error
            log.warning("Job %s: cannot list the provider's videos: %s", job.id, error)
            raise JobEnded(CANNOT_CONFIRM) from error
        if video is None:
            raise JobEnded(NOT_CONFIRMED)
        log.info("Job %s: adopted provider video %s found after an interruption", job.id, video.id)
        self._discard_input(job)
        return await self._accepted(job, video)

    # -- submitted: one status request per step -----------------------------------------------------

    async def _poll(self, job: Job) -> float | None:
        assert job.provider_video_id is not None
        try:
            video_id, locator = job.provider_video_id, job.provider_locator
            video = await self._ask(self._urgency(job), lambda: self.client.retrieve(video_id, locator))
        except NotFoundError as error:
            raise JobEnded(GONE) from error
        except VideoAPIError as error:
            self._raise_if_permanent(job, error)
            raise Retry(f"polling failed ({error})", error.retry_after) from error
        if video.status is VideoStatus.COMPLETED:
            self._finished_videos[job.id] = video
            self._learn_duration(job)
            await self.store.transition(
                job.id,
                JobStatus.SUBMITTED,
                JobStatus.COMPLETED,
                progress=100,
                completed_at=self.clock(),
                alive_at=self.clock(),
                result_url=video.result_url,
                expires_at=video.expires_at,
                actual_cost_micros=video.cost_micros or job.actual_cost_micros,
            )
            await self._usual.save_if_due()
            return 0
        if video.status in (VideoStatus.FAILED, VideoStatus.CANCELLED):
            raise JobEnded(failure_reason(video))
        if video.progress is not None:
            self._guess_duration(job, video.progress)
        seen = self._seen[job.id] if job.id in self._seen else (job.progress, None)
        now_seen = (video.progress if video.progress is not None else seen[0], video.queue_position)
        delay = self._poll_after(job, video)
        if now_seen == seen:
            self.delivery.looking(job, delay)  # nothing new for the card, which may wait for that look
            return delay
        self._seen[job.id] = now_seen
        if now_seen[0] // 10 != job.progress // 10:  # the store (and the age limit) hear of it by tens
            job = await self.store.transition(
                job.id, JobStatus.SUBMITTED, progress=now_seen[0], alive_at=self.clock()
            )
        else:
            job = replace(job, progress=now_seen[0])
        await self.delivery.update_card(job, note=queue_note(video), next_look=delay)
        return delay

    def _next_poll(self, job: Job, video: Video) -> float:
        """Sparse while far from done, every POLL_INTERVAL_SECONDS when close: from the provider's hint,
        its queue position, the pace of its progress so far, or how long the model's jobs took lately;
        a job still queued at the provider is looked at less and less often; plain interval polling
        without any of them."""
        interval = self.timing.poll_interval
        if video.poll_after is not None:
            return max(interval, min(video.poll_after, self.timing.max_poll_hint))
        if video.queue_position is not None and video.queue_position > 0:
            return min(interval * (1 + video.queue_position), self.timing.max_poll_gap)
        remaining = self._remaining(job, video.progress)
        if remaining is None:
            if video.status is VideoStatus.QUEUED and job.submitted_at is not None:
                # Not started, so not close to done: wait as long again as it has waited so far.
                return max(interval, min(self.clock() - job.submitted_at, self.timing.max_poll_gap))
            return interval
        # A usual duration is a guess about this job: look halfway, then at the pace of its progress.
        margin = PACE_MARGIN if video.progress else USUAL_MARGIN
        if remaining * (1 - margin) <= interval:  # a look before the end would leave under an interval
            return max(interval, remaining)  # so look when it should be done
        return min(remaining * margin, self.timing.max_poll_gap)

    def _remaining(self, job: Job, progress: int | None) -> float | None:
        """Seconds left at the pace progress went so far, or else by the model's usual duration (None
        without either)."""
        if job.submitted_at is None or (progress is not None and progress >= 100):
            return None
        elapsed = self.clock() - job.submitted_at
        if progress is not None and progress > 0:
            return elapsed * (100 - progress) / progress
        usual = self._usual.get(job.model, job.seconds)
        return None if usual is None else max(0.0, usual - elapsed)

    def _learn_duration(self, job: Job) -> None:
        """Fold a job that has just been seen completed into its model's usual duration."""
        if (took := self._sent_ago(job)) is not None:
            self._usual.learn(job.model, job.seconds, took)

    def _guess_duration(self, job: Job, progress: int) -> None:
        """Let a job in flight tell how long its model takes, until one of them is seen completed."""
        if (elapsed := self._sent_ago(job)) is not None:
            self._usual.guess(job.model, job.seconds, elapsed, progress)

    def _sent_ago(self, job: Job) -> float | None:
        """Seconds since the job was sent, when this process sent it (an earlier one's send time is not
        known well enough to learn from)."""
        if job.submitted_at is None or job.submitted_at < self._started_at:
            return None
        return self.clock() - job.submitted_at

    def _urgency(self, job: Job) -> int:
        """Polls of jobs about to finish go before far-from-done ones when the budget is tight."""
        progress = self._seen[job.id][0] if job.id in self._seen else job.progress
        remaining = self._remaining(job, progress)
        return CLOSE if remaining is not None and remaining <= 2 * self.timing.poll_interval else FAR

    def _poll_after(self, job: Job, video: Video) -> float:
        """The next poll's delay with jitter, never before the provider's hint, never past the gap cap."""
        hint = min(video.poll_after, self.timing.max_poll_hint) if video.poll_after is not None else 0.0
        delay = self._jittered(self._next_poll(job, video))
        cap = max(hint, self.timing.max_poll_gap, self.timing.poll_interval * (1 + self.timing.poll_jitter))
        return min(max(delay, hint), cap)

    def _jittered(self, delay: float) -> float:
        """Up to `poll_jitter` of the delay later, never sooner: a poll planned for when a job should be
        done does not come just before it."""
        return delay + random.uniform(0.0, delay * self.timing.poll_jitter)

    # -- completed: download, fit, post -------------------------------------------------------------

    async def _deliver(self, job: Job) -> float | None:
        clip = self._clips.get(job.id)
        fallback: str | None = None
        if clip is None:
            try:
                clip = await self._prepare_clip(job)
            except VideoFitError as error:
                fallback = error.reason
        if clip is not None:
            job = await self.store.transition(
                job.id, JobStatus.COMPLETED, JobStatus.POSTING, compressed=int(clip.compressed)
            )
            message_id = await chat(self.delivery.post_clip(job, clip.path, compressed=clip.compressed))
            job = await self.store.mark_posted(job.id, message_id)
        else:
            assert fallback is not None
            job = await self._post_fallback(job, fallback)
        self._discard_clip(job.id)
        await self.delivery.update_card(job, final=True)
        return None

    async def _prepare_clip(self, job: Job) -> FitResult:
        """Stream the provider's file to disk and fit it under the upload limit (off the event loop)."""
        video = self._finished_videos.pop(job.id, None) or stored_video(job)
        download = self.tmp_dir / f"job-{job.id}-{secrets.token_hex(4)}.mp4"
        try:
            await self._ask(
                DELIVERY, lambda: self.client.download(video, download, max_bytes=self.max_download_bytes)
            )
            if job.extended_from is not None:
                await self._join_to_source(job, download)
            limit = self.delivery.upload_limit(job)
            if download.stat().st_size <= limit:  # nothing to encode: no wait behind other encodes
                clip = await asyncio.to_thread(fit_video, download, limit, self.tmp_dir)
            else:
                await self.delivery.update_card(job, note="Compressing for Discord…", final=True)
                async with self._encode_slots:
                    clip = await asyncio.to_thread(fit_video, download, limit, self.tmp_dir)
        except NotFoundError as error:
            download.unlink(missing_ok=True)
            raise JobEnded(EXPIRED) from error
        except VideoAPIError as error:
            download.unlink(missing_ok=True)
            if not self.timing.retry.is_retryable(error):
                raise VideoFitError(f"the provider's file could not be fetched ({error.message})") from error
            raise Retry(f"download failed ({error})", error.retry_after) from error
        except BaseException:
            download.unlink(missing_ok=True)
            raise
        if clip.path != download:
            download.unlink(missing_ok=True)
        self._clips[job.id] = clip
        return clip

    async def _join_to_source(self, job: Job, continuation: Path) -> None:
        """Replace `continuation` by the source clip followed by it, sound kept (an Extend job)."""
        assert job.extended_from is not None
        source = await self.store.require(job.extended_from)
        stem = self.tmp_dir / f"job-{job.id}-{secrets.token_hex(4)}"
        earlier, joined = stem.with_suffix(".source.mp4"), stem.with_suffix(".joined.mp4")
        try:
            if not await chat(self.delivery.fetch_clip(source, earlier, self.max_download_bytes)):
                log.warning("Job %s: its source clip is gone from Discord; posting the continuation", job.id)
                return
            async with self._encode_slots:
                await asyncio.to_thread(join_clips, earlier, continuation, joined)
            await asyncio.to_thread(os.replace, joined, continuation)
        except VideoFitError as error:
            log.warning("Job %s: cannot join it to its source (%s); posting the continuation", job.id, error)
        finally:
            earlier.unlink(missing_ok=True)
            joined.unlink(missing_ok=True)

    async def _post_fallback(self, job: Job, reason: str) -> Job:
        log.warning("Job %s: the clip cannot be posted (%s); posting its thumbnail", job.id, reason)
        thumbnail = self.tmp_dir / f"job-{job.id}-{secrets.token_hex(4)}.thumbnail"
        try:
            try:
                await self._ask(
                    DELIVERY,
                    lambda: self.client.download(
                        stored_video(job), thumbnail, variant="thumbnail", max_bytes=16 << 20
                    ),
                )
            except VideoAPIError as error:
                log.info("Job %s: no thumbnail either (%s)", job.id, error)
            present = thumbnail if thumbnail.exists() else None
            job = await self.store.transition(job.id, JobStatus.COMPLETED, JobStatus.POSTING, error=reason)
            message_id = await chat(self.delivery.post_fallback(job, reason, present))
        finally:
            thumbnail.unlink(missing_ok=True)
        return await self.store.mark_posted(job.id, message_id)

    # -- posting: did the last post go through? ------------------------------------------------------

    async def _find_posted(self, job: Job) -> float | None:
        """Look in the channel for this job's clip before posting again (Discord forgets nonces)."""
        message_id = await chat(self.delivery.find_posted(job))
        if message_id is None:
            log.info("Job %s: its clip is not in the channel; posting it again", job.id)
            await self.store.transition(job.id, JobStatus.POSTING, JobStatus.COMPLETED, error=None)
            return 0
        log.info("Job %s: found its clip (message %s) after an interruption", job.id, message_id)
        job = await self.store.mark_posted(job.id, message_id)
        await self.delivery.update_card(job, final=True)
        return None

    # -- files --------------------------------------------------------------------------------------

    def _discard_input(self, job: Job) -> None:
        if job.image_path:
            Path(job.image_path).unlink(missing_ok=True)

    def _discard_clip(self, job_id: int) -> None:
        clip = self._clips.pop(job_id, None)
        if clip is not None:
            clip.path.unlink(missing_ok=True)


async def chat(call: Awaitable[T]) -> T:
    """A call to the chat side: a refusal for good ends the job, anything else is retried."""
    try:
        return await call
    except DeliveryError as error:
        raise JobEnded(error.reason) from error
    except (asyncio.CancelledError, JobEnded, Retry, StaleJob):
        raise
    except Exception as error:
        raise Retry(f"the chat side failed ({type(error).__name__}: {error})") from error


def queue_note(video: Video) -> str | None:
    """The provider's queue position in words (its 0 is the next to run, which members call #1)."""
    if video.queue_position is None:
        return None
    return f"#{video.queue_position + 1} in the provider's queue"


def stored_video(job: Job) -> Video:
    """The finished video as the job remembers it: enough to download it without asking the provider."""
    assert job.provider_video_id is not None
    return replace(
        Video(id=job.provider_video_id, status=VideoStatus.COMPLETED),
        result_url=job.result_url,
        locator=job.provider_locator,
        expires_at=job.expires_at,
    )


def clean_work_dir(work_dir: Path, *, keep: set[Path]) -> None:
    """Remove every leftover file of an earlier run, except the inputs of jobs that are still to run."""
    if not work_dir.exists():
        return
    for path in sorted(work_dir.rglob("*"), reverse=True):
        if path in keep:
            continue
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink(missing_ok=True)


def failure_reason(video: Video) -> str:
    """A plain sentence for a job the provider failed."""
    if video.error is not None and video.error.is_moderation:
        return "The provider's safety system blocked this video. Try a different prompt; nothing was charged."
    if video.status is VideoStatus.CANCELLED:
        return "The provider cancelled this video; nothing was charged."
    detail = video.error.message if video.error and video.error.message else "no reason given"
    return f"The provider could not make this video ({detail}); nothing was charged."
