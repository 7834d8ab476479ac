"""The provider budget inside the Videos API client: each HTTP request to the provider's API takes it
once, right before it is sent (a download from a CDN does not), and a 429 slows it down for everyone.
Against the fake Videos API; the budget's time is a manual clock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.catalogue import ModelSpec
from bot.ratelimit import DISCORD_PRIORITY, MARGIN, PROVIDER_PRIORITY, RequestBudget
from bot.videos import RateLimitedError, RetryPolicy, VideoClient, create_video_client
from bot.videos.base import BaseVideoClient
from tests.fakes.videos_fake import FakeVideosAPI, ManualClock
from tests.harness import World

SORA = ModelSpec(id="sora-2", label="Sora 2", seconds=(4, 8, 12), sizes=("1280x720", "720x1280"))


class JumpingTime:
    """A manual clock for the budget whose sleep jumps to its end (after letting others run)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        wake_at = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, wake_at)


class RecordingBudget(RequestBudget):
    """Records, for each acquisition, its priority and how many requests the fake had received by then."""

    def __init__(self, fake: FakeVideosAPI, rate: float, time_: JumpingTime) -> None:
        super().__init__(rate, priority=PROVIDER_PRIORITY, clock=time_.clock, sleep=time_.sleep)
        self.fake = fake
        self.asked: list[tuple[int, int]] = []

    async def acquire(self, priority: int | None = None) -> None:
        self.asked.append((self.priority.get() if priority is None else priority, len(self.fake.calls)))
        await super().acquire(priority)


@pytest.fixture
def time_() -> JumpingTime:
    return JumpingTime()


@pytest.fixture
def budget(fake: FakeVideosAPI, time_: JumpingTime) -> RecordingBudget:
    return RecordingBudget(fake, 100, time_)


async def no_sleep(seconds: float) -> None:
    """The client's own retry wait (the budget's pause is what this file looks at)."""


def client_with(
    budget: RequestBudget, fake: FakeVideosAPI, session: aiohttp.ClientSession, **options: Any
) -> VideoClient:
    return create_video_client(
        "openai", fake.base_url, fake.api_key, session, budget=budget, sleep=no_sleep, **options
    )


def each_request_asked_once_before_it_went(budget: RecordingBudget, fake: FakeVideosAPI) -> bool:
    """Request i was preceded by acquisition i, asked when i requests had arrived."""
    return [arrived for _, arrived in budget.asked] == list(range(len(fake.calls)))


async def test_every_request_of_a_job_takes_the_budget_once(
    fake: FakeVideosAPI,
    clock: ManualClock,
    session: aiohttp.ClientSession,
    budget: RecordingBudget,
    tmp_path: Path,
) -> None:
    client = client_with(budget, fake, session)
    with PROVIDER_PRIORITY(2):
        video = await client.create(prompt="a fox", model=SORA, size="1280x720", seconds=4)
        clock.advance(0.5)
        video = await client.retrieve(video.id)
    clock.advance(1)
    video = await client.retrieve(video.id)  # the context's default
    with PROVIDER_PRIORITY(0):
        await client.download(video, tmp_path / "clip.mp4")
        await client.download(video, tmp_path / "thumb.webp", variant="thumbnail")
    assert len(fake.calls) == 5
    assert each_request_asked_once_before_it_went(budget, fake)
    assert [priority for priority, _ in budget.asked] == [2, 2, 1, 0, 0]
    assert DISCORD_PRIORITY.get() == 1  # the provider's context is its own


async def test_a_download_that_falls_back_to_the_result_url_takes_it_for_each_request_to_the_api(
    fake: FakeVideosAPI, session: aiohttp.ClientSession, budget: RecordingBudget, tmp_path: Path
) -> None:
    """The provider's limits are its API's: the file itself, on a CDN (another origin), does not count."""
    fake.gateway = True
    client = client_with(budget, fake, session)
    video = await client.create(prompt="a fox", model=SORA, size="1280x720", seconds=4)
    fake.complete(video.id)
    before = len(fake.calls)
    with PROVIDER_PRIORITY(0):
        await client.download(video, tmp_path / "clip.mp4")  # `video` predates its result URL
    assert [call.path for call in fake.calls[before:]] == [
        f"/videos/{video.id}/content",  # 404: not there
        f"/videos/{video.id}",  # the result URL, looked up
        f"/files/{fake.videos[video.id].number}.mp4",  # on the CDN
    ]
    assert [arrived for _, arrived in budget.asked][-2:] == [before, before + 1]  # not the CDN's
    assert len(budget.asked) == len(fake.calls) - 1
    assert [priority for priority, _ in budget.asked[-2:]] == [0, 0]


async def test_inline_retries_take_the_budget_again_after_the_429s_pause(
    fake: FakeVideosAPI, session: aiohttp.ClientSession, budget: RecordingBudget, time_: JumpingTime
) -> None:
    client = client_with(budget, fake, session)
    fake.fail_next("POST", "/videos", 429, headers={"Retry-After": "4"})
    await client.create(prompt="a fox", model=SORA, size="1280x720", seconds=4)
    assert fake.count("POST", "/videos") == 2
    assert each_request_asked_once_before_it_went(budget, fake)
    assert time_.sleeps == [4.0] and time_.now == 4.0  # the retry waited for the budget's pause


async def test_a_429_slows_every_caller_of_the_budget(
    fake: FakeVideosAPI, session: aiohttp.ClientSession, budget: RecordingBudget, time_: JumpingTime
) -> None:
    """One job's 429 (no inline retry, as the bot runs it) pauses the next request of another job."""
    client = client_with(budget, fake, session, retry=RetryPolicy(attempts=1))
    other = await client.create(prompt="a cat", model=SORA, size="1280x720", seconds=4)
    time_.now = 10.0
    fake.fail_next("POST", "/videos", 429, headers={"Retry-After": "3"})
    with pytest.raises(RateLimitedError):
        await client.create(prompt="a fox", model=SORA, size="1280x720", seconds=4)
    assert time_.sleeps == []
    await client.retrieve(other.id)
    assert time_.sleeps == [3.0] and time_.now == 13.0
    time_.now = 20.0
    fake.fail_next("GET", "/videos/.+", 429)  # no Retry-After: a second
    with pytest.raises(RateLimitedError):
        await client.retrieve(other.id)
    await client.retrieve(other.id)
    assert time_.sleeps == [3.0, 1.0] and time_.now == 21.0
    assert each_request_asked_once_before_it_went(budget, fake)


async def test_without_a_budget_a_client_is_not_limited(
    fake: FakeVideosAPI, session: aiohttp.ClientSession
) -> None:
    client = create_video_client("openai", fake.base_url, fake.api_key, session)
    assert isinstance(client, BaseVideoClient) and client.budget.unlimited
    await asyncio.gather(*(client.list_recent() for _ in range(20)))
    assert fake.count("GET", "/videos") == 20


async def test_the_bot_budgets_its_requests_by_its_settings(world: World) -> None:
    async with world.running_bot(
        provider_max_requests_per_second=3, discord_max_requests_per_second=7
    ) as bot:
        assert isinstance(bot.video_client, BaseVideoClient)
        assert bot.video_client.budget.gap == pytest.approx((1 + MARGIN) / 3)
        assert bot.video_client.budget.priority is PROVIDER_PRIORITY
        assert bot.discord_budget.gap == pytest.approx((1 + MARGIN) / 7)
        assert bot.discord_budget.priority is DISCORD_PRIORITY
        assert bot.http.http_trace is not None  # discord.py's session takes it for each request
