"""`python -m bot migrate-to-postgres`: a SQLite database written by the bot's own code, copied into an
empty PostgreSQL database and read back through `PostgresDatabase`; a target that holds data refused."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from bot.catalogue import ModelSpec, load_provider_models, save_provider_models
from bot.db import Database
from bot.db_postgres import PostgresDatabase
from bot.jobs.leases import LeasedJobStore, Leases
from bot.jobs.models import Job, JobStatus
from bot.jobs.store import JobStore, NewJob
from bot.migrate_to_postgres import NOT_COPIED, TABLES
from bot.quotas import Quotas
from tests.test_quotas import ALICE, BOB, DEFAULTS, GUILD, Clock, at

pytest_plugins = ("tests.pg",)
ROOT = Path(__file__).resolve().parent.parent
NOW = at(2026, 3, 10, 12, 0)
KEYS = {
    "jobs": "id",
    "ledger": "id",
    "guild_settings": "guild_id",
    "bot_state": "key",
    "provider_models": "family",
}


def new_job(prompt: str, **changes: Any) -> NewJob:
    return NewJob(
        guild_id=GUILD,
        channel_id=2,
        member_id=ALICE,
        application_id=3,
        interaction_token="token",
        token_expires_at=NOW + 900.0,
        upload_limit=10_485_760,
        model="wan",
        size="1280x720",
        seconds=5,
        prompt=prompt,
        **changes,
    )


async def fill(path: Path) -> dict[str, int]:
    """A SQLite database as the bot leaves it: jobs in several states (a remix among them, an id gap),
    their ledger, a server's limits, bot state and a saved model list. Returns the jobs' ids by name."""
    db = await Database.open(path)
    try:
        await db.migrate()
        quotas = Quotas(db, DEFAULTS, clock=Clock(NOW))
        store = LeasedJobStore(db, quotas, Leases(db, seconds=30), clock=lambda: NOW + 0.25)
        await quotas.set_limits(GUILD, by=BOB, guild_daily=2_000_000, guild_monthly=None, max_concurrent=5)
        posted = await store.reserve(await store.create(new_job("a cat")), 400_000)
        for before, after in (
            (JobStatus.RESERVED, JobStatus.SUBMITTING),
            (JobStatus.SUBMITTING, JobStatus.SUBMITTED),
            (JobStatus.SUBMITTED, JobStatus.COMPLETED),
            (JobStatus.COMPLETED, JobStatus.POSTING),
        ):
            await store.transition(
                posted.id, before, after, provider_video_id="video-1", actual_cost_micros=350_000
            )
        await store.mark_posted(posted.id, 555)
        gone = await store.create(new_job("withdrawn"))
        await db.execute("DELETE FROM jobs WHERE id = ?", (gone.id,))  # leaves a gap in the ids
        failed = await store.fail(
            (await store.reserve(await store.create(new_job("a dog")), 300_000)).id, "no"
        )
        remix = await store.reserve(
            await store.create(new_job("the cat, at night", remixed_from=posted.id)), 400_000
        )
        received = await store.create(new_job("still being checked", audio=True))
        await db.execute(
            "INSERT INTO bot_state (key, value, updated_at) VALUES ('command_tree:1:global', 'abc', 17)"
        )
        wan = ModelSpec("wan", "Wan", (5,), ("1280x720",), micros_per_second={"default": 50_000})
        await save_provider_models(db, "openrouter", [wan], fetched_at=NOW)
    finally:
        await db.close()
    return {"posted": posted.id, "failed": failed.id, "remix": remix.id, "received": received.id}


async def run_command(tmp_path: Path, **env: str) -> tuple[int, str, str]:
    """`python -m bot migrate-to-postgres` with only `env` (and the two required settings)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "OPENAI_", "VIDEO_", "DATABASE_"))
    }
    clean |= {"PYTHONPATH": str(ROOT), "DISCORD_TOKEN": "token", "VIDEO_API_KEY": "key", **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "migrate-to-postgres",
        cwd=tmp_path,
        env=clean,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def rows(db: Database | PostgresDatabase, table: str) -> list[dict[str, Any]]:
    found = await db.fetchall(f"SELECT * FROM {table} ORDER BY {KEYS[table]}")
    return [{name: row[name] for name in row.keys() if name not in NOT_COPIED} for row in found]


async def every_table(db: Database | PostgresDatabase) -> dict[str, list[dict[str, Any]]]:
    return {table: await rows(db, table) for table in TABLES}


async def test_a_sqlite_database_is_copied_with_its_ids_and_read_back(
    tmp_path: Path, postgres_url: str
) -> None:
    sqlite_path = tmp_path / "data" / "soracord.sqlite3"
    sqlite_path.parent.mkdir()
    ids = await fill(sqlite_path)
    password = postgres_url.rpartition("@")[0].rpartition(":")[2]

    code, out, err = await run_command(tmp_path, DATABASE_PATH=str(sqlite_path), DATABASE_URL=postgres_url)

    assert (code, err) == (0, ""), err
    database = postgres_url.rpartition("@")[2]
    assert out.splitlines() == [
        f"Copied SQLite {sqlite_path} to PostgreSQL soracord@{database}: "
        "guild_settings 1, bot_state 1, provider_models 1, jobs 4, ledger 5."
    ]
    assert password not in out
    lite = await Database.open(sqlite_path)
    pg = await PostgresDatabase.open(postgres_url)
    try:
        before = await every_table(lite)
        after = await every_table(pg)
        assert after == before
        assert [row["id"] for row in after["jobs"]] == sorted(ids.values()) == [1, 3, 4, 5]
        assert {row["lease_owner"] for row in await lite.fetchall("SELECT lease_owner FROM jobs")} == {
            "local"
        }
        assert {row["lease_owner"] for row in await pg.fetchall("SELECT lease_owner FROM jobs")} == {None}

        stores = [
            JobStore(db, Quotas(db, DEFAULTS, clock=Clock(NOW)), clock=lambda: NOW + 1) for db in (lite, pg)
        ]  # type: ignore[arg-type]
        for job_id in ids.values():
            assert await stores[1].require(job_id) == await stores[0].require(job_id)
        remix: Job = await stores[1].require(ids["remix"])
        assert remix.remixed_from == ids["posted"] and remix.status is JobStatus.RESERVED
        statuses = [await store.quotas.status(GUILD, ALICE) for store in stores]
        assert statuses[1] == statuses[0]
        assert statuses[1].guild_today.spent == 750_000  # the charge at the actual cost, the open remix
        assert [job.id for job in await stores[1].unfinished()] == [ids["remix"], ids["received"]]
        saved = await load_provider_models(pg, "openrouter")  # type: ignore[arg-type]
        assert saved is not None and [model.id for model in saved.specs] == ["wan"]

        new = await stores[1].create(new_job("the first job on PostgreSQL"))
        assert new.id == max(ids.values()) + 1  # the identity sequence continues after the copied ids
        ledger_id = await pg.execute(
            "INSERT INTO ledger (job_id, guild_id, member_id, kind, amount_micros, window_at, created_at)"
            " VALUES (?, ?, ?, 'reserve', 1, 0, 0)",
            (new.id, GUILD, ALICE),
        )
        assert ledger_id == 6
    finally:
        await lite.close()
        await pg.close()


async def test_a_target_that_holds_data_is_refused_and_left_as_it_was(
    tmp_path: Path, postgres_url: str
) -> None:
    sqlite_path = tmp_path / "soracord.sqlite3"
    await fill(sqlite_path)
    env = {"DATABASE_PATH": str(sqlite_path), "DATABASE_URL": postgres_url}
    assert (await run_command(tmp_path, **env))[0] == 0
    pg = await PostgresDatabase.open(postgres_url)
    try:
        copied = await every_table(pg)
        code, out, err = await run_command(tmp_path, **env)
        assert await every_table(pg) == copied
    finally:
        await pg.close()
    assert (code, out) == (2, "")
    database = postgres_url.rpartition("@")[2]
    assert err.splitlines() == [
        f"The PostgreSQL database at soracord@{database} already holds data (guild_settings 1, bot_state 1, "
        "provider_models 1, jobs 4, ledger 5); migrate-to-postgres copies only into an empty database."
    ]


async def test_without_a_source_or_a_target_nothing_happens(tmp_path: Path, postgres_url: str) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    code, out, err = await run_command(tmp_path, DATABASE_PATH=str(missing), DATABASE_URL=postgres_url)
    assert (code, out, err.splitlines()) == (
        2,
        "",
        [f"There is no SQLite database at {missing} (DATABASE_PATH): nothing to copy."],
    )
    assert not missing.exists()
    code, out, err = await run_command(tmp_path, DATABASE_PATH=str(missing))
    assert (code, out) == (2, "")
    assert err.startswith("DATABASE_URL is not set") and len(err.splitlines()) == 1
