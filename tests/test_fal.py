"""fal.ai: the fake checked with fal's official client, then our client against the fake over HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import fal_client
import fal_client.client as fal_internals
import pytest
from PIL import Image

from bot.catalogue import Audio, Catalogue, ModelSpec
from bot.videos import (
    DIALECTS,
    AuthenticationError,
    InvalidRequestError,
    ModerationError,
    NotFoundError,
    RateLimitedError,
    ReferenceImage,
    ServerError,
    Video,
    VideoStatus,
    create_video_client,
)
from bot.videos.fal import FalVideoClient, fal_error_details
from tests.fakes.fal_fake import FakeFal
from tests.fakes.videos_fake import ManualClock

VEO = ModelSpec(
    id="fal-ai/veo3.1",
    label="Veo 3.1",
    seconds=(4, 6, 8),
    sizes=("1280x720", "720x1280", "1920x1080"),
    image=True,
    audio=Audio.OPTIONAL,
    wire={"image_endpoint": "fal-ai/veo3.1/image-to-video", "duration_format": "{}s"},
)
KLING = ModelSpec(
    id="fal-ai/kling-video/v2.6/pro/text-to-video",
    label="Kling 2.6 Pro",
    seconds=(5, 10),
    sizes=("1920x1080", "1080x1080"),
    image=True,
    audio=Audio.OPTIONAL,
    wire={
        "image_endpoint": "fal-ai/kling-video/v2.6/pro/image-to-video",
        "image_field": "start_image_url",
        "duration_format": "{}",
        "size_fields": ["aspect_ratio"],
        "image_size_fields": [],
    },
)
WAN = ModelSpec(
    id="fal-ai/wan-25-preview/text-to-video",
    label="Wan 2.5",
    seconds=(5, 10),
    sizes=("1280x720",),
    image=True,
    audio=Audio.ALWAYS,
    wire={
        "image_endpoint": "fal-ai/wan-25-preview/image-to-video",
        "duration_format": "{}",
        "image_size_fields": ["resolution"],
    },
)


class Sleeps(list[float]):
    """Records what inline retries wait, without waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeFal]:
    async with FakeFal(clock=clock) as fake:
        yield fake


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake: FakeFal, session: aiohttp.ClientSession, sleeps: Sleeps) -> FalVideoClient:
    return FalVideoClient(fake.base_url, fake.api_key, session, sleep=sleeps)


@pytest.fixture
def png(tmp_path: Path) -> ReferenceImage:
    path = tmp_path / "first.png"
    Image.new("RGB", (1280, 720), (20, 140, 90)).save(path)
    return ReferenceImage(path, "image/png")


def data_url(image: ReferenceImage) -> str:
    return "data:image/png;base64," + base64.b64encode(image.path.read_bytes()).decode()


@pytest.fixture
async def official(fake: FakeFal, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[fal_client.AsyncClient]:
    """fal's own client aimed at the fake.

    It builds its queue URL from ``FAL_QUEUE_RUN_HOST``, read once at import and always with
    ``https://``; the fake speaks plain HTTP, so the module's resulting ``QUEUE_URL_FORMAT`` is
    pointed at it instead. Everything after the submission follows the URLs the fake answered.
    """
    monkeypatch.setattr(fal_internals, "QUEUE_URL_FORMAT", f"{fake.origin}/")
    client = fal_client.AsyncClient(key=fake.api_key)
    yield client
    await (await client._client).aclose()


# -- the fake, as fal's official client sees it -------------------------------------------------------


async def test_official_client_queues_polls_and_fetches_a_result(
    fake: FakeFal, official: fal_client.AsyncClient, session: aiohttp.ClientSession
) -> None:
    handle = await official.submit(
        "fal-ai/veo3.1", {"prompt": "a heron", "duration": "4s", "aspect_ratio": "9:16", "resolution": "720p"}
    )
    seen = [await handle.status(with_logs=True) for _ in range(4)]
    result = await handle.get(interval=0)

    assert seen[:2] == [fal_client.Queued(position=1), fal_client.Queued(position=0)]
    assert isinstance(seen[2], fal_client.InProgress) and seen[2].logs
    assert isinstance(seen[3], fal_client.Completed) and seen[3].error is None and seen[3].metrics
    async with session.get(result["video"]["url"]) as resp:
        served = await resp.read()
    assert served == await fake.request_bytes(handle.request_id) and served[4:8] == b"ftyp"
    assert fake.requests[handle.request_id].size == "720x1280"
    assert all(
        call.headers["authorization"] == f"Key {fake.api_key}"
        for call in fake.calls
        if call.port == fake.port
    )


async def test_status_urls_leave_the_subpath_out_as_fals_client_builds_them(
    fake: FakeFal, official: fal_client.AsyncClient, png: ReferenceImage
) -> None:
    endpoint = "fal-ai/kling-video/v2.6/pro/image-to-video"
    handle = await official.submit(endpoint, {"prompt": "p", "start_image_url": data_url(png)})
    built = await official.get_handle(endpoint, handle.request_id)
    assert (handle.status_url, handle.response_url, handle.cancel_url) == (
        built.status_url,
        built.response_url,
        built.cancel_url,
    )
    assert handle.status_url == f"{fake.origin}/fal-ai/kling-video/requests/{handle.request_id}/status"


async def test_official_client_sees_the_fakes_errors_and_cancels(
    fake: FakeFal, official: fal_client.AsyncClient
) -> None:
    with pytest.raises(fal_client.FalClientHTTPError) as refused:
        await official.submit("fal-ai/veo3.1", {"prompt": "p", "duration": "5s", "generate_audio": "yes"})
    assert refused.value.status_code == 422
    assert [problem["loc"] for problem in refused.value.message] == [
        ["body", "duration"],
        ["body", "generate_audio"],
    ]

    queued = await official.submit("fal-ai/veo3.1", {"prompt": "p"})
    await queued.cancel()  # 202 CANCELLATION_REQUESTED
    finished = await queued.status()
    assert isinstance(finished, fal_client.Completed) and finished.error
    with pytest.raises(fal_client.FalClientHTTPError) as done:
        await queued.cancel()
    assert done.value.status_code == 400

    fake.fail_next_job()
    failing = await official.submit("fal-ai/veo3.1", {"prompt": "p"})
    status = None
    while not isinstance(status, fal_client.Completed):
        status = await failing.status()
    assert status.error_type == "content_policy_violation" and status.error


# -- our client against the fake ------------------------------------------------------------------


def test_the_dialect_is_registered(fake: FakeFal, session: aiohttp.ClientSession) -> None:
    client = create_video_client("fal", fake.base_url, fake.api_key, session)
    assert DIALECTS["fal"] is FalVideoClient and isinstance(client, FalVideoClient)
    assert (client.can_cancel, client.can_list) == (True, False)


def test_a_detail_list_becomes_one_sentence() -> None:
    body = json.dumps(
        {
            "detail": [
                {"loc": ["body", "duration"], "msg": "Input should be '5' or '10'", "type": "literal_error"},
                {"loc": ["body", "start_image_url"], "msg": "Field required.", "type": "missing"},
            ]
        }
    )
    details = fal_error_details(body, reason="HTTP 422")
    assert details.message == "duration: Input should be '5' or '10'; start_image_url: Field required."
    assert (details.code, details.param) == ("literal_error", "duration")
    timeout = fal_error_details('{"detail": "Request timed out", "error_type": "request_timeout"}', reason="")
    assert (timeout.message, timeout.code) == ("Request timed out", "request_timeout")
    plain = fal_error_details("<html>bad gateway</html>", reason="HTTP 502", error_type="runner_disconnected")
    assert (plain.message, plain.code) == ("HTTP 502", "runner_disconnected")


async def test_each_model_gets_its_own_input_names_and_formats(
    fake: FakeFal, client: FalVideoClient, png: ReferenceImage
) -> None:
    await client.create(prompt="veo", model=VEO, size="1920x1080", seconds=8)
    await client.create(prompt="veo img", model=VEO, size="720x1280", seconds=4, image=png, audio=False)
    await client.create(prompt="kling", model=KLING, size="1080x1080", seconds=10, audio=True)
    await client.create(prompt="kling img", model=KLING, size="1920x1080", seconds=5, image=png)
    await client.create(prompt="wan", model=WAN, size="1280x720", seconds=10, audio=False)
    await client.create(prompt="wan img", model=WAN, size="1280x720", seconds=5, image=png)

    sent = [(call.path, call.json) for call in fake.calls if call.method == "POST"]
    image = data_url(png)
    assert sent == [
        (
            "/fal-ai/veo3.1",
            {"prompt": "veo", "duration": "8s", "aspect_ratio": "16:9", "resolution": "1080p"},
        ),
        (
            "/fal-ai/veo3.1/image-to-video",
            {
                "prompt": "veo img",
                "duration": "4s",
                "aspect_ratio": "9:16",
                "resolution": "720p",
                "generate_audio": False,
                "image_url": image,
            },
        ),
        (
            "/fal-ai/kling-video/v2.6/pro/text-to-video",
            {"prompt": "kling", "duration": "10", "aspect_ratio": "1:1", "generate_audio": True},
        ),
        (
            "/fal-ai/kling-video/v2.6/pro/image-to-video",
            {"prompt": "kling img", "duration": "5", "start_image_url": image},
        ),
        (
            "/fal-ai/wan-25-preview/text-to-video",
            {"prompt": "wan", "duration": "10", "aspect_ratio": "16:9", "resolution": "720p"},
        ),
        (
            "/fal-ai/wan-25-preview/image-to-video",
            {"prompt": "wan img", "duration": "5", "resolution": "720p", "image_url": image},
        ),
    ]
    assert all(call.headers["authorization"] == f"Key {fake.api_key}" for call in fake.calls)


async def test_a_job_waits_in_the_queue_runs_and_finishes_at_its_own_urls(
    fake: FakeFal, client: FalVideoClient, tmp_path: Path
) -> None:
    video = await client.create(prompt="p", model=KLING, size="1920x1080", seconds=5)
    assert (video.status, video.queue_position) == (VideoStatus.QUEUED, 2)
    urls = json.loads(video.locator or "")
    assert urls == {
        key: f"{fake.origin}/fal-ai/kling-video/requests/{video.id}{tail}"
        for key, tail in (("response_url", ""), ("status_url", "/status"), ("cancel_url", "/cancel"))
    }

    seen = [await client.retrieve(video.id, video.locator) for _ in range(4)]

    assert [(v.status, v.queue_position) for v in seen] == [
        (VideoStatus.QUEUED, 1),
        (VideoStatus.QUEUED, 0),
        (VideoStatus.IN_PROGRESS, None),
        (VideoStatus.COMPLETED, None),
    ]
    done = seen[-1]
    assert done.locator == video.locator and done.cost_micros is None
    assert done.result_url == f"{fake.cdn_origin}/files/{video.id}/output.mp4"
    api_paths = {call.path for call in fake.calls if call.method == "GET" and call.port == fake.port}
    assert api_paths == {
        f"/fal-ai/kling-video/requests/{video.id}/status",
        f"/fal-ai/kling-video/requests/{video.id}",
    }

    dest = tmp_path / "clip.mp4"
    assert await client.download(done, dest) == dest.stat().st_size
    assert dest.read_bytes() == await fake.request_bytes(video.id)
    (cdn,) = fake.cdn_calls
    assert "authorization" not in cdn.headers and fake.api_key not in str(cdn.headers)


async def _completed(fake: FakeFal, client: FalVideoClient) -> Video:
    fake.queue_ahead, fake.running_polls = 0, 0
    video = await client.create(prompt="p", model=VEO, size="1280x720", seconds=4)
    done = await client.retrieve(video.id, video.locator)
    assert done.status is VideoStatus.COMPLETED
    return done


async def test_a_result_that_expired_is_gone_with_a_plain_reason(
    fake: FakeFal, client: FalVideoClient, clock: ManualClock, tmp_path: Path
) -> None:
    done = await _completed(fake, client)
    clock.advance(3599)
    assert (await client.retrieve(done.id, done.locator)).result_url == done.result_url
    clock.advance(2)
    with pytest.raises(NotFoundError, match="keeps a result for an hour"):
        await client.retrieve(done.id, done.locator)

    fake.delete_media(done.id)
    with pytest.raises(NotFoundError, match="no longer has this video"):
        await client.download(done, tmp_path / "clip.mp4")
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_a_run_that_failed_is_a_failed_video_with_its_reason(
    fake: FakeFal, client: FalVideoClient
) -> None:
    fake.queue_ahead, fake.running_polls = 0, 1
    fake.fail_next_job()
    video = await client.create(prompt="p", model=VEO, size="1280x720", seconds=4)
    assert (await client.retrieve(video.id, video.locator)).status is VideoStatus.IN_PROGRESS

    failed = await client.retrieve(video.id, video.locator)

    assert failed.status is VideoStatus.FAILED and failed.result_url is None
    assert failed.error is not None and failed.error.code == "content_policy_violation"
    assert (
        failed.error.message.startswith("The content could not be processed") and failed.error.is_moderation
    )


async def test_a_result_that_is_the_models_refusal_fails_the_video(
    fake: FakeFal, client: FalVideoClient
) -> None:
    fake.queue_ahead, fake.running_polls = 0, 0
    video = await client.create(prompt="p", model=VEO, size="1280x720", seconds=4)
    refusal = {
        "detail": [{"loc": ["body", "prompt"], "msg": "Prompt flagged", "type": "content_policy_violation"}]
    }
    fake.fail_next("GET", f"/fal-ai/veo3.1/requests/{video.id}", 422, body=refusal)

    failed = await client.retrieve(video.id, video.locator)

    assert failed.status is VideoStatus.FAILED
    assert failed.error is not None and failed.error.message == "prompt: Prompt flagged."
    assert failed.error.is_moderation


async def test_cancel_stops_a_queued_job_and_says_when_it_was_too_late(
    fake: FakeFal, client: FalVideoClient
) -> None:
    video = await client.create(prompt="p", model=VEO, size="1280x720", seconds=4)

    assert await client.cancel(video.id, video.locator) is True
    assert fake.count("PUT", f"/fal-ai/veo3.1/requests/{video.id}/cancel") == 1
    ended = await client.retrieve(video.id, video.locator)
    assert ended.status is VideoStatus.FAILED and ended.error is not None

    done = await _completed(fake, client)
    assert await client.cancel(done.id, done.locator) is False
    with pytest.raises(NotFoundError, match="queue URLs were not kept"):
        await client.cancel(done.id, None)
    with pytest.raises(NotFoundError, match="queue URLs were not kept"):
        await client.retrieve(done.id, "{}")


async def test_errors_map_to_what_the_bot_does_about_them(
    fake: FakeFal, client: FalVideoClient, session: aiohttp.ClientSession, sleeps: Sleeps
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        await client.create(prompt="p", model=KLING, size="1920x1080", seconds=7)
    assert str(refused.value.message) == "duration: Input should be '5' or '10'."
    moderation = {
        "detail": [{"loc": ["body", "prompt"], "msg": "flagged", "type": "content_policy_violation"}]
    }
    fake.fail_next("POST", "/fal-ai/veo3.1", 422, body=moderation)
    with pytest.raises(ModerationError):
        await client.create(prompt="p", model=VEO, size="1280x720", seconds=4)
    unknown = ModelSpec(id="fal-ai/veo9", label="Veo 9", seconds=(4,), sizes=("1280x720",))
    with pytest.raises(NotFoundError, match="not found"):
        await client.create(prompt="p", model=unknown, size="1280x720", seconds=4)
    fake.fail_next("POST", "/fal-ai/veo3.1", 502)
    with pytest.raises(ServerError):  # the job may exist: a second POST could bill twice
        await client.create(prompt="p", model=VEO, size="1280x720", seconds=4)
    assert sleeps == []

    fake.fail_next("POST", "/fal-ai/veo3.1", 429, headers={"Retry-After": "2"})
    video = await client.create(prompt="p", model=VEO, size="1280x720", seconds=4)
    assert sleeps == [2.0] and video.id in fake.requests
    fake.fail_next("GET", ".*/status", 429)
    with pytest.raises(RateLimitedError):
        await client.retrieve(video.id, video.locator)

    wrong = FalVideoClient(fake.base_url, "fal-wrong-key:000000", session, sleep=sleeps)
    with pytest.raises(AuthenticationError):
        await wrong.retrieve(video.id, video.locator)


async def test_the_built_in_catalogue_loads_and_its_requests_are_accepted(
    fake: FakeFal, client: FalVideoClient, png: ReferenceImage
) -> None:
    catalogue = Catalogue.load("fal")
    specs = catalogue.offered()
    assert {spec.id for spec in specs} == {
        "fal-ai/veo3.1",
        "fal-ai/kling-video/v2.6/pro/text-to-video",
        "fal-ai/wan-25-preview/text-to-video",
    }
    for spec in specs:
        for size in spec.sizes:
            for seconds in spec.seconds:
                await client.create(prompt="p", model=spec, size=size, seconds=seconds, audio=False)
            await client.create(prompt="p", model=spec, size=size, seconds=spec.seconds[0], image=png)
    assert len(fake.requests) == sum(len(spec.sizes) * (len(spec.seconds) + 1) for spec in specs)
