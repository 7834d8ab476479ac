"""The job runner's state machine, driven for real: a SQLite store and ledger, stubs for the provider and
the chat side that record every call, a manual clock, and a sleep that only records (nothing waits).

Jobs are made the way the intake makes them (`store.create`, then `store.reserve`), the runner is started
before them like at boot, and each test checks what the state machine must guarantee: the stored end,
the ledger (one reservation, then exactly one charge or one refund), the calls and the waits.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
import shutil
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bot.catalogue import ModelSpec, Remix
from bot.db import Database
from bot.jobs.delivery import DeliveryError
from bot.jobs.durations import KEY, SAVE_EVERY
from bot.jobs.models import Job, JobStatus
from bot.jobs.runner import (
    CANNOT_CONFIRM,
    INTERRUPTED,
    PROVIDER_REFUSED,
    TOO_SLOW,
    USUAL_MARGIN,
    JobRunner,
    RunnerTiming,
)
from bot.jobs.store import JobStore, NewJob
from bot.quotas import Limits, Quotas
from bot.state import read_state, write_state
from bot.videos.errors import AuthenticationError, RateLimitedError, ServerError
from bot.videos.models import ReferenceImage, Video, VideoPage, VideoStatus
from bot.videos.retry import RetryPolicy
from tests.fakes.mp4 import make_mp4

GUILD, CHANNEL, ALICE, APPLICATION = 1001, 2001, 11, 99
COST = 400_000
UPLOAD_LIMIT = 10 << 20
PROMPT = "a cat on a skateboard"
SPEC = ModelSpec(id="sora-2", label="Sora 2", seconds=(4,), sizes=("1280x720",))
LIMITS = Limits(guild_daily=50_000_000, guild_monthly=None, member_daily=10_000_000, max_concurrent=10)
START = datetime.datetime(2026, 3, 10, 3, 0, tzinfo=datetime.UTC).timestamp()
#: No poll jitter and a fixed backoff jitter, so every wait is known: backoff(n) = 0.75 × 0.5 × 2^n.
TIMING = RunnerTiming(poll_jitter=0.0, retry=RetryPolicy(cap=60.0, random=lambda: 0.5))
BACKOFF = [0.375, 0.75, 1.5, 3.0]
HAPPY_STATES = ["->submitting", "->submitted", "->completed", "->posting", "->posted"]


# -- time --------------------------------------------------------------------------------------------


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Runaway(BaseException):
    """Raised by the sleep when a job waits far more often than any test needs: the loop never ends."""


class RecordedSleep:
    """Records each delay and moves the manual clock by it instead of waiting."""

    def __init__(self, clock: ManualClock, limit: int = 200) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self.limit = limit

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) > self.limit:
            raise Runaway(f"the runner slept {len(self.delays)} times; it would never stop")
        self.clock.advance(delay)
        await asyncio.sleep(0)


# -- stubs -------------------------------------------------------------------------------------------


class Script:
    """Outcomes handed out in order (a value is returned, an exception raised), then `default(*args)`."""

    def __init__(self, default: Callable[..., Any]) -> None:
        self.queue: deque[Any] = deque()
        self.default = default

    def push(self, *outcomes: Any) -> None:
        self.queue.extend(outcomes)

    def next(self, *args: Any) -> Any:
        outcome = self.queue.popleft() if self.queue else self.default(*args)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class StubVideos:
    """A VideoClient that answers from scripts and records every call."""

    can_cancel = False

    def __init__(self, events: list[str], sample: Path) -> None:
        self.can_list = False
        self.events = events
        self.sample = sample
        self.creates: list[dict[str, Any]] = []
        self.remixes: list[tuple[str, str, str, str | None]] = []
        self.retrieves: list[str] = []
        self.downloads: list[Video] = []
        self.lists = 0
        self.create_outcomes = Script(
            lambda: Video(
                id=f"vid-{len(self.creates) + len(self.remixes)}", status=VideoStatus.QUEUED, progress=0
            )
        )
        self.retrieve_outcomes = Script(
            lambda video_id: Video(
                id=video_id,
                status=VideoStatus.COMPLETED,
                progress=100,
                result_url=f"https://videos.example/{video_id}.mp4",
            )
        )
        self.list_outcomes = Script(lambda: VideoPage(videos=()))

    async def create(
        self,
        *,
        prompt: str,
        model: ModelSpec,
        size: str,
        seconds: int,
        image: ReferenceImage | None = None,
        audio: bool | None = None,
    ) -> Video:
        self.events.append("create")
        self.creates.append(
            {
                "prompt": prompt,
                "model": model.id,
                "size": size,
                "seconds": seconds,
                "image": image.path if image else None,
                "image_existed": image is not None and exists(image.path),
            }
        )
        return self.create_outcomes.next()

    async def retrieve(self, video_id: str, locator: str | None = None) -> Video:
        self.events.append("retrieve")
        self.retrieves.append(video_id)
        return self.retrieve_outcomes.next(video_id)

    async def list_recent(self, *, limit: int = 100, after: str | None = None) -> VideoPage:
        self.events.append("list_recent")
        self.lists += 1
        return self.list_outcomes.next()

    async def remix(
        self, video_id: str, *, prompt: str, model: ModelSpec, locator: str | None = None
    ) -> Video:
        self.events.append("remix")
        self.remixes.append((video_id, prompt, model.id, locator))
        return self.create_outcomes.next()

    async def download(
        self, video: Video, dest: Path, *, variant: str = "video", max_bytes: int | None = None
    ) -> int:
        self.events.append("download")
        self.downloads.append(video)
        return copy_file(self.sample, dest)

    async def cancel(self, video_id: str, locator: str | None = None) -> bool:
        raise AssertionError("the runner never cancels")

    async def list_models(self) -> list[ModelSpec] | None:
        return None

    async def delete(self, video_id: str) -> None:
        raise AssertionError("the runner never deletes")


def copy_file(source: Path, dest: Path) -> int:
    shutil.copyfile(source, dest)
    return dest.stat().st_size


def exists(path: Path) -> bool:
    return path.exists()


@dataclass
class ClipPost:
    job: Job
    path: Path
    existed: bool
    compressed: bool


class StubDelivery:
    """The chat side: scripted answers, every call recorded."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.cards = Script(lambda job: 5000 + job.id)
        self.posts = Script(lambda job: 9000 + job.id)
        self.found = Script(lambda job: None)
        self.before_card: Callable[[Job], Awaitable[None]] | None = None
        self.card_calls: list[int] = []
        self.card_updates: list[tuple[int, JobStatus, int, bool]] = []
        self.clip_posts: list[ClipPost] = []
        self.fallbacks: list[tuple[int, str]] = []
        self.find_calls: list[int] = []
        self.forgotten: list[int] = []
        self.looks: list[tuple[int, float]] = []
        self.interrupted: list[Job] = []

    async def ensure_card(self, job: Job) -> int:
        self.events.append("ensure_card")
        self.card_calls.append(job.id)
        if self.before_card is not None:
            await self.before_card(job)
        return self.cards.next(job)

    async def update_card(
        self, job: Job, *, note: str | None = None, final: bool = False, next_look: float | None = None
    ) -> None:
        self.events.append("update_card")
        self.card_updates.append((job.id, job.status, job.progress, final))

    def looking(self, job: Job, next_look: float) -> None:
        self.looks.append((job.id, next_look))

    async def post_clip(self, job: Job, clip: Path, *, compressed: bool) -> int:
        self.events.append("post_clip")
        self.clip_posts.append(ClipPost(job, clip, exists(clip), compressed))
        return self.posts.next(job)

    async def post_fallback(self, job: Job, reason: str, thumbnail: Path | None) -> int:
        self.events.append("post_fallback")
        self.fallbacks.append((job.id, reason))
        return 8000 + job.id

    async def find_posted(self, job: Job) -> int | None:
        self.events.append("find_posted")
        self.find_calls.append(job.id)
        return self.found.next(job)

    def forget(self, job_id: int) -> None:
        self.events.append("forget")
        self.forgotten.append(job_id)

    async def tell_interrupted(self, job: Job) -> None:
        self.events.append("tell_interrupted")
        self.interrupted.append(job)

    def upload_limit(self, job: Job) -> int:
        return UPLOAD_LIMIT


class WatchedStore(JobStore):
    """The real store; each change of state is also written to the test's event log."""

    def __init__(self, db: Database, quotas: Quotas, *, clock: ManualClock, events: list[str]) -> None:
        super().__init__(db, quotas, clock=clock)
        self.events = events

    async def transition(
        self, job_id: int, expected: JobStatus, new: JobStatus | None = None, **changes: Any
    ) -> Job:
        job = await super().transition(job_id, expected, new, **changes)
        if new is not None:
            self.events.append(f"->{new.value}")
        return job

    async def mark_posted(self, job_id: int, clip_message_id: int, **changes: Any) -> Job:
        job = await super().mark_posted(job_id, clip_message_id, **changes)
        self.events.append("->posted")
        return job

    async def fail(self, job_id: int, reason: str) -> Job:
        before = await self.require(job_id)
        job = await super().fail(job_id, reason)
        if not before.finished:
            self.events.append("->failed")
        return job


# -- the world of one test ---------------------------------------------------------------------------


@dataclass
class Env:
    db: Database
    quotas: Quotas
    store: WatchedStore
    clock: ManualClock
    sleep: RecordedSleep
    events: list[str]
    videos: StubVideos
    delivery: StubDelivery
    work_dir: Path
    models: dict[str, ModelSpec] = field(default_factory=lambda: {SPEC.id: SPEC})
    runners: list[JobRunner] = field(default_factory=list)

    def runner(self, timing: RunnerTiming = TIMING) -> JobRunner:
        runner = JobRunner(
            self.store,
            self.videos,
            self.delivery,
            self.models.get,
            work_dir=self.work_dir,
            timing=timing,
            clock=self.clock,
            sleep=self.sleep,
        )
        self.runners.append(runner)
        return runner

    async def started_runner(self, timing: RunnerTiming = TIMING) -> JobRunner:
        """A runner started before any job exists, as at boot."""
        runner = self.runner(timing)
        await runner.start()
        return runner

    async def job(
        self,
        *,
        prompt: str = PROMPT,
        model: str = SPEC.id,
        reserve: bool = True,
        token: str | None = "interaction-token",
        token_expires_at: float | None = None,
        remixed_from: int | None = None,
        **changes: Any,
    ) -> Job:
        """A job as the intake makes it: created, then reserved (with `changes`, e.g. its image)."""
        job = await self.store.create(
            NewJob(
                guild_id=GUILD,
                channel_id=CHANNEL,
                member_id=ALICE,
                application_id=APPLICATION,
                interaction_token=token,
                token_expires_at=self.clock.now + 900 if token_expires_at is None else token_expires_at,
                upload_limit=UPLOAD_LIMIT,
                model=model,
                size="1280x720",
                seconds=4,
                prompt=prompt,
                remixed_from=remixed_from,
            )
        )
        if not reserve:
            return job
        return await self.store.reserve(job, COST, **changes)

    async def job_in(self, status: JobStatus, **fields: Any) -> Job:
        """A reserved job moved to `status` as an earlier run would have left it."""
        job = await self.job()
        now = self.clock.now
        values: dict[str, Any] = {
            "card_message_id": 5000 + job.id,
            "provider_video_id": f"v-{job.id}",
            "submitted_at": now,
            "alive_at": now,
        }
        if status in (JobStatus.COMPLETED, JobStatus.POSTING, JobStatus.POSTED):
            values |= {
                "progress": 100,
                "completed_at": now,
                "result_url": f"https://videos.example/v-{job.id}.mp4",
            }
        return await self.store.update(job.id, status=status.value, **(values | fields))

    async def stored(self, job: Job) -> Job:
        return await self.store.require(job.id)

    async def ledger(self, job: Job) -> list[str]:
        rows = await self.db.fetchall("SELECT kind FROM ledger WHERE job_id = ? ORDER BY id", (job.id,))
        return [row["kind"] for row in rows]

    def states(self) -> list[str]:
        return [event for event in self.events if event.startswith("->")]

    def steps(self) -> list[str]:
        """The event log without card refreshes and clean-up: states and calls in order."""
        return [event for event in self.events if event not in ("update_card", "forget")]

    def tmp_files(self) -> list[Path]:
        tmp = self.work_dir / "tmp"
        return sorted(tmp.iterdir()) if tmp.exists() else []


@pytest.fixture(scope="session")
def sample_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, small MP4 (well under the upload limit, so `fit_video` posts it unchanged)."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    make_mp4(path, 320, 180, 1.0)
    return path


@pytest.fixture
async def env(tmp_path: Path, sample_mp4: Path):
    db = await Database.open(tmp_path / "soracord.sqlite3")
    await db.migrate()
    clock = ManualClock(START)
    events: list[str] = []
    quotas = Quotas(db, LIMITS, clock=clock)
    world = Env(
        db=db,
        quotas=quotas,
        store=WatchedStore(db, quotas, clock=clock, events=events),
        clock=clock,
        sleep=RecordedSleep(clock),
        events=events,
        videos=StubVideos(events, sample_mp4),
        delivery=StubDelivery(events),
        work_dir=tmp_path / "work",
    )
    try:
        yield world
    finally:
        for runner in world.runners:
            await runner.stop()
        await db.close()


async def test_a_look_that_changes_nothing_tells_the_card_only_when_the_next_look_comes(env: Env) -> None:
    env.videos.create_outcomes.push(video("v1", VideoStatus.QUEUED, progress=0))
    env.videos.retrieve_outcomes.push(
        video("v1", VideoStatus.QUEUED, progress=0), video("v1", VideoStatus.COMPLETED, progress=100)
    )
    runner = await env.started_runner()
    job = await env.job()
    runner.launch(job.id)
    await runner.wait_idle()
    assert [update[1:] for update in env.delivery.card_updates] == [
        (JobStatus.SUBMITTED, 0, False),  # queued at the provider
        (JobStatus.POSTED, 100, True),
    ]
    _after_create, after_the_look = env.sleep.delays
    assert env.delivery.looks == [(job.id, after_the_look)]  # the card's waiting state may wait for that look


def ended_card(env: Env, job: Job) -> bool:
    """The job's last card update was the final one, showing it failed."""
    updates = [update for update in env.delivery.card_updates if update[0] == job.id]
    return bool(updates) and updates[-1][1:2] == (JobStatus.FAILED,) and updates[-1][3]


def video(video_id: str, status: VideoStatus = VideoStatus.IN_PROGRESS, **fields: Any) -> Video:
    return Video(id=video_id, status=status, **fields)


# -- 1. the whole way ---------------------------------------------------------------------------------


async def test_happy_path_posts_once_charges_once_and_downloads_what_the_poll_returned(env: Env) -> None:
    done = video(
        "v1",
        VideoStatus.COMPLETED,
        progress=100,
        result_url="https://videos.example/v1.mp4?signed=from-the-poll",
        raw={"answer": "the poll's own"},
    )
    env.videos.create_outcomes.push(video("v1", VideoStatus.QUEUED, progress=0))
    env.videos.retrieve_outcomes.push(video("v1", progress=40), done)
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.POSTED and final.error is None
    assert final.card_message_id == 5000 + job.id and final.clip_message_id == 9000 + job.id
    assert final.provider_video_id == "v1"
    assert env.steps() == [
        "ensure_card",
        "->submitting",
        "create",
        "->submitted",
        "retrieve",
        "retrieve",
        "->completed",
        "download",
        "->posting",
        "post_clip",
        "->posted",
    ]
    assert env.videos.retrieves == ["v1", "v1"], "no status request after the completion was seen"
    assert len(env.videos.downloads) == 1 and env.videos.downloads[0] is done, (
        "download what the poll returned"
    )
    (post,) = env.delivery.clip_posts
    assert post.existed and not post.compressed and post.job.nonce == job.nonce
    assert (job.id, JobStatus.SUBMITTED, 40, False) in env.delivery.card_updates, "progress is shown"
    assert env.delivery.card_updates[-1] == (job.id, JobStatus.POSTED, 100, True), "the card ends final"
    # Polled after the interval, then when the pace of 40 % in 5 s says it is done: in 7.5 s (a look at
    # 0.8 × that would leave 1.5 s, under an interval).
    assert env.sleep.delays == [TIMING.poll_interval, 7.5]
    assert await env.ledger(job) == ["reserve", "charge"]
    status = await env.quotas.status(GUILD, ALICE)
    assert status.member_today.spent == COST and status.in_flight == 0
    assert env.tmp_files() == [], "the posted clip is not left on disk"
    assert env.delivery.forgotten == [job.id]


# -- 2, 3. the card ------------------------------------------------------------------------------------


async def test_a_card_refused_for_good_ends_and_refunds_without_submitting(env: Env) -> None:
    env.delivery.cards.push(DeliveryError("I cannot post in this channel."))
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.FAILED and final.error == "I cannot post in this channel."
    assert env.videos.creates == [], "refund, then submit: a refunded job was sent to the provider"
    assert env.states() == ["->failed"]
    assert env.delivery.card_calls == [job.id], "a refusal for good is not retried"
    assert ended_card(env, job), "the card (if any) is told the job ended"
    assert await env.ledger(job) == ["reserve", "refund"]
    assert (await env.quotas.status(GUILD, ALICE)).member_today.spent == 0


@pytest.mark.parametrize(
    "trouble", [RuntimeError("503 Service Unavailable"), ConnectionResetError("connection reset by peer")]
)
async def test_a_card_failing_once_is_tried_again_and_the_job_goes_on(env: Env, trouble: Exception) -> None:
    env.delivery.cards.push(trouble)
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.POSTED and final.card_message_id == 5000 + job.id
    assert env.delivery.card_calls == [job.id, job.id]
    assert len(env.videos.creates) == 1 and len(env.delivery.clip_posts) == 1
    assert env.sleep.delays == [BACKOFF[0], TIMING.poll_interval], "backoff, then the first poll"
    assert await env.ledger(job) == ["reserve", "charge"]


# -- 4. rate limits at submission ------------------------------------------------------------------------


async def test_six_rate_limits_at_submit_wait_as_asked_then_the_job_is_posted(env: Env) -> None:
    retry_afters = [3.0, 5.0, 8.0, 13.0, 21.0, 34.0]
    env.videos.create_outcomes.push(
        *(RateLimitedError("Too many requests", status=429, retry_after=wait) for wait in retry_afters)
    )
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.POSTED, "429s are transient, not `max_failures` bugs"
    assert len(env.videos.creates) == 7
    assert env.sleep.delays == [*retry_afters, TIMING.poll_interval], "each Retry-After is honoured"
    assert env.states() == ["->submitting", "->reserved"] * 6 + HAPPY_STATES, "back to reserved after a 429"
    assert env.delivery.card_calls == [job.id], "the card is posted once"
    assert len(env.delivery.clip_posts) == 1
    assert await env.ledger(job) == ["reserve", "charge"]


# -- 5, 6, 7. posting -----------------------------------------------------------------------------------


async def test_a_post_refused_for_good_ends_and_refunds_after_one_attempt(env: Env) -> None:
    env.delivery.posts.push(DeliveryError("The channel was deleted."))
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.FAILED and final.error == "The channel was deleted."
    assert len(env.videos.downloads) == 1 and len(env.delivery.clip_posts) == 1, "no endless retry"
    assert env.delivery.find_calls == []
    assert ended_card(env, job), "the card says the job ended"
    assert await env.ledger(job) == ["reserve", "refund"]
    assert env.tmp_files() == [], "the clip that could not be posted is not left on disk"


@pytest.mark.parametrize("found", [4242, None], ids=["found-in-channel", "not-in-channel"])
async def test_a_failed_post_looks_in_the_channel_before_posting_again(env: Env, found: int | None) -> None:
    env.delivery.posts.push(TimeoutError("Discord did not answer"))
    env.delivery.found.push(found)
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.POSTED
    after_completion = env.steps()[env.steps().index("->posting") :]
    if found is not None:
        assert after_completion == ["->posting", "post_clip", "find_posted", "->posted"]
        assert final.clip_message_id == found
        assert len(env.delivery.clip_posts) == 1, "the clip was already in the channel: no second post"
    else:
        assert after_completion == [
            "->posting",
            "post_clip",
            "find_posted",
            "->completed",
            "->posting",
            "post_clip",
            "->posted",
        ]
        assert final.clip_message_id == 9000 + job.id
        first, second = env.delivery.clip_posts
        assert first.job.nonce == second.job.nonce == job.nonce, "the same nonce on the second post"
        assert second.existed, "the fitted clip is kept for the second post"
    assert env.delivery.find_calls == [job.id]
    assert len(env.videos.downloads) == 1, "the clip is not downloaded again"
    assert await env.ledger(job) == ["reserve", "charge"]
    assert env.tmp_files() == []


@pytest.mark.parametrize("found", [777, None], ids=["found-in-channel", "not-in-channel"])
async def test_a_restart_in_posting_looks_in_the_channel_first(env: Env, found: int | None) -> None:
    job = await env.job_in(JobStatus.POSTING)
    env.delivery.found.push(found)
    runner = env.runner()

    await runner.start()
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.POSTED
    assert env.delivery.find_calls == [job.id]
    assert env.videos.creates == [] and env.videos.retrieves == []
    if found is not None:
        assert final.clip_message_id == found
        assert env.delivery.clip_posts == [] and env.videos.downloads == [], "found: nothing posted again"
        assert env.states() == ["->posted"]
    else:
        assert final.clip_message_id == 9000 + job.id
        assert len(env.delivery.clip_posts) == 1 and env.delivery.clip_posts[0].job.nonce == job.nonce
        (downloaded,) = env.videos.downloads
        assert (downloaded.id, downloaded.result_url) == (job.provider_video_id, job.result_url)
        assert env.states() == ["->completed", "->posting", "->posted"]
    assert env.delivery.card_updates[-1] == (job.id, JobStatus.POSTED, 100, True)
    assert await env.ledger(job) == ["reserve", "charge"]


# -- 8. a submission whose outcome is unknown ----------------------------------------------------------


async def test_an_unknown_submission_that_cannot_be_looked_up_is_cancelled_and_refunded(env: Env) -> None:
    env.videos.create_outcomes.push(ServerError("Bad gateway", status=502))
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.FAILED and final.error == CANNOT_CONFIRM
    assert "could not confirm" in final.error
    assert len(env.videos.creates) == 1, "a 5xx may have created the video: never submit it again blindly"
    assert env.videos.lists == 0
    assert env.states() == ["->submitting", "->failed"]
    assert ended_card(env, job)
    assert await env.ledger(job) == ["reserve", "refund"]


async def test_an_unknown_submission_found_in_the_providers_list_is_adopted(env: Env) -> None:
    env.videos.can_list = True
    env.videos.create_outcomes.push(ServerError("Bad gateway", status=502))
    same = {"model": "sora-2", "size": "1280x720", "seconds": 4}
    env.videos.list_outcomes.push(
        VideoPage(
            videos=(
                video("other-prompt", prompt="a dog on a skateboard", created_at=START + 1, **same),
                video("lost-1", progress=30, prompt=PROMPT, created_at=START + 2, **same),
                video("yesterday", prompt=PROMPT, created_at=START - 86_400, **same),
            )
        )
    )
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.POSTED and final.provider_video_id == "lost-1"
    assert len(env.videos.creates) == 1, "adopted, not submitted again"
    assert env.videos.lists == 1 and env.videos.retrieves == ["lost-1"]
    assert env.states() == HAPPY_STATES
    assert await env.ledger(job) == ["reserve", "charge"]


# -- 9. the provider's poll-after hint -------------------------------------------------------------------


async def test_a_huge_poll_after_hint_is_capped(env: Env) -> None:
    env.videos.create_outcomes.push(video("v9", VideoStatus.QUEUED, poll_after=1e9))
    env.videos.retrieve_outcomes.push(
        video("v9", progress=20, poll_after=1e9), video("v9", progress=60, poll_after=12.0)
    )
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert max(env.sleep.delays) <= TIMING.max_poll_hint, f"slept {max(env.sleep.delays)} s"
    assert env.sleep.delays == [TIMING.max_poll_hint, TIMING.max_poll_hint, 12.0], (
        "hints honoured up to the cap"
    )
    assert final.status is JobStatus.POSTED
    assert await env.ledger(job) == ["reserve", "charge"]


# -- 10. the age limit ---------------------------------------------------------------------------------


async def test_a_resumed_job_is_not_failed_for_the_time_the_bot_was_down(env: Env) -> None:
    job = await env.job_in(JobStatus.SUBMITTED, progress=30)
    # The bot was down for 7 h: longer than max_job_age since the job's last sign of life.
    env.clock.advance(7 * 3600)
    runner = env.runner()

    await runner.start()
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.POSTED, f"failed at once after the restart: {final.error}"
    assert env.videos.retrieves == [job.provider_video_id]
    assert await env.ledger(job) == ["reserve", "charge"]


async def test_a_job_without_progress_for_longer_than_the_age_limit_is_ended(env: Env) -> None:
    timing = replace(TIMING, poll_interval=5000.0)
    # Progress 10, 20, …, 90 over the first nine polls (12.5 h, far past max_job_age), then no change.
    env.videos.retrieve_outcomes.default = lambda video_id: video(
        video_id, progress=min(10 * len(env.videos.retrieves), 90)
    )
    runner = await env.started_runner(timing)
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.FAILED and final.error == TOO_SLOW
    assert "did not finish" in final.error
    # Alive until poll 9; then polls at +5000, …, +20000 s are within 6 h of it, and at +25000 s it ends.
    assert len(env.videos.retrieves) == 9 + 4, "the age counts from the last change of progress"
    assert final.alive_at is not None and final.finished_at is not None
    silent = final.finished_at - final.alive_at
    assert timing.max_job_age < silent <= timing.max_job_age + timing.poll_interval
    assert await env.ledger(job) == ["reserve", "refund"]


# -- 11. the provider refuses the bot's key ------------------------------------------------------------


def error_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_refused_key_while_polling_ends_the_jobs_with_one_alarm(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    env.videos.retrieve_outcomes.default = lambda video_id: AuthenticationError(
        "Incorrect API key provided", status=401
    )
    first = await env.job_in(JobStatus.SUBMITTED)
    second = await env.job_in(JobStatus.SUBMITTED)
    runner = env.runner()

    await runner.start()
    await runner.wait_idle()

    for job in (first, second):
        final = await env.stored(job)
        assert final.status is JobStatus.FAILED and final.error == PROVIDER_REFUSED
        assert "tell an admin" in final.error
        assert await env.ledger(job) == ["reserve", "refund"]
    assert sorted(env.videos.retrieves) == sorted([first.provider_video_id, second.provider_video_id])
    (alarm,) = error_lines(caplog)
    assert "VIDEO_API_KEY" in alarm.getMessage()


async def test_a_refused_key_at_submission_raises_one_alarm_for_two_jobs(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    env.videos.create_outcomes.default = lambda: AuthenticationError("Incorrect API key provided", status=401)
    runner = await env.started_runner()
    jobs = []
    for _ in range(2):
        job = await env.job()
        runner.launch(job.id)
        await runner.wait_idle()
        jobs.append(job)

    for job in jobs:
        final = await env.stored(job)
        assert final.status is JobStatus.FAILED and final.error == PROVIDER_REFUSED
        assert await env.ledger(job) == ["reserve", "refund"]
    assert len(env.videos.creates) == 2, "a refused key is not retried"
    (alarm,) = error_lines(caplog)
    assert "VIDEO_API_KEY" in alarm.getMessage()


# -- 12. a bug in a step --------------------------------------------------------------------------------


async def test_an_unexpected_error_ends_the_job_after_max_failures_with_a_reference(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    env.videos.retrieve_outcomes.default = lambda video_id: KeyError("status")
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.FAILED and final.error is not None
    apology = re.fullmatch(
        r"Sorry, something went wrong on our side \(reference `(\w+)`\); nothing was charged\.", final.error
    )
    assert apology, final.error
    assert len(env.videos.retrieves) == TIMING.max_failures
    assert ended_card(env, job), "the apology is on the card"
    assert env.sleep.delays == [TIMING.poll_interval, *BACKOFF], "backoff between the tries"
    logged = [record for record in error_lines(caplog) if record.exc_info]
    assert len(logged) == TIMING.max_failures
    assert apology.group(1) in logged[-1].getMessage(), "the member's reference is in the log"
    assert await env.ledger(job) == ["reserve", "refund"]


# -- 13. start-up housekeeping --------------------------------------------------------------------------


async def test_start_cleans_the_work_dir_forgets_expired_tokens_and_tells_interrupted_members(
    env: Env,
) -> None:
    tmp, inputs = env.work_dir / "tmp", env.work_dir / "inputs"
    tmp.mkdir(parents=True)
    inputs.mkdir()
    (tmp / "job-7-0badf00d.mp4").write_bytes(b"half a download")
    (tmp / "fit-1234.mp4").write_bytes(b"half an encode")
    (inputs / "job-8-cafe.upload").write_bytes(b"an upload never prepared")
    (inputs / "job-9.jpg").write_bytes(b"the image of a finished job")
    kept = inputs / "job-waiting.jpg"
    kept.write_bytes(b"the image of a job still to submit")

    interrupted = await env.job(reserve=False)  # the bot died while checking it
    expired = await env.job(token="old-token", token_expires_at=START - 60)
    await env.store.fail(expired.id, "Cancelled by the member.")
    # As a database from before tokens were deleted with their job leaves it: an ended job with its token.
    await env.store.db.execute("UPDATE jobs SET interaction_token = 'old-token' WHERE id = ?", (expired.id,))
    waiting = await env.job(token="live-token", image_path=str(kept), image_mime="image/jpeg")
    runner = env.runner()

    await runner.start()
    left = sorted(path.relative_to(env.work_dir) for path in env.work_dir.rglob("*") if path.is_file())
    assert left == [Path("inputs/job-waiting.jpg")], "leftovers removed, the waiting job's image kept"
    assert tmp.is_dir()
    # Read before any resumed job takes a step (the lock is free, so this read goes first).
    tokens = {
        row["id"]: row["interaction_token"] for row in await env.store.db.fetchall("SELECT * FROM jobs")
    }
    await runner.wait_idle()

    assert tokens[expired.id] is None, "an expired token is deleted at start"
    assert tokens[waiting.id] == "live-token", "a live one is kept while its job runs"
    assert (await env.stored(waiting)).interaction_token is None, "and deleted once its job ended"
    told = await env.stored(interrupted)
    assert told.status is JobStatus.FAILED and told.error == INTERRUPTED
    assert [job.id for job in env.delivery.interrupted] == [interrupted.id]
    assert env.delivery.interrupted[0].interaction_token == "interaction-token", "the member is told"
    assert told.interaction_token is None, "then the token is deleted"
    assert await env.ledger(told) == [], "nothing was reserved, nothing to refund"
    assert interrupted.id not in env.delivery.card_calls
    (submitted,) = env.videos.creates
    assert submitted["image"] == kept and submitted["image_existed"], "the kept image was sent"
    assert not kept.exists(), "the image is deleted once the provider has it"
    assert (await env.stored(waiting)).status is JobStatus.POSTED


# -- 14. a job ended elsewhere ------------------------------------------------------------------------


async def test_a_job_ended_before_the_runner_runs_is_never_submitted(env: Env) -> None:
    runner = await env.started_runner()
    job = await env.job()
    await env.store.fail(job.id, "Cancelled by the member.")

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.FAILED and final.error == "Cancelled by the member."
    assert env.delivery.card_calls == [] and env.videos.creates == [] and env.delivery.clip_posts == []
    assert env.delivery.card_updates == []
    assert await env.ledger(job) == ["reserve", "refund"], "one refund only"


async def test_a_job_ended_while_its_card_is_posted_is_never_submitted(env: Env) -> None:
    async def cancel(job: Job) -> None:
        await env.store.fail(job.id, "Cancelled by the member.")

    env.delivery.before_card = cancel
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.FAILED and final.error == "Cancelled by the member."
    assert env.videos.creates == [], "the guarded transition must stop an ended job"
    assert env.states() == ["->failed"]
    assert await env.ledger(job) == ["reserve", "refund"], "one refund only"


# -- remixes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [Remix.NATIVE, Remix.FRAME])
async def test_a_remix_uses_the_providers_remix_only_for_native_models(env: Env, mode: Remix) -> None:
    env.models[SPEC.id] = replace(SPEC, remix=mode)
    source = await env.job_in(JobStatus.POSTED, provider_locator="locator-of-the-source")
    runner = await env.started_runner()
    frame = env.work_dir / "inputs" / "first-frame.jpg"  # as the intake extracts it, after the start
    frame.parent.mkdir(parents=True)
    frame.write_bytes(b"the source's first frame")
    image = {"image_path": str(frame), "image_mime": "image/jpeg"} if mode is Remix.FRAME else {}
    job = await env.job(prompt="the same cat, at night", remixed_from=source.id, **image)

    runner.launch(job.id)
    await runner.wait_idle()

    assert (await env.stored(job)).status is JobStatus.POSTED
    if mode is Remix.NATIVE:
        assert env.videos.remixes == [
            (source.provider_video_id, "the same cat, at night", SPEC.id, "locator-of-the-source")
        ]
        assert env.videos.creates == []
    else:
        assert env.videos.remixes == []
        (created,) = env.videos.creates
        assert created["image"] == frame and created["image_existed"]
    assert await env.ledger(job) == ["reserve", "charge"]


# -- two bugs found while writing these (now fixed in runner.py): regressions --------------------------


async def test_transient_errors_do_not_count_toward_max_failures(env: Env) -> None:
    env.videos.retrieve_outcomes.push(
        *(ServerError("Bad gateway", status=502) for _ in range(TIMING.max_failures - 1)), KeyError("status")
    )
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert final.status is JobStatus.POSTED, (
        f"JobRunner._drive: {TIMING.max_failures - 1} transient 5xx polls "
        "followed by ONE unexpected error ended the job, because `Retry` increments the same `failures` "
        f"counter that ends a job after `max_failures` unexpected errors in a row; got: {final.error}"
    )
    assert len(env.videos.retrieves) == TIMING.max_failures + 1
    assert await env.ledger(job) == ["reserve", "charge"]


async def test_a_huge_retry_after_is_capped(env: Env) -> None:
    env.videos.create_outcomes.push(RateLimitedError("Too many requests", status=429, retry_after=86_400.0))
    runner = await env.started_runner()
    job = await env.job()

    runner.launch(job.id)
    await runner.wait_idle()

    final = await env.stored(job)
    assert env.sleep.delays[0] <= TIMING.retry.max_server_delay and final.status is JobStatus.POSTED, (
        "JobRunner._drive slept a provider's Retry-After "
        f"as given ({env.sleep.delays[0]} s), not capped like RetryPolicy.delay caps it "
        f"(max_server_delay = {TIMING.retry.max_server_delay} s); the job then ends as too slow: "
        f"{final.status} {final.error!r}"
    )


async def test_what_a_model_s_jobs_took_paces_the_first_jobs_after_a_restart(env: Env) -> None:
    """Learned from a finished job, written at shutdown (and at most every SAVE_EVERY s while running),
    and taken up by the next start: a job whose provider reports no progress is looked at after half
    of the usual time instead of at the plain interval."""
    env.videos.create_outcomes.push(video("v1", VideoStatus.QUEUED, progress=0))
    queued = [video("v1", VideoStatus.QUEUED, progress=0)] * 3  # looked at after 5, 5, 10 and 20 s
    env.videos.retrieve_outcomes.push(*queued, video("v1", VideoStatus.COMPLETED, progress=100))
    first = await env.started_runner()
    job = await env.job()
    first.launch(job.id)
    await first.wait_idle()
    ended = await env.stored(job)
    assert ended.completed_at is not None and ended.submitted_at is not None
    took = ended.completed_at - ended.submitted_at
    assert took == 40.0
    assert await read_state(env.db, KEY) is None  # not yet: SAVE_EVERY has not passed
    await first.stop()
    assert json.loads(await read_state(env.db, KEY) or "{}") == {SPEC.id: took / 4}  # per clip second

    env.videos.create_outcomes.push(video("v2", VideoStatus.QUEUED, progress=0))
    env.videos.retrieve_outcomes.push(video("v2", VideoStatus.COMPLETED, progress=100))
    second = await env.started_runner()
    fresh = await env.job()
    env.sleep.delays.clear()
    second.launch(fresh.id)
    await second.wait_idle()
    assert env.sleep.delays[0] == USUAL_MARGIN * took  # half the usual time, not the plain 5 s


async def test_a_guess_from_a_job_in_flight_is_never_saved(env: Env) -> None:
    env.videos.create_outcomes.push(video("v1", VideoStatus.QUEUED, progress=0))
    env.videos.retrieve_outcomes.push(video("v1", progress=50), video("v1", VideoStatus.FAILED))
    runner = await env.started_runner()
    job = await env.job()
    runner.launch(job.id)
    await runner.wait_idle()
    assert (await env.stored(job)).status is JobStatus.FAILED
    assert runner._usual.get(SPEC.id, job.seconds) is not None  # it paced the model's next jobs
    await runner.stop()
    assert await read_state(env.db, KEY) is None  # but a guess is not what a model's jobs took


async def test_saved_durations_that_are_not_durations_are_ignored(env: Env) -> None:
    saved = {SPEC.id: "soon", "other": -3, "yes": True, "ok": 12}
    await write_state(env.db, KEY, json.dumps(saved))
    runner = await env.started_runner()
    usual = [runner._usual.get(model, 2) for model in (SPEC.id, "other", "yes", "ok")]
    assert usual == [None, None, None, 24.0]  # 12 s per clip second, for a 2 s clip
    await write_state(env.db, KEY, "not json")
    await env.started_runner()  # starts anyway, with a warning


async def test_what_was_learned_is_written_while_running_once_save_every_has_passed(env: Env) -> None:
    env.videos.create_outcomes.push(video("v1", VideoStatus.QUEUED, progress=0))
    queued = [video("v1", VideoStatus.QUEUED, progress=0)] * 8  # 5, 5, 10, 20, 40 then 60 s apart
    env.videos.retrieve_outcomes.push(*queued, video("v1", VideoStatus.COMPLETED, progress=100))
    runner = await env.started_runner()
    job = await env.job()
    runner.launch(job.id)
    await runner.wait_idle()
    assert env.clock.now - START >= SAVE_EVERY
    saved = json.loads(await read_state(env.db, KEY) or "{}")
    assert saved == {SPEC.id: 80.0}  # 320 s for 4 s, written when the job ended: not lost in a crash
