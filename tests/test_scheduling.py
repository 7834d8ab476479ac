"""Scheduling without real time: when the runner polls a job, and how card edits are coalesced and spaced
(which Discord calls wait on the bot's request budget: tests/test_discord_budget.py).

Every clock and sleep is injected (a manual clock; sleeps that only return when the test moves time on),
so nothing here waits and no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.card_edits import DISCORD_PRIORITY, LOOK_GRACE, ROUTINE, SLOW_FACTOR, URGENT, CardEdits
from bot.jobs.durations import LEARN_RATE, MIN_TELLING_PROGRESS
from bot.jobs.models import Job, JobStatus
from bot.jobs.runner import CLOSE, FAR, PACE_MARGIN, USUAL_MARGIN, JobRunner, RunnerTiming
from bot.videos.models import Video, VideoStatus

NOW = 1_000_000.0
INTERVAL = 5.0  # poll_interval of the runner under test
TIMING = RunnerTiming(poll_interval=INTERVAL, poll_jitter=0.2, max_poll_hint=30.0, max_poll_gap=90.0)
EDIT_INTERVAL = 3.0
CARD = 555


def make_job(**changes: Any) -> Job:
    """A submitted job with a card; `changes` override any field."""
    values: dict[str, Any] = {f.name: None for f in fields(Job)}
    values |= {
        "id": 1,
        "guild_id": 10,
        "channel_id": 20,
        "member_id": 30,
        "application_id": 40,
        "upload_limit": 10 << 20,
        "model": "sora-2",
        "size": "720x1280",
        "seconds": 4,
        "prompt": "a cat",
        "status": JobStatus.SUBMITTED,
        "provider_video_id": "vid-1",
        "progress": 0,
        "card_message_id": CARD,
        "cost_micros": 400_000,
        "compressed": False,
        "created_at": time.time(),  # the card edits compare it with the wall clock (slower after an hour)
        "updated_at": NOW,
        "submitted_at": NOW,
        "nonce": "n",
    }
    return Job(**(values | changes))


def video(**changes: Any) -> Video:
    return replace(Video(id="vid-1", status=VideoStatus.IN_PROGRESS), **changes)


async def settle(turns: int = 50) -> None:
    """Let every task that can run do so (a few loop turns per await in the code under test)."""
    for _ in range(turns):
        await asyncio.sleep(0)


class ManualTime:
    """A manual clock and a sleep that returns only when `advance` moves the clock past its end."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._seq), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, waking each sleeper at its moment and letting it run."""
        target = self.now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            wake_at, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake_at)
            if not future.done():
                future.set_result(None)
            await settle()
        self.now = target
        await settle()


# -- the runner: when is a job polled next? -----------------------------------------------------------


def runner(clock: Callable[[], float] = lambda: NOW, timing: RunnerTiming = TIMING) -> JobRunner:
    """A runner whose store, client and delivery are never touched by the scheduling code under test."""
    unused = object()
    return JobRunner(
        unused,  # type: ignore[arg-type]
        unused,  # type: ignore[arg-type]
        unused,  # type: ignore[arg-type]
        lambda model: None,
        work_dir=Path("unused"),
        timing=timing,
        clock=clock,
    )


def at_progress(progress: int, elapsed: float) -> tuple[Job, Video]:
    """A job submitted `elapsed` s before NOW whose provider now says `progress` %."""
    return make_job(submitted_at=NOW - elapsed, progress=progress), video(progress=progress)


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (12.0, 12.0),  # honoured
        (29.5, 29.5),
        (600.0, TIMING.max_poll_hint),  # capped
        (1.0, INTERVAL),  # never faster than POLL_INTERVAL_SECONDS
    ],
)
def test_a_providers_poll_after_hint_is_honoured_up_to_its_cap(hint: float, expected: float) -> None:
    job, status = at_progress(10, 10.0)  # its pace alone would say 72 s
    assert runner()._next_poll(job, replace(status, poll_after=hint)) == expected


def test_the_hint_wins_over_the_queue_position() -> None:
    job = make_job()
    assert runner()._next_poll(job, video(poll_after=7.0, queue_position=20)) == 7.0


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (1, 2 * INTERVAL),
        (3, 4 * INTERVAL),
        (17, 90.0),  # 18 intervals = 90 s: exactly the cap
        (500, TIMING.max_poll_gap),  # capped
    ],
)
def test_a_queue_position_spaces_polls_out_up_to_the_max_gap(position: int, expected: float) -> None:
    assert (
        runner()._next_poll(make_job(), video(status=VideoStatus.QUEUED, queue_position=position)) == expected
    )


def test_next_in_the_queue_is_polled_at_the_plain_interval() -> None:
    assert runner()._next_poll(make_job(), video(status=VideoStatus.QUEUED, queue_position=0)) == INTERVAL


def test_far_from_done_polls_sparsely_at_the_pace_of_its_progress() -> None:
    job, status = at_progress(50, 40.0)  # 40 s for half: 40 s to go
    assert runner()._remaining(job, 50) == 40.0
    assert runner()._next_poll(job, status) == pytest.approx(PACE_MARGIN * 40.0)
    assert PACE_MARGIN * 40.0 > INTERVAL  # so the figure above is the pace's, not the floor's


def test_far_from_done_is_capped_by_the_max_gap() -> None:
    job, status = at_progress(1, 60.0)  # 1 % a minute: 99 minutes to go
    assert runner()._next_poll(job, status) == TIMING.max_poll_gap


def test_a_job_due_soon_after_the_next_look_is_looked_at_when_it_should_be_done() -> None:
    job, status = at_progress(80, 40.0)  # 10 s to go: a look at PACE_MARGIN would leave 2 s, under INTERVAL
    assert runner()._remaining(job, 80) == pytest.approx(10.0)
    assert runner()._next_poll(job, status) == pytest.approx(10.0)


def test_close_to_done_polls_every_interval() -> None:
    job, status = at_progress(90, 45.0)  # 5 s to go: sooner than one interval
    assert runner()._remaining(job, 90) == pytest.approx(5.0)
    assert runner()._next_poll(job, status) == INTERVAL


def test_the_pace_is_measured_on_the_runners_clock() -> None:
    now = [NOW]
    r = runner(clock=lambda: now[0])
    job, status = at_progress(50, 40.0)
    assert r._next_poll(job, status) == pytest.approx(PACE_MARGIN * 40.0)
    now[0] += 40.0  # same progress, twice the time: twice as much left at this pace
    assert r._next_poll(job, status) == pytest.approx(PACE_MARGIN * 80.0)


@pytest.mark.parametrize(
    ("job", "status"),
    [
        (make_job(progress=0), video(progress=None)),  # no progress figure
        (make_job(progress=0), video(progress=0)),  # nothing done yet: no pace
        (make_job(progress=100), video(progress=100)),
        (make_job(submitted_at=None, progress=50), video(progress=50)),  # no start time
        (make_job(submitted_at=NOW - 60.0), video(progress=None)),  # started long ago, still no figure
        (make_job(submitted_at=None), video(status=VideoStatus.QUEUED)),  # queued, since when unknown
    ],
)
def test_without_useful_information_it_polls_at_the_plain_interval(job: Job, status: Video) -> None:
    assert runner()._next_poll(job, status) == INTERVAL


@pytest.mark.parametrize(
    ("waited", "expected"),
    [
        (0.0, INTERVAL),  # just sent: the plain interval at first
        (4.0, INTERVAL),
        (12.0, 12.0),  # then as long again as it has waited: the gaps double
        (40.0, 40.0),
        (500.0, TIMING.max_poll_gap),  # capped
    ],
)
def test_a_job_still_queued_at_the_provider_waits_as_long_again_as_it_has_waited(
    waited: float, expected: float
) -> None:
    job = make_job(submitted_at=NOW - waited)
    assert runner()._next_poll(job, video(status=VideoStatus.QUEUED)) == pytest.approx(expected)


def test_a_models_usual_duration_paces_jobs_that_report_no_progress() -> None:
    now = [NOW - 100.0]
    r = runner(clock=lambda: now[0])
    now[0] = NOW
    first = make_job(submitted_at=NOW - 20.0)
    r._learn_duration(first)  # seen completed 20 s after it was sent
    fresh = make_job(submitted_at=NOW, progress=0)
    assert r._next_poll(fresh, video(progress=0)) == pytest.approx(USUAL_MARGIN * 20.0)
    assert r._next_poll(fresh, video(progress=None)) == pytest.approx(USUAL_MARGIN * 20.0)
    now[0] = NOW + 5.0  # still nothing reported: half of what is left
    assert r._next_poll(fresh, video(progress=0)) == pytest.approx(USUAL_MARGIN * 15.0)
    now[0] = NOW + 10.0  # half of what is left would leave one interval: look when it should be done
    assert r._next_poll(fresh, video(progress=0)) == pytest.approx(10.0)
    now[0] = NOW + 19.5  # about due: polled at the interval
    assert r._next_poll(fresh, video(progress=0)) == INTERVAL
    assert r._urgency(fresh) == CLOSE
    other_model = replace(fresh, model="another-model")
    assert r._next_poll(other_model, video(progress=0)) == INTERVAL  # nothing learned for it


def test_the_usual_duration_follows_recent_jobs_but_not_ones_from_before_a_restart() -> None:
    now = [NOW - 100.0]
    r = runner(clock=lambda: now[0])
    now[0] = NOW
    r._learn_duration(make_job(submitted_at=NOW - 20.0))
    r._learn_duration(make_job(submitted_at=NOW - 40.0))  # slower lately: the average moves up
    r._learn_duration(make_job(submitted_at=NOW - 500.0))  # sent before this process started
    fresh = make_job(submitted_at=NOW, progress=0)
    assert r._remaining(fresh, 0) == pytest.approx(20.0 + LEARN_RATE * 20.0)


def test_the_usual_duration_grows_with_the_clips_length() -> None:
    now = [NOW - 100.0]
    r = runner(clock=lambda: now[0])
    now[0] = NOW
    r._learn_duration(make_job(submitted_at=NOW - 20.0, seconds=4))  # 5 s per second of clip
    assert r._remaining(make_job(submitted_at=NOW, seconds=12), 0) == pytest.approx(60.0)
    assert r._remaining(make_job(submitted_at=NOW, seconds=4), 0) == pytest.approx(20.0)


def test_until_one_of_a_models_jobs_finishes_its_jobs_in_flight_guess_how_long_it_takes() -> None:
    now = [NOW - 100.0]
    r = runner(clock=lambda: now[0])
    now[0] = NOW
    fresh, queued = make_job(submitted_at=NOW, progress=0), video(status=VideoStatus.QUEUED, progress=0)
    assert r._next_poll(fresh, queued) == INTERVAL  # nothing known about the model yet
    r._guess_duration(make_job(submitted_at=NOW - 5.0), MIN_TELLING_PROGRESS - 1)  # too little done
    assert r._next_poll(fresh, queued) == INTERVAL
    r._guess_duration(make_job(submitted_at=NOW - 5.0), 25)  # a quarter in 5 s: about 20 s in all
    assert r._next_poll(fresh, queued) == pytest.approx(USUAL_MARGIN * 20.0)
    assert r._remaining(replace(fresh, seconds=8), 0) == pytest.approx(40.0)  # twice the clip: twice as long
    r._guess_duration(make_job(submitted_at=NOW - 15.0), 50)  # this one says 30 s: the guess moves
    r._guess_duration(make_job(submitted_at=NOW - 500.0), 50)  # sent before this process started
    assert r._remaining(fresh, 0) == pytest.approx(20.0 + LEARN_RATE * 10.0)
    r._learn_duration(make_job(submitted_at=NOW - 60.0))  # one seen completed: its time replaces guesses
    r._guess_duration(make_job(submitted_at=NOW - 5.0), 50)  # which no longer count
    assert r._remaining(fresh, 0) == pytest.approx(60.0)
    assert r._remaining(replace(fresh, model="another-model"), 0) is None  # each model on its own


def test_urgency_puts_jobs_about_to_finish_first() -> None:
    r = runner()
    close, _ = at_progress(90, 45.0)  # 5 s to go
    far, _ = at_progress(10, 45.0)  # 405 s to go
    assert (r._urgency(close), r._urgency(far), r._urgency(make_job(progress=0))) == (CLOSE, FAR, FAR)


def test_jitter_delays_a_poll_by_up_to_poll_jitter_and_never_brings_it_forward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = runner()
    asked: list[tuple[float, float]] = []

    def extreme(low: float, high: float) -> float:
        asked.append((low, high))
        return low if len(asked) % 2 else high

    monkeypatch.setattr(random, "uniform", extreme)
    assert [r._jittered(10.0), r._jittered(10.0)] == [pytest.approx(10.0), pytest.approx(12.0)]
    assert asked == [(0.0, 2.0), (0.0, 2.0)]
    monkeypatch.undo()

    random.seed(7)
    samples = [r._jittered(10.0) for _ in range(2000)]
    assert all(10.0 <= sample <= 12.0 for sample in samples)
    assert min(samples) < 10.2 and max(samples) > 11.8  # it does spread polls out
    assert runner(timing=replace(TIMING, poll_jitter=0.0))._jittered(10.0) == 10.0
    assert r._jittered(0.0) == 0.0


# -- card edits: coalesced, spaced, finals first ----------------------------------------------------------


@dataclass
class SentEdit:
    at: float
    progress: int
    note: str | None
    priority: int


class Card:
    """The render and edit callbacks of `CardEdits`, recording what reaches 'Discord'."""

    def __init__(self, time_: ManualTime) -> None:
        self.time = time_
        self.sent: list[SentEdit] = []
        self.renders = 0
        self.block: asyncio.Event | None = None  # set: edits wait for it (a slow Discord)
        self.fail_with: BaseException | None = None

    async def render(self, job: Job, note: str | None) -> tuple[discord.Embed, discord.ui.View | None]:
        self.renders += 1
        return discord.Embed(title=job.prompt, description=f"{job.progress}% {note or ''}"), None

    async def edit(self, job: Job, embed: discord.Embed, view: discord.ui.View | None) -> None:
        if self.block is not None:
            await self.block.wait()
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(
            SentEdit(
                self.time.now, job.progress, (embed.description or "").split("% ")[1], DISCORD_PRIORITY.get()
            )
        )


@pytest.fixture
def clock() -> ManualTime:
    return ManualTime()


@pytest.fixture
def card(clock: ManualTime) -> Card:
    return Card(clock)


@pytest.fixture
def edits(clock: ManualTime, card: Card) -> CardEdits:
    return CardEdits(card.render, card.edit, interval=EDIT_INTERVAL, clock=clock.clock, sleep=clock.sleep)


def kept(edits: CardEdits, job_id: int) -> list[str]:
    """Which of the card edits' per-card records still hold this job."""
    held = {
        "wanted": edits._wanted,
        "shown": edits._shown,
        "unedited": edits._unedited,
        "senders": edits._senders,
        "ended": edits._ended,
    }
    return [name for name, records in held.items() if job_id in records]


async def edited_at_once(edits: CardEdits) -> Job:
    """A job whose card was just edited to show 10 % (its first edit goes at once)."""
    job = make_job()
    edits.want(replace(job, progress=10))
    await settle()
    return job


async def post(edits: CardEdits, card: Card, job: Job) -> None:
    """The card as the delivery posts it: rendered, then recorded as its first showing."""
    edits.posted(job.id, *await card.render(job, None))


async def test_many_wants_within_an_interval_make_one_edit_with_the_newest_state(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = make_job()
    edits.want(job)
    await settle()
    assert [(e.at, e.progress) for e in card.sent] == [(0.0, 0)]  # the first one goes at once
    for progress in range(1, 30):
        edits.want(replace(job, progress=progress), note=f"step {progress}")
        await clock.advance(0.1)
    assert len(card.sent) == 1  # 2.9 s later: still inside the interval
    await clock.advance(EDIT_INTERVAL)
    assert [(e.at, e.progress, e.note) for e in card.sent] == [(0.0, 0, ""), (3.0, 29, "step 29")]
    assert card.renders == 2  # the 28 states replaced before their turn were never rendered


async def test_two_edits_of_a_card_are_never_closer_than_the_interval_finals_included(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = make_job()
    rng = random.Random(3)
    for step in range(200):  # 40 s of progress reports at random moments, a final now and then
        edits.want(replace(job, progress=step), final=rng.random() < 0.1)
        await clock.advance(rng.choice([0.05, 0.2, 0.7, 1.3, 3.1]))
    await clock.advance(2 * EDIT_INTERVAL)
    times = [e.at for e in card.sent]
    assert len(times) > 10
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) == pytest.approx(EDIT_INTERVAL)  # spaced by the interval, and no more cautiously
    assert all(gap >= EDIT_INTERVAL - 1e-9 for gap in gaps)  # (1e-9: the manual clock's float sums)
    assert card.sent[-1].progress == 199  # and the last state is the one shown


async def test_a_final_waits_its_turn_too_then_goes_urgent(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = make_job()
    edits.want(replace(job, progress=40))
    await clock.advance(1.0)
    edits.want(replace(job, status=JobStatus.POSTED, progress=100), final=True)
    await clock.advance(1.9)
    assert [e.progress for e in card.sent] == [40]
    await clock.advance(0.1)
    assert [(e.at, e.progress, e.priority) for e in card.sent] == [(0.0, 40, ROUTINE), (3.0, 100, URGENT)]


async def test_progress_goes_routine_and_a_coalesced_final_stays_urgent(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = await edited_at_once(edits)
    edits.want(replace(job, progress=20), note="Compressing for Discord…", final=True)
    edits.want(replace(job, progress=30))  # a later state replaces it, but the card still owes a final
    await clock.advance(EDIT_INTERVAL)
    assert [(e.progress, e.priority) for e in card.sent] == [(10, ROUTINE), (30, URGENT)]
    assert DISCORD_PRIORITY.get() not in (URGENT, ROUTINE)  # the priority did not leak out of the edit


async def test_identical_renderings_are_not_sent_again(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = make_job(progress=10)
    edits.want(job)
    await settle()
    await clock.advance(EDIT_INTERVAL)
    edits.want(replace(job, updated_at=NOW + 5))  # a different job row that renders the same card
    await clock.advance(EDIT_INTERVAL)
    edits.want(job, note=None)
    await clock.advance(EDIT_INTERVAL)
    assert [e.progress for e in card.sent] == [10]
    assert card.renders == 3
    edits.want(replace(job, progress=20))  # a change: the skipped ones used no turn, so it goes at once
    await settle()
    assert [(e.at, e.progress) for e in card.sent] == [(0.0, 10), (9.0, 20)]


async def test_cards_over_an_hour_old_are_edited_more_slowly(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    wall = [NOW]
    edits.wall_clock = lambda: wall[0]
    job = make_job(created_at=NOW - 3600 + 1)  # not an hour old yet
    edits.want(job)
    await settle()
    edits.want(replace(job, progress=30))
    await clock.advance(EDIT_INTERVAL)
    wall[0] += 2  # now it is
    edits.want(replace(job, progress=50))
    await clock.advance(EDIT_INTERVAL * SLOW_FACTOR - 0.1)
    assert len(card.sent) == 2
    await clock.advance(0.1)
    assert [e.at for e in card.sent] == [0.0, EDIT_INTERVAL, EDIT_INTERVAL * (1 + SLOW_FACTOR)]


async def test_the_post_counts_as_the_cards_first_showing(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = make_job(progress=10)
    await post(edits, card, job)
    edits.want(job)  # renders as posted: nothing to send
    await clock.advance(EDIT_INTERVAL)
    edits.want(replace(job, progress=20))
    await clock.advance(0.0)
    assert [(e.at, e.progress) for e in card.sent] == [(EDIT_INTERVAL, 20)]


async def test_an_ending_right_after_the_post_goes_at_once_since_the_post_is_not_an_edit(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = make_job(progress=10)
    await post(edits, card, job)
    await clock.advance(0.5)
    edits.want(replace(job, status=JobStatus.FAILED), note="cancelled", final=True)
    await settle()
    assert [(e.at, e.note, e.priority) for e in card.sent] == [(0.5, "cancelled", URGENT)]
    edits.want(replace(job, status=JobStatus.FAILED), note="refunded", final=True)  # after an edit
    await clock.advance(EDIT_INTERVAL - 0.1)
    assert len(card.sent) == 1  # the next ending waits for its turn like any edit
    await clock.advance(0.1)
    assert [(e.at, e.note) for e in card.sent][1:] == [(0.5 + EDIT_INTERVAL, "refunded")]


async def test_a_state_due_just_before_the_jobs_next_look_waits_for_it_and_one_edit_shows_both(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = make_job()
    await post(edits, card, job)
    edits.want(replace(job, progress=0), note="queued", next_look=1.0)  # due at 3 s; the look is sooner
    await clock.advance(1.0)
    edits.looking(job.id, 2.0)  # that look changed nothing; the next one is at 3 s (due: so no hold)
    await clock.advance(1.0)
    edits.looking(job.id, 2.0)  # the next look is at 4 s: within an interval of the turn, so it waits
    await clock.advance(1.5)
    assert card.sent == []
    edits.want(replace(job, progress=20), next_look=12.0)  # the 4 s look's news replaces the state
    await clock.advance(1.0)
    assert [(e.at, e.progress, e.note) for e in card.sent] == [(4.0 + LOOK_GRACE, 20, "")]


async def test_a_held_state_goes_when_the_look_brings_nothing_and_never_waits_past_one_more_interval(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = await edited_at_once(edits)
    edits.want(replace(job, progress=20), next_look=1.0)  # before its turn (3 s): no wait
    edits.want(replace(job, progress=30), note="held", next_look=3.2)  # 3.7 s: waits past the turn
    await clock.advance(3.2 + LOOK_GRACE - 0.01)
    assert [e.progress for e in card.sent] == [10]
    await clock.advance(0.01)  # the look came and changed nothing: the state goes
    assert [(e.at, e.progress) for e in card.sent] == [(0.0, 10), (3.7, 30)]
    edits.want(replace(job, progress=40), next_look=2 * EDIT_INTERVAL + 1)  # beyond one more interval
    edits.want(replace(job, progress=50), final=True, next_look=1.0)  # and a final never waits
    await clock.advance(EDIT_INTERVAL)
    assert [(e.at, e.progress) for e in card.sent][2:] == [(6.7, 50)]


async def test_a_state_that_comes_after_its_turn_waits_for_a_look_within_an_interval_of_its_coming(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    """The last look before a job's end: its progress gives way to the final the end brings, which then
    goes when the wait ends instead of an interval after a progress edit nobody needed."""
    job = await edited_at_once(edits)
    await clock.advance(10.0)  # long past the next turn (3 s)
    edits.want(replace(job, progress=90), next_look=2.5)  # the look at the predicted end
    await clock.advance(2.5)
    assert [e.progress for e in card.sent] == [10]
    edits.want(replace(job, status=JobStatus.POSTED, progress=100), final=True)  # that look saw it done
    await clock.advance(LOOK_GRACE)
    assert [(e.at, e.progress) for e in card.sent] == [(0.0, 10), (12.5 + LOOK_GRACE, 100)]
    edits.want(replace(job, progress=50), next_look=1.0)  # (a later state waits its turn as ever)
    await clock.advance(EDIT_INTERVAL)
    assert [(e.at, e.progress) for e in card.sent][2:] == [(12.5 + LOOK_GRACE + EDIT_INTERVAL, 50)]


async def test_a_state_never_waits_past_one_interval_after_it_came_however_often_the_looks_change_nothing(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = await edited_at_once(edits)
    await clock.advance(10.0)
    edits.want(replace(job, progress=20), next_look=1.0)
    for _ in range(2):  # each look changes nothing and promises the next one a second later
        await clock.advance(1.0)
        edits.looking(job.id, 1.0)
    edits.want(replace(job, progress=30), next_look=1.0)  # news replaces the state but not its wait
    await clock.advance(1.0)
    edits.looking(job.id, 1.0)  # the next look (14 s) is past 10 s + one interval: no more waiting
    await clock.advance(LOOK_GRACE)  # (the wait for the 13 s look's answer ends)
    assert [(e.at, e.progress) for e in card.sent] == [(0.0, 10), (13.0 + LOOK_GRACE, 30)]


async def test_drain_sends_a_waiting_state_at_once(edits: CardEdits, card: Card, clock: ManualTime) -> None:
    job = make_job()
    edits.want(replace(job, progress=10))
    await clock.advance(1.0)
    edits.want(replace(job, status=JobStatus.POSTED, progress=100), final=True)
    await settle()
    await edits.drain()
    assert [(e.at, e.progress, e.priority) for e in card.sent] == [(0.0, 10, ROUTINE), (1.0, 100, URGENT)]
    await clock.advance(10 * EDIT_INTERVAL)
    assert len(card.sent) == 2  # nothing was left to send twice
    await edits.drain()  # and draining again sends nothing
    assert len(card.sent) == 2


async def test_drain_does_not_lose_an_edit_already_on_its_way(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    """At shutdown an edit may be waiting in the Discord budget or on the network: it still goes."""
    card.block = asyncio.Event()
    edits.want(make_job(status=JobStatus.POSTED, progress=100), final=True)
    await settle()
    assert card.sent == []  # the edit is under way, Discord has not answered
    draining = asyncio.create_task(edits.drain())
    await settle()
    card.block.set()
    await draining
    assert [(e.progress, e.priority) for e in card.sent] == [(100, URGENT)]


async def test_a_failed_edit_still_spaces_the_next_one(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    job = make_job()
    card.fail_with = discord.HTTPException(_response(503), "unavailable")
    edits.want(replace(job, progress=10))
    await settle()
    card.fail_with = None
    edits.want(replace(job, progress=20))
    await clock.advance(EDIT_INTERVAL - 0.1)
    assert card.sent == []
    await clock.advance(0.1)
    assert [(e.at, e.progress) for e in card.sent] == [(3.0, 20)]


def _response(status: int) -> Any:
    class Response:
        reason = "Service Unavailable"

    response = Response()
    response.status = status  # type: ignore[attr-defined]
    return response


async def test_nothing_is_kept_for_a_card_after_forget_and_its_last_edit(
    edits: CardEdits, card: Card, clock: ManualTime
) -> None:
    done, waiting, idle = make_job(id=1), make_job(id=2, card_message_id=CARD + 1), make_job(id=3)
    for job in (done, waiting, idle):
        edits.want(job)
    await settle()
    edits.want(replace(waiting, status=JobStatus.POSTED, progress=100), final=True)  # its last edit waits
    await clock.advance(EDIT_INTERVAL + 1)  # the first senders are done
    assert kept(edits, done.id) == ["shown"]  # what the card shows, to skip an identical edit
    edits.forget(done.id)
    assert kept(edits, done.id) == []
    edits.want(replace(waiting, progress=50))
    await settle()
    edits.forget(waiting.id)  # its task ended; its last state still waits for its turn
    assert "wanted" in kept(edits, waiting.id)
    await clock.advance(EDIT_INTERVAL)
    assert [e.progress for e in card.sent][-1] == 50
    assert kept(edits, waiting.id) == []
    assert kept(edits, idle.id) == ["shown"]  # a card whose job still runs is remembered
    posted_only = make_job(id=4, card_message_id=CARD + 4)
    await post(edits, card, posted_only)
    assert kept(edits, posted_only.id) == ["shown", "unedited"]
    edits.forget(posted_only.id)  # ended before any edit
    assert kept(edits, posted_only.id) == []


async def test_a_job_without_a_card_is_ignored(edits: CardEdits, card: Card) -> None:
    edits.want(make_job(card_message_id=None))
    await settle()
    assert card.sent == [] and kept(edits, 1) == []
