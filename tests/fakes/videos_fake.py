"""A fake Videos API on 127.0.0.1: the OpenAI ``/videos`` routes plus the AI/ML API routes.

Usage::

    async with FakeVideosAPI(job_seconds=0.6) as fake:
        client = create_video_client("openai", fake.base_url, fake.api_key, session)
        ...
        assert fake.count("POST", "/videos") == 1

Jobs advance with time (``clock``, monotonic by default; tests may pass a ManualClock):
queued for the first 15 % of ``job_seconds``, then in_progress with a rising ``progress``,
then completed (or failed half way, after ``moderate_next_job``).
Content is generated lazily with ``make_mp4`` at the video's size and length and cached on disk.

Every request is recorded in ``calls`` (``Call.path`` has the ``/v1`` prefix removed, so the
OpenAI routes read ``/videos…`` and the AI/ML routes ``/v2/video/generations``). A second
listener (``cdn_origin``) serves result files at ``/files/…`` so that "foreign host"
downloads are real: a different origin from ``base_url``.

The ``/videos`` routes serve OpenAI's shape (checked with the official SDK in
tests/test_videos_official_sdk.py) for the models in ``MODELS``; switches bend them the way
gateways do: ``gateway``/``envelope`` (reseller spellings) and, one by one or all at once with
``act_as_new_api()``, what New-API answers (shared/reference/providers.md §3.3 and §7).
The AI/ML API routes serve the models in ``AIML_MODELS`` as its API reference describes them.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import io
import json
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

from aiohttp import web
from PIL import Image

from tests.fakes.faults import FaultScript, ScriptedFault
from tests.fakes.listeners import TwoListeners
from tests.fakes.mp4 import make_mp4, make_spritesheet_jpeg, make_thumbnail_webp

API_PREFIX = "/v1"
OPENAI_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
SECONDS = ("4", "8", "12")


@dataclass(frozen=True)
class GatewayModel:
    """What ``POST /videos`` accepts for one model: sizes (the first is the default) and seconds."""

    sizes: tuple[str, ...]
    seconds: tuple[str, ...] = SECONDS


# OpenAI's own models (videos-api.md), then gateway models from providers.md §3.1 (SayGM) and §3.2 (LaoZhang).
MODELS: dict[str, GatewayModel] = {
    "sora-2": GatewayModel(("720x1280", "1280x720")),
    "sora-2-pro": GatewayModel(OPENAI_SIZES),
    "minimax/h3": GatewayModel(
        ("1344x768", "768x1344", "768x768", "1024x768", "768x1024", "1536x672"),
        tuple(str(n) for n in range(4, 16)),
    ),
    "muse-video": GatewayModel(("1280x720",), ("5", "8", "10")),
}
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_PROMPT = 32000
QUEUED_FRACTION = 0.15  # share of job_seconds a job spends queued
MODERATION_MESSAGE = "Your request was blocked by our moderation system."
# New-API's words for a saturated upstream group (its relay code; providers.md §7), sent as plain text.
SATURATED_MESSAGE = "当前分组上游负载已饱和，请稍后再试"


@dataclass(frozen=True)
class AimlModel:
    """One AI/ML API video model as its API reference (aimlapi/api-docs, 2026-08) describes it.

    The first resolution and aspect ratio are the defaults; ``aspect_field`` is None where the
    image decides the shape; ``usd_per_second`` is this fake's price, reported in ``meta.usage``.
    """

    durations: tuple[int, ...]
    default_duration: int
    resolutions: tuple[str, ...]
    aspect_field: str | None
    aspect_ratios: tuple[str, ...]
    image: str  # "required", "optional" or "none"
    usd_per_second: float


_VEO = AimlModel((4, 6, 8), 8, ("1080p", "720p"), "aspect_ratio", ("16:9", "9:16"), "none", 0.4)
_WAN = AimlModel(
    (5, 10, 15), 10, ("1080p", "720p"), "aspect_ratio", ("16:9", "9:16", "1:1", "4:3", "3:4"), "none", 0.13
)
AIML_MODELS = {
    "google/veo-3.1-t2v": _VEO,
    "google/veo-3.1-i2v": replace(_VEO, image="required"),
    "alibaba/wan-2-7-t2v": _WAN,
    "alibaba/wan-2-7-i2v": replace(_WAN, aspect_field=None, aspect_ratios=(), image="required"),
    "minimax/h3": AimlModel(
        tuple(range(4, 16)),
        6,
        ("2K",),
        "ratio",
        ("adaptive", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16"),
        "optional",
        0.072,
    ),
}
AIML_SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080, "2K": 1440, "4k": 2160}
AIML_CREDITS_PER_USD = 2_000_000
_GATEWAY_STATUS = {
    "queued": "NOT_START",
    "in_progress": "IN_PROGRESS",
    "completed": "SUCCESS",
    "failed": "FAILURE",
}
_AIML_STATUS = {"queued": "queued", "in_progress": "generating", "completed": "completed", "failed": "error"}

_shared_cache: Path | None = None
_current_call: ContextVar[Call] = ContextVar("current_call")  # set by the middleware for the handler


def _default_cache_dir() -> Path:
    """One cache of generated media per test process: clips depend only on size, length and seed."""
    global _shared_cache
    if _shared_cache is None:
        _shared_cache = Path(tempfile.mkdtemp(prefix="fake-videos-"))
        atexit.register(shutil.rmtree, _shared_cache, True)
    return _shared_cache


def openai_error(
    message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _choices(values: tuple[str, ...]) -> str:
    """``'a' and 'b'`` / ``'a', 'b', and 'c'`` as in OpenAI's messages."""
    quoted = [f"'{value}'" for value in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


class ManualClock:
    """A clock that moves only when told: ``clock.advance(0.3)``; with ``step``, also by that much
    after every reading (for clients that poll on their own, like the official SDK)."""

    def __init__(self, start: float = 1000.0, *, step: float = 0.0) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RequestRefused(Exception):
    """Raised inside a handler to answer with an error body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _invalid(message: str, *, param: str | None = None, code: str | None = "invalid_value") -> RequestRefused:
    return RequestRefused(400, openai_error(message, param=param, code=code))


def _unsupported(
    value: str, allowed: tuple[str, ...], openai_values: tuple[str, ...], model: str, *, param: str
) -> RequestRefused:
    """OpenAI's refusal of a value: the API-wide list when the value is not in it, else the model's."""
    if value not in openai_values and set(allowed) <= set(openai_values):
        return _invalid(
            f"Invalid value: '{value}'. Supported values are: {_choices(openai_values)}.", param=param
        )
    return _invalid(
        f"Invalid value: '{value}'. Supported values for model '{model}' are: {_choices(allowed)}.",
        param=param,
    )


@dataclass(frozen=True)
class UploadedFile:
    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Call:
    """One request as the fake received it."""

    method: str
    path: str  # without the /v1 prefix
    query: dict[str, str]
    query_string: str  # as sent, still percent-encoded
    headers: dict[str, str]  # lower-case names
    port: int  # which listener: ``fake.port`` (API) or ``fake.cdn_port`` (result files)
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    dropped: bool = False  # True if the fake was unreachable and dropped the connection


@dataclass
class FakeVideo:
    """A job's state; ``status`` and ``progress`` are brought up to date on every access."""

    id: str
    number: int
    model: str
    size: str
    seconds: int
    prompt: str
    created_at: float
    started: float  # on the fake's clock
    dialect: str  # "openai", "gateway" or "aimlapi"
    remixed_from_video_id: str | None = None
    status: str = "queued"
    progress: int = 0
    completed_at: float | None = None
    expires_at: float | None = None
    error: dict[str, str] | None = None
    fail_with: dict[str, str] | None = None  # moderation switch: fail half way with this error
    deleted: bool = False
    vanished: bool = False

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])


class FakeVideosAPI(TwoListeners):
    """The fake provider. Switches are plain attributes or methods; see the module docstring."""

    def __init__(
        self,
        *,
        api_key: str = "sk-fake-videos-0123456789",
        job_seconds: float = 0.6,
        ttl_seconds: float = 3600.0,
        cache_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.clock = clock  # drives job progress; tests may pass a ManualClock
        self.job_seconds = job_seconds
        self.ttl_seconds = ttl_seconds
        self.cache_dir = cache_dir or _default_cache_dir()
        # Switches.
        self.gateway = False  # new jobs answer in the gateway dialect (see _gateway_json)
        self.envelope = False  # wrap single-object answers as New-API {"code":"success","data":…}
        self.bare_key = False  # expect "Authorization: KEY" instead of "Bearer KEY"
        self.unreachable = False  # drop every connection without an answer
        self.poll_after_ms: int | None = None  # send openai-poll-after-ms on status answers
        self.corrupt_clips = False  # serve bytes that are not a video (a broken download)
        self.large_clips = False  # noisy high-bitrate clips (~14 MiB for 4 s at 720p), over Discord's 10 MiB
        # New-API's answers (providers.md §3.3, §7); act_as_new_api() turns them all on.
        self.task_not_exist_400 = (
            False  # an unknown task on GET /videos/{id}: 400 {"code":"task_not_exist",…}
        )
        self.no_list_route = False  # GET /videos and DELETE /videos/{id}: 404 "Invalid URL (…)"
        self.variant_ignored = False  # /content serves the video whatever ``variant`` asks for
        self.result_url_key: str | None = (
            None  # a finished job names its file at "video_url", "url", "metadata.url"
        )
        self.calls: list[Call] = []
        self.videos: dict[str, FakeVideo] = {}
        self._number = 0
        self._failures = FaultScript(whole_path=True)
        self._moderate_jobs: list[dict[str, str]] = []
        self._refuse_submissions = 0
        self._hold: asyncio.Event | None = None
        self._calls_changed = asyncio.Condition()
        self._media_locks: dict[Path, asyncio.Lock] = {}
        self.port = 0
        self.cdn_port = 0

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 << 20)
        prefix = API_PREFIX
        app.router.add_post(f"{prefix}/videos", self._create)
        app.router.add_get(f"{prefix}/videos", self._list)
        app.router.add_get(f"{prefix}/videos/{{video_id}}", self._retrieve)
        app.router.add_delete(f"{prefix}/videos/{{video_id}}", self._delete)
        app.router.add_get(f"{prefix}/videos/{{video_id}}/content", self._content)
        app.router.add_post(f"{prefix}/videos/{{video_id}}/remix", self._remix)
        app.router.add_post("/v2/video/generations", self._aiml_create)
        app.router.add_get("/v2/video/generations", self._aiml_retrieve)
        app.router.add_get("/files/{number}.mp4", self._file)
        await self._listen(app)
        return self

    @property
    def root_url(self) -> str:
        """Origin of the API listener (the AI/ML API dialect's base)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, ``…/v1``."""
        return self.root_url + API_PREFIX

    @property
    def cdn_origin(self) -> str:
        """Origin of the listener that serves result files: a different origin from ``base_url``."""
        return f"http://127.0.0.1:{self.cdn_port}"

    # -- switches and controls ----------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` instead of handling them.

        ``method`` may be ``"*"``; ``path_regex`` must match the whole ``Call.path``. ``body`` is
        a dict (sent as JSON), a string (sent as is: plain text, or HTML if it starts with ``<``)
        or None for OpenAI's usual error body for that status.
        """
        self._failures.add(method, path_regex, status, body, headers, count)

    def act_as_new_api(self) -> None:
        """Answer as New-API's ``/v1/videos`` routes do: no list or delete route, 400
        ``task_not_exist`` for an unknown task, ``variant`` ignored, the result at ``metadata.url``."""
        self.task_not_exist_400 = self.no_list_route = self.variant_ignored = True
        self.result_url_key = "metadata.url"

    def reject_next_upstream(self, upstream: Any, *, status: int = 400, count: int = 1) -> None:
        """The next ``count`` submissions fail as New-API relays an upstream refusal:
        ``{"code":"fail_to_fetch_task","message":"<upstream's JSON as a string>","data":null}``."""
        message = upstream if isinstance(upstream, str) else json.dumps(upstream, ensure_ascii=False)
        body = {"code": "fail_to_fetch_task", "message": message, "data": None}
        self.fail_next("POST", r"/videos(/.+/remix)?", status, body=body, count=count)

    def saturate_next(self, count: int = 1) -> None:
        """The next ``count`` requests to ``/videos…`` get New-API's 429 for a saturated upstream group,
        in plain text."""
        self.fail_next(
            "*", r"/videos.*", 429, body=f"{SATURATED_MESSAGE} (request id: 20261201)", count=count
        )

    def moderate_next_job(
        self, count: int = 1, *, code: str = "moderation_blocked", message: str = MODERATION_MESSAGE
    ) -> None:
        """The next ``count`` jobs are accepted, then end ``failed`` half way with this error."""
        self._moderate_jobs.extend({"code": code, "message": message} for _ in range(count))

    def refuse_next_submission(self, count: int = 1) -> None:
        """The next ``count`` valid submissions are refused at once: 400 ``moderation_blocked``."""
        self._refuse_submissions += count

    def hold_jobs(self) -> asyncio.Event:
        """Keep every unfinished job in progress until the returned event is set."""
        self._hold = asyncio.Event()
        return self._hold

    def complete(self, video_id: str) -> None:
        """Finish a job now."""
        self._finish(self.videos[video_id], "completed")

    def fail(
        self, video_id: str, *, code: str = "internal_error", message: str = "Video generation failed."
    ) -> None:
        """End a job now as failed with this error."""
        video = self.videos[video_id]
        video.error = {"code": code, "message": message}
        self._finish(video, "failed")

    def vanish(self, video_id: str) -> None:
        """Forget a job: every route answers 404 for it, as if the provider lost it."""
        self.videos[video_id].vanished = True

    def expire(self, video_id: str) -> None:
        """Expire a finished job's assets now: its content answers 404."""
        self.videos[video_id].expires_at = time.time() - 1

    # -- inspection ---------------------------------------------------------------------------------

    def count(self, method: str, path_regex: str) -> int:
        """Number of received (not dropped) requests with this method whose path matches the regex."""
        pattern = re.compile(path_regex)
        return sum(
            1
            for call in self.calls
            if call.method == method.upper() and pattern.fullmatch(call.path) and not call.dropped
        )

    async def wait_for_call(
        self, predicate: Callable[[Call], bool], *, since: int = 0, within: float = 5.0
    ) -> Call:
        """The first call from index ``since`` on that satisfies ``predicate``, waiting for it if
        needed (TimeoutError after ``within`` seconds, so a broken test fails instead of hanging)."""

        def find() -> Call | None:
            return next((call for call in self.calls[since:] if predicate(call)), None)

        async with self._calls_changed:
            return await asyncio.wait_for(self._calls_changed.wait_for(find), within)

    async def content_path(self, video_id: str, variant: str = "video") -> Path:
        """The file the fake serves for this video and variant (generated on first use)."""
        return await self._media(self.videos[video_id], variant)

    # -- job life -----------------------------------------------------------------------------------

    def _new_video(
        self,
        *,
        model: str,
        size: str,
        seconds: int,
        prompt: str,
        dialect: str,
        remixed_from: str | None = None,
    ) -> FakeVideo:
        self._number += 1
        if dialect == "aimlapi":
            video_id = f"{uuid.uuid4()}:{model}"  # ids with ':' and '/' keep the client's quoting honest
        else:
            video_id = f"{'task' if dialect == 'gateway' else 'video'}_{uuid.uuid4().hex}"
        video = FakeVideo(
            id=video_id,
            number=self._number,
            model=model,
            size=size,
            seconds=seconds,
            prompt=prompt,
            created_at=time.time(),
            started=self.clock(),
            dialect=dialect,
            remixed_from_video_id=remixed_from,
            fail_with=self._moderate_jobs.pop(0) if self._moderate_jobs else None,
        )
        self.videos[video_id] = video
        return video

    def _advance(self, video: FakeVideo) -> None:
        if video.status in ("completed", "failed"):
            return
        fraction = (self.clock() - video.started) / self.job_seconds if self.job_seconds > 0 else 1.0
        if video.fail_with is not None and fraction >= 0.5:
            video.error = video.fail_with
            self._finish(video, "failed")
            return
        held = self._hold is not None and not self._hold.is_set()
        if fraction >= 1 and not held:
            self._finish(video, "completed")
        elif fraction >= QUEUED_FRACTION or held:
            percent = int(fraction * 100 + 1e-6)  # 1e-6 absorbs float noise: 0.3 s of 1 s is 30 %
            video.status, video.progress = "in_progress", max(1, min(99, percent))

    def _finish(self, video: FakeVideo, status: str) -> None:
        video.status = status
        video.completed_at = time.time()
        if status == "completed":
            video.progress = 100
            video.expires_at = video.completed_at + self.ttl_seconds

    def _known(self, video_id: str) -> FakeVideo | None:
        """The job if the ``/videos`` routes know it (not never made, deleted, vanished or AI/ML's)."""
        video = self.videos.get(video_id)
        lost = video is None or video.deleted or video.vanished or video.dialect == "aimlapi"
        return None if lost else video

    def _find(self, video_id: str) -> FakeVideo:
        video = self._known(video_id)
        if video is None:
            raise RequestRefused(
                404,
                openai_error(f"Video with id '{video_id}' not found.", param="video_id", code="not_found"),
            )
        self._advance(video)
        return video

    # -- answers ------------------------------------------------------------------------------------

    def _video_json(self, video: FakeVideo) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": video.id,
            "object": "video",
            "created_at": int(video.created_at),
            "completed_at": int(video.completed_at) if video.completed_at else None,
            "expires_at": int(video.expires_at) if video.expires_at else None,
            "model": video.model,
            "status": video.status,
            "progress": video.progress,
            "prompt": video.prompt,
            "remixed_from_video_id": video.remixed_from_video_id,
            "seconds": str(video.seconds),
            "size": video.size,
            "error": video.error,
        }
        url_key = self.result_url_key or ("video_url" if video.dialect == "gateway" else None)
        if url_key is not None and video.status == "completed":
            url = self._file_url(video)
            if url_key == "metadata.url":
                body["metadata"] = {"url": url}
            else:
                body[url_key] = url
        return self._gateway_json(video, body) if video.dialect == "gateway" else body

    @staticmethod
    def _gateway_json(video: FakeVideo, body: dict[str, Any]) -> dict[str, Any]:
        """What reseller gateways send: string progress, upper-case statuses, ms times,
        null keys left out, and the result only as a URL."""
        body = {key: value for key, value in body.items() if value is not None}
        body["status"] = _GATEWAY_STATUS[video.status]
        body["progress"] = f"{video.progress}%"
        for key in ("created_at", "completed_at", "expires_at"):
            if key in body:
                body[key] *= 1000
        return body

    def _file_url(self, video: FakeVideo) -> str:
        """Where the CDN listener serves a finished job's file."""
        return f"{self.cdn_origin}/files/{video.number}.mp4"

    def _one(self, body: dict[str, Any]) -> web.Response:
        if self.envelope:
            body = {"code": "success", "message": "", "data": body}
        return web.json_response(body)

    # -- middleware ---------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        call = await self._record(request)
        if call.dropped:
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=503)  # never reaches the client: the connection is gone
        failure = self._failures.take(call.method, call.path)
        if failure is not None:
            return _failure_response(failure)
        aiml = call.path.startswith("/v2/")
        if not call.path.startswith("/files/"):
            expected = self.api_key if self.bare_key else f"Bearer {self.api_key}"
            if call.headers.get("authorization") != expected:
                return _auth_failure(call.headers.get("authorization"), aiml=aiml)
        try:
            return await handler(request)
        except RequestRefused as refused:
            body = (
                {"statusCode": refused.status, "message": refused.body["error"]["message"]}
                if aiml
                else refused.body
            )
            return web.json_response(body, status=refused.status)

    async def _record(self, request: web.Request) -> Call:
        path = (
            request.path.removeprefix(API_PREFIX)
            if request.path.startswith(API_PREFIX + "/")
            else request.path
        )
        port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
        call = Call(
            method=request.method,
            path=path,
            query=dict(request.query),
            query_string=request.raw_path.partition("?")[2],
            headers={name.lower(): value for name, value in request.headers.items()},
            port=port,
            dropped=self.unreachable,
        )
        if not self.unreachable and request.body_exists:
            call = await _with_body(call, request)
        async with self._calls_changed:
            self.calls.append(call)
            self._calls_changed.notify_all()
        _current_call.set(call)
        return call

    # -- OpenAI routes ------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        call = _current_call.get()
        fields = call.form if call.json is None else call.json
        if not isinstance(fields, dict):
            raise _invalid("We could not parse the JSON body of your request.", code=None)
        prompt = _validate_prompt(fields.get("prompt"))
        model = fields.get("model", "sora-2")
        if model not in MODELS:
            raise _invalid(
                f"Invalid value: '{model}'. Supported values are: {_choices(tuple(MODELS))}.", param="model"
            )
        spec = MODELS[model]
        seconds = fields.get("seconds", spec.seconds[0])
        if not isinstance(seconds, str):
            raise _invalid(
                f"Invalid type for 'seconds': expected a string, but got {type(seconds).__name__} instead.",
                param="seconds",
                code="invalid_type",
            )
        if seconds not in spec.seconds:
            raise _unsupported(seconds, spec.seconds, SECONDS, model, param="seconds")
        size = fields.get("size", "720x1280" if "720x1280" in spec.sizes else spec.sizes[0])
        if size not in spec.sizes:
            raise _unsupported(size, spec.sizes, OPENAI_SIZES, model, param="size")
        image = call.files.get("input_reference")
        if image is None and isinstance(fields.get("input_reference"), dict):
            image = _data_url_file(fields["input_reference"].get("image_url"), param="input_reference")
        if image is not None:
            await _validate_image(image, size, param="input_reference")
        self._check_moderation()
        video = self._new_video(
            model=model, size=size, seconds=int(seconds), prompt=prompt, dialect=self._dialect()
        )
        return self._one(self._video_json(video))

    def _dialect(self) -> str:
        return "gateway" if self.gateway else "openai"

    def _check_moderation(self) -> None:
        if self._refuse_submissions > 0:
            self._refuse_submissions -= 1
            raise RequestRefused(400, openai_error(MODERATION_MESSAGE, code="moderation_blocked"))

    async def _retrieve(self, request: web.Request) -> web.Response:
        video_id = request.match_info["video_id"]
        if self.task_not_exist_400 and self._known(video_id) is None:
            raise RequestRefused(400, {"code": "task_not_exist", "message": "task_not_exist", "data": None})
        response = self._one(self._video_json(self._find(video_id)))
        if self.poll_after_ms is not None:
            response.headers["openai-poll-after-ms"] = str(self.poll_after_ms)
        return response

    async def _list(self, request: web.Request) -> web.Response:
        self._check_route(request)
        query = _current_call.get().query
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            raise _invalid(
                f"Invalid 'limit': expected an integer, but got '{query['limit']}'.", param="limit"
            ) from None
        if not 0 <= limit <= 100:
            raise _invalid(
                f"Invalid 'limit': expected a value between 0 and 100, but got {limit} instead.",
                param="limit",
            )
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise _invalid(
                f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.", param="order"
            )
        videos = [v for v in self.videos.values() if not (v.deleted or v.vanished or v.dialect == "aimlapi")]
        videos.sort(key=lambda v: v.number, reverse=order == "desc")
        after = query.get("after")
        if after:
            ids = [v.id for v in videos]
            videos = videos[ids.index(after) + 1 :] if after in ids else []
        page = videos[:limit]
        for video in page:
            self._advance(video)
        body: dict[str, Any] = {"object": "list", "data": [self._video_json(v) for v in page]}
        body["has_more"] = len(videos) > limit
        if not self.gateway:  # gateways leave the cursors out; clients must use the last item
            body["first_id"] = page[0].id if page else None
            body["last_id"] = page[-1].id if page else None
        return web.json_response(body)

    async def _delete(self, request: web.Request) -> web.Response:
        self._check_route(request)
        video = self._find(request.match_info["video_id"])
        if video.status not in ("completed", "failed"):
            raise _invalid("Only completed or failed videos can be deleted.", param="video_id", code=None)
        video.deleted = True
        return web.json_response({"id": video.id, "object": "video.deleted", "deleted": True})

    async def _content(self, request: web.Request) -> web.StreamResponse:
        video = self._find(request.match_info["video_id"])
        variant = _current_call.get().query.get("variant", "video")
        if variant not in ("video", "thumbnail", "spritesheet"):
            raise _invalid(
                f"Invalid value: '{variant}'. Supported values are: 'video', 'thumbnail', and 'spritesheet'.",
                param="variant",
            )
        if video.dialect == "gateway":
            raise RequestRefused(404, openai_error("Not Found", code="not_found"))
        return await self._serve(video, "video" if self.variant_ignored else variant)

    def _check_route(self, request: web.Request) -> None:
        """With ``no_list_route``, New-API's answer to a path it does not route."""
        if self.no_list_route:
            message = f"Invalid URL ({request.method} {request.path})"
            raise RequestRefused(404, openai_error(message, param="", code=""))

    async def _remix(self, request: web.Request) -> web.Response:
        source = self._find(request.match_info["video_id"])
        body = _current_call.get().json
        prompt = _validate_prompt(body.get("prompt") if isinstance(body, dict) else None)
        if source.status != "completed":
            raise _invalid(
                f"Video '{source.id}' is not completed; only completed videos can be remixed.",
                param="video_id",
                code=None,
            )
        self._check_moderation()
        video = self._new_video(
            model=source.model,
            size=source.size,
            seconds=source.seconds,
            prompt=prompt,
            dialect=self._dialect(),
            remixed_from=source.id,
        )
        return self._one(self._video_json(video))

    # -- AI/ML API routes ---------------------------------------------------------------------------

    async def _aiml_create(self, request: web.Request) -> web.Response:
        body = _current_call.get().json
        if not isinstance(body, dict):
            raise _invalid("Body must be a JSON object")
        name = body.get("model")
        if name not in AIML_MODELS:
            raise _invalid(f"model must be one of the following values: {', '.join(AIML_MODELS)}")
        spec = AIML_MODELS[name]
        prompt = _validate_prompt(body.get("prompt"))
        duration = _aiml_choice(body, "duration", spec.durations, spec.default_duration)
        resolution = _aiml_choice(body, "resolution", spec.resolutions, spec.resolutions[0])
        aspect = None
        if spec.aspect_field is not None:
            aspect = _aiml_choice(body, spec.aspect_field, spec.aspect_ratios, spec.aspect_ratios[0])
        if spec.image != "optional" and (spec.image == "required") != ("image_url" in body):
            raise _invalid(
                f"image_url is {'required' if spec.image == 'required' else 'not supported'} for {name}"
            )
        shape = None
        if "image_url" in body:
            shape = await _validate_image(
                _data_url_file(body["image_url"], param="image_url"), None, param="image_url"
            )
        self._check_moderation()
        size = _aiml_size(AIML_SHORT_SIDE[resolution], aspect, shape)
        video = self._new_video(model=name, size=size, seconds=duration, prompt=prompt, dialect="aimlapi")
        usd = round(spec.usd_per_second * duration, 6)
        usage = {"credits_used": round(usd * AIML_CREDITS_PER_USD), "usd_spent": usd}
        return web.json_response({"id": video.id, "status": "queued", "meta": {"usage": usage}})

    async def _aiml_retrieve(self, request: web.Request) -> web.Response:
        video = self.videos.get(_current_call.get().query.get("generation_id", ""))
        if video is None or video.vanished or video.dialect != "aimlapi":
            raise RequestRefused(404, openai_error("Generation not found"))
        self._advance(video)
        error = video.error
        return web.json_response(
            {
                "id": video.id,
                "status": _AIML_STATUS[video.status],
                "video": {"url": self._file_url(video)} if video.status == "completed" else None,
                "error": {"name": error["code"], "message": error["message"]} if error else None,
            }
        )

    # -- media --------------------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.StreamResponse:
        number = request.match_info["number"]
        video = next((v for v in self.videos.values() if str(v.number) == number), None)
        if video is None or video.vanished or video.deleted or video.status != "completed":
            return web.Response(status=404, text="Not Found")
        return await self._serve(video, "video")

    async def _serve(self, video: FakeVideo, variant: str) -> web.StreamResponse:
        if video.status != "completed":
            raise _invalid(f"Video '{video.id}' is not completed yet.", param="video_id", code=None)
        if video.expires_at is not None and video.expires_at <= time.time():
            raise RequestRefused(404, openai_error("The video's content has expired.", code="video_expired"))
        path = await self._media(video, variant)
        return web.FileResponse(path, headers={"Content-Type": _MEDIA_TYPES[variant]})

    async def _media(self, video: FakeVideo, variant: str) -> Path:
        suffix = {"video": "mp4", "thumbnail": "webp", "spritesheet": "jpg"}[variant]
        large = "-large" if self.large_clips and variant == "video" else ""
        if self.corrupt_clips and variant == "video":
            path = self.cache_dir / f"corrupt-{video.number}.mp4"
            path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
            return path
        path = self.cache_dir / f"{video.size}-{video.seconds}s-{video.number}{large}.{suffix}"
        lock = self._media_locks.setdefault(path, asyncio.Lock())
        async with lock:
            if not path.exists():
                await asyncio.to_thread(
                    _write_media,
                    path,
                    variant,
                    video.width,
                    video.height,
                    video.seconds,
                    video.number,
                    bool(large),
                )
        return path


_MEDIA_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}


def _write_media(
    path: Path, variant: str, width: int, height: int, seconds: int, seed: int, large: bool = False
) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    if variant == "video" and large:
        make_mp4(temp, width, height, seconds, seed=seed, noise=0.5, bit_rate=27_000_000)
    elif variant == "video":
        make_mp4(temp, width, height, seconds, seed=seed)
    else:
        maker = make_thumbnail_webp if variant == "thumbnail" else make_spritesheet_jpeg
        temp.write_bytes(maker(width // 4, height // 4, seed=seed))
    temp.replace(path)


async def _with_body(call: Call, request: web.Request) -> Call:
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form: dict[str, str] = {}
        files: dict[str, UploadedFile] = {}
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                files[name] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                form[name] = str(value)
        return replace(call, form=form, files=files)
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return replace(call, json=body)


def _validate_prompt(prompt: Any) -> str:
    if prompt is None:
        raise _invalid(
            "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
        )
    if not isinstance(prompt, str):
        raise _invalid(
            f"Invalid type for 'prompt': expected a string, but got {type(prompt).__name__} instead.",
            param="prompt",
            code="invalid_type",
        )
    if not prompt:
        raise _invalid(
            "Invalid 'prompt': string too short. Expected a string with minimum length 1, "
            "but got an empty string instead.",
            param="prompt",
            code="string_below_min_length",
        )
    if len(prompt) > MAX_PROMPT:
        raise _invalid(
            f"Invalid 'prompt': string too long. Expected a string with maximum length {MAX_PROMPT}, "
            f"but got a string with length {len(prompt)} instead.",
            param="prompt",
            code="string_above_max_length",
        )
    return prompt


def _data_url_file(url: Any, *, param: str) -> UploadedFile:
    match = re.fullmatch(r"data:([\w/+.-]+);base64,(.*)", url, re.DOTALL) if isinstance(url, str) else None
    if match is None:
        raise _invalid(f"Invalid '{param}': only base64 data: URLs are supported by this fake.", param=param)
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except binascii.Error:
        raise _invalid(f"Invalid '{param}': the data: URL is not valid base64.", param=param) from None
    return UploadedFile(None, match.group(1), data)


async def _validate_image(image: UploadedFile, size: str | None, *, param: str) -> tuple[int, int]:
    """The image's (width, height); it must be a decodable picture of a known type and, when ``size``
    is given, exactly that size."""
    if image.content_type not in IMAGE_TYPES:
        raise _invalid(
            f"Invalid file '{param}': unsupported mimetype ('{image.content_type}'). "
            f"Supported file formats are {_choices(IMAGE_TYPES)}.",
            param=param,
            code="unsupported_file",
        )
    try:
        width, height = await asyncio.to_thread(_image_size, image.data)
    except OSError:
        raise _invalid(
            f"Invalid file '{param}': the image could not be decoded.", param=param, code="invalid_image"
        ) from None
    if size is not None and f"{width}x{height}" != size:
        raise RequestRefused(400, openai_error("Inpaint image must match the requested width and height"))
    return width, height


def _aiml_choice(body: dict[str, Any], field: str, allowed: tuple[Any, ...], default: Any) -> Any:
    """``body[field]`` (or the default) if it is one of ``allowed``; AI/ML API's refusal otherwise."""
    value = body.get(field, default)
    if value not in allowed or isinstance(value, bool):
        raise _invalid(f"{field} must be one of the following values: {', '.join(map(str, allowed))}")
    return value


def _aiml_size(short: int, aspect: str | None, image: tuple[int, int] | None) -> str:
    """The clip's ``WxH``: the short side from the resolution, the shape from the aspect ratio (or
    the image when the model takes none, or says "adaptive")."""
    if aspect is not None and aspect != "adaptive":
        across, down = (int(part) for part in aspect.split(":"))
    elif image is not None:
        across, down = image
    else:
        across, down = 16, 9

    def even(value: float) -> int:
        return max(2, round(value / 2) * 2)

    if across >= down:
        return f"{even(short * across / down)}x{short}"
    return f"{short}x{even(short * down / across)}"


def _image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


_DEFAULT_FAILURES = {
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def _failure_response(failure: ScriptedFault) -> web.Response:
    body = failure.body
    if body is None:
        message, kind, code = _DEFAULT_FAILURES.get(
            failure.status, ("Injected failure.", "server_error", None)
        )
        body = openai_error(message, type=kind, code=code)
    if isinstance(body, str):
        content_type = "text/html" if body.lstrip().startswith("<") else "text/plain"
        return web.Response(
            status=failure.status, text=body, content_type=content_type, headers=failure.headers
        )
    return web.json_response(body, status=failure.status, headers=failure.headers)


def _auth_failure(given: str | None, *, aiml: bool) -> web.Response:
    if aiml:
        return web.json_response({"statusCode": 401, "message": "Unauthorized"}, status=401)
    if not given:
        message = (
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
        return web.json_response(openai_error(message), status=401)
    key = given.removeprefix("Bearer ")
    masked = f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"
    message = (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return web.json_response(openai_error(message, code="invalid_api_key"), status=401)
