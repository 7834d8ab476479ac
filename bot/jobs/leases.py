"""Job leases: with several processes on one database, each job is driven by one process at a time.

A process drives a job only while it holds the job's lease (`jobs.lease_owner`, `jobs.lease_expires_at`,
migration 0005):

- `claim` takes it in one UPDATE when it is free, already ours, or expired; `hold` takes the lease of a
  job this process has just written (a request still being checked), so nobody answers it "interrupted";
- `renew` extends every lease this process holds, in one statement, every lease/3 (`keep`);
- `release` frees it when the job's task ends (finished, or stopped at shutdown: another process may then
  take it over at once);
- `adopt` claims a batch of unfinished jobs whose lease expired (their process died), every lease/2;
- `check_in` (at start, then with each renewal) keeps this process's row in `bot_processes` alive for a
  lease and counts the live rows: the bot's request budgets are shared out by that count, so that all
  processes together stay within them. After `check_out` at shutdown the others take this process's
  share at their next check-in; a process that died stops counting when its row expires. A process
  that starts may push the total over a budget by its own share until the others' next renewal
  (lease/3).

A job without a lease (released, or written before leases existed) is free, except a request still
`received` that is younger than a lease: the process that wrote it may be about to `hold` it.

Lease times are this process's UTC clock (`time.time`): processes on several machines need clocks that
agree to well within a lease (NTP does). A process whose renewals fail for most of a lease stops driving
its jobs (they are adopted once the leases expire), so two processes never drive one job for long; the
runner's guarded transitions and the `posting` state keep the rest exactly once.

On PostgreSQL the lease statements run outside the bot's write lock (`PostgresDatabase.transaction`):
they change lease columns only, which no other transaction reads, and row locks order them with the
state transitions. Adoption and renewal skip rows another transaction has locked (`FOR UPDATE SKIP
LOCKED`), so two processes adopting at once split the expired jobs between them instead of waiting, and
a renewal never waits for (or deadlocks with) a transition in progress. With SQLite (one process) the
owner is the same on every start, so a restart takes its jobs back at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

from bot.db import Database
from bot.db_postgres import PostgresDatabase
from bot.jobs.models import FINISHED, Job, JobStatus
from bot.jobs.store import JobStore, NewJob
from bot.quotas import Quotas

log = logging.getLogger(__name__)

#: The owner of every lease on SQLite, which only one process uses.
LOCAL_OWNER = "local"
#: Jobs claimed by one adoption statement; a full batch is followed by another right away.
ADOPT_BATCH = 100

_UNFINISHED = f"status NOT IN ({', '.join(repr(status.value) for status in sorted(FINISHED))})"
# Free for the taking by anyone (not only by the owner): ?3 now, ?4 now - lease (for fresh requests).
_FREE = (
    f"{_UNFINISHED} AND (lease_expires_at < ?3"
    " OR (lease_owner IS NULL AND (status != 'received' OR created_at < ?4)))"
)
# ?1 owner, ?2 new expiry, then as _FREE, ?5 job id.
_CLAIM = (
    "UPDATE jobs SET lease_owner = ?1, lease_expires_at = ?2"
    f" WHERE id = ?5 AND (({_FREE}) OR (lease_owner = ?1 AND {_UNFINISHED})) RETURNING id"
)
_HOLD = (
    "UPDATE jobs SET lease_owner = ?1, lease_expires_at = ?2"
    " WHERE id = ?3 AND lease_owner IS NULL RETURNING id"
)
_RELEASE = (
    "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL"
    " WHERE id = ?2 AND lease_owner = ?1 RETURNING id"
)
# ?1 owner, ?2 new expiry. SQLite: the jobs renewed are the jobs held.
_RENEW_SQLITE = (
    f"UPDATE jobs SET lease_expires_at = ?2 WHERE lease_owner = ?1 AND {_UNFINISHED} RETURNING id, status"
)
# PostgreSQL: a job locked by a transition in progress is renewed on the next round (it has two thirds
# of its lease left); every job held is reported, renewed now or not.
_RENEW_POSTGRES = f"""
WITH held AS (SELECT id, status FROM jobs WHERE lease_owner = ?1 AND {_UNFINISHED}),
renewed AS (
    UPDATE jobs SET lease_expires_at = ?2 WHERE id IN (
        SELECT id FROM jobs WHERE lease_owner = ?1 AND {_UNFINISHED} FOR UPDATE SKIP LOCKED
    ) RETURNING id
)
SELECT id, status FROM held"""
# ?1 owner, ?2 new expiry, ?3 now, ?4 now - lease, ?5 batch size.
_ADOPT = (
    "UPDATE jobs SET lease_owner = ?1, lease_expires_at = ?2 WHERE id IN ("
    f" SELECT id FROM jobs WHERE {_FREE} ORDER BY id LIMIT ?5{{lock}}"
    ") RETURNING id, status"
)
_ADOPT_SQLITE = _ADOPT.format(lock="")
_ADOPT_POSTGRES = _ADOPT.format(lock=" FOR UPDATE SKIP LOCKED")
# ?1 owner, ?2 new expiry.
_CHECK_IN = (
    "INSERT INTO bot_processes (owner, expires_at) VALUES (?1, ?2)"
    " ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at RETURNING owner"
)
# Rows of processes gone for a whole lease (?: now - lease) are dropped.
_FORGET_GONE = "DELETE FROM bot_processes WHERE expires_at < ? RETURNING owner"
_LIVE = "SELECT COUNT(*) AS n FROM bot_processes WHERE expires_at > ?"
_CHECK_OUT = "DELETE FROM bot_processes WHERE owner = ? RETURNING owner"


class Adopted(NamedTuple):
    """A job this process has just taken over, and the state it was left in."""

    job_id: int
    status: JobStatus


def new_owner() -> str:
    """A name for this process's leases, unique to this run: host, process id and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    """The lease statements for one process (`owner`), each a single statement."""

    def __init__(
        self,
        db: Database | PostgresDatabase,
        *,
        seconds: float,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        processes: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.db = db
        #: Whether other processes share the database (PostgreSQL); SQLite is one process's.
        self.shared = isinstance(db, PostgresDatabase)
        self.owner = owner or (new_owner() if self.shared else LOCAL_OWNER)
        self.seconds = seconds
        self.clock = clock
        #: Told how many processes share the database (this one included) after each check-in.
        self.processes = processes

    async def _write(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """One lease statement and its RETURNING rows (see the module docstring for PostgreSQL's)."""
        return await self.db.write_returning(sql, params)

    def _times(self) -> tuple[float, float, float]:
        """(new expiry, now, now - lease)."""
        now = self.clock()
        return now + self.seconds, now, now - self.seconds

    async def claim(self, job_id: int) -> bool:
        """Take the job's lease if it is free, ours, or expired (the job unfinished); True if we hold it."""
        expiry, now, fresh = self._times()
        return bool(await self._write(_CLAIM, (self.owner, expiry, now, fresh, job_id)))

    async def hold(self, job_id: int) -> bool:
        """Take the lease of a job this process has just written (nobody holds it yet)."""
        expiry, _, _ = self._times()
        return bool(await self._write(_HOLD, (self.owner, expiry, job_id)))

    async def release(self, job_id: int) -> None:
        """Give the lease up (if we still hold it): another process may take the job at once."""
        await self._write(_RELEASE, (self.owner, job_id))

    async def renew(self) -> dict[int, JobStatus]:
        """Extend every lease we hold on an unfinished job; returns those jobs and their states."""
        expiry, _, _ = self._times()
        sql = _RENEW_POSTGRES if self.shared else _RENEW_SQLITE
        return {row["id"]: JobStatus(row["status"]) for row in await self._write(sql, (self.owner, expiry))}

    async def adopt(self, limit: int = ADOPT_BATCH) -> list[Adopted]:
        """Claim up to `limit` unfinished jobs whose lease expired (or that have none), oldest first."""
        expiry, now, fresh = self._times()
        sql = _ADOPT_POSTGRES if self.shared else _ADOPT_SQLITE
        rows = await self._write(sql, (self.owner, expiry, now, fresh, limit))
        return sorted(Adopted(row["id"], JobStatus(row["status"])) for row in rows)

    async def owners(self, job_ids: Iterable[int]) -> dict[int, str | None]:
        """Who holds each of these unfinished jobs now (finished jobs are left out)."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        rows = await self.db.fetchall(
            f"SELECT id, lease_owner FROM jobs WHERE id IN ({', '.join('?' for _ in ids)}) AND {_UNFINISHED}",
            ids,
        )
        return {row["id"]: row["lease_owner"] for row in rows}

    async def check_in(self) -> int:
        """Say this process is alive for one more lease; tell `processes` how many are (itself
        included) and return it. Only PostgreSQL is shared: on SQLite the count is always 1."""
        if not self.shared:
            count = 1
        else:
            expiry, now, gone = self._times()
            await self._write(_CHECK_IN, (self.owner, expiry))
            await self._write(_FORGET_GONE, (gone,))
            row = await self.db.fetchone(_LIVE, (now,))
            count = max(1, row["n"] if row else 1)
        self.processes(count)
        return count

    async def check_out(self) -> None:
        """At shutdown: this process stops counting, so the others take its share at their next check-in."""
        if self.shared:
            await self._write(_CHECK_OUT, (self.owner,))

    async def keep(
        self,
        *,
        driving: Callable[[], set[int]],
        lost: Callable[[set[int]], None],
        adopted: Callable[[list[Adopted]], Awaitable[None]],
    ) -> None:
        """Renew every lease/3 (and check in) and adopt every lease/2, until cancelled.

        `driving()` names the jobs this process's tasks drive; `lost(ids)` is told of those another
        process has taken over (or, on PostgreSQL, of all of them when renewals have failed for two
        thirds of a lease); `adopted(jobs)` gets each batch of jobs taken over from a dead process, and
        the jobs this process holds but does not drive (a claim that failed half way), except requests
        still being received (the intake holds those).
        """
        loop = asyncio.get_running_loop()
        renew_every, adopt_every = self.seconds / 3, self.seconds / 2
        next_renew, next_adopt = loop.time() + renew_every, loop.time() + adopt_every
        renewed_at = loop.time()
        while True:
            await asyncio.sleep(max(0.0, min(next_renew, next_adopt) - loop.time()))
            if loop.time() >= next_renew:
                next_renew = loop.time() + renew_every
                before = driving()
                try:
                    held = await self.renew()
                except Exception as error:
                    log.warning("Could not renew this process's job leases: %s", error)
                    if self.shared and before and loop.time() - renewed_at > 2 * renew_every:
                        log.warning("Stopping %d job(s) whose leases may have expired", len(before))
                        lost(before)
                else:
                    renewed_at = loop.time()
                    await self._checked_in()
                    now_driving = driving()
                    await self._report_lost((before & now_driving) - held.keys(), lost)
                    idle = [
                        Adopted(job_id, status)
                        for job_id, status in sorted(held.items())
                        if job_id not in before | now_driving and status is not JobStatus.RECEIVED
                    ]
                    await _tell(adopted, idle)
            if loop.time() >= next_adopt:
                next_adopt = loop.time() + adopt_every
                try:
                    batch = await self.adopt()
                except Exception as error:
                    log.warning("Could not look for jobs left by a stopped process: %s", error)
                    continue
                await _tell(adopted, batch)
                if len(batch) >= ADOPT_BATCH:
                    next_adopt = loop.time()  # more are waiting

    async def _checked_in(self) -> None:
        try:
            await self.check_in()
        except Exception as error:  # the shares stay as they are until the next round
            log.warning("Could not tell the other processes this one is alive: %s", error)

    async def _report_lost(self, missing: set[int], lost: Callable[[set[int]], None]) -> None:
        """Tell `lost` of the jobs among `missing` that are unfinished and no longer ours."""
        if not missing:
            return
        try:
            owners = await self.owners(missing)
        except Exception as error:  # looked at again after the next renewal
            log.warning("Could not look up who holds jobs %s: %s", sorted(missing), error)
            return
        taken = {job_id for job_id, owner in owners.items() if owner != self.owner}
        if taken:
            lost(taken)


async def _tell(adopted: Callable[[list[Adopted]], Awaitable[None]], jobs: list[Adopted]) -> None:
    if not jobs:
        return
    try:
        await adopted(jobs)
    except Exception:
        log.exception("Could not take up jobs %s; trying again later", [job.job_id for job in jobs])


class LeasedJobStore(JobStore):
    """The job store whose new jobs are leased by this process from the moment they are written."""

    only_writer = False  # other processes change jobs too: every look reads the database

    def __init__(
        self, db: Database | PostgresDatabase, quotas: Quotas, leases: Leases, **options: Any
    ) -> None:
        super().__init__(db, quotas, **options)  # type: ignore[arg-type]
        self.leases = leases

    async def create(self, new: NewJob) -> Job:
        job = await super().create(new)
        await self.leases.hold(job.id)
        return job
