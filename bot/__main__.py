"""`python -m bot` starts the bot; `invite` prints its invite URL; `check` tests the provider settings;
`migrate-to-postgres` copies the SQLite database into the PostgreSQL one at DATABASE_URL."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import discord
from pydantic import ValidationError

from bot import event_loop
from bot.app import SoraBot
from bot.catalogue import Catalogue
from bot.check import run_check
from bot.db import MigrationError
from bot.db_postgres import DatabaseUnavailable
from bot.invite import invite_url
from bot.migrate_to_postgres import migrate_to_postgres
from bot.offer import Offer
from bot.pricing import PriceFileError
from bot.settings import Settings, describe_errors

log = logging.getLogger("bot")

USAGE = "usage: python -m bot [invite | check | migrate-to-postgres]"


def load_settings() -> Settings:
    """Settings, or exit 2 with one plain line per problem (never a traceback or a secret)."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as error:
        for line in describe_errors(error):
            print(line, file=sys.stderr)
        raise SystemExit(2) from None


def load_offer(settings: Settings) -> Offer:
    """The catalogue with MODELS_FILE and PRICES_FILE, checked against the settings; exit 2 if wrong."""
    try:
        catalogue = Catalogue.load(
            settings.video_provider, models_file=settings.models_file, prices_file=settings.prices_file
        )
    except PriceFileError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    offer = Offer.from_settings(catalogue, settings)
    problems = offer.problems()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        raise SystemExit(2)
    return offer


def main(argv: list[str]) -> int:
    if argv not in ([], ["invite"], ["check"], ["migrate-to-postgres"]):
        print(USAGE, file=sys.stderr)
        return 2
    settings = load_settings()
    if argv == ["invite"]:
        try:
            print(invite_url(settings.discord_token.get_secret_value()))
        except ValueError as error:
            print(f"{error}; copy it again from the Developer Portal (Bot -> Reset Token).", file=sys.stderr)
            return 2
        return 0
    if argv == ["migrate-to-postgres"]:
        return migrate_to_postgres(settings)
    offer = load_offer(settings)
    if argv == ["check"]:
        return event_loop.run(run_check(settings, offer))
    discord.utils.setup_logging(level=logging.getLevelName(settings.log_level), root=True)
    for line in offer.catalogue.warnings(settings.video_models):
        log.warning("%s", line)
    return event_loop.run(run(settings, offer.catalogue))


async def run(settings: Settings, catalogue: Catalogue) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bot = SoraBot(settings, catalogue=catalogue)
    async with bot:
        runner = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if runner.done():
            try:
                runner.result()
            except MigrationError as error:
                log.error("Stopping: %s", error)
                return 1
            except DatabaseUnavailable as error:
                log.error("Stopping: %s", error)
                return 2
            except discord.LoginFailure:
                log.error(
                    "Stopping: Discord refused DISCORD_TOKEN; "
                    "copy the bot token again from the Developer Portal"
                )
                return 2
            return 1
        log.info("Shutting down on signal; unfinished jobs resume on the next start")
        await bot.close()
        await asyncio.gather(runner, return_exceptions=True)
    log.info("Stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
