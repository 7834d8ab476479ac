"""The job store remembers what it wrote (SQLite: one process), and forgets it whenever it may be old."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from bot.db import Database
from bot.jobs.known import KnownJobs
from bot.jobs.leases import LeasedJobStore, Leases
from bot.jobs.models import JOB_COLUMNS, Job, JobStatus
from bot.jobs.store import JobStore, NewJob, StaleJob
from bot.quotas import Limits, Quotas

NOW = 1_700_000_000.0
LIMITS = Limits(guild_daily=5_000_000, guild_monthly=None, member_daily=1_000_000, max_concurrent=3)


def behind_the_stores_back(path: Path, job_id: int, prompt: str) -> None:
    """What another process writing the same file would do (unsupported on SQLite, hence the test)."""
    with sqlite3.connect(path) as other:
        other.execute("UPDATE jobs SET prompt = ? WHERE id = ?", (prompt, job_id))


async def reserved_job(store: JobStore) -> Job:
    new = NewJob(1, 2, 3, 4, None, None, 10_485_760, "sora-2", "1280x720", 4, "a cat")
    return await store.reserve(await store.create(new), 400_000)


async def test_a_job_the_store_wrote_is_not_read_back_until_a_transaction_changes_it(
    db: Database, tmp_path: Path
) -> None:
    store = JobStore(db, Quotas(db, LIMITS, clock=lambda: NOW), clock=lambda: NOW)
    job = await reserved_job(store)
    written = await store.transition(job.id, JobStatus.RESERVED, JobStatus.SUBMITTING, submitted_at=NOW)
    behind_the_stores_back(tmp_path / "soracord.sqlite3", job.id, "a dog")

    assert await store.require(job.id) == written  # remembered: no read
    ended = await store.fail(job.id, "cancelled")  # a transaction: read afresh after it
    assert (ended.status, ended.prompt) == (JobStatus.FAILED, "a dog")
    assert (await store.require(job.id)).prompt == "a dog"  # finished jobs are not kept


async def test_a_transition_that_finds_the_job_moved_on_forgets_it(db: Database, tmp_path: Path) -> None:
    store = JobStore(db, Quotas(db, LIMITS, clock=lambda: NOW), clock=lambda: NOW)
    job = await reserved_job(store)
    with sqlite3.connect(tmp_path / "soracord.sqlite3") as other:
        other.execute("UPDATE jobs SET status = 'failed', prompt = 'gone' WHERE id = ?", (job.id,))
    assert (await store.require(job.id)).status is JobStatus.RESERVED  # remembered
    with pytest.raises(StaleJob):
        await store.transition(job.id, JobStatus.RESERVED, JobStatus.SUBMITTING)
    assert (await store.require(job.id)).status is JobStatus.FAILED


async def test_with_other_processes_every_look_reads_the_database(db: Database, tmp_path: Path) -> None:
    store = LeasedJobStore(
        db, Quotas(db, LIMITS, clock=lambda: NOW), Leases(db, seconds=30), clock=lambda: NOW
    )
    job = await reserved_job(store)
    behind_the_stores_back(tmp_path / "soracord.sqlite3", job.id, "a dog")
    assert (await store.require(job.id)).prompt == "a dog"


def a_job(job_id: int = 1, status: JobStatus = JobStatus.SUBMITTED) -> Job:
    blank = Job(*(None for _ in JOB_COLUMNS))  # type: ignore[arg-type]
    return replace(blank, id=job_id, status=status)


def test_a_read_that_overlaps_a_write_is_not_kept() -> None:
    known = KnownJobs()
    before = known.generation
    known.wrote(a_job(status=JobStatus.COMPLETED))  # lands while the read was on its way
    known.read(a_job(status=JobStatus.SUBMITTED), before)
    assert known.get(1).status is JobStatus.COMPLETED  # type: ignore[union-attr]

    with known.writing():
        during = known.generation
        known.read(a_job(2), during)
    assert known.get(2) is None
    after = known.generation
    known.read(a_job(2), after)
    assert known.get(2) is not None


def test_finished_jobs_are_dropped_and_a_disabled_map_keeps_nothing() -> None:
    known = KnownJobs()
    known.wrote(a_job())
    known.wrote(a_job(status=JobStatus.POSTED))
    assert known.get(1) is None
    off = KnownJobs(enabled=False)
    off.wrote(a_job())
    off.read(a_job(), off.generation)
    assert off.get(1) is None
