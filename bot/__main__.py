"""`python -m bot` starts the bot; `python -m bot invite` prints its invite URL."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import discord
from pydantic import ValidationError

from bot.app import SoraBot
from bot.db import MigrationError
from bot.invite import invite_url
from bot.pricing import PriceFileError, PriceTable, load_prices
from bot.settings import Settings, describe_errors

log = logging.getLogger("bot")

USAGE = "usage: python -m bot [invite]"


def load_settings() -> Settings:
    """Settings, or exit 2 with one plain line per problem (never a traceback or a secret)."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as error:
        for line in describe_errors(error):
            print(line, file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str]) -> int:
    if argv not in ([], ["invite"]):
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
    try:
        prices = load_prices(settings.prices_file)
    except PriceFileError as error:
        print(error, file=sys.stderr)
        return 2
    discord.utils.setup_logging(level=logging.getLevelName(settings.log_level), root=True)
    for model in settings.video_models:
        if not prices.has_model(model):
            log.warning("VIDEO_MODELS offers %s but it has no price; requests for it will be refused", model)
    return asyncio.run(run(settings, prices))


async def run(settings: Settings, prices: PriceTable) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bot = SoraBot(settings, prices=prices)
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
