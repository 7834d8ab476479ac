"""The SQLite database: migrations applied in order, exactly once, recorded (a failing file rolls back
and names itself); writes on the loop that never wait for a lock; checkpoints off the loop."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest

from bot.db import MIGRATIONS_DIR, Database, DatabaseUnavailable, MigrationError


async def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "bot.sqlite3"
    db = await Database.open(path)
    try:
        first = await db.migrate()
        again = await db.migrate()
        journal = await db.fetchone("PRAGMA journal_mode")
        foreign_keys = await db.fetchone("PRAGMA foreign_keys")
        versions = await db.fetchall("SELECT version, name FROM schema_version ORDER BY version")
    finally:
        await db.close()
    expected = sorted(p.name for p in MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    assert first == expected and first[0] == "0001_init.sql"
    assert again == []
    assert [row["name"] for row in versions] == expected
    assert journal[0] == "wal"
    assert foreign_keys[0] == 1


async def test_failed_migration_rolls_back_and_names_the_file(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_good.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (migrations / "0002_bad.sql").write_text("CREATE TABLE b (x INTEGER);\nINSERT INTO missing VALUES (1);\n")
    (migrations / "notes.txt").write_text("not a migration")
    db = await Database.open(tmp_path / "db.sqlite3")
    try:
        with pytest.raises(MigrationError) as raised:
            await db.migrate(migrations)
        assert raised.value.filename == "0002_bad.sql"
        tables = {
            row["name"] for row in await db.fetchall("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert "a" in tables and "b" not in tables
        versions = [row["version"] for row in await db.fetchall("SELECT version FROM schema_version")]
        assert versions == [1]
        (migrations / "0002_bad.sql").write_text("CREATE TABLE b (x INTEGER);\n")
        assert await db.migrate(migrations) == ["0002_bad.sql"]
    finally:
        await db.close()


async def test_a_transaction_cancelled_midway_is_rolled_back(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "db.sqlite3")
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        inside = asyncio.Event()

        async def stuck() -> None:
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (1)")
                inside.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(stuck())
        await inside.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.execute("INSERT INTO t VALUES (2)")
        rows = [row["x"] for row in await db.fetchall("SELECT x FROM t")]
    finally:
        await db.close()
    assert rows == [2]


async def test_a_sqlite_without_returning_is_refused_with_a_plain_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.db.sqlite3.sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr("bot.db.sqlite3.sqlite_version", "3.34.1")
    with pytest.raises(DatabaseUnavailable) as raised:
        await Database.open(tmp_path / "db.sqlite3")
    assert "3.34.1" in str(raised.value) and "3.35" in str(raised.value)
    assert not (tmp_path / "db.sqlite3").exists()


async def test_a_guarded_write_with_returning_changes_only_a_matching_row(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "db.sqlite3")
    try:
        await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, state TEXT)")
        await db.execute("INSERT INTO t (state) VALUES ('a')")
        moved = await db.write_returning("UPDATE t SET state = 'b' WHERE id = 1 AND state = 'a' RETURNING *")
        stale = await db.write_returning("UPDATE t SET state = 'c' WHERE id = 1 AND state = 'a' RETURNING *")
        stored = await db.fetchall("SELECT state FROM t")
    finally:
        await db.close()
    assert [row["state"] for row in moved] == ["b"]
    assert stale == []
    assert [row["state"] for row in stored] == ["b"]


async def test_writes_wait_off_the_loop_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = await Database.open(path)
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writing

        async def in_a_transaction() -> None:
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (2)")

        writes = [
            asyncio.create_task(db.write_returning("INSERT INTO t VALUES (1) RETURNING x")),
            asyncio.create_task(in_a_transaction()),
        ]
        for _ in range(20):  # the loop goes on meanwhile, and neither write fails or goes through
            await asyncio.sleep(0)
        waiting = [not write.done() for write in writes]
        other.execute("COMMIT")
        other.close()
        returned, _ = await asyncio.gather(*writes)
        stored = sorted(row["x"] for row in await db.fetchall("SELECT x FROM t"))
    finally:
        await db.close()
    assert waiting == [True, True]
    assert [row["x"] for row in returned] == [1]
    assert stored == [1, 2]


def _rows_in_the_file_itself(path: Path, copy: Path) -> list[int] | None:
    """The rows of t as the database file holds them, leaving out what is still only in the WAL."""
    shutil.copyfile(path, copy)
    connection = sqlite3.connect(copy)
    try:
        if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 't'").fetchone() is None:
            return None
        return [x for (x,) in connection.execute("SELECT x FROM t ORDER BY x")]
    finally:
        connection.close()
        copy.unlink()
        copy.with_name(copy.name + "-wal").unlink(missing_ok=True)
        copy.with_name(copy.name + "-shm").unlink(missing_ok=True)


async def test_the_wal_is_copied_into_the_database_file_every_few_commits(tmp_path: Path) -> None:
    path, copy = tmp_path / "db.sqlite3", tmp_path / "copy.sqlite3"
    db = await Database.open(path, checkpoint_every=5)
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        for x in range(3):
            await db.execute("INSERT INTO t VALUES (?)", (x,))
        before = _rows_in_the_file_itself(path, copy)  # four commits: all still in the WAL
        await db.write_returning("INSERT INTO t VALUES (3) RETURNING x")  # the fifth
        after = _rows_in_the_file_itself(path, copy)
    finally:
        await db.close()
    assert before is None
    assert after == [0, 1, 2, 3]
