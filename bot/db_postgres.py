"""PostgreSQL (`DATABASE_URL`) behind the interface of `bot.db.Database`, for several processes at once.

The store and the quotas write SQLite's SQL and read rows by name; `translate` turns that SQL into
PostgreSQL's, and `transaction()` yields a connection shaped like aiosqlite's, so they run unchanged.

Writes are race-proof across processes the way SQLite makes them across connections: every
`transaction()` first takes one transaction-scoped advisory lock, so write transactions run one at a
time in the whole database, like SQLite's BEGIN IMMEDIATE. `Quotas.reserve` reads every window and
inserts the reservation inside one such transaction, so two processes can never both take the last
dollar, with no change to its SQL and no serialization failures to retry. (SERIALIZABLE would need a
retry, and an `async with` block cannot be re-run by its context manager: every caller would have to
pass its body as a function.) Reads outside a transaction (`fetchone`, `fetchall`) take no lock; a lock
wait is bounded by `lock_timeout`, as SQLite's by its busy timeout.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from bot.db import MIGRATIONS_DIR, DatabaseUnavailable, MigrationError, migration_files
from bot.db_cursor import Cursor, Execution

log = logging.getLogger(__name__)

POSTGRES_MIGRATIONS_DIR = MIGRATIONS_DIR / "postgres"
CONNECT_TIMEOUT_SECONDS = 10
SERVER_SETTINGS = {"application_name": "soracord", "lock_timeout": "10s"}
# Advisory lock keys (advisory locks are per database): one writer at a time; one migrator at a time.
WRITE_LOCK = int.from_bytes(b"soracord", "big")
MIGRATION_LOCK = WRITE_LOCK + 1

Params = Iterable[Any] | Mapping[str, Any]

# What translate() rewrites, in one pass; quoted text, comments and `::` casts are copied as they are.
_TOKENS = re.compile(
    r"""(?P<now>strftime\(\s*'%s'\s*,\s*'now'\s*\))
      | (?P<verbatim>'(?:[^']|'')*' | "(?:[^"]|"")*" | --[^\n]* | /\*.*?\*/ | ::)
      | \?(?P<number>\d+)?
      | :(?P<name>[A-Za-z_]\w*)""",
    re.VERBOSE | re.IGNORECASE | re.DOTALL,
)
_INSERT_INTO = re.compile(r"\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


class Result(Enum):
    """What running a statement gives the cursor."""

    ROWS = "rows"  # a query (or a write with its own RETURNING): its rows; rowcount -1, as in SQLite
    COUNT = "count"  # a write: no rows; rowcount from the command's status ("UPDATE 3")
    NEW_ID = "new id"  # an INSERT given `RETURNING id`: no rows; lastrowid and rowcount from its ids


class Translated(NamedTuple):
    sql: str
    args: list[Any]
    result: Result


def translate(sql: str, params: Params = (), id_tables: frozenset[str] = frozenset()) -> Translated:
    """SQLite's SQL and parameters as asyncpg wants them.

    Parameters: `?` (numbered one more than the highest so far, as SQLite does), `?N`, and `:name` (with
    a mapping) become `$1, $2, …` in the order they first appear, and only the ones the statement uses
    are passed: SQLite ignores a parameter the SQL never mentions, PostgreSQL cannot type it. As in
    SQLite, a sequence must hold exactly as many values as the highest number used.
    `strftime('%s','now')` becomes `extract(epoch from now())::bigint`. An INSERT into one of `id_tables`
    (tables with a generated `id`) without a RETURNING of its own gets `RETURNING id`: that is how the
    cursor knows its `lastrowid`. Other writes report how many rows they changed (`rowcount`).
    """
    named = isinstance(params, Mapping)
    used: dict[str | int, int] = {}  # SQLite's parameter (name or number) → its $n, by first use
    highest = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal highest
        if match["now"]:
            return "extract(epoch from now())::bigint"
        if match["verbatim"]:
            return match["verbatim"]
        key: str | int
        if match["name"]:
            if not named:
                raise ValueError(f"the parameter :{match['name']} needs the parameters as a mapping")
            key = match["name"]
        else:
            if named:
                raise ValueError("? parameters need a sequence of parameters, not a mapping")
            key = int(match["number"]) if match["number"] else highest + 1
            highest = max(highest, key)
        return f"${used.setdefault(key, len(used) + 1)}"

    text = _TOKENS.sub(replace, sql)
    if isinstance(params, Mapping):
        args = [params[name] for name in used]
    else:
        values = list(params)
        if len(values) != highest:
            raise ValueError(f"the statement takes {highest} parameters, not {len(values)}")
        args = [values[number - 1] for number in used]  # type: ignore[index]
    if not _WRITE.match(text) or _RETURNING.search(text):
        return Translated(text, args, Result.ROWS)
    insert = _INSERT_INTO.match(text)
    if insert and insert[1].lower() in id_tables:
        return Translated(text.rstrip().rstrip(";") + " RETURNING id", args, Result.NEW_ID)
    return Translated(text, args, Result.COUNT)


class Connection:
    """The connection `transaction()` yields: `execute(sql, params)` as on aiosqlite's."""

    def __init__(self, connection: asyncpg.Connection, id_tables: frozenset[str]) -> None:
        self._conn = connection
        self._id_tables = id_tables

    def execute(self, sql: str, params: Params = ()) -> Execution:
        return Execution(_run(self._conn, translate(sql, params, self._id_tables)))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """One write for many parameter sets, as on aiosqlite's (asyncpg pipelines them); no rows back."""
        statements = [translate(sql, params) for params in rows]  # no `RETURNING id`: nothing is read
        if statements:
            await self._conn.executemany(statements[0].sql, [statement.args for statement in statements])


async def _run(target: asyncpg.Pool | asyncpg.Connection, statement: Translated) -> Cursor:
    if statement.result is Result.COUNT:
        status = await target.execute(statement.sql, *statement.args)  # e.g. "INSERT 0 1", "UPDATE 3"
        return Cursor([], rowcount=int(status.rsplit(" ", 1)[-1]))
    rows = await target.fetch(statement.sql, *statement.args)
    if statement.result is Result.NEW_ID:
        return Cursor([], rowcount=len(rows), lastrowid=rows[-1]["id"] if rows else 0)
    return Cursor(rows)


def _number(text: str) -> int | float:
    """`numeric` values, which only come from SUM over integers here, as SQLite gives them: ints."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


async def _prepare(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "numeric", encoder=str, decoder=_number, schema="pg_catalog", format="text"
    )


class PostgresDatabase:
    """A connection pool shared by the bot; the same methods as `bot.db.Database`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._id_tables: frozenset[str] = frozenset()

    @classmethod
    async def open(cls, url: str, *, max_connections: int = 10) -> PostgresDatabase:
        """Connect (raises `DatabaseUnavailable` with a plain reason for a bad URL or server)."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=max_connections,
                init=_prepare,
                timeout=CONNECT_TIMEOUT_SECONDS,
                server_settings=SERVER_SETTINGS,
            )
        except Exception as exc:  # a bad URL, DNS, refused, timed out, refused by the server: all one thing
            raise DatabaseUnavailable(_unreachable(url, exc)) from None
        database = cls(pool)
        await database._load_id_tables()
        return database

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """BEGIN … COMMIT holding the write lock; rolled back on any exception (cancellation included).

        As with SQLite's, never open one inside another: the inner one waits for the outer's lock.
        """
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            yield Connection(connection, self._id_tables)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in its own transaction; returns the new row's id (0 if the table has none)."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.lastrowid

    async def write_returning(self, sql: str, params: Params = ()) -> list[asyncpg.Record]:
        """One write with RETURNING, a transaction of its own, outside the write lock: for statements
        that change one row by its key (a job's state, a lease), which row locks order well enough."""
        return await self.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> asyncpg.Record | None:
        cursor = await _run(self._pool, translate(sql, params, self._id_tables))
        return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[asyncpg.Record]:
        cursor = await _run(self._pool, translate(sql, params, self._id_tables))
        return await cursor.fetchall()

    async def migrate(self, directory: Path = POSTGRES_MIGRATIONS_DIR) -> list[str]:
        """Apply `NNNN_*.sql` files not yet in `schema_version`, in order, each in its own transaction.

        A session advisory lock makes processes that start together take turns: the first applies the
        files, the others then find them recorded.
        """
        scripts = _read_migrations(directory)
        done = []
        async with self._pool.acquire() as connection:
            await connection.execute("SET lock_timeout = 0")  # wait for another process's migrations
            await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await connection.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
                )
                applied = {
                    row["version"] for row in await connection.fetch("SELECT version FROM schema_version")
                }
                for version, name, script in scripts:
                    if version not in applied:
                        await _apply(connection, version, name, script)
                        done.append(name)
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        await self._load_id_tables()
        return done

    async def _load_id_tables(self) -> None:
        rows = await self._pool.fetch(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'"
        )
        self._id_tables = frozenset(row["table_name"] for row in rows)


def _read_migrations(directory: Path) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of each migration file, in order."""
    return [
        (version, path.name, path.read_text(encoding="utf-8")) for version, path in migration_files(directory)
    ]


async def _apply(connection: asyncpg.Connection, version: int, name: str, script: str) -> None:
    try:
        async with connection.transaction():
            await connection.execute(script)  # without parameters, asyncpg runs a whole script
            await connection.execute(
                "INSERT INTO schema_version (version, name, applied_at)"
                " VALUES ($1, $2, extract(epoch from now())::bigint)",
                version,
                name,
            )
    except Exception as exc:
        raise MigrationError(name, exc) from exc
    log.info("Applied migration %s", name)


def _unreachable(url: str, exc: Exception) -> str:
    """Why `url` cannot be used, naming the user, host and database but never a password."""
    reason = str(exc).strip() or type(exc).__name__
    return _blot(url, f"Cannot use the PostgreSQL database at {describe_url(url)}: {reason}")


def _blot(url: str, message: str) -> str:
    """`message` with every password of `url` replaced (a misplaced one can look like a port)."""
    for secret in _secrets(url):
        message = message.replace(secret, "***")
    return message


def _secrets(url: str) -> set[str]:
    """Every password the URL (or the environment asyncpg also reads) holds, as written and decoded."""
    found = {os.environ.get("PGPASSWORD", "")}
    authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]  # as urlsplit, but never raises
    found.add(authority.rpartition("@")[0].partition(":")[2])
    found.update(parse_qs(url.partition("?")[2]).get("password", []))
    return {form for secret in found if secret for form in (secret, unquote(secret))}


def describe_url(url: str) -> str:
    """user@host:port/database for messages and logs: never the password, nor the query (which may hold
    one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the given URL (malformed)"
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    where = f"{user}@{hostport}" if user else hostport
    return _blot(url, f"{where}{parts.path}") or "an empty URL"
