"""All bot-token calls to Discord share one request budget (`DISCORD_MAX_REQUESTS_PER_SECOND`).

Discord allows a bot 50 requests per second in all; interaction endpoints (the callback and the
webhooks of an interaction's token) do not count, and are never delayed here. The budget is taken
by an aiohttp trace at the moment each request goes out: inside discord.py's per-route lock and for
every retry of its loop, so what the budget spaces out is what reaches Discord. Calls made inside
`with DISCORD_PRIORITY(level):` (`bot.card_edits.discord_priority`) wait in that priority: clip
posts and final card edits first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import SimpleNamespace

import aiohttp
import discord
from yarl import URL

from bot.ratelimit import RequestBudget

#: Interaction endpoints, authenticated by the interaction's token (topics/rate-limits.mdx,
#: "Global Rate Limit"): `/webhooks/{application_id}/{token}...` and
#: `/interactions/{id}/{token}/callback`. `/webhooks/{id}` alone is used with the bot token and counts.
_INTERACTION_ENDPOINT = re.compile(r"/(webhooks/[^/]+/[^/]+|interactions/[^/]+/[^/]+/callback)(/|$)")


def counts_against_budget(url: URL, headers: Mapping[str, str]) -> bool:
    """True for a REST call with the bot token that is not an interaction endpoint.

    The gateway's websocket and CDN downloads carry no bot token and do not count.
    """
    if not headers.get("Authorization", "").startswith("Bot "):
        return False
    path = url.path
    base = _base_path(discord.http.Route.BASE)
    if base and path.startswith(base + "/"):
        path = path[len(base) :]
    return _INTERACTION_ENDPOINT.match(path) is None


@functools.lru_cache(maxsize=4)  # once per base URL, not once per request
def _base_path(base: str) -> str:
    return URL(base).path.rstrip("/")


def discord_budget_trace(budget: RequestBudget) -> aiohttp.TraceConfig:
    """A trace for discord.py's session (`Client(http_trace=...)`): each counted request waits for
    `budget` right before it is sent; a global 429 slows the whole budget down for its Retry-After."""

    async def on_request_start(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        if counts_against_budget(params.url, params.headers):
            await budget.acquire()  # in the caller's task: its priority context applies

    async def on_request_end(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        response = params.response
        if response.status != 429 or not counts_against_budget(params.url, params.headers):
            return
        headers = response.headers
        is_global = headers.get("X-RateLimit-Global", "").lower() == "true"
        if is_global or headers.get("X-RateLimit-Scope") == "global":
            try:
                retry_after = float(headers.get("Retry-After", ""))
            except ValueError:
                retry_after = 1.0
            budget.slow_down(retry_after)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    trace.on_request_end.append(on_request_end)
    return trace
