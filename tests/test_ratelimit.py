"""RequestBudget against a manual clock: time moves when the waiter holding the turn sleeps, or a test
sets it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from bot.ratelimit import MARGIN, MAX_SLOW_DOWN, PROVIDER_PRIORITY, Priority, RequestBudget

GAP_10 = 1.1 / 10  # the spacing at a rate of 10: a second counted 10 % long, over 10 starts


class FakeTime:
    """A manual clock, and a sleep that lets the tasks that can run do so first, then jumps to its end."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep()
        wake_at = self.now + seconds
        await asyncio.sleep(0)  # those woken meanwhile act at the current time
        self.now = max(self.now, wake_at)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def budget(fake: FakeTime, rate: float, priority: Priority | None = None) -> RequestBudget:
    if priority is None:
        return RequestBudget(rate, clock=fake.clock, sleep=fake.sleep)
    return RequestBudget(rate, priority=priority, clock=fake.clock, sleep=fake.sleep)


async def start(
    b: RequestBudget, fake: FakeTime, starts: list[tuple[float, str]], name: str, pri: int | None = None
) -> None:
    await b.acquire(pri)
    starts.append((fake.now, name))


def at(*times: float) -> list[float]:
    return pytest.approx(list(times))  # type: ignore[return-value]


def test_the_spacing_is_the_window_counted_a_little_long_over_the_rate() -> None:
    assert MARGIN == 0.10
    assert RequestBudget(10).gap == pytest.approx(GAP_10)
    assert RequestBudget(40).gap == pytest.approx(1.1 / 40)
    assert RequestBudget(10.9).gap == pytest.approx(GAP_10)  # whole starts per second
    assert RequestBudget(1).gap == pytest.approx(1.1)
    assert RequestBudget(0.5).gap == pytest.approx(2.2)  # below 1: one start per 1/rate s, 10 % longer


async def test_processes_sharing_a_rate_each_take_a_whole_share_that_adds_up_to_no_more(
    fake: FakeTime,
) -> None:
    b, starts = budget(fake, 10), []
    b.share(3)  # 10 a second over 3 processes: 3 each, never 3.33 (which would add up to 10.0 and more)
    assert b.gap == pytest.approx(1.1 / 3)
    await asyncio.gather(*(start(b, fake, starts, str(i)) for i in range(7)))
    times = sorted(t for t, _ in starts)
    assert all(later - earlier >= 1.1 - 1e-9 for earlier, later in zip(times, times[3:], strict=False))
    b.share(20)  # more processes than requests a second: one start per 2 s each
    assert b.gap == pytest.approx(2.2)
    b.share(1)  # the others stopped: the whole rate again
    assert b.gap == pytest.approx(GAP_10)
    unlimited = RequestBudget(5000)
    unlimited.share(10)
    assert unlimited.unlimited and unlimited.gap == 0.0


async def test_no_one_second_window_holds_more_than_the_rate(fake: FakeTime) -> None:
    b, starts = budget(fake, 10), []
    await asyncio.gather(*(start(b, fake, starts, str(i), i % 3) for i in range(100)))
    times = sorted(t for t, _ in starts)
    assert len(times) == 100
    assert all(later - earlier >= GAP_10 - 1e-9 for earlier, later in itertools.pairwise(times))
    # Any 11 starts span more than a second, with the margin to spare for jitter on the way.
    assert all(later - earlier >= 1.1 - 1e-9 for earlier, later in zip(times, times[10:], strict=False))
    assert times[-1] == pytest.approx(99 * GAP_10)  # and the budget is used in full, not more cautiously


async def test_starts_are_spaced_evenly_not_granted_in_a_burst(fake: FakeTime) -> None:
    """A queue of 11 goes one every 1.1/rate s, not 10 at once and the 11th a window later."""
    b, starts = budget(fake, 10), []
    fake.now = 0.5
    await asyncio.gather(*(start(b, fake, starts, str(i), 0) for i in range(11)))
    assert [t for t, _ in starts] == at(*(0.5 + i * GAP_10 for i in range(11)))
    assert [name for _, name in starts] == [str(i) for i in range(11)]


async def test_most_urgent_first_then_fifo_within_a_priority(fake: FakeTime) -> None:
    b, starts = budget(fake, 1), []
    await b.acquire()  # the next start may come at t=1.1
    queued = [asyncio.create_task(start(b, fake, starts, name, 2)) for name in ("routine1", "routine2")]
    queued.append(asyncio.create_task(start(b, fake, starts, "near-done", 1)))
    await asyncio.sleep(0)
    queued.append(asyncio.create_task(start(b, fake, starts, "delivery", 0)))
    await asyncio.gather(*queued)
    assert [name for _, name in starts] == ["delivery", "near-done", "routine1", "routine2"]
    assert [t for t, _ in starts] == at(1.1, 2.2, 3.3, 4.4)


async def test_a_waiter_that_slept_looks_again_before_it_goes(fake: FakeTime) -> None:
    """The waiter sleeping until the next slot wakes to a 429's pause, and to a more urgent newcomer."""
    b, starts = budget(fake, 10), []
    await b.acquire()
    tasks: list[asyncio.Task[None]] = []

    def meanwhile() -> None:
        if len(fake.sleeps) == 1:  # while "routine" sleeps until t=0.11
            b.slow_down(2)
            tasks.append(asyncio.create_task(start(b, fake, starts, "urgent", 0)))

    fake.on_sleep = meanwhile
    await start(b, fake, starts, "routine", 2)
    await asyncio.gather(*tasks)
    assert starts == [(2.0, "urgent"), (pytest.approx(2.0 + GAP_10), "routine")]
    assert fake.sleeps[:2] == at(GAP_10, 2.0 - GAP_10)  # the turn slept on until the pause ended


async def test_slow_down_holds_every_priority(fake: FakeTime) -> None:
    b, starts = budget(fake, 2), []
    await b.acquire()
    b.slow_down(5)
    await asyncio.gather(*(start(b, fake, starts, str(p), p) for p in (2, 1, 0)))
    assert [name for _, name in starts] == ["0", "1", "2"]
    assert [t for t, _ in starts] == at(5.0, 5.55, 6.1)  # the pause, then the spacing again
    b.slow_down(3600)
    await start(b, fake, starts, "capped", 0)
    assert starts[-1] == (pytest.approx(6.1 + MAX_SLOW_DOWN), "capped")


async def test_a_slow_down_reaches_those_already_waiting(fake: FakeTime) -> None:
    """One caller's 429 pauses every other caller of the same budget, queued or not."""
    b, starts = budget(fake, 10), []
    await b.acquire()
    queued = [asyncio.create_task(start(b, fake, starts, name, 1)) for name in ("job1", "job2")]
    await asyncio.sleep(0)
    b.slow_down(3)  # e.g. job0's request was answered 429 with Retry-After: 3
    await asyncio.gather(*queued)
    assert starts == [(3.0, "job1"), (pytest.approx(3.0 + GAP_10), "job2")]


async def test_a_newcomer_does_not_overtake_the_queue_when_a_slot_opens(fake: FakeTime) -> None:
    b, starts = budget(fake, 10), []
    b.slow_down(5)
    delivery = asyncio.create_task(start(b, fake, starts, "delivery", 0))
    await asyncio.sleep(0)
    fake.now = 5.0  # the pause is over, and the waiter has not looked yet
    await start(b, fake, starts, "routine", 2)
    await delivery
    assert starts == [(5.0, "delivery"), (pytest.approx(5.0 + GAP_10), "routine")]


async def test_cancelled_waiter_lets_the_next_one_proceed(fake: FakeTime) -> None:
    b, starts = budget(fake, 1), []
    await b.acquire()
    cancelled = asyncio.create_task(start(b, fake, starts, "cancelled", 0))  # sleeps, holding the turn
    waiting = asyncio.create_task(start(b, fake, starts, "next", 1))
    await asyncio.sleep(0)
    cancelled.cancel()
    async with asyncio.timeout(5):  # a deadline against a hang, not a timing assertion
        await waiting
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert starts == [(pytest.approx(1.1), "next")]


async def test_waiter_cancelled_when_its_turn_came_hands_the_turn_on(fake: FakeTime) -> None:
    """The turn passes to a waiter that is cancelled before it runs: it gives the turn to the next."""
    b, starts = budget(fake, 1), []
    await b.acquire()

    async def first() -> None:
        await start(b, fake, starts, "first", 0)
        victim.cancel()  # it was just handed the turn, and has not run since

    tasks = [asyncio.create_task(first())]
    victim = asyncio.create_task(start(b, fake, starts, "victim", 1))
    tasks.append(asyncio.create_task(start(b, fake, starts, "last", 2)))
    async with asyncio.timeout(5):  # a deadline against a hang, not a timing assertion
        await asyncio.gather(*tasks)
    assert victim.cancelled()
    assert starts == [(pytest.approx(1.1), "first"), (pytest.approx(2.2), "last")]
    await start(b, fake, starts, "after", 0)  # the budget still works, the victim took no start
    assert starts[-1] == (pytest.approx(3.3), "after")


async def test_priority_comes_from_the_budgets_context(fake: FakeTime) -> None:
    urgency = Priority("test_urgency", default=1)
    b, starts = budget(fake, 1, urgency), []
    await b.acquire()

    async def in_context(name: str, level: int | None) -> None:
        if level is None:
            await start(b, fake, starts, name)
            return
        with urgency(level):
            await start(b, fake, starts, name)

    queued = [
        asyncio.create_task(in_context("routine", 2)),
        asyncio.create_task(in_context("default", None)),
        asyncio.create_task(in_context("urgent", 0)),
    ]
    with urgency(2):
        queued.append(asyncio.create_task(start(b, fake, starts, "explicit", 0)))  # an argument wins
    await asyncio.gather(*queued)
    assert [name for _, name in starts] == ["urgent", "explicit", "default", "routine"]
    assert urgency.get() == 1  # nothing leaked out of the contexts
    assert PROVIDER_PRIORITY.get() == 1  # another budget's context is another variable
    with PROVIDER_PRIORITY(0):
        assert (PROVIDER_PRIORITY.get(), urgency.get()) == (0, 1)


@pytest.mark.parametrize("rate", [0, -1, 5000, float("inf")])
async def test_unlimited_never_waits(fake: FakeTime, rate: float) -> None:
    b = budget(fake, rate)
    b.slow_down(30)
    for _ in range(1000):
        coro = b.acquire(2)
        with pytest.raises(StopIteration):  # finished without suspending: no task switch
            coro.send(None)
    assert fake.sleeps == []


async def test_free_slot_does_not_suspend(fake: FakeTime) -> None:
    b = budget(fake, 10)
    for _ in range(10):
        coro = b.acquire()
        with pytest.raises(StopIteration):
            coro.send(None)
        fake.now += GAP_10  # the next slot is free by then
    assert fake.sleeps == []
    fake.now -= GAP_10 / 2  # too early: the next waits the rest of the spacing
    waiting = asyncio.create_task(b.acquire())
    await asyncio.sleep(0)
    assert fake.sleeps == at(GAP_10 / 2)
    await waiting
