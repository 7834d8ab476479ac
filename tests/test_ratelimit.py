"""RequestBudget against a manual clock: time moves when the budget's waker sleeps or a test sets it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.ratelimit import MAX_SLOW_DOWN, RequestBudget


class FakeTime:
    """A manual clock, and a sleep that lets the waiters just granted run first, then jumps to its end."""

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
        await asyncio.sleep(0)  # those granted a slot record their start at the current time
        self.now = max(self.now, wake_at)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def budget(fake: FakeTime, rate: float) -> RequestBudget:
    return RequestBudget(rate, clock=fake.clock, sleep=fake.sleep)


async def start(
    b: RequestBudget, fake: FakeTime, starts: list[tuple[float, str]], name: str, pri: int
) -> None:
    await b.acquire(pri)
    starts.append((fake.now, name))


async def test_no_one_second_window_holds_more_than_the_rate(fake: FakeTime) -> None:
    b, starts = budget(fake, 10), []
    await asyncio.gather(*(start(b, fake, starts, str(i), i % 3) for i in range(100)))
    times = sorted(t for t, _ in starts)
    assert len(times) == 100
    assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[10:], strict=False))
    assert times[-1] == 9.0  # and the budget is used in full, not more cautiously


async def test_sliding_window_not_token_bucket(fake: FakeTime) -> None:
    """After a burst of `rate` the next start waits a whole window, not 1/rate as a refilling bucket would."""
    b, starts = budget(fake, 10), []
    fake.now = 0.5
    await asyncio.gather(*(start(b, fake, starts, str(i), 0) for i in range(11)))
    assert [t for t, _ in starts] == [0.5] * 10 + [1.5]


async def test_most_urgent_first_then_fifo_within_a_priority(fake: FakeTime) -> None:
    b, starts = budget(fake, 1), []
    await b.acquire()  # the budget is now exhausted until t=1
    queued = [asyncio.create_task(start(b, fake, starts, name, 2)) for name in ("routine1", "routine2")]
    queued.append(asyncio.create_task(start(b, fake, starts, "near-done", 1)))
    await asyncio.sleep(0)
    queued.append(asyncio.create_task(start(b, fake, starts, "delivery", 0)))
    await asyncio.gather(*queued)
    assert starts == [(1.0, "delivery"), (2.0, "near-done"), (3.0, "routine1"), (4.0, "routine2")]


async def test_slow_down_holds_every_priority(fake: FakeTime) -> None:
    b, starts = budget(fake, 2), []
    await b.acquire()
    await b.acquire()  # the window is full too: the pause, not the window, decides
    b.slow_down(5)
    await asyncio.gather(*(start(b, fake, starts, str(p), p) for p in (2, 1, 0)))
    assert starts == [(5.0, "0"), (5.0, "1"), (6.0, "2")]
    b.slow_down(3600)
    await start(b, fake, starts, "capped", 0)
    assert starts[-1] == (6.0 + MAX_SLOW_DOWN, "capped")


async def test_a_newcomer_does_not_overtake_the_queue_when_a_slot_opens(fake: FakeTime) -> None:
    b, starts = budget(fake, 10), []
    b.slow_down(5)
    delivery = asyncio.create_task(start(b, fake, starts, "delivery", 0))
    await asyncio.sleep(0)
    fake.now = 5.0  # the pause is over, and the waker has not run yet
    await start(b, fake, starts, "routine", 2)
    await delivery
    assert starts == [(5.0, "delivery"), (5.0, "routine")]


async def test_cancelled_waiter_lets_the_next_one_proceed(fake: FakeTime) -> None:
    b, starts = budget(fake, 1), []
    await b.acquire()
    cancelled = asyncio.create_task(start(b, fake, starts, "cancelled", 0))
    waiting = asyncio.create_task(start(b, fake, starts, "next", 1))
    await asyncio.sleep(0)
    cancelled.cancel()
    await waiting
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert starts == [(1.0, "next")]


async def test_waiter_cancelled_after_its_slot_came_gives_the_slot_back(fake: FakeTime) -> None:
    b, starts = budget(fake, 1), []
    await b.acquire()
    granted = asyncio.create_task(start(b, fake, starts, "granted", 0))
    waiting = asyncio.create_task(start(b, fake, starts, "next", 1))
    await asyncio.sleep(0)
    # The waker's second sleep comes right after it handed t=1 to `granted`, before that task ran.
    fake.on_sleep = lambda: granted.cancel() if len(fake.sleeps) == 2 else None
    await waiting
    await start(b, fake, starts, "after", 0)
    assert granted.cancelled()
    assert starts == [(1.0, "next"), (2.0, "after")]


@pytest.mark.parametrize("rate", [0, -1, 5000, float("inf")])
async def test_unlimited_never_waits(fake: FakeTime, rate: float) -> None:
    b = budget(fake, rate)
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
    assert fake.sleeps == []
