"""Which database the bot uses: PostgreSQL when DATABASE_URL is set (several processes), else SQLite."""

from __future__ import annotations

from bot.db import Database
from bot.db_postgres import PostgresDatabase, describe_url
from bot.settings import Settings

#: Either backend: the same methods (`transaction`, `execute`, `fetchone`, `fetchall`, `migrate`, `close`).
AnyDatabase = Database | PostgresDatabase


async def open_database(settings: Settings) -> AnyDatabase:
    """Open the configured database and apply its pending migrations.

    Raises `DatabaseUnavailable` (a plain reason, never the password) when PostgreSQL cannot be used, and
    `MigrationError` when a migration fails; the database is closed again in both cases.
    """
    database: AnyDatabase
    if settings.database_url is not None:
        database = await PostgresDatabase.open(settings.database_url.get_secret_value().strip())
    else:
        database = await Database.open(settings.database_path)
    try:
        await database.migrate()
    except BaseException:
        await database.close()
        raise
    return database


def describe_database(settings: Settings) -> str:
    """Where the data lives, for logs: the SQLite file, or PostgreSQL's user@host:port/database."""
    if settings.database_url is not None:
        return f"PostgreSQL {describe_url(settings.database_url.get_secret_value().strip())}"
    return f"SQLite {settings.database_path}"
