"""The fake Videos API read by OpenAI's official Python SDK.

The SDK builds its response objects without validating them, so every JSON answer is also
validated against the SDK's own types: a field the fake gets wrong (a missing key, a wrong type,
an unknown status) fails here instead of passing quietly in the bot's tolerant client.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.types import Video as SDKVideo
from openai.types import VideoDeleteResponse
from PIL import Image

from tests.fakes.videos_fake import FakeVideosAPI, ManualClock

# The SDK marks its Sora helpers deprecated since the shutdown; the wire shape is what is checked here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def sdk(fake: FakeVideosAPI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0) as client:
        yield client


def checked(raw: Any) -> SDKVideo:
    """What SDK users get from a raw answer, after validating the JSON strictly against the SDK's type."""
    SDKVideo.model_validate(raw.http_response.json())
    video = raw.parse()
    assert isinstance(video, SDKVideo)
    return video


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


async def test_create_and_retrieve(sdk: openai.AsyncOpenAI, fake: FakeVideosAPI, clock: ManualClock) -> None:
    video = checked(
        await sdk.videos.with_raw_response.create(
            prompt="a red fox",
            model="sora-2",
            seconds="8",
            size="1280x720",
            input_reference=("ref.png", png(1280, 720), "image/png"),
        )
    )
    assert (video.status, video.progress, video.model, video.seconds, video.size) == (
        "queued",
        0,
        "sora-2",
        "8",
        "1280x720",
    )
    assert fake.calls[-1].files["input_reference"].data == png(1280, 720)
    clock.advance(0.5)
    running = checked(await sdk.videos.with_raw_response.retrieve(video.id))
    assert (running.id, running.status, running.progress) == (video.id, "in_progress", 50)


async def test_list_pages_through_everything(sdk: openai.AsyncOpenAI, fake: FakeVideosAPI) -> None:
    made = [(await sdk.videos.create(prompt=f"clip {n}")).id for n in range(5)]
    raw = await sdk.videos.with_raw_response.list(limit=2)
    page = raw.http_response.json()
    for item in page["data"]:
        SDKVideo.model_validate(item)
    assert page["has_more"] is True and page["last_id"] == made[-2]
    seen = [video.id async for video in sdk.videos.list(limit=2)]  # the SDK follows ``last_id``
    assert seen == made[::-1]
    assert fake.count("GET", "/videos") == 4


async def test_download_content_is_the_fakes_file(sdk: openai.AsyncOpenAI, fake: FakeVideosAPI) -> None:
    video = await sdk.videos.create(prompt="a red fox", size="1280x720")
    fake.complete(video.id)
    content = await sdk.videos.download_content(video.id)
    assert content.content == (await fake.content_path(video.id)).read_bytes()
    thumbnail = await sdk.videos.download_content(video.id, variant="thumbnail")
    assert thumbnail.content == (await fake.content_path(video.id, "thumbnail")).read_bytes()


async def test_remix_and_delete(sdk: openai.AsyncOpenAI, fake: FakeVideosAPI) -> None:
    source = await sdk.videos.create(prompt="a red fox")
    fake.complete(source.id)
    remix = checked(await sdk.videos.with_raw_response.remix(source.id, prompt="now at night"))
    assert (remix.remixed_from_video_id, remix.prompt, remix.status) == (source.id, "now at night", "queued")
    raw = await sdk.videos.with_raw_response.delete(source.id)
    VideoDeleteResponse.model_validate(raw.http_response.json())
    deleted = raw.parse()
    assert (deleted.id, deleted.deleted) == (source.id, True)


async def test_create_and_poll(sdk: openai.AsyncOpenAI, fake: FakeVideosAPI, clock: ManualClock) -> None:
    clock.step = 0.3  # every look at a job moves time on, so the SDK's own polling sees it finish
    video = await sdk.videos.create_and_poll(prompt="a red fox", poll_interval_ms=1)
    assert (video.status, video.progress) == ("completed", 100) and video.expires_at is not None
    assert fake.count("GET", r"/videos/[^/]+") == 4  # 30 %, 60 %, 90 %, done
    assert (checked(await sdk.videos.with_raw_response.retrieve(video.id))).status == "completed"

    fake.moderate_next_job()
    failed = await sdk.videos.create_and_poll(prompt="a red fox", poll_interval_ms=1)
    assert failed.status == "failed" and failed.error is not None
    assert (failed.error.code, failed.error.message) == (
        "moderation_blocked",
        fake.videos[failed.id].error["message"],
    )


async def test_error_answers_become_the_sdks_errors(sdk: openai.AsyncOpenAI, fake: FakeVideosAPI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.videos.create(prompt="p", seconds="10")  # type: ignore[arg-type]  # a gateway's length
    assert (bad.value.code, bad.value.param) == ("invalid_value", "seconds")
    assert "Supported values are: '4', '8', and '12'." in bad.value.message
    with pytest.raises(openai.NotFoundError):
        await sdk.videos.retrieve("video_unknown")
    fake.fail_next("GET", r"/videos/.*", 429, headers={"Retry-After": "3"})
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.videos.retrieve("video_unknown")
    assert (
        limited.value.code == "rate_limit_exceeded" and limited.value.response.headers["retry-after"] == "3"
    )
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, api_key="sk-wrong-key-0000", max_retries=0
    ) as wrong:
        with pytest.raises(openai.AuthenticationError) as denied:
            await wrong.videos.retrieve("video_unknown")
    assert denied.value.code == "invalid_api_key"
