"""The fake Videos API checked with raw HTTP, so a broken fake cannot make a client or bot test pass."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import av
import pytest
from PIL import Image

from tests.fakes.videos_fake import SATURATED_MESSAGE, FakeVideosAPI, ManualClock


@pytest.fixture
async def http(fake: FakeVideosAPI) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


def form(**fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        data.add_field(name, value)
    return data


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()


async def create(
    http: aiohttp.ClientSession, fake: FakeVideosAPI, **fields: str
) -> tuple[int, dict[str, Any]]:
    fields = {"prompt": "a red fox", "model": "sora-2", "seconds": "4", "size": "1280x720", **fields}
    async with http.post(f"{fake.base_url}/videos", data=form(**fields)) as resp:
        return resp.status, await resp.json()


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as resp:
        return resp.status, await resp.json()


def invalid(message: str, param: str | None, code: str | None = "invalid_value") -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


@pytest.mark.parametrize(
    ("fields", "body"),
    [
        (
            {"seconds": "10"},
            invalid("Invalid value: '10'. Supported values are: '4', '8', and '12'.", "seconds"),
        ),
        (
            {"model": "sora-3"},
            invalid(
                "Invalid value: 'sora-3'. Supported values are: 'sora-2', 'sora-2-pro', 'minimax/h3',"
                " and 'muse-video'.",
                "model",
            ),
        ),
        (
            {"size": "640x480"},
            invalid(
                "Invalid value: '640x480'. Supported values are: "
                "'720x1280', '1280x720', '1024x1792', and '1792x1024'.",
                "size",
            ),
        ),
        (
            {"size": "1792x1024"},
            invalid(
                "Invalid value: '1792x1024'. "
                "Supported values for model 'sora-2' are: '720x1280' and '1280x720'.",
                "size",
            ),
        ),
        (
            {"prompt": ""},
            invalid(
                "Invalid 'prompt': string too short. Expected a string with minimum length 1, "
                "but got an empty string instead.",
                "prompt",
                "string_below_min_length",
            ),
        ),
        (
            {"prompt": "x" * 32001},
            invalid(
                "Invalid 'prompt': string too long. Expected a string with maximum length 32000, "
                "but got a string with length 32001 instead.",
                "prompt",
                "string_above_max_length",
            ),
        ),
    ],
)
async def test_create_refuses_bad_values_with_openai_bodies(
    http: aiohttp.ClientSession, fake: FakeVideosAPI, fields: dict[str, str], body: dict[str, Any]
) -> None:
    assert await create(http, fake, **fields) == (400, body)
    assert fake.videos == {}


async def test_create_accepts_the_largest_prompt_and_json(
    http: aiohttp.ClientSession, fake: FakeVideosAPI
) -> None:
    status, video = await create(http, fake, prompt="x" * 32000, model="sora-2-pro", size="1792x1024")
    assert status == 200 and video["status"] == "queued" and video["seconds"] == "4"
    json_body = {"prompt": "p", "model": "sora-2", "seconds": "8", "size": "720x1280"}
    async with http.post(f"{fake.base_url}/videos", json=json_body) as resp:
        assert resp.status == 200
        assert (await resp.json())["seconds"] == "8"
    async with http.post(f"{fake.base_url}/videos", json={**json_body, "seconds": 8}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_type"


async def test_auth_is_checked(fake: FakeVideosAPI) -> None:
    async with aiohttp.ClientSession() as anonymous:
        status, body = await get_json(anonymous, f"{fake.base_url}/videos")
        assert status == 401 and "didn't provide an API key" in body["error"]["message"]
        async with anonymous.get(
            f"{fake.base_url}/videos", headers={"Authorization": "Bearer sk-wrong-key-123456"}
        ) as resp:
            body = await resp.json()
    assert resp.status == 401
    assert (
        body["error"]["code"] == "invalid_api_key" and "sk-wrong-key-123456" not in body["error"]["message"]
    )


async def test_input_reference_must_match_the_size(http: aiohttp.ClientSession, fake: FakeVideosAPI) -> None:
    def with_image(data: bytes, content_type: str) -> aiohttp.FormData:
        body = form(prompt="p", model="sora-2", seconds="4", size="1280x720")
        body.add_field("input_reference", data, filename="ref.png", content_type=content_type)
        return body

    async with http.post(f"{fake.base_url}/videos", data=with_image(png(1280, 720), "image/png")) as resp:
        assert resp.status == 200
    async with http.post(f"{fake.base_url}/videos", data=with_image(png(1280, 719), "image/png")) as resp:
        assert (resp.status, await resp.json()) == (
            400,
            invalid("Inpaint image must match the requested width and height", None, None),
        )
    async with http.post(f"{fake.base_url}/videos", data=with_image(b"GIF89a", "image/gif")) as resp:
        assert resp.status == 400
        assert "unsupported mimetype ('image/gif')" in (await resp.json())["error"]["message"]
    upload = fake.calls[0].files["input_reference"]
    assert (upload.content_type, upload.filename, upload.data) == ("image/png", "ref.png", png(1280, 720))


async def test_job_advances_with_the_clock(
    http: aiohttp.ClientSession, fake: FakeVideosAPI, clock: ManualClock
) -> None:
    _, video = await create(http, fake)
    url = f"{fake.base_url}/videos/{video['id']}"
    seen = []
    for _ in range(6):
        _, body = await get_json(http, url)
        seen.append((body["status"], body["progress"]))
        clock.advance(0.25)
    assert seen == [
        ("queued", 0),
        ("in_progress", 25),
        ("in_progress", 50),
        ("in_progress", 75),
        ("completed", 100),
        ("completed", 100),
    ]
    assert body["expires_at"] == body["completed_at"] + 3600


async def test_content_is_a_real_mp4_of_the_requested_size(
    http: aiohttp.ClientSession, fake: FakeVideosAPI
) -> None:
    _, first = await create(http, fake, size="720x1280")
    _, second = await create(http, fake, size="720x1280")
    for video_id in (first["id"], second["id"]):
        fake.complete(video_id)
    async with http.get(f"{fake.base_url}/videos/{first['id']}/content") as resp:
        assert resp.status == 200 and resp.content_type == "video/mp4"
        data = await resp.read()
    assert data == (await fake.content_path(first["id"])).read_bytes()
    assert data != (await fake.content_path(second["id"])).read_bytes()
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (720, 1280)
        assert container.streams.audio, "the clip must have sound"
        assert container.duration / av.time_base == pytest.approx(4, abs=0.2)
    for variant, kind, fmt in (("thumbnail", "image/webp", "WEBP"), ("spritesheet", "image/jpeg", "JPEG")):
        async with http.get(f"{fake.base_url}/videos/{first['id']}/content?variant={variant}") as resp:
            assert resp.content_type == kind
            assert Image.open(io.BytesIO(await resp.read())).format == fmt


async def test_unfinished_and_expired_content_is_refused(
    http: aiohttp.ClientSession, fake: FakeVideosAPI
) -> None:
    _, video = await create(http, fake)
    url = f"{fake.base_url}/videos/{video['id']}/content"
    async with http.get(url) as resp:
        assert resp.status == 400
    fake.complete(video["id"])
    fake.expire(video["id"])
    async with http.get(url) as resp:
        assert resp.status == 404


async def test_list_pages_newest_first(http: aiohttp.ClientSession, fake: FakeVideosAPI) -> None:
    ids = [(await create(http, fake, prompt=f"clip {n}"))[1]["id"] for n in range(5)]
    newest_first = ids[::-1]
    _, page = await get_json(http, f"{fake.base_url}/videos?limit=2")
    assert [v["id"] for v in page["data"]] == newest_first[:2]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (newest_first[0], newest_first[1], True)
    _, page = await get_json(http, f"{fake.base_url}/videos?limit=2&after={page['last_id']}")
    assert [v["id"] for v in page["data"]] == newest_first[2:4] and page["has_more"] is True
    _, page = await get_json(http, f"{fake.base_url}/videos?limit=2&after={page['last_id']}")
    assert [v["id"] for v in page["data"]] == newest_first[4:] and page["has_more"] is False
    _, page = await get_json(http, f"{fake.base_url}/videos?order=asc&limit=100")
    assert [v["id"] for v in page["data"]] == ids
    status, _ = await get_json(http, f"{fake.base_url}/videos?limit=101")
    assert status == 400


async def test_remix_needs_a_completed_source_and_delete_removes(
    http: aiohttp.ClientSession, fake: FakeVideosAPI
) -> None:
    _, source = await create(http, fake)
    remix_url = f"{fake.base_url}/videos/{source['id']}/remix"
    async with http.post(remix_url, json={"prompt": "make it blue"}) as resp:
        assert resp.status == 400
    fake.complete(source["id"])
    async with http.post(remix_url, json={"prompt": "make it blue"}) as resp:
        remix = await resp.json()
    assert remix["remixed_from_video_id"] == source["id"]
    assert (remix["prompt"], remix["size"], remix["seconds"]) == ("make it blue", "1280x720", "4")
    async with http.delete(f"{fake.base_url}/videos/{source['id']}") as resp:
        assert await resp.json() == {"id": source["id"], "object": "video.deleted", "deleted": True}
    status, _ = await get_json(http, f"{fake.base_url}/videos/{source['id']}")
    assert status == 404


async def test_moderation_switches(
    http: aiohttp.ClientSession, fake: FakeVideosAPI, clock: ManualClock
) -> None:
    fake.refuse_next_submission()
    status, body = await create(http, fake)
    assert status == 400 and body["error"]["code"] == "moderation_blocked"
    fake.moderate_next_job()
    _, video = await create(http, fake)
    clock.advance(0.6)
    _, body = await get_json(http, f"{fake.base_url}/videos/{video['id']}")
    assert body["status"] == "failed" and body["error"]["code"] == "moderation_blocked"


async def test_hold_keeps_jobs_running_until_released(
    http: aiohttp.ClientSession, fake: FakeVideosAPI, clock: ManualClock
) -> None:
    release = fake.hold_jobs()
    _, video = await create(http, fake)
    url = f"{fake.base_url}/videos/{video['id']}"
    clock.advance(5)
    _, body = await get_json(http, url)
    assert body["status"] == "in_progress"
    release.set()
    _, body = await get_json(http, url)
    assert body["status"] == "completed"


async def test_fail_next_vanish_and_unreachable(http: aiohttp.ClientSession, fake: FakeVideosAPI) -> None:
    fake.fail_next("POST", "/videos", 429, headers={"Retry-After": "3"}, count=2)
    for _ in range(2):
        async with http.post(f"{fake.base_url}/videos", data=form(prompt="p")) as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (429, "3")
            assert (await resp.json())["error"]["code"] == "rate_limit_exceeded"
    status, video = await create(http, fake)
    assert status == 200 and fake.count("POST", "/videos") == 3

    fake.vanish(video["id"])
    status, _ = await get_json(http, f"{fake.base_url}/videos/{video['id']}")
    assert status == 404

    fake.unreachable = True
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(http, fake)
    assert fake.calls[-1].dropped and fake.count("POST", "/videos") == 3


async def test_gateway_dialect_shape(
    http: aiohttp.ClientSession, fake: FakeVideosAPI, clock: ManualClock
) -> None:
    fake.gateway = fake.envelope = True
    _, wrapped = await create(http, fake)
    assert wrapped["code"] == "success"
    video = wrapped["data"]
    assert video["id"].startswith("task_") and video["status"] == "NOT_START" and video["progress"] == "0%"
    assert "error" not in video and "completed_at" not in video
    assert video["created_at"] > 10**12  # milliseconds
    clock.advance(0.37)
    _, body = await get_json(http, f"{fake.base_url}/videos/{video['id']}")
    assert (body["data"]["status"], body["data"]["progress"]) == ("IN_PROGRESS", "37%")
    fake.complete(video["id"])
    _, body = await get_json(http, f"{fake.base_url}/videos/{video['id']}")
    assert body["data"]["status"] == "SUCCESS"
    assert body["data"]["video_url"].startswith(fake.cdn_origin + "/files/")
    async with http.get(f"{fake.base_url}/videos/{video['id']}/content") as resp:
        assert resp.status == 404
    async with aiohttp.ClientSession() as anonymous, anonymous.get(body["data"]["video_url"]) as resp:
        assert resp.status == 200 and resp.content_type == "video/mp4"


async def test_gateway_models_take_their_own_seconds_and_sizes(
    http: aiohttp.ClientSession, fake: FakeVideosAPI
) -> None:
    status, video = await create(http, fake, model="minimax/h3", seconds="15", size="1344x768")
    assert status == 200 and (video["model"], video["seconds"], video["size"]) == (
        "minimax/h3",
        "15",
        "1344x768",
    )
    assert await create(http, fake, model="minimax/h3", seconds="16", size="1344x768") == (
        400,
        invalid(
            "Invalid value: '16'. Supported values for model 'minimax/h3' are: "
            + ", ".join(f"'{n}'" for n in range(4, 15))
            + ", and '15'.",
            "seconds",
        ),
    )
    assert await create(http, fake, model="muse-video", seconds="5", size="720x1280") == (
        400,
        invalid(
            "Invalid value: '720x1280'. Supported values for model 'muse-video' are: '1280x720'.", "size"
        ),
    )
    async with http.post(f"{fake.base_url}/videos", data=form(prompt="p", model="minimax/h3")) as resp:
        defaults = await resp.json()
    assert (defaults["seconds"], defaults["size"]) == ("4", "1344x768")  # omitted: the model's first values


async def test_new_api_answers(http: aiohttp.ClientSession, fake: FakeVideosAPI) -> None:
    """providers.md §7: what New-API's /v1/videos routes answer."""
    fake.act_as_new_api()
    _, video = await create(http, fake)
    fake.complete(video["id"])
    status, body = await get_json(http, f"{fake.base_url}/videos/{video['id']}")
    assert status == 200 and body["status"] == "completed" and body["progress"] == 100
    assert body["metadata"]["url"] == f"{fake.cdn_origin}/files/{fake.videos[video['id']].number}.mp4"
    assert await get_json(http, f"{fake.base_url}/videos/task_unknown") == (
        400,
        {"code": "task_not_exist", "message": "task_not_exist", "data": None},
    )
    invalid_url = {
        "message": "Invalid URL (GET /v1/videos)",
        "type": "invalid_request_error",
        "param": "",
        "code": "",
    }
    assert await get_json(http, f"{fake.base_url}/videos?limit=10") == (404, {"error": invalid_url})
    async with http.delete(f"{fake.base_url}/videos/{video['id']}") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["message"] == f"Invalid URL (DELETE /v1/videos/{video['id']})"
    async with http.get(f"{fake.base_url}/videos/{video['id']}/content?variant=thumbnail") as resp:
        assert resp.status == 200 and resp.content_type == "video/mp4"
        assert await resp.read() == (await fake.content_path(video["id"])).read_bytes()


@pytest.mark.parametrize(
    ("key", "path"), [("video_url", ["video_url"]), ("url", ["url"]), ("metadata.url", ["metadata", "url"])]
)
async def test_result_url_key(
    http: aiohttp.ClientSession, fake: FakeVideosAPI, key: str, path: list[str]
) -> None:
    fake.result_url_key = key
    _, video = await create(http, fake)
    _, body = await get_json(http, f"{fake.base_url}/videos/{video['id']}")
    assert not any(name in body for name in ("video_url", "url", "metadata"))  # not before it is done
    fake.complete(video["id"])
    _, body = await get_json(http, f"{fake.base_url}/videos/{video['id']}")
    for name in path:
        body = body[name]
    assert body.startswith(fake.cdn_origin + "/files/")


async def test_upstream_rejection_and_saturation(http: aiohttp.ClientSession, fake: FakeVideosAPI) -> None:
    upstream = {"error": {"message": "Prompt was blocked", "code": "moderation_blocked"}}
    fake.reject_next_upstream(upstream, status=422)
    status, body = await create(http, fake)
    assert status == 422 and body["code"] == "fail_to_fetch_task" and body["data"] is None
    assert json.loads(body["message"]) == upstream
    fake.saturate_next()
    async with http.get(f"{fake.base_url}/videos/video_x") as resp:
        assert (resp.status, resp.content_type) == (429, "text/plain")
        assert (await resp.text()).startswith(SATURATED_MESSAGE)
    assert (await create(http, fake))[0] == 200


async def test_aimlapi_routes(http: aiohttp.ClientSession, fake: FakeVideosAPI) -> None:
    """The AI/ML API as its API reference describes it: its own model ids, cost in ``meta.usage``."""
    url = f"{fake.root_url}/v2/video/generations"
    request = {
        "model": "google/veo-3.1-t2v",
        "prompt": "p",
        "duration": 6,
        "aspect_ratio": "9:16",
        "resolution": "720p",
    }
    async with http.post(url, json=request) as resp:
        created = await resp.json()
    assert created["status"] == "queued" and ":" in created["id"] and "/" in created["id"]
    assert created["meta"] == {"usage": {"credits_used": 4_800_000, "usd_spent": 2.4}}  # 6 s at $0.40
    assert (fake.videos[created["id"]].size, fake.videos[created["id"]].seconds) == ("720x1280", 6)
    fake.complete(created["id"])
    async with http.get(url, params={"generation_id": created["id"]}) as resp:
        body = await resp.json()
    assert body["status"] == "completed" and body["video"]["url"].startswith(fake.cdn_origin)
    for wrong, word in (
        ({"duration": 5}, "duration"),
        ({"resolution": "4k"}, "resolution"),
        ({"aspect_ratio": "1:1"}, "aspect_ratio"),
        ({"image_url": "x"}, "image_url"),
    ):
        async with http.post(url, json={**request, **wrong}) as resp:
            assert resp.status == 400 and (await resp.json())["message"].startswith(word)


async def test_aimlapi_image_models_and_failures(http: aiohttp.ClientSession, fake: FakeVideosAPI) -> None:
    url = f"{fake.root_url}/v2/video/generations"
    image = "data:image/png;base64," + base64.b64encode(png(720, 1280)).decode()
    async with http.post(url, json={"model": "alibaba/wan-2-7-i2v", "prompt": "p"}) as resp:
        assert resp.status == 400 and "image_url is required" in (await resp.json())["message"]
    request = {
        "model": "alibaba/wan-2-7-i2v",
        "prompt": "p",
        "image_url": image,
        "duration": 5,
        "resolution": "720p",
    }
    async with http.post(url, json=request) as resp:
        created = await resp.json()
    assert fake.videos[created["id"]].size == "720x1280"  # no aspect field: the image's shape
    fake.fail(created["id"], code="content_moderation", message="The prompt was flagged")
    async with http.get(url, params={"generation_id": created["id"]}) as resp:
        body = await resp.json()
    assert (body["status"], body["video"]) == ("error", None)
    assert body["error"] == {"name": "content_moderation", "message": "The prompt was flagged"}


def test_manual_clock_steps_on_every_reading() -> None:
    clock = ManualClock(10.0, step=0.5)
    assert [clock(), clock(), clock()] == [10.0, 10.5, 11.0]
    clock.advance(1)
    assert clock() == 12.5


async def test_wait_for_call_wakes_on_the_matching_request(
    http: aiohttp.ClientSession, fake: FakeVideosAPI
) -> None:
    await create(http, fake)
    since = len(fake.calls)
    waiter = asyncio.create_task(fake.wait_for_call(lambda call: call.method == "POST", since=since))
    await get_json(http, f"{fake.base_url}/videos")
    assert not waiter.done()
    await create(http, fake, prompt="second")
    call = await waiter
    assert call.form["prompt"] == "second" and fake.calls.index(call) == since + 1
    with pytest.raises(TimeoutError):
        await fake.wait_for_call(lambda call: call.method == "PATCH", within=0.05)
