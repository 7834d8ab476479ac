"""Several bot processes on one PostgreSQL database: real `python -m bot` processes, each on its own shard
of one fake Discord, sharing one fake provider.

Jobs from both shards are posted once; a process killed with SIGKILL in the middle of its jobs leaves
them to the other, which adopts them once their leases expire and posts each exactly once, with one
provider submission each; migrations are applied once when both start together. That budgets hold
across processes (50 reservations from two connection pools against a budget that fits 10) is
`tests/test_db_postgres.py::test_fifty_reservations_from_two_pools_take_exactly_what_fits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from bot.db import migration_files
from bot.db_postgres import POSTGRES_MIGRATIONS_DIR, PostgresDatabase
from tests.fakes.discord_fake import FakeChannel, FakeDiscord, FakeGuild, FakeMember, FakeMessage
from tests.fakes.videos_fake import FakeVideosAPI
from tests.harness import World, manage_guild_permissions

if TYPE_CHECKING:
    from tests.pg import PostgresServer

pytest_plugins = ("tests.pg",)

SHARDS = 2
LEASE_SECONDS = 2
T = TypeVar("T")


@dataclass
class Shard:
    guild: FakeGuild
    channel: FakeChannel
    member: FakeMember


@dataclass
class BotProcess:
    """A running `python -m bot`; its output is read all along (a full pipe would stall it)."""

    shard: int
    process: asyncio.subprocess.Process
    lines: list[str]
    reader: asyncio.Task[None] = field(init=False)

    def __post_init__(self) -> None:
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def kill(self) -> None:
        """SIGKILL: no shutdown at all, as in a crash."""
        self.process.kill()
        await self.process.wait()
        await self.reader

    async def stop(self) -> int:
        """SIGTERM, and the exit code once it stopped."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            code = await self.process.wait()
            await self.reader
        return code


@dataclass
class Cluster:
    """One fake Discord with a guild on each shard, one fake provider, one PostgreSQL database."""

    world: World
    shards: list[Shard]
    url: str
    tmp: Path
    processes: list[BotProcess] = field(default_factory=list)

    def env(self, shard: int) -> dict[str, str]:
        return {
            "DATABASE_URL": self.url,
            "SHARD_COUNT": str(SHARDS),
            "SHARD_IDS": str(shard),
            "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
            "WORK_DIR": str(self.tmp / f"work-{shard}"),  # a process's own files
            "POLL_INTERVAL_SECONDS": "0.1",
            "DISCORD_GUILD_ID": "",  # global commands: both guilds have them
        }

    async def start(self, *shards: int) -> list[BotProcess]:
        """Start one process per shard, all at once; returned when every one is ready."""

        async def one(shard: int) -> BotProcess:
            cwd = self.tmp / f"process-{shard}"
            cwd.mkdir(exist_ok=True)
            process, lines = await self.world.start_bot_process(cwd, **self.env(shard))
            return BotProcess(shard, process, lines)

        started = await asyncio.gather(*(one(shard) for shard in shards))
        self.processes += started
        return list(started)

    async def generate(self, shard: int, prompt: str) -> Any:
        """`/video generate` in the shard's guild; returns once its private answer settled."""
        where = self.shards[shard]
        interaction = await self.world.discord.dispatch_slash_command(
            where.guild, where.channel, where.member, "video", {"prompt": prompt}, subcommand="generate"
        )
        await interaction.wait_original(lambda message: not message.loading, timeout=20)
        return interaction

    def clips(self, shard: int) -> list[FakeMessage]:
        return [
            message
            for message in self.world.channel_messages(self.shards[shard].channel)
            if any(attachment.filename.endswith(".mp4") for attachment in message.attachments)
        ]

    async def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        database = await PostgresDatabase.open(self.url, max_connections=1)
        try:
            return [dict(row) for row in await database.fetchall(sql, params)]
        finally:
            await database.close()


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str) -> AsyncIterator[Cluster]:
    discord = FakeDiscord(shards=SHARDS)
    shards = []
    for shard in range(SHARDS):
        guild = discord.add_guild(f"Server on shard {shard}", shard=(shard, SHARDS), channels=("general",))
        shards.append(Shard(guild, guild.text_channels[0], discord.add_member(guild, f"member-{shard}")))
    admins = discord.add_role(shards[0].guild, "Admins", manage_guild_permissions())
    admin = discord.add_member(shards[0].guild, "admin", roles=[admins])
    other = discord.add_channel(shards[0].guild, "other")
    async with discord, FakeVideosAPI(job_seconds=0.5) as videos:
        first = shards[0]
        world = World(discord, videos, tmp_path, first.guild, first.channel, other, first.member, admin)
        found = Cluster(world, shards, postgres_url, tmp_path)
        try:
            yield found
        finally:
            for process in found.processes:
                if process.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        await process.kill()


async def eventually(check: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    """Poll `check` until it gives something truthy; fail after `within` seconds, saying `what`."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.1)


async def test_two_processes_on_two_shards_post_each_job_once(cluster: Cluster) -> None:
    processes = await cluster.start(0, 1)
    expected = [path.name for _, path in migration_files(POSTGRES_MIGRATIONS_DIR)]
    applied = [line for process in processes for line in process.lines if "Applied migration" in line]
    assert len(applied) == len(expected), "each migration is applied by one of the two processes"
    versions = await cluster.query("SELECT name FROM schema_version ORDER BY version")
    assert [row["name"] for row in versions] == expected
    for process in processes:
        assert f"on shard(s) {process.shard} of {SHARDS}; database PostgreSQL" in process.lines[-1]

    await asyncio.gather(
        *(cluster.generate(shard, f"cat {n} on shard {shard}") for shard in (0, 1) for n in (1, 2))
    )
    for shard in (0, 1):
        await cluster.world.discord.wait_for(lambda s=shard: len(cluster.clips(s)) >= 2, timeout=30)

    jobs = await eventually(
        lambda: _all_settled(cluster, 4), within=10, what="every job posted and its lease released"
    )
    assert cluster.world.videos.count("POST", "/videos") == 4
    by_shard = {
        shard: [job for job in jobs if job["guild_id"] == cluster.shards[shard].guild.id] for shard in (0, 1)
    }
    for shard, process in zip((0, 1), processes, strict=True):
        clips = cluster.clips(shard)
        assert len(clips) == 2
        assert sorted(job["clip_message_id"] for job in by_shard[shard]) == sorted(clip.id for clip in clips)
        for job in by_shard[shard]:  # driven by the process of the guild's shard
            assert f"Job {job['id']} is video" in process.output
            assert f"Job {job['id']} is video" not in processes[1 - shard].output
    ledger = await cluster.query("SELECT kind, COUNT(*) AS n FROM ledger GROUP BY kind ORDER BY kind")
    assert [(row["kind"], row["n"]) for row in ledger] == [("charge", 4), ("reserve", 4)]
    for process in processes:  # each knows of the other within a renewal: half the budgets each
        assert "Request budgets shared by 2 process(es)" in process.output
    for process in processes:
        assert await process.stop() == 0, process.output
        assert cluster.url.rpartition("@")[0].rpartition(":")[2] not in process.output  # the password


async def test_a_killed_process_s_jobs_are_adopted_and_posted_once(cluster: Cluster) -> None:
    first, second = await cluster.start(0, 1)
    hold = cluster.world.videos.hold_jobs()
    await asyncio.gather(
        cluster.generate(0, "a cat that outlives its bot"),
        cluster.generate(0, "a second cat that outlives its bot"),
        cluster.generate(1, "a cat on the other shard"),
    )
    await eventually(
        lambda: _in_state(cluster, "submitted", 3), within=15, what="all three jobs at the provider"
    )
    orphans = [
        job["id"]
        for job in await cluster.query("SELECT id, guild_id FROM jobs ORDER BY id")
        if job["guild_id"] == cluster.shards[0].guild.id
    ]
    await cluster.world.videos.wait_for_call(
        lambda call: call.method == "GET" and call.path.startswith("/videos/")
    )
    await first.kill()
    killed_at = time.monotonic()
    hold.set()

    for shard, count in ((0, 2), (1, 1)):
        await cluster.world.discord.wait_for(
            lambda s=shard, c=count: len(cluster.clips(s)) >= c, timeout=6 * LEASE_SECONDS
        )
    adopted_within = time.monotonic() - killed_at
    jobs = await eventually(
        lambda: _all_settled(cluster, 3), within=10, what="every job posted and its lease released"
    )
    await asyncio.sleep(LEASE_SECONDS)  # a few more renewals and adoption rounds: nothing moves
    assert [len(cluster.clips(shard)) for shard in (0, 1)] == [2, 1]
    assert cluster.world.videos.count("POST", "/videos") == 3, "one submission per job"
    clip_ids = {clip.id for shard in (0, 1) for clip in cluster.clips(shard)}
    assert {job["clip_message_id"] for job in jobs} == clip_ids
    for job_id in orphans:
        assert f"Adopting job {job_id} (submitted)" in second.output
    assert "Request budgets shared by 2 process(es)" in second.output
    assert "Request budgets shared by 1 process(es)" in second.output  # once the killed one's row expired
    ledger = await cluster.query("SELECT kind, COUNT(*) AS n FROM ledger GROUP BY kind ORDER BY kind")
    assert [(row["kind"], row["n"]) for row in ledger] == [("charge", 3), ("reserve", 3)]
    assert adopted_within < 5 * LEASE_SECONDS, adopted_within
    print(f"killed process's jobs posted {adopted_within:.1f} s after SIGKILL (lease {LEASE_SECONDS} s)")
    assert await second.stop() == 0, second.output


async def _all_settled(cluster: Cluster, count: int) -> list[dict[str, Any]] | None:
    """The jobs, once there are `count`, all posted with their leases released."""
    jobs = await cluster.query(
        "SELECT id, guild_id, status, clip_message_id, lease_owner FROM jobs ORDER BY id"
    )
    done = len(jobs) == count and all(
        job["status"] == "posted" and job["lease_owner"] is None for job in jobs
    )
    return jobs if done else None


async def _in_state(cluster: Cluster, status: str, count: int) -> bool:
    rows = await cluster.query("SELECT COUNT(*) AS n FROM jobs WHERE status = ?", status)
    return rows[0]["n"] == count


# --- settings and a database that cannot be used ------------------------------------------------------


async def run_to_the_end(world: World, cwd: Path, **env: str) -> tuple[int, str]:
    """`python -m bot` against the fakes with `env`, until it exits by itself."""
    process = await world.spawn_bot(cwd, **env)
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def test_a_database_that_cannot_be_used_stops_the_bot_with_exit_2_and_one_line(
    world: World, tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    wrong = "wr0ng-pa55w0rd"
    database = postgres_url.rsplit("/", 1)[1]
    cases = {
        "wrong password": postgres_server.url(database, password=wrong),
        "nobody listening": f"postgresql://soracord:{wrong}@127.0.0.1:9/{database}",
    }
    for case, url in cases.items():
        code, output = await run_to_the_end(world, tmp_path, DATABASE_URL=url)
        lines = [line for line in output.splitlines() if "Cannot use the PostgreSQL database" in line]
        assert code == 2, (case, output)
        assert len(lines) == 1 and "Stopping:" in lines[0], (case, output)
        assert f"soracord@{url.rpartition('@')[2]}" in lines[0], (case, lines)
        assert wrong not in output and postgres_server.password not in output, case
        assert "Traceback" not in output, (case, output)


async def test_shard_and_database_settings_are_checked_with_plain_lines(world: World, tmp_path: Path) -> None:
    secret = "s3cret-in-the-url"
    code, output = await run_to_the_end(
        world,
        tmp_path,
        SHARD_COUNT="2",
        SHARD_IDS="0,2",
        DATABASE_URL=f"mysql://soracord:{secret}@db/soracord",
        JOB_LEASE_SECONDS="0",
    )
    assert code == 2, output
    assert output.strip().splitlines() == [
        "DATABASE_URL is invalid: must be a PostgreSQL URL like "
        "postgresql://user:password@host:5432/soracord. Fix it in .env or the environment.",
        "SHARD_IDS is invalid: must be between 0 and 1 (SHARD_COUNT is 2), not 2. "
        "Fix it in .env or the environment.",
        "JOB_LEASE_SECONDS is invalid: Input should be greater than or equal to 1. "
        "Fix it in .env or the environment.",
    ]
    code, output = await run_to_the_end(world, tmp_path, SHARD_IDS="1")
    assert code == 2
    assert output.strip() == (
        "SHARD_IDS is invalid: needs SHARD_COUNT (the total number of shards of all processes). "
        "Fix it in .env or the environment."
    )
