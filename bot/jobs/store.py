"""The jobs table: every state change is written before the next step is taken.

A change of state names the state it expects (`transition`): if the job moved on meanwhile (ended,
cancelled, taken over), `StaleJob` is raised and nothing is written, so no step acts on an old view.
While this process is the database's only writer, it remembers what it wrote (`KnownJobs`).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

from bot.db import Database
from bot.db_cursor import TransactionConnection
from bot.jobs.known import KnownJobs
from bot.jobs.models import FINISHED, IN_FLIGHT, JOB_COLUMNS, JOB_SELECT, Job, JobStatus
from bot.quotas import Quotas


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the member asked for, as acknowledged."""

    guild_id: int
    channel_id: int
    member_id: int
    application_id: int
    interaction_token: str | None
    token_expires_at: float | None
    upload_limit: int
    model: str
    size: str
    seconds: int
    prompt: str
    audio: bool | None = None
    remixed_from: int | None = None
    extended_from: int | None = None


UNFINISHED = tuple(status for status in JobStatus if status not in FINISHED)
IN_FLIGHT_VALUES = tuple(status.value for status in IN_FLIGHT)
_IN_FLIGHT_MARKS = ", ".join("?" for _ in IN_FLIGHT)


class StaleJob(RuntimeError):
    """The job was not in the state a transition expected; nothing was written."""


class JobStore:
    #: Whether no other process writes this database's jobs (SQLite), so what it wrote can be trusted.
    only_writer = True

    def __init__(self, db: Database, quotas: Quotas, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.quotas = quotas
        self.clock = clock
        self._known = KnownJobs(enabled=self.only_writer)

    async def create(self, new: NewJob) -> Job:
        now = self.clock()
        values = asdict(new) | {
            "status": JobStatus.RECEIVED.value,
            "created_at": now,
            "updated_at": now,
            "nonce": secrets.token_hex(10),
        }
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        (row,) = await self.db.write_returning(
            f"INSERT INTO jobs ({columns}) VALUES ({marks}) RETURNING {JOB_SELECT}", tuple(values.values())
        )
        job = Job.from_row(row)
        self._known.wrote(job)
        return job

    async def get(self, job_id: int) -> Job | None:
        job = self._known.get(job_id)
        if job is not None:
            return job
        generation = self._known.generation
        row = await self.db.fetchone(f"SELECT {JOB_SELECT} FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            return None
        job = Job.from_row(row)
        self._known.read(job, generation)
        return job

    async def require(self, job_id: int) -> Job:
        job = await self.get(job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        return job

    async def update(self, job_id: int, **changes: Any) -> Job:
        """Change fields that are not the job's state (e.g. progress), whatever state it is in."""
        job = await self._changed(job_id, changes)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        return job

    async def transition(
        self, job_id: int, expected: JobStatus, new: JobStatus | None = None, **changes: Any
    ) -> Job:
        """Move the job from `expected` to `new` (or only change fields while it is in `expected`)."""
        if new is not None:
            changes["status"] = new.value
        job = await self._changed(job_id, changes, expected=(expected,))
        if job is None:
            raise StaleJob(f"job {job_id} is no longer {expected}")
        return job

    async def _changed(
        self, job_id: int, changes: dict[str, Any], *, expected: tuple[JobStatus, ...] | None = None
    ) -> Job | None:
        """One guarded UPDATE … RETURNING (a transaction of its own): the changed job, or None if it is
        not in one of `expected`. One statement, so one trip to the database for a state change."""
        sql, params = self._update_sql(job_id, changes, expected)
        rows = await self.db.write_returning(f"{sql} RETURNING {JOB_SELECT}", params)
        if not rows:
            self._known.forget(job_id)
            return None
        job = Job.from_row(rows[0])
        self._known.wrote(job)
        return job

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[TransactionConnection]:
        """A transaction that changes jobs: the jobs it changes are read afresh after it."""
        with self._known.writing():
            async with self.db.transaction() as conn:
                yield conn

    async def _update(
        self,
        conn: Any,
        job_id: int,
        changes: dict[str, Any],
        *,
        expected: tuple[JobStatus, ...] | None = None,
    ) -> bool:
        """UPDATE one job inside a transaction (only while its status is one of `expected`, if given);
        True if it changed."""
        self._known.forget(job_id)
        cursor = await conn.execute(*self._update_sql(job_id, changes, expected))
        return cursor.rowcount == 1

    async def _update_returning(
        self, conn: Any, job_id: int, changes: dict[str, Any], *, expected: tuple[JobStatus, ...]
    ) -> Job | None:
        """`_update` that returns the changed job (as it will be once the transaction commits)."""
        self._known.forget(job_id)
        sql, params = self._update_sql(job_id, changes, expected)
        cursor = await conn.execute(f"{sql} RETURNING {JOB_SELECT}", params)
        rows = await cursor.fetchall()  # to the end: the statement is done before the next one
        return Job.from_row(rows[0]) if rows else None

    def _update_sql(
        self, job_id: int, changes: dict[str, Any], expected: tuple[JobStatus, ...] | None
    ) -> tuple[str, tuple[Any, ...]]:
        changes = {**changes, "updated_at": self.clock()}
        sql = _update_statement(tuple(changes), None if expected is None else len(expected))
        params: tuple[Any, ...] = (*changes.values(), job_id)
        if expected is not None:
            params += tuple(status.value for status in expected)
        return sql, params

    async def reserve(self, job: Job, cost_micros: int, *, queue_limit: int = 0, **changes: Any) -> Job:
        """Reserve the budget and accept the job in one transaction: it starts (reserved) when the server
        has a free slot, else waits in the server's queue (queued) — or the quota's refusal is raised."""
        async with self._transaction() as conn:
            accepted = await self._update(
                conn, job.id, {"cost_micros": cost_micros, **changes}, expected=(JobStatus.RECEIVED,)
            )
            if not accepted:
                raise StaleJob(f"job {job.id} is no longer being received")
            starts = await self.quotas.reserve(
                conn,
                job_id=job.id,
                guild_id=job.guild_id,
                member_id=job.member_id,
                amount=cost_micros,
                queue_limit=queue_limit,
            )
            status = JobStatus.RESERVED if starts else JobStatus.QUEUED
            changes = {"status": status.value, "started_at": self.clock() if starts else None}
            accepted_job = await self._update_returning(conn, job.id, changes, expected=(JobStatus.RECEIVED,))
        assert accepted_job is not None  # the first update found it received, in this transaction
        self._known.wrote(accepted_job)
        return accepted_job

    async def queue_order(self, guild_id: int) -> list[int]:
        """The server's queued jobs in the order they will start (see `take_turns`)."""
        async with self.db.transaction() as conn:
            return await self._queue_order_in(conn, guild_id)

    async def _queue_order_in(self, conn: Any, guild_id: int) -> list[int]:
        async with conn.execute(
            "SELECT id, member_id FROM jobs WHERE guild_id = ? AND status = ? ORDER BY id",
            (guild_id, JobStatus.QUEUED.value),
        ) as cursor:
            queued = [(row["member_id"], row["id"]) for row in await cursor.fetchall()]
        if not queued:
            return []
        async with conn.execute(
            "SELECT member_id, MAX(started_at) AS last FROM jobs"
            " WHERE guild_id = ? AND started_at IS NOT NULL GROUP BY member_id",
            (guild_id,),
        ) as cursor:
            last_start = {row["member_id"]: row["last"] for row in await cursor.fetchall()}
        return take_turns(queued, last_start)

    async def start_next(self, guild_id: int, max_in_flight: int) -> list[int]:
        """Move queued jobs to reserved, in queue order, while the server has free slots; their ids."""
        started: list[int] = []
        async with self._transaction() as conn:
            async with conn.execute(
                f"SELECT COUNT(*) AS n FROM jobs WHERE guild_id = ? AND status IN ({_IN_FLIGHT_MARKS})",
                (guild_id, *IN_FLIGHT_VALUES),
            ) as cursor:
                row = await cursor.fetchone()
            free = max_in_flight - row["n"]
            if free <= 0:
                return started
            for job_id in (await self._queue_order_in(conn, guild_id))[:free]:
                changes = {"status": JobStatus.RESERVED.value, "started_at": self.clock()}
                if await self._update(conn, job_id, changes, expected=(JobStatus.QUEUED,)):
                    started.append(job_id)
        return started

    async def fail(self, job_id: int, reason: str, *, only_from: tuple[JobStatus, ...] = UNFINISHED) -> Job:
        """End the job without a clip and refund what it reserved — if it is in one of `only_from` (any
        unfinished state by default); otherwise it stays as it is (check the returned job's status)."""
        now = self.clock()
        async with self._transaction() as conn:
            changes = {
                "status": JobStatus.FAILED.value,
                "error": reason,
                "finished_at": now,
                "interaction_token": None,  # a credential, not needed once the job has ended
            }
            ended = await self._update_returning(conn, job_id, changes, expected=only_from)
            if ended is not None:
                await self.quotas.refund(conn, job_id)
        return ended or await self.require(job_id)

    async def mark_posted(self, job_id: int, clip_message_id: int, **changes: Any) -> Job:
        """Record the delivered message and charge the job, atomically.

        The charge is the job's `actual_cost_micros` (as stored, or as changed here) when the provider
        reported one, else the reservation's estimate.
        """
        now = self.clock()
        posted = {
            "status": JobStatus.POSTED.value,
            "clip_message_id": clip_message_id,
            "interaction_token": None,
            "finished_at": now,
            "progress": 100,
            **changes,
        }
        async with self._transaction() as conn:
            job = await self._update_returning(conn, job_id, posted, expected=(JobStatus.POSTING,))
            if job is None:
                raise StaleJob(f"job {job_id} is not being posted")
            await self.quotas.charge(conn, job_id, job.actual_cost_micros)
        return job

    async def forget_expired_tokens(self) -> int:
        """Delete interaction tokens Discord no longer accepts (they are credentials); returns how many."""
        self._known.forget_all()
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET interaction_token = NULL"
                " WHERE interaction_token IS NOT NULL AND token_expires_at < ?",
                (self.clock(),),
            )
            return cursor.rowcount

    async def unfinished(self) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT {JOB_SELECT} FROM jobs"
            f" WHERE status NOT IN ({', '.join('?' for _ in FINISHED)}) ORDER BY id",
            tuple(status.value for status in FINISHED),
        )
        return [Job.from_row(row) for row in rows]

    async def by_message(self, message_id: int) -> Job | None:
        """The job whose clip or card is this message."""
        row = await self.db.fetchone(
            f"SELECT {JOB_SELECT} FROM jobs"
            " WHERE clip_message_id = ? OR card_message_id = ? ORDER BY id LIMIT 1",
            (message_id, message_id),
        )
        return Job.from_row(row) if row else None

    async def by_provider_video(self, video_id: str) -> Job | None:
        row = await self.db.fetchone(
            f"SELECT {JOB_SELECT} FROM jobs WHERE provider_video_id = ?", (video_id,)
        )
        return Job.from_row(row) if row else None

    async def provider_video_ids(self) -> set[str]:
        """Every provider video already tied to a job (so a lost submission never adopts one twice)."""
        rows = await self.db.fetchall(
            "SELECT provider_video_id FROM jobs WHERE provider_video_id IS NOT NULL"
        )
        return {row["provider_video_id"] for row in rows}

    async def recent_for_member(self, guild_id: int, member_id: int, limit: int = 10) -> list[Job]:
        rows = await self.db.fetchall(
            f"SELECT {JOB_SELECT} FROM jobs WHERE guild_id = ? AND member_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, member_id, limit),
        )
        return [Job.from_row(row) for row in rows]


@functools.lru_cache(maxsize=128)  # the runner writes the same few shapes over and over
def _update_statement(columns: tuple[str, ...], expected: int | None) -> str:
    """UPDATE of `columns` of one job, guarded by `expected` allowed statuses (None: any)."""
    unknown = set(columns) - set(JOB_COLUMNS)
    if unknown:
        raise ValueError(f"unknown job columns: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in columns)
    sql = f"UPDATE jobs SET {assignments} WHERE id = ?"
    if expected is not None:
        sql += f" AND status IN ({', '.join('?' for _ in range(expected))})"
    return sql


def take_turns(queued: list[tuple[int, int]], last_start: dict[int, float]) -> list[int]:
    """Round-robin over members: `queued` is (member, job id) oldest first; the member whose last video
    started longest ago (or never) goes first, then the others in that order, one job each per round."""
    per_member: dict[int, list[int]] = {}
    for member_id, job_id in queued:
        per_member.setdefault(member_id, []).append(job_id)
    members = sorted(
        per_member, key=lambda member: (last_start.get(member, float("-inf")), per_member[member][0])
    )
    order: list[int] = []
    while any(per_member.values()):
        for member in members:
            if per_member[member]:
                order.append(per_member[member].pop(0))
    return order
