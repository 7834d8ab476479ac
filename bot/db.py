"""The SQLite database (statements in the loop's thread; aiosqlite's for waits and migrations) and the
migration runner."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.db_cursor import Cursor, Execution, TransactionConnection, ready
from bot.reasons import PlainError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")
#: A migration containing this line rebuilds tables: it runs with foreign keys off, checked before commit.
REBUILDS_TABLES = "-- migration: rebuilds tables"
#: Commits between two checkpoints: a state change writes a few pages, and SQLite's own default is to
#: checkpoint at 1000.
CHECKPOINT_EVERY = 300
#: A state change is one `UPDATE … RETURNING` (one trip to the database); RETURNING came in SQLite 3.35.
MIN_SQLITE = (3, 35, 0)


class DatabaseUnavailable(PlainError):
    """The database cannot be used (unreachable, a wrong URL, too old); the reason never has a password."""


class MigrationError(RuntimeError):
    """A migration file failed; the database was left as it was before that file."""

    def __init__(self, filename: str, cause: BaseException) -> None:
        super().__init__(f"migration {filename} failed: {cause}")
        self.filename = filename


class Database:
    """The bot's SQLite database; its statements run at once, in the event loop's thread.

    A read or a write by key costs SQLite ~10-30 µs, and a round trip to aiosqlite's thread ~250 µs of
    CPU (two thread wake-ups): with a thousand jobs the trip, not the statement, was most of the bot's
    database time. So there are two connections in the loop's thread, neither of which ever waits:

    - reads (`fetchone`, `fetchall`) on a query-only connection: in WAL mode a reader takes no lock and
      never waits for writers; each read sees what was committed when it starts.
    - writes on a connection whose busy timeout is 0: when another process holds the write lock, the
      write goes through aiosqlite's connection on its thread instead, which waits up to 10 s for it.
      A commit appends to the WAL without an fsync (synchronous=NORMAL); the checkpoints, which fsync,
      run on a thread every `checkpoint_every` commits, never on the loop.

    A transaction may span awaits, and another task's statements would land inside it, so every write
    holds `_lock`: `transaction()` (BEGIN IMMEDIATE, so concurrent writers from other connections wait
    instead of failing half-way), `execute`, and `write_returning` (one statement, autocommit).
    Migrations run on aiosqlite's thread: a table rebuild may take a while.
    """

    def __init__(
        self,
        connection: aiosqlite.Connection,
        reader: sqlite3.Connection,
        writer: sqlite3.Connection,
        path: Path,
        checkpoint_every: int,
    ) -> None:
        self._conn = connection
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._checkpoint_every = checkpoint_every
        self._commits = 0  # on the loop's connection since the last checkpoint
        self._checkpointing = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: Path, *, checkpoint_every: int = CHECKPOINT_EVERY) -> Database:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise DatabaseUnavailable(
                f"this Python's SQLite is {sqlite3.sqlite_version}; the bot needs 3.35 or newer"
                " (or PostgreSQL: set DATABASE_URL)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        await connection.execute("PRAGMA busy_timeout=10000")
        await connection.execute("PRAGMA synchronous=NORMAL")
        reader = _connect(path, "query_only=ON")
        writer = _connect(path, "synchronous=NORMAL", "wal_autocheckpoint=0")
        return cls(connection, reader, writer, path, checkpoint_every)

    async def close(self) -> None:
        async with self._lock, self._checkpointing:
            self._reader.close()
            self._writer.close()
            await self._conn.close()  # the last connection: SQLite checkpoints and removes the WAL

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[TransactionConnection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (cancellation included)."""
        async with self._lock:
            if self._began():
                try:
                    yield LoopConnection(self._writer)
                    self._writer.execute("COMMIT")
                except BaseException:
                    if self._writer.in_transaction:
                        self._writer.execute("ROLLBACK")
                    raise
            else:
                async with self._thread_transaction() as conn:
                    yield conn
        await self._committed()

    @asynccontextmanager
    async def _thread_transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A transaction on aiosqlite's connection (the caller holds `_lock`)."""
        if self._conn.in_transaction:  # left open by a task cancelled in the middle of one
            await self._conn.rollback()
        try:
            await self._conn.execute("BEGIN IMMEDIATE")
            yield self._conn
        except BaseException:
            await asyncio.shield(self._conn.rollback())
            raise
        await asyncio.shield(self._conn.commit())

    def _began(self) -> bool:
        """BEGIN IMMEDIATE on the loop's connection; False when another process holds the write lock."""
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
            return False
        return True

    async def _committed(self) -> None:
        """Count a commit; every `checkpoint_every`, copy the WAL into the database file on a thread.

        A passive checkpoint never waits for or blocks writers; the WAL starts over once it is copied.
        """
        self._commits += 1
        if self._commits < self._checkpoint_every or self._checkpointing.locked():
            return
        self._commits = 0
        async with self._checkpointing:
            try:
                await asyncio.to_thread(_checkpoint, self.path)
            except sqlite3.Error as error:
                log.warning("SQLite checkpoint failed; the WAL grows until the next one: %s", error)

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement in its own transaction; returns the last row id."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return cursor.lastrowid or 0

    async def write_returning(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """One write with RETURNING, a transaction of its own (autocommit): the rows it returned."""
        values = tuple(params)
        async with self._lock:
            try:
                rows = self._writer.execute(sql, values).fetchall()
            except sqlite3.OperationalError as error:  # busy: nothing was written
                if not _busy(error):
                    raise
                rows = list(await self._conn.execute_fetchall(sql, values))
        await self._committed()
        return rows

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._reader.execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, tuple(params)))

    async def _pragma(self, setting: str) -> None:
        async with self._lock:
            await self._conn.execute(f"PRAGMA {setting}")

    async def migrate(self, directory: Path = MIGRATIONS_DIR) -> list[str]:
        """Apply `NNNN_*.sql` files not yet recorded in `schema_version`, in order; returns their names."""
        files = migration_files(directory)
        async with self._lock:
            await self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
        applied = {row["version"] for row in await self.fetchall("SELECT version FROM schema_version")}
        done = []
        for version, path in files:
            if version in applied:
                continue
            script = path.read_text(encoding="utf-8")
            rebuilds = REBUILDS_TABLES in script
            try:
                if rebuilds:  # SQLite's table-rebuild procedure: foreign keys off, checked before commit
                    await self._pragma("foreign_keys=OFF")
                async with self._lock, self._thread_transaction() as conn:
                    for statement in split_sql(script):
                        await conn.execute(statement)
                    if rebuilds:
                        async with conn.execute("PRAGMA foreign_key_check") as cursor:
                            if await cursor.fetchone() is not None:
                                raise RuntimeError("the rebuilt tables break a foreign key")
                    await conn.execute(
                        "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, path.name, int(time.time())),
                    )
            except Exception as exc:
                raise MigrationError(path.name, exc) from exc
            finally:
                if rebuilds:
                    await self._pragma("foreign_keys=ON")
            log.info("Applied migration %s", path.name)
            done.append(path.name)
        return done


class LoopConnection:
    """The connection a transaction on the loop's thread yields: each statement runs at once."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection

    def execute(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> Execution:
        cursor = self._conn.execute(sql, params)
        rows = cursor.fetchall()  # to the end: the statement is done before the next one
        return Execution(ready(Cursor(rows, rowcount=cursor.rowcount, lastrowid=cursor.lastrowid or 0)))


def _connect(path: Path, *settings: str) -> sqlite3.Connection:
    """A connection for the loop's thread that never waits for a lock (busy timeout 0)."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.row_factory = sqlite3.Row
    for setting in ("foreign_keys=ON", "busy_timeout=0", *settings):
        connection.execute(f"PRAGMA {setting}")
    return connection


def _checkpoint(path: Path) -> None:
    """Copy the WAL into the database file (passive: it neither waits for nor blocks anyone)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        connection.close()


def _busy(error: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock the statement needs (SQLITE_BUSY or SQLITE_LOCKED)."""
    return error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def split_sql(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own, breaking rollback)."""
    statements, current = [], []
    for line in script.splitlines():
        current.append(line)
        candidate = "\n".join(current)
        if sqlite3.complete_statement(candidate):
            if candidate.strip().strip(";").strip():
                statements.append(candidate)
            current = []
    if "\n".join(current).strip():
        statements.append("\n".join(current))
    return statements


def migration_files(directory: Path) -> list[tuple[int, Path]]:
    """`NNNN_name.sql` files in `directory`, by number."""
    return sorted(
        (int(match.group(1)), path)
        for path in directory.iterdir()
        if (match := MIGRATION_NAME.match(path.name))
    )
