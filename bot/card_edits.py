"""Card edits, coalesced: at most one edit per card per interval (finals included), the newest state
wins. The card's post counts as its first showing for progress, so the first progress edit waits its
turn; an ending (a refusal, Cancel) right after the post does not wait: the post is not an edit.

A job reports its state as often as it likes; only the newest one waiting for a card is kept, rendered
once when its turn comes, and sent only if it differs from what the card shows. Finals (the job ended,
"Compressing…") go to Discord before progress (`DISCORD_PRIORITY`), so clip posts and final words are
not stuck behind a thousand progress bars.

A progress state that could go shortly before the job's next look at the provider waits for that look
(by at most one interval past its turn, or past its arrival when it came later), so that one edit
shows what both had to say; and the state a job shows just before it completes gives way to its final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import discord

from bot.jobs.models import Job
from bot.ratelimit import DISCORD_PRIORITY

log = logging.getLogger(__name__)

#: Discord calls made inside `with discord_priority(level):` get that priority in the bot's request
#: budget (0 = most urgent); the one mechanism is `bot.ratelimit.Priority`.
discord_priority = DISCORD_PRIORITY
URGENT, ROUTINE = 0, 2
#: Cards older than an hour are edited more slowly (Discord's code 30046 on old messages).
SLOW_AFTER = 3600.0
SLOW_FACTOR = 10
#: How long after a job's next look its waiting state is held: the look's round trip, so that its
#: answer can still replace the state.
LOOK_GRACE = 0.5


Render = Callable[[Job, str | None], Awaitable[tuple[discord.Embed, discord.ui.View | None]]]
Edit = Callable[[Job, discord.Embed, discord.ui.View | None], Awaitable[None]]
#: What a card shows: its embed and components as sent (compared, never encoded).
Shown = tuple[Mapping[str, Any], list[dict[str, Any]]]


@dataclass
class _Wanted:
    job: Job
    note: str | None
    final: bool
    since: float  # when the card first had this state (or one it replaced) waiting, on `clock`
    next_look: float = float("-inf")  # when the job is looked at next, on `clock`


class CardEdits:
    def __init__(
        self,
        render: Render,
        edit: Edit,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._render = render
        self._edit = edit
        self.interval = interval
        self.clock = clock  # spaces the edits
        self.wall_clock = wall_clock  # ages the cards (a job's created_at is wall time)
        self._sleep = sleep
        self._wanted: dict[int, _Wanted] = {}
        #: card -> (when edited, what it shows; None when the edit failed, so anything is sent next)
        self._shown: dict[int, tuple[float, Shown | None]] = {}
        self._unedited: set[int] = set()  # cards showing what they were posted with: a final goes at once
        self._senders: dict[int, asyncio.Task[None]] = {}
        self._ended: set[int] = set()  # jobs whose task ended while their card still had an edit to send
        self._sleeping: set[int] = set()  # cards whose sender waits for their turn (not sending)
        self._draining = False

    def want(
        self, job: Job, *, note: str | None = None, final: bool = False, next_look: float | None = None
    ) -> None:
        """Show this state on the job's card when its turn comes (replacing any state still waiting);
        `next_look`: in how many seconds the job is looked at again (None: not known, or never)."""
        if job.card_message_id is None:
            return
        waiting = self._wanted.get(job.id)
        wanted = _Wanted(
            job,
            note,
            final or (waiting is not None and waiting.final),
            waiting.since if waiting is not None else self.clock(),
        )
        self._wanted[job.id] = wanted
        if next_look is not None:
            self.looking(job.id, next_look)
        if job.id not in self._senders:
            self._senders[job.id] = asyncio.create_task(self._send(job.id), name=f"card-{job.id}")

    def looking(self, job_id: int, next_look: float) -> None:
        """The job is looked at again in `next_look` seconds: a state waiting for its card may wait
        for that look."""
        wanted = self._wanted.get(job_id)
        if wanted is not None:
            wanted.next_look = self.clock() + next_look

    def posted(self, job_id: int, embed: discord.Embed, view: discord.ui.View | None) -> None:
        """The card was just posted showing this: its first progress edit waits its turn."""
        self._shown[job_id] = (self.clock(), _shown(embed, view))
        self._unedited.add(job_id)

    async def _send(self, job_id: int) -> None:
        try:
            while (wanted := self._wanted.get(job_id)) is not None:
                wait = self._turn(wanted) - self.clock()
                if wait > 0 and not self._draining:
                    self._sleeping.add(job_id)
                    try:
                        await self._sleep(wait)
                    finally:
                        self._sleeping.discard(job_id)
                    continue  # a newer state may have arrived meanwhile
                await self._show(self._wanted.pop(job_id))
        finally:
            self._senders.pop(job_id, None)
            if job_id in self._ended and job_id not in self._wanted:
                self._ended.discard(job_id)
                self._drop(job_id)

    def _turn(self, wanted: _Wanted) -> float:
        """When the waiting state may be sent: an interval after the last showing (for a final, the last
        edit), or at the job's next look when that comes within one more interval of when it could go
        (progress only)."""
        if wanted.final and wanted.job.id in self._unedited:
            return float("-inf")
        interval = self._interval(wanted.job)
        due = self._shown.get(wanted.job.id, (float("-inf"), None))[0] + interval
        could_go = max(due, wanted.since)
        held = wanted.next_look + LOOK_GRACE
        if not wanted.final and could_go < held and wanted.next_look <= could_go + interval:
            return held
        return due

    async def _show(self, wanted: _Wanted) -> None:
        embed, view = await self._render(wanted.job, wanted.note)
        rendered: Shown | None = _shown(embed, view)
        job_id = wanted.job.id
        if self._shown.get(job_id, (0.0, None))[1] == rendered:
            return
        try:
            with discord_priority(URGENT if wanted.final else ROUTINE):
                await self._edit(wanted.job, embed, view)
        except discord.HTTPException as error:
            log.warning("Job %s: could not edit its card: %s", job_id, error)
            rendered = None  # not shown: the next state is sent even if it is the same (still spaced)
        self._shown[job_id] = (self.clock(), rendered)
        self._unedited.discard(job_id)

    def _interval(self, job: Job) -> float:
        slow = self.wall_clock() - job.created_at > SLOW_AFTER
        return self.interval * (SLOW_FACTOR if slow else 1)

    def forget(self, job_id: int) -> None:
        """The job's task ended: drop what is kept about its card once nothing waits to be shown."""
        if job_id in self._senders:
            self._ended.add(job_id)
        else:
            self._drop(job_id)

    def _drop(self, job_id: int) -> None:
        self._shown.pop(job_id, None)
        self._unedited.discard(job_id)

    async def drain(self) -> None:
        """At shutdown: show every waiting state now instead of losing it (an edit already on its way,
        e.g. waiting in the Discord budget, is let finish rather than cancelled)."""
        self._draining = True
        senders = list(self._senders.items())
        for job_id, sender in senders:
            if job_id in self._sleeping:
                sender.cancel()
        for _, sender in senders:
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        for wanted in list(self._wanted.values()):
            await self._show(wanted)
        self._wanted.clear()
        self._draining = False


def _shown(embed: discord.Embed, view: discord.ui.View | None) -> Shown:
    return embed.to_dict(), view.to_components() if view else []
