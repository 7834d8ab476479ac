"""`python -m bot migrate-to-postgres`: copy the SQLite database into an empty PostgreSQL database.

Both are migrated first (the SQLite file as the bot would at start, so the two have the same columns).
The copy is one PostgreSQL transaction, holding the bot's write lock: all of it or nothing. Ids are
kept (the ledger and remixes refer to jobs by id, Discord's buttons carry them), and the identity
sequences are moved past them, so the next job gets the next id. Leases are not copied: in the new
database every job is free to be taken up by the first process that starts.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from bot import event_loop
from bot.db import Database, MigrationError
from bot.db_postgres import Connection, DatabaseUnavailable, PostgresDatabase, describe_url
from bot.reasons import PlainError
from bot.settings import Settings

#: What is copied, in an order that satisfies the foreign keys (the ledger refers to jobs).
TABLES = ("guild_settings", "bot_state", "provider_models", "jobs", "ledger")
#: Columns left to their default in the new database.
NOT_COPIED = frozenset({"lease_owner", "lease_expires_at"})
BATCH_ROWS = 1000


class CannotMigrate(PlainError):
    """The copy cannot be made (no source, a target that holds data); `reason` says why, plainly."""


def migrate_to_postgres(settings: Settings) -> int:
    """The command: exit 0 with one line of counts, or 2 with one plain line saying why not."""
    if settings.database_url is None:
        print(
            "DATABASE_URL is not set: set it to the empty PostgreSQL database to copy into "
            "(postgresql://user:password@host:5432/soracord).",
            file=sys.stderr,
        )
        return 2
    url = settings.database_url.get_secret_value().strip()
    try:
        if not settings.database_path.is_file():
            raise CannotMigrate(
                f"There is no SQLite database at {settings.database_path} (DATABASE_PATH): nothing to copy."
            )
        counts = event_loop.run(copy_sqlite_to_postgres(settings.database_path, url))
    except (CannotMigrate, DatabaseUnavailable) as error:
        print(error.reason, file=sys.stderr)
        return 2
    except MigrationError as error:
        print(f"Nothing was copied: {error}.", file=sys.stderr)
        return 2
    except sqlite3.Error as error:
        print(f"Cannot read the SQLite database at {settings.database_path}: {error}.", file=sys.stderr)
        return 2
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        print(f"PostgreSQL refused the copy, so nothing was copied: {error}", file=sys.stderr)
        return 2
    figures = ", ".join(f"{table} {count}" for table, count in counts.items())
    print(f"Copied SQLite {settings.database_path} to PostgreSQL {describe_url(url)}: {figures}.")
    return 0


async def copy_sqlite_to_postgres(sqlite_path: Path, url: str) -> dict[str, int]:
    """Copy every table of `TABLES` from the SQLite file (which must exist); returns the rows copied per
    table."""
    source = await Database.open(sqlite_path)
    try:
        await source.migrate()
        target = await PostgresDatabase.open(url)
        try:
            await target.migrate()
            return await _copy(source, target, url)
        finally:
            await target.close()
    finally:
        await source.close()


async def _copy(source: Database, target: PostgresDatabase, url: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with target.transaction() as conn:
        held = {table: await _count(conn, table) for table in TABLES}
        if any(held.values()):
            figures = ", ".join(f"{table} {count}" for table, count in held.items() if count)
            raise CannotMigrate(
                f"The PostgreSQL database at {describe_url(url)} already holds data ({figures}); "
                "migrate-to-postgres copies only into an empty database."
            )
        for table in TABLES:
            counts[table] = await _copy_table(source, conn, table)
    return counts


async def _count(conn: Connection, table: str) -> int:
    async with conn.execute(f"SELECT COUNT(*) AS n FROM {table}") as cursor:
        row = await cursor.fetchone()
    return int(row["n"]) if row else 0


async def _copy_table(source: Database, conn: Connection, table: str) -> int:
    """Copy one table in batches, in rowid order (a table's own id where it has one)."""
    async with conn.execute(
        "SELECT column_name, data_type, is_identity FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ?",
        (table,),
    ) as cursor:
        target_columns = {row["column_name"]: row for row in await cursor.fetchall()}
    source_columns = [row["name"] for row in await source.fetchall(f"PRAGMA table_info({table})")]
    columns = [name for name in source_columns if name in target_columns and name not in NOT_COPIED]
    identity = [name for name in columns if target_columns[name]["is_identity"] == "YES"]
    convert = [_converter(target_columns[name]["data_type"]) for name in columns]
    listed = ", ".join(columns)
    insert = (
        f"INSERT INTO {table} ({listed})"
        f"{' OVERRIDING SYSTEM VALUE' if identity else ''} VALUES ({', '.join('?' for _ in columns)})"
    )
    copied, after = 0, -(2**63)
    while True:
        rows = await source.fetchall(
            f"SELECT rowid AS source_rowid, {listed} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, BATCH_ROWS),
        )
        if not rows:
            break
        await conn.executemany(
            insert, [[to(row[name]) for name, to in zip(columns, convert, strict=True)] for row in rows]
        )
        copied += len(rows)
        after = rows[-1]["source_rowid"]
    for name in identity:  # the next generated id follows the copied ones
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{name}'), COALESCE(MAX({name}), 0) + 1, false)"
            f" FROM {table}"
        )
    return copied


def _converter(data_type: str) -> Callable[[Any], Any]:
    """SQLite keeps what it is given; PostgreSQL's column types are strict (an integral 5.0 in an INTEGER
    column, a 5 in a REAL one)."""
    if data_type == "bigint":
        return lambda value: int(value) if isinstance(value, float) and value.is_integer() else value
    if data_type == "double precision":
        return lambda value: float(value) if isinstance(value, int) else value
    return lambda value: value
