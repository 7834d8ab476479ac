"""The connection a `transaction()` yields, on either backend, shaped like aiosqlite's.

The store and the quotas write `await conn.execute(sql, params)` or `async with conn.execute(…) as
cursor`, then read `cursor.fetchone()`, `fetchall()`, `rowcount` and `lastrowid`; these classes give
them that shape over a statement already run (SQLite on the loop) or still running (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator, Iterable
from typing import Any, Protocol


class Cursor:
    """One statement's outcome: its rows, `rowcount` (rows a write changed; -1 for a query) and
    `lastrowid` (the id an INSERT into a table with a generated id created, else 0)."""

    def __init__(self, rows: Iterable[Any], *, rowcount: int = -1, lastrowid: int = 0) -> None:
        self._rows = iter(rows)
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    async def fetchone(self) -> Any | None:
        return next(self._rows, None)

    async def fetchall(self) -> list[Any]:
        return list(self._rows)


class Execution:
    """`execute(...)` as aiosqlite shapes it: awaited for the cursor, or used as `async with … as cursor`."""

    def __init__(self, running: Awaitable[Cursor]) -> None:
        self._running = running

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self._running.__await__()

    async def __aenter__(self) -> Cursor:
        return await self._running

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class TransactionConnection(Protocol):
    """What a `transaction()` yields: aiosqlite's connection, or one of ours shaped like it."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


async def ready(cursor: Cursor) -> Cursor:
    """A statement that has already run, as something to await."""
    return cursor
