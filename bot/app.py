"""The bot: owns the shared resources (database, HTTP session, job runner) and loads the cogs."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.buttons import card_view_factory, clip_view_factory
from bot.catalogue import Catalogue
from bot.catalogue_refresh import ModelsRefresher
from bot.database import AnyDatabase, describe_database, open_database
from bot.db_postgres import PostgresDatabase
from bot.discord_budget import discord_budget_trace
from bot.discord_delivery import DiscordDelivery
from bot.errors import handle_command_error
from bot.intake import Intake
from bot.jobs.leases import LeasedJobStore, Leases
from bot.jobs.runner import JobRunner, RunnerTiming
from bot.jobs.store import JobStore
from bot.offer import Offer
from bot.quotas import Limits, Quotas
from bot.ratelimit import DISCORD_PRIORITY, PROVIDER_PRIORITY, RequestBudget
from bot.settings import Settings, usd_to_micros
from bot.state import read_state, write_state
from bot.videos import RetryPolicy, VideoClient, create_video_client

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = ("cogs.video", "cogs.quota")


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Redirect discord.py's REST and gateway (both, so a token never reaches the other one)."""
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class SoraTree(app_commands.CommandTree):
    """Command tree whose last-resort error handler apologises with a reference id."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await handle_command_error(interaction, error)


class SoraBot(commands.AutoShardedBot):
    """The same class serves `python -m bot` and the tests; everything external comes from `settings`.

    Sharded automatically, or on SHARD_IDS of SHARD_COUNT when several processes share the bot. The
    shared resources below are made in `setup_hook` (RoboDanny style: declared, not Optional).
    """

    db: AnyDatabase
    http_session: aiohttp.ClientSession
    quotas: Quotas
    leases: Leases | None  # only on PostgreSQL: SQLite is one process, nobody to share jobs with
    store: JobStore
    video_client: VideoClient
    delivery: DiscordDelivery
    runner: JobRunner
    intake: Intake

    def __init__(
        self,
        settings: Settings,
        *,
        catalogue: Catalogue,
        timing: RunnerTiming | None = None,
        extensions: tuple[str, ...] = EXTENSIONS,
        **client_options: Any,
    ) -> None:
        point_discord_at(str(settings.discord_api_base_url), str(settings.discord_gateway_url))
        intents = discord.Intents.none()
        intents.guilds = True
        self.discord_budget = RequestBudget(
            settings.discord_max_requests_per_second, priority=DISCORD_PRIORITY
        )
        self.provider_budget = RequestBudget(
            settings.provider_max_requests_per_second, priority=PROVIDER_PRIORITY
        )
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=SoraTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            max_messages=None,
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            **shard_options(settings),
            # Every bot-token call waits for the budget as it goes out; an unlimited one costs nothing.
            http_trace=None if self.discord_budget.unlimited else discord_budget_trace(self.discord_budget),
            **client_options,
        )
        self.settings = settings
        self.catalogue = catalogue
        self.offer = Offer.from_settings(catalogue, settings)
        self.timing = timing or RunnerTiming(poll_interval=settings.poll_interval_seconds)
        self.extensions_to_load = extensions
        self.failed_extensions: list[str] = []
        self.synced_commands = False
        self._started = False
        self._sharing = 1  # processes sharing the request budgets

    async def setup_hook(self) -> None:
        settings = self.settings
        self.db = await open_database(settings)
        self.http_session = aiohttp.ClientSession()
        self.quotas = Quotas(self.db, default_limits(settings))
        if isinstance(self.db, PostgresDatabase):
            self.leases = Leases(self.db, seconds=settings.job_lease_seconds, processes=self._share_budgets)
            self.store = LeasedJobStore(self.db, self.quotas, self.leases)
        else:
            self.leases = None
            self.store = JobStore(self.db, self.quotas)
        self.video_client = create_video_client(
            settings.video_provider,
            settings.api_base,
            settings.video_api_key.get_secret_value(),
            self.http_session,
            retry=RetryPolicy(attempts=1),  # the runner's loop owns waiting and retrying
            budget=self.provider_budget,
        )
        self.delivery = DiscordDelivery(
            self,
            self.store,
            self.http_session,
            clip_view=clip_view_factory(self.catalogue.get),
            card_view=card_view_factory(lambda job: self.runner.cancellable(job)),
            edit_interval=self.timing.card_edit_interval,
        )
        self.runner = JobRunner(
            self.store,
            self.video_client,
            self.delivery,
            self.catalogue.get,
            work_dir=settings.work_dir,
            timing=self.timing,
            max_download_bytes=settings.max_download_mb << 20,
            max_in_flight=self._max_in_flight,
            leases=self.leases,
        )
        self.intake = Intake(self)
        self.models_refresher = ModelsRefresher(self.catalogue, self.video_client, self.db)
        await self.models_refresher.start()
        for name in self.extensions_to_load:
            try:
                await self.load_extension(name)
            except Exception:
                log.exception("Could not load extension %s; the bot runs without it", name)
                self.failed_extensions.append(name)
        await self.sync_commands_if_changed()
        await self.runner.start()
        self._started = True

    def _share_budgets(self, processes: int) -> None:
        """Several processes share the bot's provider key and Discord token: each takes its share."""
        if processes == self._sharing:
            return
        self._sharing = processes
        for budget in (self.provider_budget, self.discord_budget):
            budget.share(processes)
        log.info(
            "Request budgets shared by %d process(es): this one takes 1/%d of"
            " PROVIDER_MAX_REQUESTS_PER_SECOND and of DISCORD_MAX_REQUESTS_PER_SECOND",
            processes,
            processes,
        )

    async def _max_in_flight(self, guild_id: int) -> int:
        return (await self.quotas.limits_for(guild_id)).max_concurrent

    async def close(self) -> None:
        if self._started:
            await self.models_refresher.stop()
            await self.runner.stop()
            await self.delivery.close()
        await super().close()
        if hasattr(self, "http_session"):
            await self.http_session.close()
        if hasattr(self, "db"):
            await self.db.close()

    async def on_ready(self) -> None:
        log.info(
            "Ready as %s (id %s) in %d guild(s) on shard(s) %s of %s; database %s",
            self.user,
            self.user.id if self.user else "?",
            len(self.guilds),
            ",".join(str(shard) for shard in sorted(self.shards)) or "?",
            self.shard_count,
            describe_database(self.settings),
        )

    async def sync_commands_if_changed(self) -> bool:
        """Sync the command tree only when it differs from the last sync (Discord caps creates per day)."""
        guild = discord.Object(self.settings.discord_guild_id) if self.settings.discord_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        key = f"command_tree:{self.application_id}:{guild.id if guild else 'global'}"
        digest = tree_digest(payload)
        if await read_state(self.db, key) == digest:
            log.info("Application commands unchanged since the last sync; not syncing")
            return False
        synced = await self.tree.sync(guild=guild)
        await write_state(self.db, key, digest)
        log.info(
            "Synced %d application command(s) to %s",
            len(synced),
            f"guild {guild.id}" if guild else "all guilds",
        )
        self.synced_commands = True
        return True


def shard_options(settings: Settings) -> dict[str, Any]:
    """This process's shards: SHARD_IDS of SHARD_COUNT (all of them without SHARD_IDS); Discord's
    recommended count without either."""
    if settings.shard_count is None:
        return {}
    return {"shard_count": settings.shard_count, "shard_ids": settings.shard_ids}


def default_limits(settings: Settings) -> Limits:
    monthly = settings.quota_guild_monthly_usd
    return Limits(
        guild_daily=usd_to_micros(settings.quota_guild_daily_usd),
        guild_monthly=usd_to_micros(monthly) if monthly is not None else None,
        member_daily=usd_to_micros(settings.quota_member_daily_usd),
        max_concurrent=settings.max_concurrent_jobs_per_guild,
    )


def tree_digest(payload: list[dict[str, Any]]) -> str:
    """A stable hash of the command payload, independent of registration order."""
    ordered = sorted(payload, key=lambda command: (command.get("type", 1), command["name"]))
    return hashlib.sha256(json.dumps(ordered, sort_keys=True, default=str).encode()).hexdigest()
