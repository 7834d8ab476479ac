"""All bot-token calls to Discord share one request budget (`DISCORD_MAX_REQUESTS_PER_SECOND`).

Discord allows a bot 50 requests per second in all; interaction webhooks (answers and follow-ups,
authenticated by the interaction's token) do not count, and are never delayed here. Calls made inside
`bot.card_edits.discord_priority(...)` wait in that priority: clip posts and final card edits first.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.card_edits import DISCORD_PRIORITY
from bot.ratelimit import RequestBudget


def budget_bot_calls(http: discord.http.HTTPClient, budget: RequestBudget) -> None:
    """Make every REST call of `http` that carries the bot token wait for `budget` first."""
    send = http.request

    async def request(route: discord.http.Route, **kwargs: Any) -> Any:
        if "{webhook_token}" not in route.path and "{interaction_token}" not in route.path:
            await budget.acquire(DISCORD_PRIORITY.get())
        return await send(route, **kwargs)

    http.request = request  # type: ignore[method-assign]
