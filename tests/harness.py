"""The real bot (the class `python -m bot` builds) wired to the fake Discord and the fake Videos API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from bot.app import SoraBot
from bot.catalogue import Catalogue
from bot.errors import UserFacingError
from bot.jobs.models import JOB_SELECT, Job
from bot.jobs.runner import RunnerTiming
from bot.settings import Settings
from bot.videos.retry import RetryPolicy
from tests.fakes.discord_fake import (
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeMessage,
)
from tests.fakes.fal_fake import FakeFal
from tests.fakes.openrouter_fake import FakeOpenRouter
from tests.fakes.videos_fake import FakeVideosAPI

#: Fast timing for tests: polls every 50 ms, card edits unthrottled, retries after milliseconds.
TEST_TIMING = RunnerTiming(
    poll_interval=0.05, card_edit_interval=0.0, retry=RetryPolicy(base=0.01, cap=0.05, attempts=3)
)
MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
#: The provider families a World can run the bot on, and the models each offers by default (VIDEO_MODELS):
#: models its fake serves, cheapest first so the default budgets ($1 a member a day) pay for a clip.
FAMILY_MODELS = {
    "openai": "sora-2,sora-2-pro",
    "openrouter": "alibaba/wan-2.6,google/veo-3.1,minimax/hailuo-2.3",
    "fal": "fal-ai/wan-25-preview/text-to-video,fal-ai/veo3.1",
}
ProviderFake = FakeVideosAPI | FakeOpenRouter | FakeFal


@dataclass
class World:
    """One server with two channels, a member and an admin, the fake Discord and the provider fakes.

    `family` is the provider family the bot runs on (`VIDEO_PROVIDER`): ``openai`` (the `/v1/videos`
    fake, `videos`, always there), ``openrouter`` (`openrouter`) or ``fal`` (`fal`); `provider` is the
    fake of the world's family. Tests choose it with the `family` fixture (conftest), e.g.
    ``@pytest.mark.parametrize("family", ["openrouter"])``.
    """

    discord: FakeDiscord
    videos: FakeVideosAPI
    tmp: Path
    guild: FakeGuild
    general: FakeChannel
    other: FakeChannel
    alice: FakeMember
    admin: FakeMember
    overrides: dict[str, Any] = field(default_factory=dict)
    family: str = "openai"
    openrouter: FakeOpenRouter | None = None
    fal: FakeFal | None = None

    @property
    def provider(self) -> ProviderFake:
        """The fake the bot talks to in this world's family."""
        fake = {"openai": self.videos, "openrouter": self.openrouter, "fal": self.fal}[self.family]
        assert fake is not None, f"the {self.family} fake was not started for this world"
        return fake

    def provider_settings(self) -> dict[str, str]:
        """VIDEO_PROVIDER, VIDEO_API_KEY, VIDEO_API_BASE_URL and VIDEO_MODELS for this world's family."""
        fake = self.provider
        return {
            "VIDEO_PROVIDER": self.family,
            "VIDEO_API_KEY": fake.api_key,
            "VIDEO_API_BASE_URL": fake.base_url,
            "VIDEO_MODELS": FAMILY_MODELS[self.family],
        }

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "discord_token": self.discord.token,
            **{name.lower(): value for name, value in self.provider_settings().items()},
            "discord_api_base_url": self.discord.api_base,
            "discord_gateway_url": self.discord.gateway_url,
            "discord_guild_id": self.guild.id,
            "database_path": self.tmp / "data" / "bot.sqlite3",
            "work_dir": self.tmp / "work",
            "poll_interval_seconds": 0.05,
        }
        given = self.overrides | overrides
        # The key and base URL may be given by their OPENAI_* names too (the same settings).
        for alias, name in (("openai_api_key", "video_api_key"), ("openai_base_url", "video_api_base_url")):
            if alias in given:
                given[name] = given.pop(alias)
        return Settings(_env_file=None, **(values | given))  # type: ignore[call-arg]

    def process_env(self, **extra: str) -> dict[str, str]:
        """The environment of `python -m bot` pointed at the fakes (nothing inherited that could leak).

        `extra` adds or replaces variables (e.g. ``VIDEO_MODELS="…"``); an empty value removes one.
        """
        settings = self.settings()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "OPENAI_", "VIDEO_"))}
        env |= {"PYTHONPATH": str(ROOT), "DISCORD_TOKEN": self.discord.token}
        provider = self.provider_settings()
        if self.family == "openai":  # as operators of the Sora days wrote it: the OPENAI_* names
            provider["OPENAI_API_KEY"] = provider.pop("VIDEO_API_KEY")
            provider["OPENAI_BASE_URL"] = provider.pop("VIDEO_API_BASE_URL")
        env |= provider | {
            "DISCORD_API_BASE_URL": self.discord.api_base,
            "DISCORD_GATEWAY_URL": self.discord.gateway_url,
            "DISCORD_GUILD_ID": str(self.guild.id),
            "DATABASE_PATH": str(settings.database_path),
            "WORK_DIR": str(settings.work_dir),
        }
        if settings.models_file is not None:
            env["MODELS_FILE"] = str(settings.models_file)
        env |= extra
        return {name: value for name, value in env.items() if value != ""}

    async def spawn_bot(self, cwd: Path, **extra: str) -> asyncio.subprocess.Process:
        """`python -m bot` against the fakes, its output (stderr included) on a pipe."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=cwd,
            env=self.process_env(**extra),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def start_bot_process(
        self, cwd: Path, **extra: str
    ) -> tuple[asyncio.subprocess.Process, list[str]]:
        """`python -m bot` as a real process against the fakes, returned once it is ready.

        `extra` adds or replaces environment variables, as for `process_env`.
        """
        process = await self.spawn_bot(cwd, **extra)
        assert process.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(30):
            while not lines or "Ready as" not in lines[-1]:
                raw = await process.stdout.readline()
                if not raw:
                    raise AssertionError("python -m bot ended before it was ready:\n" + "".join(lines))
                lines.append(raw.decode())
        return process, lines

    @contextlib.asynccontextmanager
    async def running_bot(self, **overrides: Any) -> AsyncIterator[SoraBot]:
        """Start the real bot against the fakes; stop it (cleanly) on exit."""
        settings = self.settings(**overrides)
        catalogue = Catalogue.load(
            settings.video_provider, models_file=settings.models_file, prices_file=settings.prices_file
        )
        bot = SoraBot(settings, catalogue=catalogue, timing=TEST_TIMING, guild_ready_timeout=0.05)
        unexpected: list[BaseException] = []
        handler = bot.tree.on_error

        async def record(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
            if not isinstance(error, UserFacingError | app_commands.CheckFailure):
                unexpected.append(error)
            await handler(interaction, error)

        bot.tree.on_error = record  # type: ignore[method-assign]
        with self.discord.patch_discord():
            async with self.discord.run_bot(bot, timeout=10):
                yield bot
        assert self.discord.server_errors == []
        assert unexpected == [], f"commands raised unexpected errors: {unexpected!r}"

    async def generate(
        self, member: FakeMember | None = None, channel: FakeChannel | None = None, **options: Any
    ):
        """Dispatch `/video generate` and wait for its private answer to settle (not "thinking…")."""
        interaction = await self.dispatch_generate(member, channel, **options)
        await interaction.wait_original(lambda message: not message.loading, timeout=15)
        return interaction

    async def dispatch_generate(
        self, member: FakeMember | None = None, channel: FakeChannel | None = None, **options: Any
    ) -> FakeInteraction:
        """Dispatch `/video generate` and return at once."""
        return await self.discord.dispatch_slash_command(
            self.guild, channel or self.general, member or self.alice, "video", options, subcommand="generate"
        )

    def channel_messages(self, channel: FakeChannel | None = None) -> list[FakeMessage]:
        """Public messages in a channel (ephemeral answers left out)."""
        return self.discord.messages_in(channel or self.general, include_ephemeral=False)

    async def wait_for_clip(self, channel: FakeChannel | None = None, within: float = 20) -> FakeMessage:
        """A posted clip, once its card says Done (as a member sees it: posted and recorded)."""
        channel_id = (channel or self.general).id
        clip = await self.discord.wait_for_message(
            lambda m: m.channel_id == channel_id and any(a.filename.endswith(".mp4") for a in m.attachments),
            timeout=within,
        )
        await self.discord.wait_for_message(lambda m: m.id == clip.reply_to and "Done" in m.text(), within)
        return clip

    async def wait_for_card(
        self, predicate: Callable[[str], bool], channel: FakeChannel | None = None, within: float = 20
    ) -> FakeMessage:
        channel_id = (channel or self.general).id
        return await self.discord.wait_for_message(
            lambda m: m.channel_id == channel_id and bool(m.embeds) and predicate(m.text()), timeout=within
        )


def manage_guild_permissions() -> int:
    return discord.Permissions(manage_guild=True).value


async def only_job(bot: SoraBot) -> Job:
    """The one job in the bot's database, once no job task runs."""
    await bot.runner.wait_idle()
    (row,) = await bot.db.fetchall(f"SELECT {JOB_SELECT} FROM jobs")
    return Job.from_row(row)


async def spent_today(bot: SoraBot, world: World, member: FakeMember | None = None) -> int:
    """What the member (Alice by default) has spent today, as the quotas count it."""
    return (await bot.quotas.status(world.guild.id, (member or world.alice).id)).member_today.spent
