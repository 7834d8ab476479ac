"""OpenRouter: the fake checked with OpenRouter's official SDK, then our client against the fake over HTTP."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openrouter
import pytest
from openrouter import errors as sdk_errors
from PIL import Image

from bot.catalogue import Audio, Catalogue, ModelSpec
from bot.videos import (
    DIALECTS,
    AuthenticationError,
    BillingError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    ReferenceImage,
    ServerError,
    UnsupportedOperation,
    VideoStatus,
    create_video_client,
)
from bot.videos.openrouter import OpenRouterVideoClient, aspect_ratio, size_params
from tests.fakes.openrouter_fake import FakeOpenRouter

VEO = ModelSpec(
    id="google/veo-3.1",
    label="Veo 3.1",
    seconds=(4, 6, 8),
    sizes=("1280x720", "720x1280", "1920x1080"),
    image=True,
    audio=Audio.OPTIONAL,
    wire={"size_fields": ["aspect_ratio", "resolution"]},
)
WAN = ModelSpec(id="alibaba/wan-2.6", label="Wan 2.6", seconds=(5, 10), sizes=("1280x720",), image=True)
HAILUO = ModelSpec(
    id="minimax/hailuo-2.3",
    label="Hailuo 2.3",
    seconds=(6, 10),
    sizes=("1366x768",),
    audio=Audio.NONE,
    wire={"size_fields": ["resolution"]},
)


class Sleeps(list[float]):
    """Records what inline retries wait, without waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as fake:
        yield fake


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake: FakeOpenRouter, session: aiohttp.ClientSession, sleeps: Sleeps) -> OpenRouterVideoClient:
    return OpenRouterVideoClient(fake.base_url, fake.api_key, session, sleep=sleeps)


@pytest.fixture
def png(tmp_path: Path) -> ReferenceImage:
    path = tmp_path / "first.png"
    Image.new("RGB", (1280, 720), (200, 40, 90)).save(path)
    return ReferenceImage(path, "image/png")


def sdk(fake: FakeOpenRouter, key: str | None = None) -> openrouter.OpenRouter:
    return openrouter.OpenRouter(api_key=key or fake.api_key, server_url=fake.base_url)


# -- the fake, as OpenRouter's official SDK sees it ---------------------------------------------------


async def test_sdk_submits_polls_and_downloads_from_the_fake(
    fake: FakeOpenRouter, png: ReferenceImage
) -> None:
    image = "data:image/png;base64," + base64.b64encode(png.path.read_bytes()).decode()
    async with sdk(fake) as api:
        job = await api.video_generation.generate_async(
            model="google/veo-3.1",
            prompt="a red fox in snow",
            duration=8,
            aspect_ratio="16:9",
            resolution="720p",
            generate_audio=True,
            frame_images=[{"type": "image_url", "image_url": {"url": image}, "frame_type": "first_frame"}],
        )
        assert job.status == "pending" and job.polling_url.endswith(f"/videos/{job.id}")
        seen = [(await api.video_generation.get_generation_async(job_id=job.id)).status for _ in range(3)]
        done = await api.video_generation.get_generation_async(job_id=job.id)
        content = await api.video_generation.get_video_content_async(job_id=job.id, index=0)
        data = await content.aread()

    assert seen == ["pending", "in_progress", "completed"]
    assert done.usage is not None and done.usage.cost == pytest.approx(3.2)
    assert done.unsigned_urls and done.urls and done.expires_at
    assert data == await fake.job_bytes(job.id) and data[4:8] == b"ftyp"
    assert fake.jobs[job.id].frame_images[0]["image_url"]["url"] == image


async def test_sdk_reads_the_fakes_model_list(fake: FakeOpenRouter) -> None:
    async with sdk(fake, key="unused") as api:
        listed = await api.video_generation.list_videos_models_async()
    assert [model.id for model in listed.data] == [model["id"] for model in fake.models]
    assert listed.data[0].supported_sizes is None and listed.data[0].supported_durations == [8, 4, 6]


async def test_sdk_sees_the_fakes_errors_as_openrouters(fake: FakeOpenRouter) -> None:
    fake.fail_next("POST", "/videos", 402)
    async with sdk(fake) as api:
        with pytest.raises(sdk_errors.PaymentRequiredResponseError, match="Insufficient credits"):
            await api.video_generation.generate_async(model="alibaba/wan-2.6", prompt="x", duration=5)
        with pytest.raises(sdk_errors.BadRequestResponseError, match="duration 7"):
            await api.video_generation.generate_async(model="alibaba/wan-2.6", prompt="x", duration=7)
        with pytest.raises(sdk_errors.NotFoundResponseError):
            await api.video_generation.get_generation_async(job_id="gen-vid-0-missing")
    async with sdk(fake, key="sk-or-v1-wrong") as api:
        with pytest.raises(sdk_errors.UnauthorizedResponseError):
            await api.video_generation.get_generation_async(job_id="gen-vid-0-missing")


# -- our client against the fake ------------------------------------------------------------------


def test_the_dialect_is_registered(fake: FakeOpenRouter, session: aiohttp.ClientSession) -> None:
    client = create_video_client("OpenRouter", fake.base_url, fake.api_key, session)
    assert DIALECTS["openrouter"] is OpenRouterVideoClient and isinstance(client, OpenRouterVideoClient)
    assert (client.can_cancel, client.can_list) == (False, False)


def test_sizes_become_the_fields_a_model_wants() -> None:
    assert size_params("1920x1080", ["aspect_ratio", "resolution"]) == {
        "aspect_ratio": "16:9",
        "resolution": "1080p",
    }
    assert size_params("720x1280", ["size"]) == {"size": "720x1280"}
    assert [aspect_ratio(*side) for side in ((1366, 768), (720, 720), (854, 480), (1080, 1920))] == [
        "16:9",
        "1:1",
        "16:9",
        "9:16",
    ]
    with pytest.raises(ValueError, match="pixels"):
        size_params("1280x720", ["pixels"])


async def test_text_jobs_send_each_models_own_fields(
    fake: FakeOpenRouter, client: OpenRouterVideoClient
) -> None:
    await client.create(prompt="veo", model=VEO, size="720x1280", seconds=8)
    await client.create(prompt="veo quiet", model=VEO, size="1920x1080", seconds=4, audio=False)
    await client.create(prompt="wan", model=WAN, size="1280x720", seconds=5, audio=True)
    await client.create(prompt="hailuo", model=HAILUO, size="1366x768", seconds=6, audio=True)

    bodies = [call.json for call in fake.calls if call.method == "POST"]
    assert bodies == [
        {
            "model": "google/veo-3.1",
            "prompt": "veo",
            "duration": 8,
            "aspect_ratio": "9:16",
            "resolution": "720p",
        },
        {
            "model": "google/veo-3.1",
            "prompt": "veo quiet",
            "duration": 4,
            "aspect_ratio": "16:9",
            "resolution": "1080p",
            "generate_audio": False,
        },
        {"model": "alibaba/wan-2.6", "prompt": "wan", "duration": 5, "size": "1280x720"},
        {"model": "minimax/hailuo-2.3", "prompt": "hailuo", "duration": 6, "resolution": "768p"},
    ]
    assert all(call.headers["authorization"] == f"Bearer {fake.api_key}" for call in fake.calls)


async def test_an_image_travels_as_the_first_frame(
    fake: FakeOpenRouter, client: OpenRouterVideoClient, png: ReferenceImage
) -> None:
    video = await client.create(prompt="from a frame", model=WAN, size="1280x720", seconds=10, image=png)

    (frame,) = fake.jobs[video.id].frame_images
    assert frame == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(png.path.read_bytes()).decode()},
        "frame_type": "first_frame",
    }
    with pytest.raises(InvalidRequestError, match=r"Hailuo 2\.3 cannot start from an image"):
        await client.create(prompt="x", model=HAILUO, size="1366x768", seconds=6, image=png)
    assert fake.count("POST", "/videos") == 1


@pytest.mark.parametrize("absolute", [False, True])
async def test_a_job_is_polled_at_its_polling_url_until_it_is_done(
    fake: FakeOpenRouter, client: OpenRouterVideoClient, absolute: bool
) -> None:
    fake.absolute_polling_url = absolute
    fake.send_progress = True
    video = await client.create(prompt="p", model=WAN, size="1280x720", seconds=10)
    assert video.status is VideoStatus.QUEUED
    assert video.locator == f"{fake.base_url}/videos/{video.id}"

    seen = [await client.retrieve(video.id, video.locator) for _ in range(3)]

    assert [(v.status, v.progress) for v in seen] == [
        (VideoStatus.QUEUED, None),
        (VideoStatus.IN_PROGRESS, 67),
        (VideoStatus.COMPLETED, None),
    ]
    done = seen[-1]
    assert done.cost_micros == 1_000_000  # 10 s at $0.10 (usage.cost)
    assert done.result_url is not None and done.result_url.startswith(fake.cdn_origin + "/signed/")
    assert done.locator == video.locator and fake.count("GET", f"/videos/{video.id}") == 3


async def test_pending_straight_to_completed_and_unknown_statuses(
    fake: FakeOpenRouter, client: OpenRouterVideoClient
) -> None:
    fake.poll_script = ("pending", "warming_up", "completed")
    video = await client.create(prompt="p", model=WAN, size="1280x720", seconds=5)
    statuses = [(await client.retrieve(video.id, video.locator)).status for _ in range(3)]
    assert statuses == [VideoStatus.QUEUED, VideoStatus.IN_PROGRESS, VideoStatus.COMPLETED]

    fake.poll_script = ("pending", "completed")
    video = await client.create(prompt="p", model=WAN, size="1280x720", seconds=5)
    statuses = [(await client.retrieve(video.id)).status for _ in range(2)]  # no locator: the id route
    assert statuses == [VideoStatus.QUEUED, VideoStatus.COMPLETED]


@pytest.mark.parametrize(
    ("end", "error", "status", "code", "message"),
    [
        ("failed", "Content policy violation", VideoStatus.FAILED, None, "Content policy violation"),
        ("cancelled", "Job was cancelled", VideoStatus.CANCELLED, None, "Job was cancelled"),
        ("expired", None, VideoStatus.FAILED, "expired", "OpenRouter gave up on this job"),
    ],
)
async def test_jobs_that_end_without_a_video(
    fake: FakeOpenRouter,
    client: OpenRouterVideoClient,
    end: str,
    error: str | None,
    status: VideoStatus,
    code: str | None,
    message: str,
) -> None:
    fake.poll_script = ("pending", "completed")
    fake.end_next_job(end, error)
    video = await client.create(prompt="p", model=WAN, size="1280x720", seconds=5)
    await client.retrieve(video.id, video.locator)
    ended = await client.retrieve(video.id, video.locator)
    assert ended.status is status and ended.cost_micros is None and ended.result_url is None
    assert ended.error is not None and ended.error.code == code and ended.error.message.startswith(message)
    assert ended.error.is_moderation == (end == "failed")


async def _finished(fake: FakeOpenRouter, client: OpenRouterVideoClient) -> tuple[str, object]:
    fake.poll_script = ("completed",)
    video = await client.create(prompt="p", model=VEO, size="1280x720", seconds=4)
    return video.id, await client.retrieve(video.id, video.locator)


async def test_download_uses_the_keyed_content_route(
    fake: FakeOpenRouter, client: OpenRouterVideoClient, tmp_path: Path
) -> None:
    job_id, done = await _finished(fake, client)
    dest = tmp_path / "clip.mp4"

    written = await client.download(done, dest)  # type: ignore[arg-type]

    assert dest.read_bytes() == await fake.job_bytes(job_id) and written == dest.stat().st_size
    (call,) = [call for call in fake.calls if call.path.endswith("/content")]
    assert call.query == {"index": "0"} and call.headers["authorization"] == f"Bearer {fake.api_key}"
    assert fake.cdn_calls == []
    with pytest.raises(UnsupportedOperation):
        await client.download(done, tmp_path / "thumb.webp", variant="thumbnail")  # type: ignore[arg-type]


async def test_download_falls_back_to_the_signed_url_without_the_key(
    fake: FakeOpenRouter, client: OpenRouterVideoClient, tmp_path: Path
) -> None:
    job_id, done = await _finished(fake, client)
    fake.fail_next("GET", f"/videos/{job_id}/content", 404)
    dest = tmp_path / "clip.mp4"

    await client.download(done, dest)  # type: ignore[arg-type]

    assert dest.read_bytes() == await fake.job_bytes(job_id)
    (cdn,) = fake.cdn_calls
    assert "authorization" not in cdn.headers and fake.api_key not in str(cdn.headers)


async def test_a_file_that_is_gone_everywhere_is_not_found(
    fake: FakeOpenRouter, client: OpenRouterVideoClient, tmp_path: Path
) -> None:
    job_id, done = await _finished(fake, client)
    fake.drop_outputs(job_id)
    with pytest.raises(NotFoundError):
        await client.download(done, tmp_path / "clip.mp4")  # type: ignore[arg-type]
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_a_provider_error_on_the_content_route_is_retried(
    fake: FakeOpenRouter, client: OpenRouterVideoClient, sleeps: Sleeps, tmp_path: Path
) -> None:
    job_id, done = await _finished(fake, client)
    fake.fail_next("GET", f"/videos/{job_id}/content", 502)
    await client.download(done, tmp_path / "clip.mp4")  # type: ignore[arg-type]
    assert len(sleeps) == 1 and fake.count("GET", f"/videos/{job_id}/content") == 2


async def test_submission_errors_map_to_what_the_bot_does_about_them(
    fake: FakeOpenRouter, client: OpenRouterVideoClient, session: aiohttp.ClientSession, sleeps: Sleeps
) -> None:
    fake.fail_next("POST", "/videos", 402)
    with pytest.raises(BillingError, match="Insufficient credits"):
        await client.create(prompt="p", model=WAN, size="1280x720", seconds=5)
    with pytest.raises(InvalidRequestError, match="duration 7 is not supported"):
        await client.create(prompt="p", model=WAN, size="1280x720", seconds=7)
    fake.fail_next("POST", "/videos", 502)
    with pytest.raises(ServerError):  # the job may exist: a second POST could bill twice
        await client.create(prompt="p", model=WAN, size="1280x720", seconds=5)
    assert fake.count("POST", "/videos") == 3 and sleeps == []

    fake.fail_next("POST", "/videos", 429, headers={"Retry-After": "3"})
    video = await client.create(prompt="p", model=WAN, size="1280x720", seconds=5)
    assert sleeps == [3.0] and video.id in fake.jobs

    fake.fail_next("GET", "/videos/.+", 429, headers={"Retry-After": "7"})
    with pytest.raises(RateLimitedError) as limited:
        await client.retrieve(video.id, video.locator)  # polls are not retried inline
    assert limited.value.retry_after == 7.0
    with pytest.raises(NotFoundError):
        await client.retrieve("gen-vid-0-unknown")

    wrong = OpenRouterVideoClient(fake.base_url, "sk-or-v1-wrong-key-000", session, sleep=sleeps)
    with pytest.raises(AuthenticationError) as denied:
        await wrong.retrieve(video.id, video.locator)
    assert not isinstance(denied.value, BillingError)


async def test_a_polling_url_elsewhere_is_not_followed_and_a_missing_one_keeps_ours(
    fake: FakeOpenRouter, client: OpenRouterVideoClient
) -> None:
    fake.fail_next(
        "POST",
        "/videos",
        202,
        body={"id": "job-1", "polling_url": "https://elsewhere.example/x", "status": "pending"},
    )
    video = await client.create(prompt="p", model=WAN, size="1280x720", seconds=5)
    assert video.id == "job-1" and video.locator is None

    job = await client.create(prompt="p", model=WAN, size="1280x720", seconds=5)
    fake.fail_next("GET", f"/videos/{job.id}", 200, body={"id": job.id, "status": "in_progress"})
    polled = await client.retrieve(job.id, job.locator)  # an answer without a polling_url keeps ours
    assert polled.status is VideoStatus.IN_PROGRESS and polled.locator == job.locator


async def test_the_model_list_becomes_catalogue_entries_the_fake_accepts(
    fake: FakeOpenRouter, client: OpenRouterVideoClient
) -> None:
    specs = {spec.id: spec for spec in await client.list_models()}

    veo = specs["google/veo-3.1"]
    assert veo.seconds == (4, 6, 8) and veo.image and veo.audio is Audio.OPTIONAL
    assert set(veo.sizes) == {"1280x720", "720x1280", "1920x1080", "1080x1920"}
    assert veo.micros_per_second["1920x1080"] == 400_000
    assert specs["minimax/hailuo-2.3"].audio is Audio.NONE
    for spec in specs.values():
        for size in spec.sizes:
            await client.create(prompt="p", model=spec, size=size, seconds=spec.seconds[0])
    assert len(fake.jobs) == sum(len(spec.sizes) for spec in specs.values())


async def test_the_built_in_catalogue_loads_and_its_requests_are_accepted(
    fake: FakeOpenRouter, client: OpenRouterVideoClient, png: ReferenceImage
) -> None:
    catalogue = Catalogue.load("openrouter")
    offered = [spec.id for spec in catalogue.offered()]
    assert offered and all(catalogue.get(model_id) for model_id in offered)
    known = {model["id"] for model in fake.models}
    checked = [spec for spec in (catalogue.get(model_id) for model_id in known) if spec is not None]
    assert {spec.id for spec in checked} == known
    for spec in checked:
        for size in spec.sizes:
            for seconds in spec.seconds:
                await client.create(prompt="p", model=spec, size=size, seconds=seconds, audio=False)
        await client.create(prompt="p", model=spec, size=spec.sizes[0], seconds=spec.seconds[0], image=png)
