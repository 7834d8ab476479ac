"""Shared fixtures: a world of fakes (Discord + Videos API) on 127.0.0.1 for integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.videos_fake import FakeVideosAPI, ManualClock
from tests.harness import World, manage_guild_permissions


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    fake_discord = FakeDiscord()
    guild = fake_discord.add_guild("Test Server", channels=("general", "other"))
    admins = fake_discord.add_role(guild, "Admins", manage_guild_permissions())
    alice = fake_discord.add_member(guild, "alice")
    admin = fake_discord.add_member(guild, "admin", roles=[admins])
    async with fake_discord, FakeVideosAPI(job_seconds=0.4) as fake_videos:
        general, other = guild.text_channels
        yield World(fake_discord, fake_videos, tmp_path, guild, general, other, alice, admin)


@pytest.fixture
def clock() -> ManualClock:
    """A clock the fake provider's jobs advance by (tests call `advance`)."""
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeVideosAPI]:
    """The fake Videos API alone, on a manual clock (tests of the client and of the fake itself)."""
    async with FakeVideosAPI(clock=clock, job_seconds=1.0) as fake:
        yield fake
