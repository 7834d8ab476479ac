"""The PostgreSQL backend against a real server: translation, rows, migrations, the ledger's rules,
budgets that stay race-proof across two connection pools, and job leases (on SQLite too)."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from bot.db import MIGRATIONS_DIR, Database, MigrationError, migration_files
from bot.db_postgres import POSTGRES_MIGRATIONS_DIR, DatabaseUnavailable, PostgresDatabase, Result, translate
from bot.jobs.leases import Adopted, Leases
from bot.jobs.models import JobStatus
from bot.jobs.store import JobStore, NewJob
from bot.quotas import LedgerError, Limits, QuotaExceeded, Quotas
from bot.state import read_state, write_state
from tests.test_quotas import ALICE, BOB, DEFAULTS, GUILD, Clock, accept, add_job, at, ledger, settle

if TYPE_CHECKING:
    from tests.pg import PostgresServer

pytest_plugins = ("tests.pg", "pytester")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[PostgresDatabase]:
    database = await PostgresDatabase.open(postgres_url)
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def quotas(pg: PostgresDatabase) -> Quotas:
    return Quotas(pg, DEFAULTS, clock=Clock(at(2026, 3, 10, 12, 0)))  # type: ignore[arg-type]


# --- translation (no server) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "params", "expected", "args"),
    [
        (
            "SELECT * FROM jobs WHERE id = ? AND guild_id = ?",
            (7, 8),
            "SELECT * FROM jobs WHERE id = $1 AND guild_id = $2",
            [7, 8],
        ),
        ("SELECT ?2, ?1, ?1", ("a", "b"), "SELECT $1, $2, $2", ["b", "a"]),
        ("SELECT ?3, ?, ?1", (1, 2, 3, 4), "SELECT $1, $2, $3", [3, 4, 1]),  # SQLite: ? = highest + 1
        ("WHERE a = ?1 AND b >= ?4", (1, 2, 3, 4), "WHERE a = $1 AND b >= $2", [1, 4]),  # unused: left out
        ("VALUES (:b, :a, :b)", {"a": 1, "b": 2, "unused": 3}, "VALUES ($1, $2, $1)", [2, 1]),
        (
            "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, strftime('%s','now'))",
            ("k", "v"),
            "INSERT INTO bot_state (key, value, updated_at)"
            " VALUES ($1, $2, extract(epoch from now())::bigint)",
            ["k", "v"],
        ),
        ("SELECT STRFTIME( '%s' , 'now' )", (), "SELECT extract(epoch from now())::bigint", []),
        (
            "SELECT '?', 'it''s :x ?1', \"odd?\", x::text -- why? :y\nFROM t WHERE a = ?",
            (5,),
            "SELECT '?', 'it''s :x ?1', \"odd?\", x::text -- why? :y\nFROM t WHERE a = $1",
            [5],
        ),
        ("SELECT 1 /* ? :z */ + ?", (1,), "SELECT 1 /* ? :z */ + $1", [1]),
    ],
)
def test_translate_parameters_and_functions(
    sql: str, params: object, expected: str, args: list[object]
) -> None:
    translated = translate(sql, params)  # type: ignore[arg-type]
    assert (translated.sql, translated.args) == (expected, args)


def test_translate_dict_values_as_parameters() -> None:
    values = {"guild_id": 1, "status": "received"}
    assert translate("INSERT INTO x (a, b) VALUES (?, ?)", values.values()).args == [1, "received"]


@pytest.mark.parametrize(
    ("sql", "expected", "result"),
    [
        ("INSERT INTO jobs (a) VALUES (?)", "INSERT INTO jobs (a) VALUES ($1) RETURNING id", Result.NEW_ID),
        (
            "  insert into Ledger (a) values (?);\n",
            "  insert into Ledger (a) values ($1) RETURNING id",
            Result.NEW_ID,
        ),
        ("INSERT INTO bot_state (a) VALUES (?)", "INSERT INTO bot_state (a) VALUES ($1)", Result.COUNT),
        (
            "INSERT INTO jobs (a) VALUES (?) RETURNING a",
            "INSERT INTO jobs (a) VALUES ($1) RETURNING a",
            Result.ROWS,
        ),
        ("UPDATE jobs SET a = ?", "UPDATE jobs SET a = $1", Result.COUNT),
        ("DELETE FROM jobs WHERE a = ?", "DELETE FROM jobs WHERE a = $1", Result.COUNT),
        ("SELECT id FROM jobs WHERE a = ?", "SELECT id FROM jobs WHERE a = $1", Result.ROWS),
    ],
)
def test_translate_knows_what_a_statement_gives_back(sql: str, expected: str, result: Result) -> None:
    translated = translate(sql, (1,), frozenset({"jobs", "ledger"}))
    assert (translated.sql, translated.result) == (expected, result)


def test_translate_refuses_mixed_parameter_styles() -> None:
    with pytest.raises(ValueError, match="needs the parameters as a mapping"):
        translate("SELECT :a", (1,))
    with pytest.raises(ValueError, match="not a mapping"):
        translate("SELECT ?", {"a": 1})
    with pytest.raises(ValueError, match="takes 2 parameters, not 3"):
        translate("SELECT ?, ?", (1, 2, 3))


# --- rows, cursors, transactions ---------------------------------------------------------------


async def test_rows_cursors_and_lastrowid(pg: PostgresDatabase) -> None:
    first = await add_job(pg, GUILD, ALICE)  # type: ignore[arg-type]
    second = await add_job(pg, GUILD, BOB, "reserved")  # type: ignore[arg-type]
    assert (first, second) == (1, 2)
    assert await pg.execute("INSERT INTO bot_state (key, value, updated_at) VALUES ('k', 'v', 0)") == 0
    row = await pg.fetchone("SELECT id, member_id, status FROM jobs WHERE id = ?", (second,))
    assert row is not None and (row["id"], row["member_id"], row["status"]) == (2, BOB, "reserved")
    assert dict(row) == {"id": 2, "member_id": BOB, "status": "reserved"}
    assert await pg.fetchone("SELECT id FROM jobs WHERE id = ?", (99,)) is None
    assert [row["id"] for row in await pg.fetchall("SELECT id FROM jobs ORDER BY id DESC")] == [2, 1]
    async with pg.transaction() as conn:
        cursor = await conn.execute("SELECT id FROM jobs ORDER BY id")
        assert (await cursor.fetchone())["id"] == 1  # type: ignore[index]
        assert [row["id"] for row in await cursor.fetchall()] == [2]
        assert await cursor.fetchone() is None
        async with conn.execute("SELECT COUNT(*), SUM(member_id) AS total FROM jobs") as counted:
            (count, total) = await counted.fetchone()  # type: ignore[misc]
        assert (count, total) == (2, ALICE + BOB) and type(total) is int  # SUM gives numeric: read as int
        inserted = await conn.execute(
            "INSERT INTO ledger (job_id, guild_id, member_id, kind, amount_micros, window_at, created_at)"
            " VALUES (?1, ?2, ?3, 'reserve', 5, 0, 0)",
            (first, GUILD, ALICE),
        )
        assert (inserted.lastrowid, inserted.rowcount, await inserted.fetchall()) == (1, 1, [])
        updated = await conn.execute("UPDATE jobs SET progress = 5 WHERE guild_id = ?", (GUILD,))
        assert (updated.rowcount, updated.lastrowid, await updated.fetchone()) == (2, 0, None)
        nothing = await conn.execute("UPDATE jobs SET progress = 5 WHERE id = ?", (99,))
        keyed = await conn.execute("INSERT INTO bot_state (key, value, updated_at) VALUES ('x', 'y', 0)")
        assert (nothing.rowcount, keyed.rowcount, keyed.lastrowid, counted.rowcount) == (0, 1, 0, -1)


async def test_the_bot_state_upsert_of_the_app(pg: PostgresDatabase) -> None:
    await write_state(pg, "tree", "one")
    await write_state(pg, "tree", "two")
    assert await read_state(pg, "tree") == "two" and await read_state(pg, "other") is None
    rows = await pg.fetchall("SELECT value, updated_at FROM bot_state")
    now = await pg.fetchone("SELECT strftime('%s','now') AS now")
    assert [row["value"] for row in rows] == ["two"]
    assert now is not None and 0 < rows[0]["updated_at"] <= now["now"]


async def test_a_failed_transaction_is_rolled_back(pg: PostgresDatabase) -> None:
    job = await add_job(pg, GUILD, ALICE)  # type: ignore[arg-type]
    with pytest.raises(asyncpg.CheckViolationError):
        async with pg.transaction() as conn:
            await conn.execute("INSERT INTO bot_state (key, value, updated_at) VALUES ('a', 'b', 0)")
            await conn.execute("UPDATE jobs SET cost_micros = -1 WHERE id = ?", (job,))
    assert await pg.fetchall("SELECT key FROM bot_state") == []
    assert await pg.execute("INSERT INTO bot_state (key, value, updated_at) VALUES ('a', 'b', 0)") == 0


async def test_a_transaction_cancelled_midway_is_rolled_back(pg: PostgresDatabase) -> None:
    inside = asyncio.Event()

    async def interrupted() -> None:
        async with pg.transaction() as conn:
            await conn.execute("INSERT INTO bot_state (key, value, updated_at) VALUES ('a', 'b', 0)")
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(interrupted())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await pg.execute("INSERT INTO bot_state (key, value, updated_at) VALUES ('c', 'd', 0)")
    assert [row["key"] for row in await pg.fetchall("SELECT key FROM bot_state")] == ["c"]


# --- connecting ---------------------------------------------------------------------------------


async def test_a_bad_url_or_server_is_one_plain_error_without_the_password(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    wrong = "s3cr3t-pa55"
    server = f"{postgres_server.host}:{postgres_server.port}"
    database = postgres_url.rsplit("/", 1)[1]
    with socket_closed() as port:
        cases = [
            (f"postgresql://soracord:{wrong}@{server}/{database}", wrong, "password authentication failed"),
            (f"postgresql://soracord@{server}/{database}?password={wrong}", wrong, "password authentication"),
            (postgres_server.url("missing"), postgres_server.password, 'database "missing" does not exist'),
            (
                postgres_url.replace(server, f"127.0.0.1:{port}"),
                postgres_server.password,
                f"127.0.0.1:{port}",
            ),
            (f"mysql://soracord:{wrong}@{server}/{database}", wrong, "scheme"),
            # The parser quotes the bad port, which here is the password: it is blotted out.
            (f"postgresql://soracord:{wrong}@{postgres_server.host}:{wrong}/{database}", wrong, "'***'"),
            ("postgresql://soracord:p%40ss%3Aw%C3%B6rd@[::1/db", "p@ss:wörd", "(malformed)"),
        ]
        for url, secret, hint in cases:
            with pytest.raises(DatabaseUnavailable) as raised:
                await PostgresDatabase.open(url)
            message = str(raised.value)
            assert secret not in message and hint in message, (url, message)
            assert message.startswith("Cannot use the PostgreSQL database at ")
            assert raised.value.__cause__ is None and raised.value.__suppress_context__


@contextmanager
def socket_closed() -> Iterator[int]:
    """A local port that refuses connections: bound, so nothing else takes it, but not listening."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def test_a_server_that_cannot_start_fails_the_test_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without PostgreSQL's programs a test that needs the server errors out, saying why: never a skip."""
    pytester.makepyfile(
        """
        import tests.pg

        tests.pg.DEBIAN_BINDIRS = "/nonexistent/*/bin"
        pytest_plugins = ("tests.pg",)

        def test_needs_a_server(postgres_server):
            pass
        """
    )
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # Python, but no initdb or pg_ctl
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*PostgreSQL test server unavailable*run scripts/postgres-for-tests.sh*"])


# --- migrations -------------------------------------------------------------------------------


async def test_migrations_apply_once_even_when_two_processes_start_together(postgres_url: str) -> None:
    first, second = await PostgresDatabase.open(postgres_url), await PostgresDatabase.open(postgres_url)
    try:
        applied = await asyncio.gather(first.migrate(), second.migrate())
        again = await first.migrate()
        versions = await first.fetchall("SELECT version, name FROM schema_version ORDER BY version")
    finally:
        await first.close()
        await second.close()
    expected = [path.name for _, path in migration_files(POSTGRES_MIGRATIONS_DIR)]
    assert sorted(applied, key=len) == [[], expected]
    assert again == []
    assert [(row["version"], row["name"]) for row in versions] == [(int(n[:4]), n) for n in expected]


async def test_a_failed_migration_rolls_back_and_names_the_file(postgres_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE a (x BIGINT);\n")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE b (x BIGINT);\nINSERT INTO missing VALUES (1);\n")
    db = await PostgresDatabase.open(postgres_url, max_connections=1)  # the migrating connection is reused
    try:
        with pytest.raises(MigrationError) as raised:
            await db.migrate(tmp_path)
        lock_timeout = await db.fetchone("SHOW lock_timeout")  # migrating waits unbounded; later work not
        assert lock_timeout is not None and lock_timeout["lock_timeout"] == "10s"
        assert raised.value.filename == "0002_bad.sql"
        tables = await db.fetchall("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        assert {row["tablename"] for row in tables} == {"a", "schema_version"}
        (tmp_path / "0002_bad.sql").write_text("CREATE TABLE b (x BIGINT);\n")
        assert await db.migrate(tmp_path) == ["0002_bad.sql"]
    finally:
        await db.close()


POSTGRES_TYPES = {"INTEGER": "bigint", "TEXT": "text", "REAL": "double precision"}


async def test_the_postgres_migrations_mirror_the_sqlite_ones(pg: PostgresDatabase, tmp_path: Path) -> None:
    names = [path.name for _, path in migration_files(MIGRATIONS_DIR)]
    assert [path.name for _, path in migration_files(POSTGRES_MIGRATIONS_DIR)] == names
    lite = await Database.open(tmp_path / "mirror.sqlite3")
    try:
        await lite.migrate()
        tables = [
            row["name"]
            for row in await lite.fetchall(
                "SELECT name FROM sqlite_master"
                " WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        sqlite_columns = {
            table: [
                (row["name"], POSTGRES_TYPES[row["type"]], bool(row["notnull"] or row["pk"]))
                for row in await lite.fetchall(f"PRAGMA table_info({table})")
            ]
            for table in tables
        }
        sqlite_indexes = {
            row["name"]
            for row in await lite.fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
        sqlite_triggers = {
            row["name"]
            for row in await lite.fetchall("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
    finally:
        await lite.close()
    rows = await pg.fetchall(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    )
    postgres_columns: dict[str, list[tuple[str, str, bool]]] = {}
    for row in rows:
        postgres_columns.setdefault(row["table_name"], []).append(
            (row["column_name"], row["data_type"], row["is_nullable"] == "NO")
        )
    assert postgres_columns == sqlite_columns
    indexes = await pg.fetchall("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    assert sqlite_indexes <= {row["indexname"] for row in indexes}
    triggers = await pg.fetchall("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    assert sqlite_triggers <= {row["tgname"] for row in triggers}


async def test_jobs_written_before_the_reliability_migration_get_a_nonce_each(
    postgres_url: str, tmp_path: Path
) -> None:
    for _, path in migration_files(POSTGRES_MIGRATIONS_DIR)[:2]:
        shutil.copy(path, tmp_path)
    db = await PostgresDatabase.open(postgres_url)
    try:
        await db.migrate(tmp_path)
        old = [await add_job(db, GUILD, ALICE) for _ in range(2)]  # type: ignore[arg-type]
        for _, path in migration_files(POSTGRES_MIGRATIONS_DIR):
            shutil.copy(path, tmp_path)
        assert "0003_reliability.sql" in await db.migrate(tmp_path)
        new = await add_job(db, GUILD, ALICE, "queued")  # type: ignore[arg-type]
        rows = await db.fetchall("SELECT id, nonce, alive_at, created_at FROM jobs ORDER BY id")
    finally:
        await db.close()
    assert [row["id"] for row in rows] == [*old, new]
    assert len({row["nonce"] for row in rows}) == 3
    assert all(re.fullmatch(r"[0-9a-f]{20}", row["nonce"]) for row in rows)
    assert [row["alive_at"] for row in rows] == [row["created_at"] for row in rows[:2]] + [None]


# --- the ledger's rules in the database ------------------------------------------------------------


async def test_the_ledger_is_append_only(pg: PostgresDatabase, quotas: Quotas) -> None:
    job = await accept(pg, quotas, GUILD, ALICE, 100_000)  # type: ignore[arg-type]
    for statement, refusal in (
        ("UPDATE ledger SET amount_micros = 0", "never changed"),
        ("DELETE FROM ledger", "never deleted"),
        ("TRUNCATE ledger", "never deleted"),
    ):
        with pytest.raises(asyncpg.RaiseError, match=refusal):
            await pg.execute(statement)
    settle_sql = (
        "INSERT INTO ledger (job_id, guild_id, member_id, kind, amount_micros, window_at, created_at)"
        " VALUES (?, ?, ?, ?, 0, 0, 0)"
    )
    other = await add_job(pg, GUILD, ALICE)  # type: ignore[arg-type]
    with pytest.raises(asyncpg.RaiseError, match="needs the job's reservation"):
        await pg.execute(settle_sql, (other, GUILD, ALICE, "charge"))
    await pg.execute(settle_sql, (job, GUILD, ALICE, "charge"))
    with pytest.raises(asyncpg.RaiseError, match="charged or refunded, never both"):
        await pg.execute(settle_sql, (job, GUILD, ALICE, "refund"))
    with pytest.raises(asyncpg.UniqueViolationError):
        await pg.execute(settle_sql, (job, GUILD, ALICE, "reserve"))
    assert await ledger(pg) == [(job, "reserve", 100_000), (job, "charge", 0)]  # type: ignore[arg-type]


async def test_a_settlement_waits_for_another_transaction_settling_the_same_job(
    pg: PostgresDatabase, quotas: Quotas, postgres_url: str
) -> None:
    """Raw connections, without the adapter's write lock: the trigger itself makes them take turns."""
    job = await accept(pg, quotas, GUILD, ALICE, 100_000)  # type: ignore[arg-type]
    settle_sql = (
        "INSERT INTO ledger (job_id, guild_id, member_id, kind, amount_micros, window_at, created_at)"
        " VALUES ($1, $2, $3, $4, 0, 0, 0)"
    )
    charging, refunding = await asyncpg.connect(postgres_url), await asyncpg.connect(postgres_url)
    try:
        await refunding.execute("SET lock_timeout = '100ms'")
        async with charging.transaction():
            await charging.execute(settle_sql, job, GUILD, ALICE, "charge")
            # The charge is not committed, so the refund cannot see it: it must wait, not pass the check.
            with pytest.raises(asyncpg.LockNotAvailableError):
                await refunding.execute(settle_sql, job, GUILD, ALICE, "refund")
        with pytest.raises(asyncpg.RaiseError, match="never both"):
            await refunding.execute(settle_sql, job, GUILD, ALICE, "refund")
    finally:
        await charging.close()
        await refunding.close()
    assert [kind for _, kind, _ in await ledger(pg)] == ["reserve", "charge"]  # type: ignore[arg-type]


# --- the shared quota and job code, unchanged, on PostgreSQL --------------------------------------


async def test_quotas_run_unchanged(pg: PostgresDatabase, quotas: Quotas) -> None:
    await quotas.set_limits(GUILD, by=BOB, guild_daily=2_000_000, guild_monthly=None, max_concurrent=5)
    kept = await accept(pg, quotas, GUILD, ALICE, 400_000)  # type: ignore[arg-type]
    refunded = await accept(pg, quotas, GUILD, ALICE, 300_000)  # type: ignore[arg-type]
    await accept(pg, quotas, GUILD, BOB, 200_000)  # type: ignore[arg-type]
    assert await settle(pg, quotas, kept, "charge") is True  # type: ignore[arg-type]
    assert await settle(pg, quotas, refunded, "refund") is True  # type: ignore[arg-type]
    assert await settle(pg, quotas, refunded, "charge") is False  # type: ignore[arg-type]
    with pytest.raises(QuotaExceeded):
        await accept(pg, quotas, GUILD, ALICE, 700_000)  # type: ignore[arg-type]
    with pytest.raises(LedgerError):
        async with pg.transaction() as conn:
            await quotas.reserve(conn, job_id=kept, guild_id=GUILD, member_id=ALICE, amount=1)  # type: ignore[arg-type]

    status = await quotas.status(GUILD, ALICE)
    assert status.limits == Limits(2_000_000, None, DEFAULTS.member_daily, 5)
    assert (status.guild_today.spent, status.member_today.spent, status.in_flight) == (600_000, 400_000, 1)
    usage = await quotas.usage(GUILD)
    assert [(m.member_id, m.today, m.videos) for m in usage.members] == [
        (ALICE, 400_000, 1),
        (BOB, 200_000, 1),
    ]
    assert (usage.open_micros, usage.refunds, usage.refunded_micros) == (200_000, 1, 300_000)
    assert (await quotas.daily_spend(GUILD, days=2))[-1][1] == 600_000


async def test_charges_at_the_actual_cost_count_on_postgres(pg: PostgresDatabase, quotas: Quotas) -> None:
    cheaper = await accept(pg, quotas, GUILD, ALICE, 400_000)  # type: ignore[arg-type]
    dearer = await accept(pg, quotas, GUILD, BOB, 400_000)  # type: ignore[arg-type]
    refunded = await accept(pg, quotas, GUILD, ALICE, 300_000)  # type: ignore[arg-type]
    assert await settle(pg, quotas, cheaper, "charge", 250_000) is True  # type: ignore[arg-type]
    assert await settle(pg, quotas, dearer, "charge", 500_000) is True  # type: ignore[arg-type]
    assert await settle(pg, quotas, refunded, "refund") is True  # type: ignore[arg-type]
    await accept(pg, quotas, GUILD, BOB, 100_000)  # type: ignore[arg-type]  # still open

    status = await quotas.status(GUILD, ALICE)
    assert (status.guild_today.spent, status.member_today.spent) == (850_000, 250_000)
    usage = await quotas.usage(GUILD)
    assert [(m.member_id, m.today, m.month, m.videos) for m in usage.members] == [
        (BOB, 600_000, 600_000, 2),
        (ALICE, 250_000, 250_000, 1),
    ]
    assert (usage.open_micros, usage.refunds, usage.refunded_micros) == (100_000, 1, 300_000)
    assert (await quotas.daily_spend(GUILD, days=1))[0][1] == 850_000
    await accept(pg, quotas, GUILD, ALICE, 750_000)  # type: ignore[arg-type]  # fits next to $0.25, not $0.40
    with pytest.raises(QuotaExceeded):
        await accept(pg, quotas, GUILD, ALICE, 1)  # type: ignore[arg-type]


async def test_the_job_store_runs_unchanged(pg: PostgresDatabase, quotas: Quotas) -> None:
    store = JobStore(pg, quotas, clock=lambda: 1_700_000_000.5)  # type: ignore[arg-type]
    new = NewJob(
        guild_id=GUILD,
        channel_id=2,
        member_id=ALICE,
        application_id=3,
        interaction_token="token",
        token_expires_at=1_700_000_900.0,
        upload_limit=10_485_760,
        model="wan",
        size="1280x720",
        seconds=5,
        prompt="a cat",
    )
    job = await store.reserve(await store.create(new), 250_000, provider_video_id="video-1")
    assert (job.status.value, job.cost_micros, job.created_at) == ("reserved", 250_000, 1_700_000_000.5)
    assert await store.by_provider_video("video-1") == job
    assert (await store.update(job.id, progress=40)).progress == 40
    waiting = await store.create(new)
    assert [unfinished.id for unfinished in await store.unfinished()] == [job.id, waiting.id]
    failed = await store.fail(job.id, "provider refused")
    assert (failed.status.value, failed.error) == ("failed", "provider refused")
    assert [unfinished.id for unfinished in await store.unfinished()] == [waiting.id]
    assert [kind for _, kind, _ in await ledger(pg)] == ["reserve", "refund"]  # type: ignore[arg-type]


async def test_fifty_reservations_from_two_pools_take_exactly_what_fits(postgres_url: str) -> None:
    """Two pools (as two bot processes would have) race 50 reservations for a budget that fits 10."""
    cost = 100_000
    limits = Limits(guild_daily=10 * cost, guild_monthly=None, member_daily=50 * cost, max_concurrent=50)
    clock = Clock(at(2026, 3, 10, 12, 0))
    pools = [await PostgresDatabase.open(postgres_url) for _ in range(2)]
    try:
        await pools[0].migrate()
        sides = [Quotas(pool, limits, clock=clock) for pool in pools]  # type: ignore[arg-type]
        jobs = [await add_job(pools[0], GUILD, ALICE) for _ in range(50)]  # type: ignore[arg-type]

        async def request(index: int) -> bool:
            database, service = pools[index % 2], sides[index % 2]
            try:
                async with database.transaction() as conn:
                    await conn.execute("UPDATE jobs SET status = 'reserved' WHERE id = ?", (jobs[index],))
                    await service.reserve(
                        conn, job_id=jobs[index], guild_id=GUILD, member_id=ALICE, amount=cost
                    )
            except QuotaExceeded:
                return False
            return True

        accepted = await asyncio.gather(*(request(index) for index in range(50)))
        reserved = await pools[1].fetchall("SELECT job_id FROM ledger WHERE kind = 'reserve'")
        in_flight = await pools[1].fetchone("SELECT COUNT(*) AS n FROM jobs WHERE status = 'reserved'")
    finally:
        for pool in pools:
            await pool.close()
    assert sum(accepted) == 10
    assert sorted(row["job_id"] for row in reserved) == [
        job for job, ok in zip(jobs, accepted, strict=True) if ok
    ]
    assert in_flight is not None and in_flight["n"] == 10


# --- job leases, on both backends ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def any_db(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> AsyncIterator[Database | PostgresDatabase]:
    """A migrated database of either backend (the lease statements differ between them)."""
    if request.param == "sqlite":
        lite = await Database.open(tmp_path / "leases.sqlite3")
        await lite.migrate()
        yield lite
        await lite.close()
        return
    url = await postgres_server.create_database()
    database = await PostgresDatabase.open(url)
    await database.migrate()
    yield database
    await database.close()
    await postgres_server.drop_database(url)


def two_owners(db: Database | PostgresDatabase, clock: Clock) -> tuple[Leases, Leases]:
    return Leases(db, seconds=10, owner="a", clock=clock), Leases(db, seconds=10, owner="b", clock=clock)


async def test_a_lease_is_claimed_renewed_released_and_taken_over_once_expired(
    any_db: Database | PostgresDatabase,
) -> None:
    clock = Clock(1_000.0)
    a, b = two_owners(any_db, clock)
    job = await add_job(any_db, GUILD, ALICE, "submitted")  # type: ignore[arg-type]
    assert await a.claim(job) and not await b.claim(job) and await a.claim(job)
    assert (await a.renew(), await b.renew()) == ({job: JobStatus.SUBMITTED}, {})
    clock.now += 9
    await a.renew()  # now held until 1019
    clock.now += 9.5
    assert not await b.claim(job)
    clock.now += 1
    assert await b.claim(job)  # expired: taken over
    assert await a.renew() == {} and await a.owners([job]) == {job: "b"}
    await a.release(job)  # not a's any more: nothing changes
    assert await a.owners([job]) == {job: "b"}
    await b.release(job)
    assert await a.owners([job]) == {job: None}
    assert await a.claim(job)  # free
    await any_db.execute("UPDATE jobs SET status = 'posted' WHERE id = ?", (job,))
    assert not await a.claim(job) and not await b.claim(job)  # finished: nobody drives it
    assert await a.renew() == {} and await a.owners([job]) == {}
    assert a.shared is isinstance(any_db, PostgresDatabase)


async def test_a_request_being_received_is_left_to_the_process_that_wrote_it(
    any_db: Database | PostgresDatabase,
) -> None:
    clock = Clock(1_000.0)
    a, b = two_owners(any_db, clock)
    fresh = await add_job(any_db, GUILD, ALICE)  # type: ignore[arg-type]
    await any_db.execute("UPDATE jobs SET created_at = ? WHERE id = ?", (clock.now, fresh))
    assert not await b.claim(fresh)  # its writer may be about to hold it
    assert await a.hold(fresh) and not await b.hold(fresh)
    assert not await b.claim(fresh) and await b.adopt() == []
    assert await a.renew() == {fresh: JobStatus.RECEIVED}
    clock.now += 10.5  # its writer stopped renewing: it is answered "interrupted" by whoever adopts it
    assert await b.adopt() == [Adopted(fresh, JobStatus.RECEIVED)]
    old = await add_job(any_db, GUILD, ALICE)  # type: ignore[arg-type]  # written long ago, never held
    assert await b.claim(old)


async def test_adoption_takes_expired_and_unleased_unfinished_jobs_in_batches(
    any_db: Database | PostgresDatabase,
) -> None:
    clock = Clock(1_000.0)
    a, b = two_owners(any_db, clock)
    states = ("reserved", "submitting", "submitted", "completed", "posting", "queued")
    jobs = [await add_job(any_db, GUILD, ALICE, state) for state in states]  # type: ignore[arg-type]
    for finished in ("posted", "failed"):
        await add_job(any_db, GUILD, ALICE, finished)  # type: ignore[arg-type]
    for job in jobs[:3]:
        assert await a.claim(job)
    assert (
        await b.adopt()
        == [Adopted(job, JobStatus(state)) for job, state in zip(jobs, states, strict=True)][3:]
    )
    assert await a.adopt() == []  # b holds the rest now
    clock.now += 10.5  # a stopped renewing; b renews its own
    assert set(await b.renew()) == set(jobs[3:])
    assert [job for job, _ in await b.adopt(limit=2)] == jobs[:2]
    assert [job for job, _ in await b.adopt(limit=2)] == jobs[2:3]
    assert set(await b.renew()) == set(jobs)
    assert await a.adopt() == []


async def test_processes_check_in_and_count_those_alive(any_db: Database | PostgresDatabase) -> None:
    """Each process is told how many share the database (itself included): on SQLite always one; on
    PostgreSQL those whose row has not expired, a process that stopped no longer, one that died once
    its row expired (and its row is dropped a lease later)."""
    clock = Clock(1_000.0)
    told: dict[str, list[int]] = {"a": [], "b": []}
    a, b = (Leases(any_db, seconds=10, owner=name, clock=clock, processes=told[name].append) for name in "ab")
    shared = isinstance(any_db, PostgresDatabase)
    assert await a.check_in() == 1
    assert await b.check_in() == (2 if shared else 1)
    assert await a.check_in() == (2 if shared else 1)
    await b.check_out()
    assert await a.check_in() == 1
    await b.check_in()
    clock.now += 9
    assert await a.check_in() == (2 if shared else 1)
    clock.now += 1.5  # b stopped checking in (it died): its row expired
    assert await a.check_in() == 1
    assert told == {"a": [1, 2, 1, 2, 1] if shared else [1] * 5, "b": [2, 2] if shared else [1, 1]}

    async def rows() -> list[str]:
        listed = await any_db.fetchall("SELECT owner FROM bot_processes ORDER BY owner")
        return [row["owner"] for row in listed]

    assert await rows() == (["a", "b"] if shared else [])
    clock.now += 10
    await a.check_in()  # b gone for a whole lease: its row is dropped
    assert await rows() == (["a"] if shared else [])


async def test_two_processes_adopting_together_split_the_jobs(postgres_url: str) -> None:
    pools = [await PostgresDatabase.open(postgres_url) for _ in range(2)]
    try:
        await pools[0].migrate()
        jobs = [await add_job(pools[0], GUILD, ALICE, "submitted") for _ in range(40)]  # type: ignore[arg-type]
        sides = [Leases(pool, seconds=10, owner=name) for pool, name in zip(pools, "ab", strict=True)]
        taken = await asyncio.gather(*(side.adopt(limit=25) for side in sides for _ in range(2)))
    finally:
        for pool in pools:
            await pool.close()
    ids = [job for batch in taken for job, _ in batch]
    assert sorted(ids) == jobs  # every job adopted, and by one process only


async def test_keeping_leases_renews_adopts_and_lets_go_of_jobs_taken_over(pg: PostgresDatabase) -> None:
    """The loop every process runs, on a short lease, with callbacks that act as the runner's: renewals,
    adoption of a dead process's jobs, jobs held but not driven handed over for driving, a take-over
    reported, and, when renewals fail for most of a lease, every driven job let go."""
    keeper = Leases(pg, seconds=0.6, owner="a")
    driven, idle, orphan = [await add_job(pg, GUILD, ALICE, "submitted") for _ in range(3)]  # type: ignore[arg-type]
    assert await keeper.claim(driven) and await keeper.claim(idle)
    await pg.execute(
        "UPDATE jobs SET lease_owner = 'dead', lease_expires_at = ? WHERE id = ?", (time.time() - 1, orphan)
    )
    driving = {driven}
    lost: list[set[int]] = []
    adopted: list[Adopted] = []

    async def drive(jobs: list[Adopted]) -> None:
        adopted.extend(jobs)
        driving.update(job for job, _ in jobs)

    def let_go(jobs: set[int]) -> None:
        lost.append(jobs)
        driving.difference_update(jobs)

    task = asyncio.create_task(keeper.keep(driving=lambda: set(driving), lost=let_go, adopted=drive))
    try:
        await wait_until(lambda: driving == {driven, idle, orphan})
        start = await pg.fetchone("SELECT lease_expires_at FROM jobs WHERE id = ?", (driven,))
        await asyncio.sleep(0.5)  # two renewals or so
        renewed = await pg.fetchone("SELECT lease_expires_at FROM jobs WHERE id = ?", (driven,))
        assert start is not None and renewed is not None
        assert renewed["lease_expires_at"] > start["lease_expires_at"]
        assert sorted(adopted) == [Adopted(idle, JobStatus.SUBMITTED), Adopted(orphan, JobStatus.SUBMITTED)]
        assert lost == []
        await pg.execute(  # b took it over (as if a's lease had expired)
            "UPDATE jobs SET lease_owner = 'b', lease_expires_at = ? WHERE id = ?", (time.time() + 60, driven)
        )
        await wait_until(lambda: lost == [{driven}])

        async def unreachable() -> dict[int, JobStatus]:
            raise ConnectionError("the database went away")

        keeper.renew = unreachable  # type: ignore[method-assign]
        await wait_until(lambda: len(lost) > 1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert lost[:2] == [{driven}, {idle, orphan}]


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within time"
        await asyncio.sleep(0.02)
