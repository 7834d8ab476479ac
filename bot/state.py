"""Small values the bot keeps across restarts: one row per key in `bot_state`, on either database."""

from __future__ import annotations

from bot.database import AnyDatabase

#: `updated_at` is the database's clock (PostgreSQL's `strftime` is translated, `bot.db_postgres`).
UPSERT = (
    "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, strftime('%s','now'))"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


async def read_state(db: AnyDatabase, key: str) -> str | None:
    row = await db.fetchone("SELECT value FROM bot_state WHERE key = ?", (key,))
    return None if row is None else row["value"]


async def write_state(db: AnyDatabase, key: str, value: str) -> None:
    await db.execute(UPSERT, (key, value))
