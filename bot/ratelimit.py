"""One request budget shared by every job: at most `rate` request starts in any sliding 1-second window.

A sliding window of start times, not a token bucket: a bucket with burst capacity `rate` lets `rate`
requests go at the end of one second and `rate` more at the start of the next, i.e. up to twice the
rate inside one 1-second window. Here a request may start only when the start `limit` requests ago is
at least one window old, so no half-open window [t, t + 1 s) ever holds more than `limit` starts.

Waiters queue in one heap ordered by (priority, arrival); a single waker task sleeps until the next
slot opens and hands it to the most urgent waiter. A free slot with nobody queued costs no task
switch: `acquire` returns without awaiting anything.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import count

#: Rates at or above this (and rates <= 0) mean "no limit": benchmarks use them to measure the bot alone.
UNLIMITED_RATE = 1000.0
#: The longest pause `slow_down` accepts, whatever a Retry-After says.
MAX_SLOW_DOWN = 60.0


class RequestBudget:
    """At most `rate` request starts in any sliding second, most urgent waiter (lowest number) first.

    A rate of 1 or more allows `floor(rate)` starts per 1-second window; a rate below 1 allows one
    start per `1 / rate` seconds.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] | None = None  # None: unlimited
        self._window = 1.0
        if 0 < rate < UNLIMITED_RATE:
            self._starts = deque(maxlen=max(1, math.floor(rate)))
            self._window = 1.0 if rate >= 1 else 1.0 / rate
        self._resume_at = -math.inf
        self._waiters: list[tuple[int, int, asyncio.Future[float]]] = []
        self._seq = count()
        self._waker: asyncio.Task[None] | None = None

    async def acquire(self, priority: int = 0) -> None:
        """Wait until one more request may start; lower `priority` goes first, FIFO within a priority."""
        now = self._clock()
        if not self._waiters and self._ready_at() <= now:
            self._record(now)
            return
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), future))
        self._wake()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Granted, then cancelled before it could send: the slot was never used, give it back.
                self._unrecord(future.result())
                self._wake(restart=True)
            raise

    def slow_down(self, seconds: float) -> None:
        """After a 429: no request (any priority) starts before now + `seconds`, capped at `MAX_SLOW_DOWN`."""
        if seconds > 0:
            self._resume_at = max(self._resume_at, self._clock() + min(seconds, MAX_SLOW_DOWN))

    def _ready_at(self) -> float:
        """When the next request may start, ignoring the queue."""
        starts = self._starts
        if starts is not None and len(starts) == starts.maxlen:
            return max(self._resume_at, starts[0] + self._window)
        return self._resume_at

    def _record(self, now: float) -> None:
        if self._starts is not None:
            self._starts.append(now)

    def _unrecord(self, start: float) -> None:
        if self._starts is not None and start in self._starts:
            self._starts.remove(start)

    def _wake(self, *, restart: bool = False) -> None:
        """Make sure the waker runs; `restart` when a slot came back early and its sleep is now too long."""
        if self._waker is not None and not self._waker.done():
            if not restart:
                return
            self._waker.cancel()
        if self._waiters:
            self._waker = asyncio.get_running_loop().create_task(self._run_waker())

    async def _run_waker(self) -> None:
        """Hand out slots to queued waiters in order, sleeping until each opens (rechecked on waking)."""
        waiters = self._waiters
        while waiters:
            if waiters[0][2].done():  # its task was cancelled while queued
                heapq.heappop(waiters)
                continue
            now = self._clock()
            ready_at = self._ready_at()
            if ready_at <= now:
                self._record(now)
                heapq.heappop(waiters)[2].set_result(now)
            else:
                await self._sleep(ready_at - now)
