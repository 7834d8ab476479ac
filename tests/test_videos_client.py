"""The Videos API client: pure parsing and retry policy, then the real client against the fake over HTTP."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bot.catalogue import Audio, ModelSpec
from bot.videos import (
    DIALECTS,
    AimlapiVideoClient,
    AuthenticationError,
    BillingError,
    InvalidRequestError,
    ModerationError,
    NotFoundError,
    OpenAIVideoClient,
    ProviderUnavailableError,
    RateLimitedError,
    ReferenceImage,
    RetryPolicy,
    ServerError,
    UnsupportedOperation,
    Video,
    VideoAPIError,
    VideoClient,
    VideoError,
    VideoStatus,
    create_video_client,
)
from bot.videos.aimlapi import aspect_and_resolution, cost_micros
from bot.videos.errors import TooLargeError, UnexpectedContentError, error_for_status
from bot.videos.parsing import (
    ErrorDetails,
    normalize_status,
    parse_error_body,
    parse_poll_after,
    parse_progress,
    parse_retry_after,
    parse_seconds,
    parse_timestamp,
    parse_usd_micros,
    parse_video,
    parse_video_page,
    sniff_media,
)
from tests.fakes.mp4 import make_spritesheet_jpeg, make_thumbnail_webp
from tests.fakes.videos_fake import SATURATED_MESSAGE, FakeVideosAPI, ManualClock

SORA = ModelSpec(id="sora-2", label="Sora 2", seconds=(4, 8, 12), sizes=("1280x720", "720x1280"))

# -- parsing ---------------------------------------------------------------------------------------

RUNNING = ["queued", "pending", "submitted", "not_start", "preparing", "unknown", "waiting"]
IN_PROGRESS = ["processing", "in_progress", "running", "generating", "active", "In Progress", "IN-PROGRESS"]
DONE = ["completed", "complete", "success", "succeeded", "finished", "SUCCESS", "Completed"]
FAILED = ["failed", "failure", "fail", "error", "cancelled", "canceled", "expired", "FAILURE"]


@pytest.mark.parametrize(
    ("spelling", "status"),
    [(s, VideoStatus.QUEUED) for s in [*RUNNING, "QUEUED", "NOT_START", "SUBMITTED"]]
    + [(s, VideoStatus.IN_PROGRESS) for s in IN_PROGRESS]
    + [(s, VideoStatus.COMPLETED) for s in DONE]
    + [(s, VideoStatus.FAILED) for s in FAILED],
)
def test_status_spellings(spelling: str, status: VideoStatus) -> None:
    assert normalize_status(spelling) is status


def test_unknown_status_counts_as_running_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="bot.videos.parsing"):
        assert normalize_status("rendering-frames-xyz") is VideoStatus.IN_PROGRESS
        assert normalize_status("rendering-frames-xyz") is VideoStatus.IN_PROGRESS
    assert sum("rendering-frames-xyz" in r.getMessage() for r in caplog.records) == 1
    assert normalize_status(None) is VideoStatus.IN_PROGRESS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(37, 37), (37.9, 37), ("37%", 37), ("37.0%", 37), ("37", 37), (" 5 % ", 5), (150, 100), (-3, 0)],
        *[(None, None), ("", None), ("abc", None), (True, None), (float("nan"), None), ([], None)],
    ],
)
def test_parse_progress(value: object, expected: int | None) -> None:
    assert parse_progress(value) == expected


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.lists(st.integers())))
def test_parse_progress_never_raises_and_stays_in_range(value: object) -> None:
    progress = parse_progress(value)
    assert progress is None or 0 <= progress <= 100


@given(st.integers(min_value=0, max_value=100))
def test_parse_progress_reads_every_gateway_format(percent: int) -> None:
    for text in (percent, float(percent), f"{percent}%", f"{percent}.0%", str(percent)):
        assert parse_progress(text) == percent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4", 4),
        (8, 8),
        ("12", 12),
        ("8.0", 8),
        ("4s", 4),
        (4.5, None),
        ("0", None),
        ("x", None),
        (None, None),
    ],
)
def test_parse_seconds(value: object, expected: int | None) -> None:
    assert parse_seconds(value) == expected


@given(st.integers(min_value=100_000_000, max_value=10_000_000_000))
def test_timestamps_in_seconds_and_milliseconds_agree(seconds: int) -> None:
    assert parse_timestamp(seconds) == seconds
    assert parse_timestamp(seconds * 1000) == seconds
    assert parse_timestamp(str(seconds * 1000)) == seconds


def test_parse_timestamp_odd_values() -> None:
    assert parse_timestamp("2026-03-10T12:00:00Z") == parse_timestamp("2026-03-10T12:00:00") == 1773144000
    assert parse_timestamp(None) is None
    assert parse_timestamp(0) is None
    assert parse_timestamp("soon") is None


def test_parse_video_openai_shape() -> None:
    raw = {
        "id": "video_123",
        "object": "video",
        "created_at": 1760000000,
        "completed_at": None,
        "expires_at": None,
        "model": "sora-2",
        "status": "in_progress",
        "progress": 42,
        "prompt": "a fox",
        "remixed_from_video_id": None,
        "seconds": "8",
        "size": "1280x720",
        "error": None,
    }
    video = parse_video(raw, poll_after=2.5)
    assert video == Video(
        id="video_123",
        status=VideoStatus.IN_PROGRESS,
        progress=42,
        model="sora-2",
        size="1280x720",
        seconds=8,
        prompt="a fox",
        created_at=1760000000.0,
        poll_after=2.5,
    )
    assert video.raw is raw


def test_parse_video_gateway_shape_wrapped_in_new_api_envelope() -> None:
    video = parse_video(
        {
            "code": "success",
            "message": "",
            "data": {
                "task_id": "task_abc",
                "status": "FAILURE",
                "progress": "100%",
                "created_at": 1760000000123,
                "fail_reason": "content moderation: blocked",
            },
        }
    )
    assert (video.id, video.status, video.progress) == ("task_abc", VideoStatus.FAILED, 100)
    assert video.created_at == pytest.approx(1760000000.123)
    assert video.error == VideoError(code=None, message="content moderation: blocked")
    assert video.error.is_moderation
    assert video.model is None and video.seconds is None


@pytest.mark.parametrize(
    "extra",
    [
        {"video_url": "https://cdn.example/v.mp4"},
        {"url": "https://cdn.example/v.mp4"},
        {"result_url": "https://cdn.example/v.mp4"},
        {"metadata": {"url": "https://cdn.example/v.mp4"}},
        {"video": {"url": "https://cdn.example/v.mp4"}},
    ],
)
def test_result_url_is_found_wherever_it_is(extra: dict[str, Any]) -> None:
    video = parse_video({"id": "x", "status": "completed", **extra})
    assert video.result_url == "https://cdn.example/v.mp4"


def test_parse_video_odd_fields() -> None:
    video = parse_video(
        {"id": 17, "status": "SUCCESS", "width": 720, "height": 1280, "duration": 12, "url": "/rel"}
    )
    assert (video.id, video.size, video.seconds, video.result_url) == ("17", "720x1280", 12, None)
    assert parse_video({"id": "e", "status": "error", "error": "boom"}).error == VideoError(None, "boom")
    assert parse_video({"id": "e", "error": {"code": "moderation_blocked"}}).error.is_moderation
    with pytest.raises(ValueError, match="no id"):
        parse_video({"status": "queued"})
    with pytest.raises(ValueError):
        parse_video(["not", "an", "object"])


def test_parse_video_page_with_and_without_cursors() -> None:
    page = parse_video_page(
        {"object": "list", "data": [{"id": "b"}, {"nope": 1}, {"id": "a"}], "first_id": "b", "last_id": "a"}
    )
    assert [v.id for v in page.videos] == ["b", "a"] and page.has_more is False
    page = parse_video_page({"data": [{"id": "b"}, {"id": "a"}], "has_more": True})
    assert (page.first_id, page.last_id, page.has_more) == ("b", "a", True)
    page = parse_video_page([{"id": "z"}])
    assert [v.id for v in page.videos] == ["z"]
    with pytest.raises(ValueError):
        parse_video_page({"data": "oops"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '{"error": {"message": "Invalid value: \'10\'.", "type": "invalid_request_error",'
            ' "param": "seconds", "code": "invalid_value"}}',
            ErrorDetails("Invalid value: '10'.", "invalid_value", "invalid_request_error", "seconds"),
        ),
        ('{"error": "quota exceeded"}', ErrorDetails("quota exceeded")),
        (
            '{"code": "task_not_exist", "message": "task not exist", "data": null}',
            ErrorDetails("task not exist", "task_not_exist"),
        ),
        (
            '{"statusCode": 400, "message": "duration must be 4", "error": "Bad Request"}',
            ErrorDetails("duration must be 4"),
        ),
        ('{"detail": "Not authenticated"}', ErrorDetails("Not authenticated")),
        ("upstream timed out", ErrorDetails("upstream timed out")),
        ("<html><body>502 Bad Gateway</body></html>", ErrorDetails("HTTP 502 Bad Gateway")),
        ("", ErrorDetails("HTTP 502 Bad Gateway")),
        ("[1, 2]", ErrorDetails("HTTP 502 Bad Gateway")),
    ],
)
def test_parse_error_body(body: str, expected: ErrorDetails) -> None:
    assert parse_error_body(body, reason="HTTP 502 Bad Gateway") == expected


def test_upstream_json_inside_a_message_becomes_the_reason() -> None:
    """New-API's fail_to_fetch_task carries the upstream's error answer as a string."""
    upstream = {
        "error": {
            "message": "Your prompt was flagged.",
            "type": "invalid_request_error",
            "code": "moderation_blocked",
        }
    }
    body = json.dumps({"code": "fail_to_fetch_task", "message": json.dumps(upstream), "data": None})
    assert parse_error_body(body) == ErrorDetails(
        "Your prompt was flagged.", "moderation_blocked", "invalid_request_error"
    )
    twice = json.dumps(
        {"code": "fail_to_fetch_task", "message": json.dumps({"message": json.dumps({"msg": "deep"})})}
    )
    assert parse_error_body(twice) == ErrorDetails("deep", "fail_to_fetch_task")
    for message in ("{not json", "{}", '{"data": 1}'):  # nothing better inside: keep it as it came
        assert parse_error_body(json.dumps({"code": "x", "message": message})) == ErrorDetails(message, "x")
    failed = parse_video(
        {"id": "t", "status": "failed", "error": {"code": "task_failed", "message": json.dumps(upstream)}}
    )
    assert (
        failed.error == VideoError("moderation_blocked", "Your prompt was flagged.")
        and failed.error.is_moderation
    )


def test_aimlapi_error_name_is_its_code() -> None:
    video = parse_video(
        {"id": "g", "status": "error", "error": {"name": "ContentPolicyError", "message": "no"}}
    )
    assert video.error == VideoError("ContentPolicyError", "no") and video.status is VideoStatus.FAILED


def test_sniff_media() -> None:
    assert sniff_media(b"\x00\x00\x00\x20ftypisom\x00\x00") == "mp4"
    assert sniff_media(make_thumbnail_webp(16, 16)[:12]) == "webp"
    assert sniff_media(make_spritesheet_jpeg(16, 16)[:12]) == "jpeg"
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    assert sniff_media(png.getvalue()[:12]) == "png"
    assert sniff_media(b"\x1a\x45\xdf\xa3\x01") == "webm"
    assert sniff_media(b"<html>") is None and sniff_media(b"") is None


def test_usd_and_aimlapi_costs() -> None:
    assert [parse_usd_micros(v) for v in (1.95, "0.06", 0, -1, "x", None, True)] == [
        1_950_000,
        60_000,
        0,
        *[None] * 4,
    ]
    assert cost_micros({"meta": {"usage": {"credits_used": 3_900_000, "usd_spent": 1.95}}}) == 1_950_000
    assert cost_micros({"meta": {"usage": {"credits_used": 120_000}}}) == 60_000  # $1 = 2,000,000 credits
    for payload in (
        {},
        {"meta": None},
        {"meta": {"usage": None}},
        {"meta": {"usage": {"credits_used": "lots"}}},
    ):
        assert cost_micros(payload) is None


def test_parse_retry_after_and_poll_after() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412480) == 5.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412490) == 0.0
    assert parse_retry_after({"retry-after": "whenever"}) is None
    assert parse_retry_after({}) is None
    assert parse_poll_after({"openai-poll-after-ms": "1500"}) == 1.5
    assert parse_poll_after({}) is None


@pytest.mark.parametrize(
    ("status", "details", "cls"),
    [
        (400, ErrorDetails("Invalid value"), InvalidRequestError),
        (422, ErrorDetails("Unprocessable"), InvalidRequestError),
        (400, ErrorDetails("blocked", code="moderation_blocked"), ModerationError),
        (
            400,
            ErrorDetails("Your request was rejected by the safety system", type="content_policy_violation"),
            ModerationError,
        ),
        (401, ErrorDetails("bad key"), AuthenticationError),
        (403, ErrorDetails("no access"), AuthenticationError),
        (402, ErrorDetails("no money"), BillingError),
        (429, ErrorDetails("You exceeded your current quota", code="insufficient_quota"), BillingError),
        (404, ErrorDetails("no such video"), NotFoundError),
        (410, ErrorDetails("gone"), NotFoundError),
        (429, ErrorDetails("slow down"), RateLimitedError),
        (408, ErrorDetails("timeout"), ServerError),
        (409, ErrorDetails("conflict"), ServerError),
        (500, ErrorDetails("oops"), ServerError),
        (503, ErrorDetails("overloaded"), ServerError),
        (200, ErrorDetails("task not exist", code="task_not_exist"), NotFoundError),
        (400, ErrorDetails("task_not_exist", code="task_not_exist"), NotFoundError),
        (429, ErrorDetails("model not found upstream"), RateLimitedError),
        (200, ErrorDetails("bad prompt"), InvalidRequestError),
    ],
)
def test_error_classes(status: int, details: ErrorDetails, cls: type[VideoAPIError]) -> None:
    error = error_for_status(status, details)
    assert type(error) is cls
    assert (error.status, error.message, error.code) == (status, details.message, details.code)


# -- retry policy ----------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    top = RetryPolicy(jitter="full", random=lambda: 1.0)
    assert [top.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert RetryPolicy(jitter="full", random=lambda: 0.0).delay(3) == 0.0
    equal = RetryPolicy(jitter="equal", random=lambda: 0.0)
    assert [equal.delay(n) for n in range(3)] == [0.25, 0.5, 1.0]
    assert RetryPolicy(cap=60, random=lambda: 1.0).delay(10) == 60.0
    assert RetryPolicy(random=lambda: 1.0).delay(10_000) == 8.0


def test_server_delay_is_honoured_up_to_120_seconds() -> None:
    policy = RetryPolicy(random=lambda: 0.0)
    assert policy.delay(0, RateLimitedError("slow", status=429, retry_after=7.5)) == 7.5
    assert policy.delay(5, ServerError("busy", status=503, retry_after=0.0)) == 0.0
    assert policy.delay(0, RateLimitedError("slow", status=429, retry_after=900)) == 120.0
    assert policy.delay(0, RateLimitedError("slow", status=429)) == 0.25


def test_what_is_retryable() -> None:
    policy = RetryPolicy()
    assert policy.is_retryable(RateLimitedError("x", status=429))
    assert policy.is_retryable(ServerError("x", status=502))
    assert policy.is_retryable(ProviderUnavailableError("x"))
    for error in (
        BillingError("x", status=429, code="insufficient_quota"),
        InvalidRequestError("x", status=400),
        ModerationError("x", status=400),
        AuthenticationError("x", status=401),
        NotFoundError("x", status=404),
        UnsupportedOperation("x"),
        TooLargeError("x"),
        UnexpectedContentError("x"),
        ValueError("x"),
    ):
        assert not policy.is_retryable(error)


# -- the client against the fake -------------------------------------------------------------------


class Sleeps:
    """Stands in for asyncio.sleep: records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake: FakeVideosAPI, session: aiohttp.ClientSession, sleeps: Sleeps) -> OpenAIVideoClient:
    return OpenAIVideoClient(fake.base_url, fake.api_key, session, sleep=sleeps)


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def image_file(tmp_path: Path, width: int = 1280, height: int = 720) -> ReferenceImage:
    path = tmp_path / "reference.webp"
    Image.new("RGB", (width, height), "orange").save(path, "WEBP")
    return ReferenceImage(path, "image/webp")


async def make(client: VideoClient, **overrides: Any) -> Video:
    request: dict[str, Any] = {"prompt": "a red fox in snow", "model": SORA, "size": "1280x720", "seconds": 4}
    return await client.create(**{**request, **overrides})


async def test_create_sends_multipart_with_the_image(
    client: OpenAIVideoClient, fake: FakeVideosAPI, tmp_path: Path
) -> None:
    image = image_file(tmp_path)
    video = await make(client, seconds=8, image=image)
    assert (video.status, video.seconds, video.size, video.model) == (
        VideoStatus.QUEUED,
        8,
        "1280x720",
        "sora-2",
    )
    call = fake.calls[-1]
    assert call.headers["content-type"].startswith("multipart/form-data")
    assert call.headers["authorization"] == f"Bearer {fake.api_key}"
    assert call.form == {"prompt": "a red fox in snow", "model": "sora-2", "seconds": "8", "size": "1280x720"}
    upload = call.files["input_reference"]
    assert (upload.content_type, upload.filename, upload.data) == (
        "image/webp",
        "reference.webp",
        image.path.read_bytes(),
    )


async def test_retrieve_follows_the_job_to_completion(
    client: OpenAIVideoClient, fake: FakeVideosAPI, clock: ManualClock
) -> None:
    video = await make(client)
    seen = []
    while not video.status.is_terminal:
        clock.advance(0.3)
        video = await client.retrieve(video.id)
        seen.append((video.status, video.progress))
    assert seen == [
        (VideoStatus.IN_PROGRESS, 30),
        (VideoStatus.IN_PROGRESS, 60),
        (VideoStatus.IN_PROGRESS, 90),
        (VideoStatus.COMPLETED, 100),
    ]
    assert video.expires_at is not None and video.completed_at is not None
    assert video.expires_at - video.completed_at == pytest.approx(3600, abs=1)
    assert fake.count("GET", r"/videos/[^/]+") == 4


async def test_poll_after_header_is_exposed(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    video = await make(client)
    fake.poll_after_ms = 2500
    assert (await client.retrieve(video.id)).poll_after == 2.5


async def test_download_streams_the_exact_bytes(
    client: OpenAIVideoClient, fake: FakeVideosAPI, tmp_path: Path
) -> None:
    video = await make(client)
    fake.complete(video.id)
    dest = tmp_path / "out" / "clip.mp4"
    dest.parent.mkdir()
    written = await client.download(video, dest)
    expected = (await fake.content_path(video.id)).read_bytes()
    assert written == len(expected) and dest.read_bytes() == expected
    thumb = tmp_path / "out" / "thumb.webp"
    await client.download(video, thumb, variant="thumbnail")
    with Image.open(thumb) as picture:
        assert picture.format == "WEBP"
    assert files_in(dest.parent) == ["clip.mp4", "thumb.webp"]
    assert fake.calls[-1].query == {"variant": "thumbnail"}
    with pytest.raises(ValueError, match="variant"):
        await client.download(video, thumb, variant="poster")


async def test_download_retries_transient_failures_inline(
    client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps, tmp_path: Path
) -> None:
    video = await make(client)
    fake.complete(video.id)
    fake.fail_next("GET", r"/videos/.*/content", 503, headers={"Retry-After": "1"})
    await client.download(video, tmp_path / "clip.mp4")
    assert sleeps.delays == [1.0]
    assert fake.count("GET", r"/videos/.*/content") == 2


async def test_failed_download_leaves_no_file(
    client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps, tmp_path: Path
) -> None:
    video = await make(client)
    fake.complete(video.id)
    fake.fail_next("GET", r"/videos/.*/content", 500, count=10)
    with pytest.raises(ServerError):
        await client.download(video, tmp_path / "clip.mp4")
    assert len(sleeps.delays) == RetryPolicy().attempts - 1
    assert files_in(tmp_path) == []


async def test_truncated_download_leaves_no_file(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    """A server that promises 1000 bytes and hangs up after 10."""
    requests = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        requests += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 1000\r\n\r\n0123456789")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        client = OpenAIVideoClient(
            f"http://127.0.0.1:{port}/v1",
            "sk-test-key-123456",
            session,
            sleep=Sleeps(),
            retry=RetryPolicy(attempts=2),
        )
        video = Video(id="video_1", status=VideoStatus.COMPLETED)
        with pytest.raises(ProviderUnavailableError):
            await client.download(video, tmp_path / "clip.mp4")
    assert requests == 2
    assert files_in(tmp_path) == []


async def test_download_cap_by_announced_length(
    client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps, tmp_path: Path
) -> None:
    video = await make(client)
    fake.complete(video.id)
    size = (await fake.content_path(video.id)).stat().st_size
    with pytest.raises(TooLargeError, match=f"{size - 1:,}-byte limit"):
        await client.download(video, tmp_path / "clip.mp4", max_bytes=size - 1)
    assert files_in(tmp_path) == [] and fake.count("GET", r"/videos/.*/content") == 1 and sleeps.delays == []
    assert (
        await client.download(video, tmp_path / "clip.mp4", max_bytes=size) == size
    )  # exactly the cap is fine


async def test_download_cap_stops_an_endless_stream(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    """A CDN that streams without a Content-Length and never stops on its own (it gives up at 64 MiB)."""
    sent = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"\x00\x00\x00\x18ftypmp42" + bytes(65_524)
        try:
            while sent < 64 << 20:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                sent += len(chunk)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        # The AI/ML API dialect has no content route: it fetches the result URL as given.
        client = AimlapiVideoClient(f"http://127.0.0.1:{port}", "sk-test-key-123456", session, sleep=Sleeps())
        video = Video(id="v", status=VideoStatus.COMPLETED, result_url=f"http://127.0.0.1:{port}/file.mp4")
        with pytest.raises(TooLargeError):
            await client.download(video, tmp_path / "clip.mp4", max_bytes=1 << 20)
    assert sent < 64 << 20 and files_in(tmp_path) == []


async def test_a_video_sent_as_thumbnail_is_refused(
    client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps, tmp_path: Path
) -> None:
    """New-API ignores ``variant``: the thumbnail route answers with the MP4."""
    fake.variant_ignored = True
    video = await make(client)
    fake.complete(video.id)
    with pytest.raises(UnexpectedContentError, match="sent the video where a picture was asked for"):
        await client.download(video, tmp_path / "thumb.webp", variant="thumbnail")
    assert (
        files_in(tmp_path) == [] and sleeps.delays == [] and fake.calls[-1].query == {"variant": "thumbnail"}
    )
    fake.variant_ignored = False
    await client.download(video, tmp_path / "thumb.webp", variant="thumbnail")
    assert sniff_media((tmp_path / "thumb.webp").read_bytes()[:12]) == "webp"


async def test_remix(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    source = await make(client)
    with pytest.raises(InvalidRequestError):
        await client.remix(source.id, prompt="now at night", model=SORA)
    fake.complete(source.id)
    remix = await client.remix(source.id, prompt="now at night", model=SORA)
    assert (remix.remixed_from_video_id, remix.prompt, remix.size, remix.seconds) == (
        source.id,
        "now at night",
        "1280x720",
        4,
    )
    assert fake.calls[-1].json == {"prompt": "now at night"}


async def test_list_recent_pages_newest_first(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    made = [(await make(client, prompt=f"clip {n}")).id for n in range(5)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await client.list_recent(limit=2, after=after)
        pages += 1
        seen.extend(v.id for v in page.videos)
        if not page.has_more:
            break
        after = page.last_id
    assert seen == made[::-1] and pages == 3
    assert fake.calls[-1].query == {"limit": "2", "order": "desc", "after": made[1]}


async def test_list_recent_without_cursors_from_a_gateway(
    client: OpenAIVideoClient, fake: FakeVideosAPI
) -> None:
    fake.gateway = True
    made = [(await make(client, prompt=f"clip {n}")).id for n in range(3)]
    page = await client.list_recent(limit=2)
    assert [v.id for v in page.videos] == made[:0:-1] and page.last_id == made[1] and page.has_more
    page = await client.list_recent(limit=2, after=page.last_id)
    assert [v.id for v in page.videos] == made[:1] and not page.has_more


async def test_delete(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    video = await make(client)
    fake.complete(video.id)
    await client.delete(video.id)
    assert fake.videos[video.id].deleted
    with pytest.raises(NotFoundError):
        await client.retrieve(video.id)


async def test_invalid_value_message_is_member_presentable(
    client: OpenAIVideoClient, fake: FakeVideosAPI
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        await make(client, seconds=10)
    error = raised.value
    assert type(error) is InvalidRequestError
    assert error.message == "Invalid value: '10'. Supported values are: '4', '8', and '12'."
    assert (error.status, error.param, error.code) == (400, "seconds", "invalid_value")


async def test_wrong_size_image_is_an_invalid_request(
    client: OpenAIVideoClient, fake: FakeVideosAPI, tmp_path: Path
) -> None:
    with pytest.raises(InvalidRequestError, match="Inpaint image must match the requested width and height"):
        await make(client, image=image_file(tmp_path, 1024, 1024))


async def test_moderation_refusal_at_submission(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    fake.refuse_next_submission()
    with pytest.raises(ModerationError):
        await make(client)
    assert fake.count("POST", "/videos") == 1


async def test_moderation_failure_of_a_running_job(
    client: OpenAIVideoClient, fake: FakeVideosAPI, clock: ManualClock
) -> None:
    fake.moderate_next_job()
    video = await make(client)
    clock.advance(0.6)
    video = await client.retrieve(video.id)
    assert video.status is VideoStatus.FAILED
    assert video.error is not None and video.error.code == "moderation_blocked" and video.error.is_moderation


async def test_wrong_key_is_an_authentication_error(
    fake: FakeVideosAPI, session: aiohttp.ClientSession
) -> None:
    client = OpenAIVideoClient(fake.base_url, "sk-wrong-key-0000000000", session)
    with pytest.raises(AuthenticationError) as raised:
        await client.retrieve("video_x")
    assert raised.value.status == 401 and raised.value.code == "invalid_api_key"


async def test_the_key_never_shows_in_an_error(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    echo = {
        "error": {"message": f"key {fake.api_key} is suspended", "type": "auth", "param": None, "code": None}
    }
    fake.fail_next("GET", r"/videos/.*", 403, body=echo)
    with pytest.raises(AuthenticationError) as raised:
        await client.retrieve("video_x")
    assert fake.api_key not in str(raised.value) and fake.api_key not in raised.value.message
    assert fake.api_key not in repr(client)


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls"),
    [
        (400, None, {}, InvalidRequestError),
        (402, {"code": "insufficient_balance", "message": "balance too low"}, {}, BillingError),
        (404, "Not Found", {}, NotFoundError),
        (410, None, {}, NotFoundError),
        (408, None, {}, ServerError),
        (409, None, {}, ServerError),
        (429, None, {"Retry-After": "4"}, RateLimitedError),
        (429, {"error": {"message": "quota", "code": "insufficient_quota"}}, {}, BillingError),
        (500, None, {}, ServerError),
        (502, "<html><h1>502 Bad Gateway</h1></html>", {}, ServerError),
        (200, "<html>cloudflare says hi</html>", {}, ProviderUnavailableError),
        (200, {"error": {"message": "task not found", "code": "task_not_exist"}}, {}, NotFoundError),
    ],
)
async def test_http_answers_map_to_error_classes(
    client: OpenAIVideoClient,
    fake: FakeVideosAPI,
    sleeps: Sleeps,
    status: int,
    body: Any,
    headers: dict[str, str],
    cls: type[VideoAPIError],
) -> None:
    fake.fail_next("GET", r"/videos/.*", status, body=body, headers=headers)
    with pytest.raises(VideoAPIError) as raised:
        await client.retrieve("video_x")
    assert type(raised.value) is cls
    if status == 429 and cls is RateLimitedError:
        assert raised.value.retry_after == 4.0
    if status == 502:
        assert raised.value.message == "HTTP 502 Bad Gateway"
    assert sleeps.delays == []  # retrieve is never retried inline: the runner schedules polls
    assert fake.count("GET", r"/videos/.*") == 1


async def test_vanished_video_is_not_found(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    video = await make(client)
    fake.vanish(video.id)
    with pytest.raises(NotFoundError):
        await client.retrieve(video.id)


async def test_unreachable_provider(client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps) -> None:
    fake.unreachable = True
    with pytest.raises(ProviderUnavailableError):
        await make(client)
    assert (
        sum(call.method == "POST" for call in fake.calls) == 1
    )  # a POST that may have landed is not repeated
    with pytest.raises(ProviderUnavailableError):
        await client.retrieve("video_x")
    await fake.close()
    with pytest.raises(ProviderUnavailableError):
        await client.retrieve("video_x")
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("headers", "delay"), [({"Retry-After": "2"}, 2.0), ({"retry-after-ms": "250", "Retry-After": "1"}, 0.25)]
)
async def test_create_waits_out_a_429(
    client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps, headers: dict[str, str], delay: float
) -> None:
    fake.fail_next("POST", "/videos", 429, headers=headers)
    video = await make(client)
    assert fake.count("POST", "/videos") == 2 and len(fake.videos) == 1 and video.id in fake.videos
    assert sleeps.delays == [delay]


@pytest.mark.parametrize("status", [500, 503, 408])
async def test_create_and_remix_do_not_retry_server_errors(
    client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps, status: int
) -> None:
    fake.fail_next("POST", "/videos", status)
    with pytest.raises(ServerError):
        await make(client)
    assert fake.count("POST", "/videos") == 1
    source = await make(client)
    fake.complete(source.id)
    fake.fail_next("POST", r"/videos/.*/remix", status)
    with pytest.raises(ServerError):
        await client.remix(source.id, prompt="again", model=SORA)
    assert fake.count("POST", r"/videos/.*/remix") == 1
    assert sleeps.delays == []


async def test_list_and_delete_retry_transient_failures(
    client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps
) -> None:
    video = await make(client)
    fake.complete(video.id)
    fake.fail_next("GET", "/videos", 502, count=2)
    fake.fail_next("DELETE", r"/videos/.*", 429, headers={"Retry-After": "3"})
    assert [v.id for v in (await client.list_recent()).videos] == [video.id]
    await client.delete(video.id)
    assert len(sleeps.delays) == 3 and sleeps.delays[2] == 3.0
    assert 0.25 <= sleeps.delays[0] <= 0.5 and 0.5 <= sleeps.delays[1] <= 1.0  # equal jitter


async def test_billing_429_on_create_is_not_retried(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    body = {
        "error": {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "code": "insufficient_quota",
        }
    }
    fake.fail_next("POST", "/videos", 429, body=body, count=5)
    with pytest.raises(BillingError):
        await make(client)
    assert fake.count("POST", "/videos") == 1


async def test_gateway_dialect_round_trip(
    client: OpenAIVideoClient, fake: FakeVideosAPI, clock: ManualClock, tmp_path: Path
) -> None:
    fake.gateway = fake.envelope = True
    video = await make(client)
    assert video.id.startswith("task_") and video.status is VideoStatus.QUEUED
    assert video.created_at is not None and video.created_at < 10**11  # milliseconds were converted
    clock.advance(0.37)
    video = await client.retrieve(video.id)
    assert (video.status, video.progress) == (VideoStatus.IN_PROGRESS, 37)
    clock.advance(1)
    video = await client.retrieve(video.id)
    assert video.status is VideoStatus.COMPLETED and video.result_url is not None
    assert video.result_url.startswith(fake.cdn_origin)

    written = await client.download(video, tmp_path / "clip.mp4")
    assert (tmp_path / "clip.mp4").read_bytes() == (await fake.content_path(video.id)).read_bytes()
    assert written == (tmp_path / "clip.mp4").stat().st_size
    content, cdn = fake.calls[-2:]
    assert content.path.endswith("/content") and content.port == fake.port
    assert "authorization" in content.headers
    assert cdn.path.startswith("/files/") and cdn.port == fake.cdn_port
    assert "authorization" not in cdn.headers  # the key never goes to a foreign origin


async def test_gateway_download_of_a_stale_video_looks_up_the_result_url(
    client: OpenAIVideoClient, fake: FakeVideosAPI, tmp_path: Path
) -> None:
    fake.gateway = True
    video = await make(client)
    fake.complete(video.id)
    await client.download(video, tmp_path / "clip.mp4")  # ``video`` predates the result URL
    assert [c.path for c in fake.calls[-3:]] == [
        f"/videos/{video.id}/content",
        f"/videos/{video.id}",
        f"/files/{fake.videos[video.id].number}.mp4",
    ]


async def test_bare_key_auth(fake: FakeVideosAPI, session: aiohttp.ClientSession) -> None:
    fake.bare_key = True
    client = create_video_client("openai", fake.base_url, fake.api_key, session, auth="bare")
    video = await make(client)
    assert fake.calls[-1].headers["authorization"] == fake.api_key and video.id in fake.videos


# -- /v1/videos gateways as they answer (providers.md §3, §7) --------------------------------------

H3 = ModelSpec(id="minimax/h3", label="H3", seconds=tuple(range(4, 16)), sizes=("1344x768", "768x1344"))


async def test_gateway_model_gets_its_seconds_as_a_string(
    client: OpenAIVideoClient, fake: FakeVideosAPI
) -> None:
    video = await make(client, model=H3, seconds=15, size="768x1344", audio=True)  # no audio field here
    assert fake.calls[-1].form == {
        "prompt": "a red fox in snow",
        "model": "minimax/h3",
        "seconds": "15",
        "size": "768x1344",
    }
    assert (video.model, video.seconds, video.size) == ("minimax/h3", 15, "768x1344")


async def test_task_not_exist_ends_the_job(
    client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps
) -> None:
    fake.task_not_exist_400 = True
    video = await make(client)
    fake.vanish(video.id)
    with pytest.raises(NotFoundError) as raised:
        await client.retrieve(video.id)
    assert (raised.value.status, raised.value.code) == (400, "task_not_exist")
    assert sleeps.delays == [] and fake.count("GET", r"/videos/[^/]+") == 1


async def test_no_list_route_means_cannot_confirm(
    client: OpenAIVideoClient, fake: FakeVideosAPI, session: aiohttp.ClientSession, sleeps: Sleeps
) -> None:
    """ "Listed and found nothing" and "could not look" are different answers."""
    fresh = OpenAIVideoClient(fake.base_url, fake.api_key, session)
    assert (await fresh.list_recent()).videos == ()  # a real, empty list is not an error
    await make(client)
    fake.no_list_route = True
    assert client.can_list
    with pytest.raises(UnsupportedOperation, match=r"cannot list videos .*Invalid URL \(GET /v1/videos\)"):
        await client.list_recent()
    assert not client.can_list and fresh.can_list  # only the client that asked learned it
    with pytest.raises(UnsupportedOperation):
        await client.list_recent()
    assert fake.count("GET", "/videos") == 2 and sleeps.delays == []  # asked once, never retried


@pytest.mark.parametrize("key", ["video_url", "url", "metadata.url"])
async def test_result_link_wherever_the_gateway_puts_it(
    client: OpenAIVideoClient, fake: FakeVideosAPI, tmp_path: Path, key: str
) -> None:
    fake.gateway = True  # no content route: the file is only at the link
    fake.result_url_key = key
    video = await make(client)
    fake.complete(video.id)
    done = await client.retrieve(video.id)
    assert done.result_url == f"{fake.cdn_origin}/files/{fake.videos[video.id].number}.mp4"
    await client.download(done, tmp_path / "clip.mp4")
    assert (tmp_path / "clip.mp4").read_bytes() == (await fake.content_path(video.id)).read_bytes()
    assert fake.calls[-1].port == fake.cdn_port and "authorization" not in fake.calls[-1].headers


@pytest.mark.parametrize(
    ("upstream", "cls", "message"),
    [
        (
            {
                "error": {
                    "message": "Your request was blocked by our moderation system.",
                    "code": "moderation_blocked",
                }
            },
            ModerationError,
            "Your request was blocked by our moderation system.",
        ),
        (
            {
                "error": {
                    "code": 400,
                    "message": "durationSeconds must be 4, 6 or 8",
                    "status": "INVALID_ARGUMENT",
                }
            },
            InvalidRequestError,
            "durationSeconds must be 4, 6 or 8",
        ),
        ("upstream said no", InvalidRequestError, "upstream said no"),
    ],
)
async def test_upstream_rejection_reads_as_a_plain_reason(
    client: OpenAIVideoClient, fake: FakeVideosAPI, upstream: Any, cls: type[VideoAPIError], message: str
) -> None:
    fake.reject_next_upstream(upstream)
    with pytest.raises(VideoAPIError) as raised:
        await make(client)
    assert type(raised.value) is cls and raised.value.message == message
    assert fake.count("POST", "/videos") == 1 and fake.videos == {}


async def test_saturated_gateway_429_in_plain_text(
    client: OpenAIVideoClient, fake: FakeVideosAPI, sleeps: Sleeps
) -> None:
    fake.saturate_next()
    with pytest.raises(RateLimitedError) as raised:
        await client.retrieve("task_x")
    assert raised.value.message.startswith(SATURATED_MESSAGE)
    fake.saturate_next()
    video = await make(client)  # a 429 certainly was not accepted: the submission is retried
    assert fake.count("POST", "/videos") == 2 and list(fake.videos) == [video.id] and len(sleeps.delays) == 1


async def test_new_api_round_trip(
    client: OpenAIVideoClient, fake: FakeVideosAPI, clock: ManualClock, tmp_path: Path
) -> None:
    """One job through a gateway that answers as New-API does, start to end."""
    fake.act_as_new_api()
    video = await make(client)
    clock.advance(0.37)
    running = await client.retrieve(video.id)
    assert (running.status, running.progress, running.result_url) == (VideoStatus.IN_PROGRESS, 37, None)
    clock.advance(1)
    done = await client.retrieve(video.id)
    assert done.status is VideoStatus.COMPLETED and done.result_url is not None
    assert done.result_url.startswith(fake.cdn_origin)
    assert (
        await client.download(done, tmp_path / "clip.mp4")
        == (await fake.content_path(video.id)).stat().st_size
    )
    with pytest.raises(UnexpectedContentError):
        await client.download(done, tmp_path / "thumb.webp", variant="thumbnail")
    with pytest.raises(UnsupportedOperation):
        await client.list_recent()
    with pytest.raises(NotFoundError):
        await client.retrieve("task_lost")
    assert files_in(tmp_path) == ["clip.mp4"]


async def test_operations_a_dialect_lacks(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    assert not client.can_cancel and await client.list_models() is None
    with pytest.raises(UnsupportedOperation):
        await client.cancel("video_x")
    assert fake.calls == []


async def test_ids_are_quoted_in_paths(client: OpenAIVideoClient, fake: FakeVideosAPI) -> None:
    with pytest.raises(NotFoundError):
        await client.retrieve("../videos?x=1")
    assert fake.calls[-1].path == "/videos/../videos?x=1" and fake.calls[-1].query == {}


# -- the AI/ML API dialect -------------------------------------------------------------------------

VEO = ModelSpec(
    id="google/veo-3.1-t2v",
    label="Veo 3.1",
    seconds=(4, 6, 8),
    sizes=("1280x720", "720x1280"),
    image=True,
    audio=Audio.OPTIONAL,
    wire={"image_model": "google/veo-3.1-i2v"},
)


@pytest.fixture
def aiml(fake: FakeVideosAPI, session: aiohttp.ClientSession) -> VideoClient:
    return create_video_client("AIMLAPI", fake.base_url, fake.api_key, session)  # the …/v1 base is fine


def test_aimlapi_size_mapping() -> None:
    assert aspect_and_resolution("1280x720") == ("16:9", "720p")
    assert aspect_and_resolution("720x1280") == ("9:16", "720p")
    assert aspect_and_resolution("1920x1080") == ("16:9", "1080p")
    assert aspect_and_resolution("1024x1792") == ("9:16", "1080p")
    assert aspect_and_resolution("960x720") == ("4:3", "720p")
    assert aspect_and_resolution("1080x1080") == ("1:1", "1080p")
    assert aspect_and_resolution("2560x1080") == ("21:9", "1080p")
    for bad in ("big", "0x720"):
        with pytest.raises(InvalidRequestError):
            aspect_and_resolution(bad)


async def test_aimlapi_round_trip(
    aiml: VideoClient, fake: FakeVideosAPI, clock: ManualClock, tmp_path: Path
) -> None:
    assert isinstance(aiml, AimlapiVideoClient)
    video = await aiml.create(prompt="a heron", model=VEO, size="1280x720", seconds=4, audio=False)
    sent = fake.calls[-1]
    assert sent.path == "/v2/video/generations"
    assert sent.json == {
        "model": "google/veo-3.1-t2v",
        "prompt": "a heron",
        "duration": 4,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "generate_audio": False,
    }
    assert (video.model, video.size, video.seconds, video.prompt) == (
        "google/veo-3.1-t2v",
        "1280x720",
        4,
        "a heron",
    )
    assert video.cost_micros == 1_600_000  # the answer's meta.usage: 4 s at the fake's $0.40

    clock.advance(0.5)
    running = await aiml.retrieve(video.id)
    assert (
        running.status is VideoStatus.IN_PROGRESS and running.progress is None and running.cost_micros is None
    )
    assert fake.calls[-1].query == {"generation_id": video.id}
    assert "%3A" in fake.calls[-1].query_string and "%2F" in fake.calls[-1].query_string
    clock.advance(1)
    done = await aiml.retrieve(video.id)
    assert done.status is VideoStatus.COMPLETED

    await aiml.download(done, tmp_path / "clip.mp4")
    assert (tmp_path / "clip.mp4").read_bytes() == (await fake.content_path(video.id)).read_bytes()
    assert "authorization" not in fake.calls[-1].headers and fake.calls[-1].port == fake.cdn_port

    unsupported = (
        aiml.list_recent(),
        aiml.remix(video.id, prompt="x", model=VEO),
        aiml.delete(video.id),
        aiml.cancel(video.id),
    )
    for call in unsupported:
        with pytest.raises(UnsupportedOperation):
            await call
    with pytest.raises(UnsupportedOperation):
        await aiml.download(done, tmp_path / "thumb.webp", variant="thumbnail")
    assert not aiml.can_list and not aiml.can_cancel and await aiml.list_models() is None


async def test_aimlapi_image_goes_to_the_image_model(
    aiml: VideoClient, fake: FakeVideosAPI, tmp_path: Path
) -> None:
    image = image_file(tmp_path, 720, 1280)
    video = await aiml.create(prompt="a heron", model=VEO, size="720x1280", seconds=8, image=image)
    sent = fake.calls[-1].json
    assert sent["model"] == "google/veo-3.1-i2v" and "generate_audio" not in sent  # no choice made: no flag
    assert sent["image_url"] == "data:image/webp;base64," + base64.b64encode(image.path.read_bytes()).decode()
    assert (sent["aspect_ratio"], sent["resolution"]) == ("9:16", "720p")
    assert video.model == "google/veo-3.1-t2v" and fake.videos[video.id].size == "720x1280"
    assert video.cost_micros == 3_200_000


async def test_aimlapi_wire_hints(aiml: VideoClient, fake: FakeVideosAPI, tmp_path: Path) -> None:
    h3 = ModelSpec(
        id="minimax/h3",
        label="H3",
        seconds=(6,),
        sizes=("1280x720",),
        wire={"aspect_field": "ratio", "resolution": "2K"},
    )
    await aiml.create(
        prompt="p", model=h3, size="1280x720", seconds=6, audio=True
    )  # its sound is not optional
    assert fake.calls[-1].json == {
        "model": "minimax/h3",
        "prompt": "p",
        "duration": 6,
        "ratio": "16:9",
        "resolution": "2K",
    }
    wan = ModelSpec(
        id="alibaba/wan-2-7-i2v",
        label="Wan",
        seconds=(5,),
        sizes=("720x1280",),
        image=True,
        wire={"aspect_field": ""},
    )
    video = await aiml.create(
        prompt="p", model=wan, size="720x1280", seconds=5, image=image_file(tmp_path, 720, 1280)
    )
    assert set(fake.calls[-1].json) == {"model", "prompt", "duration", "resolution", "image_url"}
    assert fake.videos[video.id].size == "720x1280"


async def test_aimlapi_failed_job_and_errors(
    aiml: VideoClient, fake: FakeVideosAPI, session: aiohttp.ClientSession
) -> None:
    video = await aiml.create(prompt="p", model=VEO, size="1280x720", seconds=4)
    fake.fail(video.id, code="ContentModerationError", message="The prompt was flagged")
    failed = await aiml.retrieve(video.id)
    assert failed.status is VideoStatus.FAILED and failed.error is not None and failed.error.is_moderation
    with pytest.raises(InvalidRequestError, match="duration must be one of the following values: 4, 6, 8"):
        await aiml.create(prompt="p", model=VEO, size="1280x720", seconds=5)
    with pytest.raises(NotFoundError, match="Generation not found"):
        await aiml.retrieve("nope:google/veo-3.1-t2v")
    wrong = create_video_client("aimlapi", fake.root_url, "sk-wrong-key-0000000000", session)
    with pytest.raises(AuthenticationError):
        await wrong.retrieve("x")


# -- the factory -----------------------------------------------------------------------------------


def test_factory_knows_the_dialects(session: aiohttp.ClientSession) -> None:
    assert {"openai", "aimlapi"} <= set(DIALECTS)
    assert isinstance(
        create_video_client("openai", "https://api.openai.com/v1", "k", session), OpenAIVideoClient
    )
    with pytest.raises(ValueError, match=r"expected one of: .*aimlapi, .*openai"):
        create_video_client("chat-ish", "https://x", "k", session)
    with pytest.raises(ValueError, match="absolute"):
        create_video_client("openai", "api.openai.com/v1", "k", session)


def test_video_error_moderation_flag() -> None:
    assert VideoError("moderation_blocked", None).is_moderation
    assert not VideoError("internal_error", "the renderer crashed").is_moderation
