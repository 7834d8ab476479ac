"""The SQLite database: one aiosqlite connection (WAL, foreign keys) and the migration runner."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.reasons import PlainError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")
#: A migration containing this line rebuilds tables: it runs with foreign keys off, checked before commit.
REBUILDS_TABLES = "-- migration: rebuilds tables"
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
    """The bot's SQLite database: one writing connection on aiosqlite's thread, one reading on the loop.

    Writes go through aiosqlite, off the event loop: a commit writes the WAL, and a writer may wait
    for another process's lock. A transaction spans several awaits, and another task's statements
    would land inside it, so every write holds `_lock`: `transaction()` (BEGIN IMMEDIATE, so
    concurrent writers from other connections wait instead of failing half-way), `execute`, and
    `write_returning` (one statement, one trip to the thread).

    Reads (`fetchone`, `fetchall`) run at once on a second, query-only connection in the loop's thread.
    In WAL mode a reader takes no lock and never waits for writers, and a read by key costs ~15 µs,
    against ~250 µs of CPU for a round trip to aiosqlite's thread (two thread wake-ups): the trip, not
    the query, was most of the bot's database time. Each read sees what was committed when it starts
    (our own writes are committed before their callers go on). In the rare case the reader is busy
    (another process recovering the WAL), the read goes through the writing connection instead.
    """

    def __init__(self, connection: aiosqlite.Connection, reader: sqlite3.Connection, path: Path) -> None:
        self._conn = connection
        self._reader = reader
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Database:
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
        reader = sqlite3.connect(path, isolation_level=None)
        reader.row_factory = sqlite3.Row
        for setting in ("query_only=ON", "foreign_keys=ON", "busy_timeout=0"):
            reader.execute(f"PRAGMA {setting}")
        return cls(connection, reader, path)

    async def close(self) -> None:
        async with self._lock:
            self._reader.close()
            await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (cancellation included)."""
        async with self._lock:
            if self._conn.in_transaction:  # left open by a task cancelled in the middle of one
                await self._conn.rollback()
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
            except BaseException:
                await asyncio.shield(self._conn.rollback())
                raise
            await asyncio.shield(self._conn.commit())

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement in its own transaction; returns the last row id."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return cursor.lastrowid or 0

    async def write_returning(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        """One write with RETURNING, a transaction of its own (autocommit): the rows it returned."""
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, tuple(params)))

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._reader.execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
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
                async with self.transaction() as conn:
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
