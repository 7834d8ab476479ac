"""Shared fixtures: a world of fakes (Discord + a video provider) on 127.0.0.1 for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import aiohttp
import pytest

from bot import event_loop
from bot.db import Database
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.fal_fake import FakeFal
from tests.fakes.openrouter_fake import FakeOpenRouter
from tests.fakes.videos_fake import FakeVideosAPI, ManualClock
from tests.harness import World, manage_guild_permissions


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every test runs on the event loop the bot runs on (uvloop where it is installed)."""
    return {"bot": event_loop.new_event_loop}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session for the provider clients under test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database in the test's folder (``soracord.sqlite3``)."""
    database = await Database.open(tmp_path / "soracord.sqlite3")
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def family() -> str:
    """The provider family the world's bot runs on; override with
    ``@pytest.mark.parametrize("family", ["openrouter", "fal"])`` (or a fixture of that name)."""
    return "openai"


@pytest.fixture
async def world(tmp_path: Path, family: str) -> AsyncIterator[World]:
    fake_discord = FakeDiscord()
    guild = fake_discord.add_guild("Test Server", channels=("general", "other"))
    admins = fake_discord.add_role(guild, "Admins", manage_guild_permissions())
    alice = fake_discord.add_member(guild, "alice")
    admin = fake_discord.add_member(guild, "admin", roles=[admins])
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(fake_discord)
        fake_videos = await stack.enter_async_context(FakeVideosAPI(job_seconds=0.4))
        openrouter = fal = None
        if family == "openrouter":
            openrouter = await stack.enter_async_context(FakeOpenRouter())
        elif family == "fal":
            fal = await stack.enter_async_context(FakeFal())
        elif family != "openai":
            raise ValueError(f"no fake for the {family!r} family")
        general, other = guild.text_channels
        yield World(
            fake_discord,
            fake_videos,
            tmp_path,
            guild,
            general,
            other,
            alice,
            admin,
            family=family,
            openrouter=openrouter,
            fal=fal,
        )


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A running fake Discord with discord.py pointed at it (restored afterwards)."""
    async with FakeDiscord() as server:
        with server.patch_discord():
            yield server
    assert server.server_errors == []


@pytest.fixture
def clock() -> ManualClock:
    """A clock the fake provider's jobs advance by (tests call `advance`)."""
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeVideosAPI]:
    """The fake Videos API alone, on a manual clock (tests of the client and of the fake itself)."""
    async with FakeVideosAPI(clock=clock, job_seconds=1.0) as fake:
        yield fake
