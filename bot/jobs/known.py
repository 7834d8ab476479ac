"""The last known state of each unfinished job, so that a process that is its database's only writer
does not read back what it has just written.

The runner looks at a job before each of its steps, and some other part of the bot may have changed
it meanwhile (a Cancel, the queue starting it). Every such change goes through the job store, which
tells this map. So a job kept here is the job as the database has it, as long as nobody else writes
the database: SQLite is one process. With several processes (PostgreSQL) nothing is kept.

A read that overlaps a write is not kept (it may have seen the row from before the write), and a job
changed inside a transaction is forgotten, so the next look after the transaction reads it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bot.jobs.models import Job


class KnownJobs:
    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._jobs: dict[int, Job] = {}
        self._writes = 0  # transactions under way
        self._generation = 0  # moves on with every write: a read that saw it move is not kept

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    @property
    def generation(self) -> int:
        """Taken before a read and handed back to `read`."""
        return self._generation

    def read(self, job: Job, generation: int) -> None:
        """A job as read from the database: kept unless a write ran while it was being read."""
        if not self._writes and generation == self._generation:
            self._keep(job)

    def wrote(self, job: Job) -> None:
        """A job as a single-statement write returned it (the statement is its own transaction)."""
        self._generation += 1
        self._keep(job)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around a transaction: no read is kept while it runs."""
        self._writes += 1
        self._generation += 1
        try:
            yield
        finally:
            self._writes -= 1
            self._generation += 1

    def forget(self, job_id: int) -> None:
        """A write changed the job (or found it not as expected): the next look reads it."""
        self._generation += 1
        self._jobs.pop(job_id, None)

    def forget_all(self) -> None:
        self._generation += 1
        self._jobs.clear()

    def _keep(self, job: Job) -> None:
        if self.enabled and not job.finished:
            self._jobs[job.id] = job
        else:
            self._jobs.pop(job.id, None)
