"""Request budgets: evenly spaced request starts, at most `rate` in any sliding second, urgent ones first.

What a budget guarantees: no two request starts are closer than `window / limit`, where `limit` is
`floor(rate)` (1 below a rate of 1) and `window` is one second (`1 / rate` below 1) counted `MARGIN`
(10 %) long: at a rate of 10, one start every 0.11 s. Even spacing implies the sliding-window bound,
and more: any `limit + 1` starts span more than a whole second, so no half-open window [t, t + 1 s)
holds more than `limit` of them even when they reach the server up to 100 ms late or early relative
to each other (the jitter between taking the budget and arriving). Nothing is granted in bursts, and
a start is recorded when the request goes, not when a waiter was told it may; callers take the budget
right before they send (the provider client before each HTTP request, discord.py's session in an
aiohttp trace, past discord.py's per-route lock).

Waiters queue in one heap ordered by (priority, arrival), the lowest number first, FIFO within one.
One waiter at a time holds the turn: it sleeps until the next start is allowed, then looks again (a
more urgent waiter may have come, or a 429 may have slowed the budget down) and either goes or hands
the turn to the waiter now at the head of the queue. Going, or being cancelled while holding the
turn, hands it on, so a cancelled waiter never holds up those behind it. A free slot with nobody
queued costs no task switch: `acquire` returns without awaiting anything.

Priorities travel in a context (`Priority`), not as arguments: code that makes requests sets
`with PROVIDER_PRIORITY(level):` or `with DISCORD_PRIORITY(level):`, and the budget reads it when a
request joins the queue. A budget of rate <= 0 or >= `UNLIMITED_RATE` never waits and costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from itertools import count

#: Rates at or above this (and rates <= 0) mean "no limit": benchmarks use them to measure the bot alone.
UNLIMITED_RATE = 1000.0
#: The longest pause `slow_down` accepts, whatever a Retry-After says.
MAX_SLOW_DOWN = 60.0
#: The window is counted this fraction longer than it is (100 ms on one second), so starts that reach
#: the server a little late or early relative to each other still fit the real window (at 5 %, a
#: server whose own loop was busy saw 41 in one second for a budget of 40).
MARGIN = 0.10


class Priority:
    """The priority that requests made in this context wait in (0 = most urgent); one per budget.

    ``with PRIORITY(level): ...`` sets it for the calls made inside (and the tasks they create);
    ``PRIORITY.get()`` is the current one.
    """

    __slots__ = ("_var",)

    def __init__(self, name: str, *, default: int) -> None:
        self._var: ContextVar[int] = ContextVar(name, default=default)

    def get(self) -> int:
        return self._var.get()

    @contextlib.contextmanager
    def __call__(self, level: int) -> Iterator[None]:
        token = self._var.set(level)
        try:
            yield
        finally:
            self._var.reset(token)


#: Provider requests (the Videos API): the job runner sets the urgency of each call.
PROVIDER_PRIORITY = Priority("provider_priority", default=1)
#: Bot-token Discord REST calls: clip posts and final card edits go before progress edits.
DISCORD_PRIORITY = Priority("discord_priority", default=1)
#: The context of budgets made without one (tests, tools).
ANY_PRIORITY = Priority("request_priority", default=0)


class _Waiter:
    __slots__ = ("cancelled", "future")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future
        self.cancelled = False


class RequestBudget:
    """Request starts at least `window / limit` apart, most urgent waiter (lowest number) first.

    A rate of 1 or more allows `floor(rate)` starts per window of one second; a rate below 1 allows
    one start per `1 / rate` seconds. The window is counted `MARGIN` longer. With several processes
    each one takes its `share` of the rate.
    `acquire()` without a priority waits in the current one of `priority` (a `Priority` context).
    """

    def __init__(
        self,
        rate: float,
        *,
        priority: Priority = ANY_PRIORITY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.priority = priority
        self._clock = clock
        self._sleep = sleep
        self.rate = rate
        self.unlimited = not 0 < rate < UNLIMITED_RATE
        self.gap = 0.0  # the least time between two starts
        self.share(1)
        self._last = -math.inf  # the latest start
        self._resume_at = -math.inf
        self._waiters: list[tuple[int, int, _Waiter]] = []
        self._seq = count()
        self._turn: _Waiter | None = None  # the waiter whose turn it is; None: nobody waits

    async def acquire(self, priority: int | None = None) -> None:
        """Wait until one more request may start; lower `priority` goes first, FIFO within a priority.

        Without `priority`, the current level of the budget's `Priority` context is used.
        """
        if self.unlimited:
            return
        now = self._clock()
        if self._turn is None and self._ready_at() <= now:
            self._last = now
            return
        loop = asyncio.get_running_loop()
        me = _Waiter(loop.create_future())
        heapq.heappush(
            self._waiters, (self.priority.get() if priority is None else priority, next(self._seq), me)
        )
        if self._turn is None:
            self._turn = me
        try:
            while True:
                if self._turn is not me:
                    await me.future  # set when the turn is handed to this waiter
                    me.future = loop.create_future()
                    continue
                if self._head() is not me:  # a more urgent waiter came meanwhile
                    self._hand_on()
                    continue
                now = self._clock()
                ready_at = self._ready_at()
                if ready_at <= now:
                    heapq.heappop(self._waiters)
                    self._last = now
                    self._hand_on()
                    return
                await self._sleep(ready_at - now)  # then look again: things may have changed
        except asyncio.CancelledError:
            me.cancelled = True  # left in the heap, dropped when it comes to the top
            if self._turn is me:
                self._hand_on()
            raise

    def share(self, processes: int) -> None:
        """Take one of `processes` equal shares of the rate (the others' processes take theirs)."""
        if self.unlimited:
            return
        rate = self.rate / max(1, processes)
        limit = max(1, math.floor(rate))
        window = 1.0 if rate >= 1 else 1.0 / rate
        self.gap = window * (1 + MARGIN) / limit

    def slow_down(self, seconds: float) -> None:
        """After a 429: no request (any priority) starts before now + `seconds`, capped at `MAX_SLOW_DOWN`."""
        if seconds > 0 and not self.unlimited:
            self._resume_at = max(self._resume_at, self._clock() + min(seconds, MAX_SLOW_DOWN))

    def _ready_at(self) -> float:
        """When the next request may start, ignoring the queue."""
        return max(self._resume_at, self._last + self.gap)

    def _head(self) -> _Waiter | None:
        """The most urgent waiter still waiting (cancelled ones are dropped on the way)."""
        waiters = self._waiters
        while waiters and waiters[0][2].cancelled:
            heapq.heappop(waiters)
        return waiters[0][2] if waiters else None

    def _hand_on(self) -> None:
        """Give the turn to the most urgent waiter, or to nobody if none is left."""
        head = self._turn = self._head()
        if head is not None and not head.future.done():
            head.future.set_result(None)
