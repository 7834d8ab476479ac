"""The Discord budget: discord.py's own HTTP client, with the bot's trace, against the fake Discord.

Bot-token REST calls take the budget as they go out (each retry too, in the priority of the caller's
context); interaction endpoints never do. Time in the budget is a manual clock: nothing here waits on
real time, except discord.py's own short Retry-After sleep in the 429 test.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord.ext import commands
from yarl import URL

from bot.card_edits import ROUTINE, URGENT, discord_priority
from bot.discord_budget import counts_against_budget, discord_budget_trace
from bot.ratelimit import DISCORD_PRIORITY, RequestBudget
from tests.fakes.discord_fake import Call, FakeChannel, FakeDiscord, FakeGuild, FakeMember

BOT = {"Authorization": "Bot fake-bot-token"}


@pytest.fixture
def fake(fake_discord: FakeDiscord) -> FakeDiscord:
    return fake_discord


@pytest.fixture
def guild(fake: FakeDiscord) -> FakeGuild:
    return fake.add_guild("Budget Server", channels=("general", "other"))


@pytest.fixture
def alice(fake: FakeDiscord, guild: FakeGuild) -> FakeMember:
    return fake.add_member(guild, "alice")


def bot_calls(fake: FakeDiscord, since: int = 0) -> list[Call]:
    """The calls that count against Discord's global limit: the bot token, no interaction endpoint."""
    return [
        call
        for call in fake.calls[since:]
        if call.headers.get("Authorization") == f"Bot {fake.token}" and not call.interaction_endpoint
    ]


class RecordingBudget(RequestBudget):
    """A budget (unlimited unless told) that records the priority of each acquisition."""

    def __init__(self, rate: float = 0, **options: Any) -> None:
        super().__init__(rate, priority=DISCORD_PRIORITY, **options)
        self.asked: list[int] = []

    async def acquire(self, priority: int | None = None) -> None:
        self.asked.append(self.priority.get() if priority is None else priority)
        await super().acquire(priority)


class ManualTime:
    """A manual clock and a sleep that returns only when `advance` moves the clock past its end."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._seq), future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time on; wake the sleepers whose end it passed (they run at the next loop turns)."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            future = heapq.heappop(self._sleepers)[2]
            if not future.done():
                future.set_result(None)

    @property
    def sleeping(self) -> int:
        return sum(not future.done() for *_, future in self._sleepers)


async def until(predicate: Any) -> None:
    """Let tasks run until `predicate()` holds (a deadline against a hang, not a timing assertion)."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110 (the budget's own state: nothing to wait on)
            await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("path", "counts"),
    [
        ("/api/v10/channels/1/messages", True),
        ("/api/v10/channels/1/webhooks", True),
        ("/api/v10/webhooks/5", True),  # a webhook of the bot's, managed with the bot token
        ("/api/v10/webhooks/5/tok", False),  # an interaction's follow-up
        ("/api/v10/webhooks/5/tok/messages/@original", False),
        ("/api/v10/interactions/7/tok/callback", False),
        ("/api/v10/interactions/7", True),
    ],
)
def test_which_paths_count(fake: FakeDiscord, path: str, counts: bool) -> None:
    url = URL(fake.base_url + path)
    assert counts_against_budget(url, BOT) is counts
    assert not counts_against_budget(url, {})  # no bot token (gateway, CDN): never


def small_bot(trace: Any) -> commands.Bot:
    """A bot with one command that answers, follows up and edits its answer: interaction endpoints only."""
    intents = discord.Intents.none()
    intents.guilds = True
    bot = commands.Bot(
        command_prefix="!", intents=intents, guild_ready_timeout=0.05, help_command=None, http_trace=trace
    )

    @bot.tree.command(name="ping", description="Answer through the interaction's endpoints")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong", ephemeral=True)
        await interaction.followup.send("more", ephemeral=True)
        await interaction.edit_original_response(content="pong, edited")

    return bot


async def test_bot_token_calls_take_the_budget_in_their_priority_interactions_never(
    fake: FakeDiscord, guild: FakeGuild, alice: FakeMember
) -> None:
    budget = RecordingBudget()
    bot = small_bot(discord_budget_trace(budget))
    async with fake.run_bot(bot):
        await bot.tree.sync(guild=None)
        logged_in = len(budget.asked)
        assert logged_in == len(bot_calls(fake)) >= 3  # login, the gateway's URL, the command sync, ...

        before = len(fake.calls)
        interaction = await fake.dispatch_slash_command(guild, guild.text_channels[0], alice, "ping")
        await interaction.wait_original(lambda message: message.content == "pong, edited")
        answered = fake.calls[before:]
        assert len(answered) == 3 and all(call.interaction_endpoint for call in answered)
        assert len(budget.asked) == logged_in  # none of them took the budget

        channel = bot.get_partial_messageable(guild.text_channels[1].id)
        with discord_priority(URGENT):
            card = await channel.send("clip")
        with discord_priority(ROUTINE):
            await card.edit(content="50 %")
        await channel.send("plain")
        assert budget.asked[logged_in:] == [URGENT, ROUTINE, DISCORD_PRIORITY.get()]
        assert len(budget.asked) == len(bot_calls(fake))


@pytest.fixture
async def http_on(
    fake: FakeDiscord,
) -> AsyncIterator[tuple[discord.http.HTTPClient, RecordingBudget, ManualTime]]:
    """discord.py's REST client with the trace of a real budget of 2 per second on a manual clock,
    logged in (its GET /users/@me took the first start, at t=0)."""
    time_ = ManualTime()
    budget = RecordingBudget(2, clock=time_.clock, sleep=time_.sleep)
    http = discord.http.HTTPClient(asyncio.get_running_loop(), http_trace=discord_budget_trace(budget))
    await http.static_login(fake.token)
    yield http, budget, time_
    await http.close()


async def post(http: discord.http.HTTPClient, channel: FakeChannel, content: str) -> dict[str, Any]:
    with discord.http.handle_message_parameters(content=content) as params:
        return await http.send_message(channel.id, params=params)


async def test_a_real_budget_holds_channel_calls_but_lets_interaction_endpoints_through(
    fake: FakeDiscord,
    guild: FakeGuild,
    http_on: tuple[discord.http.HTTPClient, RecordingBudget, ManualTime],
) -> None:
    """At 2 per second (one start per 0.515 s) two channel posts wait, the urgent one first, while
    interaction endpoints go straight through; each post reaches the fake only when its turn came."""
    http, budget, time_ = http_on
    general, other = guild.text_channels

    async def routine() -> None:
        with discord_priority(ROUTINE):
            await post(http, general, "50 %")

    async def urgent() -> None:
        with discord_priority(URGENT):
            await post(http, other, "clip")

    waiting = [asyncio.create_task(routine()), asyncio.create_task(urgent())]
    await until(lambda: len(budget.asked) == 3)  # the login, then both posts: one sleeps, one queues
    assert time_.sleeping == 1 and budget.asked[1:] == [ROUTINE, URGENT]
    for route in (
        discord.http.Route(
            "POST", "/webhooks/{webhook_id}/{webhook_token}", webhook_id=1, webhook_token="tok"
        ),
        discord.http.Route(
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            interaction_id=2,
            interaction_token="tok",
        ),
    ):
        with pytest.raises(discord.NotFound):  # unknown to the fake, but it went out at once
            await http.request(route, json={"type": 5})
    assert [call.path for call in fake.calls] == [
        "/users/@me",
        "/webhooks/1/tok",
        "/interactions/2/tok/callback",
    ]

    time_.advance(0.5)  # not yet: a second counted 3 % long, over two starts
    assert time_.sleeping == 1 and len(fake.calls) == 3
    time_.advance(0.1)
    await fake.wait_for_message(lambda message: message.content == "clip")
    assert [m.content for m in fake.messages_in(other)] == ["clip"] and fake.messages_in(general) == []
    await until(lambda: time_.sleeping == 1)  # the routine post now waits for its turn, 0.515 s later
    time_.advance(0.6)
    await asyncio.gather(*waiting)
    assert [m.content for m in fake.messages_in(general)] == ["50 %"]
    assert len(bot_calls(fake)) == 3


async def test_a_global_429_slows_the_budget_and_the_retry_takes_it_again(
    fake: FakeDiscord,
    guild: FakeGuild,
    http_on: tuple[discord.http.HTTPClient, RecordingBudget, ManualTime],
) -> None:
    """discord.py retries inside its route lock after Retry-After; the retry is a new request: it waits for
    the budget, which the global 429 paused for its Retry-After header (1 s)."""
    http, budget, time_ = http_on
    time_.advance(0.6)  # the login's spacing is over: the post goes at once
    fake.rate_limit_next("POST", r"^/channels/\d+/messages$", retry_after=0.01, is_global=True)
    sending = asyncio.create_task(post(http, guild.text_channels[0], "clip"))
    await fake.wait_for_call(lambda call: call.status == 429)
    await until(lambda: time_.sleeping == 1)  # discord.py slept 0.01 s and its retry waits for the budget
    assert len(fake.calls_to("POST", r"^/channels/\d+/messages$")) == 1
    time_.advance(0.9)  # the spacing alone would have let it go by now, the pause does not
    assert time_.sleeping == 1 and len(fake.calls) == 2
    time_.advance(0.2)  # past 1 s after the 429
    await sending
    assert budget.asked == [1, 1, 1]  # the login, the post, its retry
    assert [call.status for call in fake.calls_to("POST", r"^/channels/\d+/messages$")] == [429, 200]
