"""A fake OpenRouter Videos API on 127.0.0.1, written from OpenRouter's OpenAPI spec and docs.

Usage::

    async with FakeOpenRouter() as fake:
        client = OpenRouterVideoClient(fake.base_url, fake.api_key, session)
        ...
        assert fake.count("POST", "/videos") == 1

Routes under ``/api/v1`` (``Call.path`` has that prefix removed): ``POST /videos`` (202 with
``id``, ``polling_url``, ``status``), ``GET /videos/{id}``, ``GET /videos/{id}/content?index=0``
(Bearer key required; ``video/mp4``) and ``GET /videos/models`` (public). A second listener plays
the storage host of the signed ``urls`` (``/signed/…``): it needs no key, and tests check in
``cdn_calls`` that none ever reached it.

Jobs move on by status polls, never by time: the n-th poll of a job shows ``poll_script[n-1]``
(the last entry repeats), and the last entry is replaced by the job's scripted end
(``end_next_job``). Submissions are checked against the model's published capabilities
(``MODELS``), as OpenRouter answers 400 for values outside a model's sets.

:class:`RecordingFake` (two listeners, request recording, scripted faults, generated MP4s) is
also the base of the fal fake.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Self

from aiohttp import web

from tests.fakes.faults import FaultScript, ScriptedFault
from tests.fakes.listeners import TwoListeners
from tests.fakes.videos_fake import (
    IMAGE_TYPES,
    Call,
    RequestRefused,
    _data_url_file,
    _default_cache_dir,
    _with_body,
    _write_media,
)

API_PREFIX = "/api/v1"

# A few of the models OpenRouter lists, in the shape of its ``VideoModel`` (spec example and live
# excerpts in the docs: null capability lists, unsorted durations, per-second price SKUs).
MODELS: tuple[dict[str, Any], ...] = (
    {
        "id": "google/veo-3.1",
        "canonical_slug": "google/veo-3.1",
        "name": "Google: Veo 3.1",
        "created": 1760000000,
        "description": "Google video generation model",
        "supported_resolutions": ["720p", "1080p"],
        "supported_aspect_ratios": ["16:9", "9:16"],
        "supported_sizes": None,
        "supported_durations": [8, 4, 6],
        "supported_frame_images": ["first_frame", "last_frame"],
        "generate_audio": True,
        "seed": True,
        "creativity": None,
        "upscale_factor": None,
        "allowed_passthrough_parameters": ["personGeneration", "negativePrompt"],
        "pricing_skus": {"per-video-second": "0.40", "per-video-second-1080p": "0.40"},
    },
    {
        "id": "alibaba/wan-2.6",
        "canonical_slug": "alibaba/wan-2.6",
        "name": "Alibaba: Wan 2.6",
        "created": 1765000000,
        "supported_resolutions": ["720p", "1080p"],
        "supported_aspect_ratios": ["16:9", "9:16"],
        "supported_sizes": ["1280x720", "720x1280", "1920x1080", "1080x1920"],
        "supported_durations": [5, 10, 15],
        "supported_frame_images": ["first_frame"],
        "generate_audio": True,
        "seed": True,
        "creativity": None,
        "upscale_factor": None,
        "allowed_passthrough_parameters": [],
        "pricing_skus": {"per-video-second": "0.10", "per-video-second-1080p": "0.15"},
    },
    {
        "id": "minimax/hailuo-2.3",
        "canonical_slug": "minimax/hailuo-2.3",
        "name": "MiniMax: Hailuo 2.3",
        "created": 1761000000,
        "supported_resolutions": ["768p", "1080p"],
        "supported_aspect_ratios": None,
        "supported_sizes": None,
        "supported_durations": [6, 10],
        "supported_frame_images": ["first_frame"],
        "generate_audio": None,
        "seed": None,
        "creativity": None,
        "upscale_factor": None,
        "allowed_passthrough_parameters": [],
        "pricing_skus": {"per-video-second": "0.05"},
    },
)
_DEFAULT_MESSAGES = {
    400: "Bad Request",
    401: "No auth credentials found",
    402: "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
    404: "Not Found",
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "Service Unavailable",
}
_ID_CHARS = string.ascii_letters + string.digits
CALL = web.RequestKey("call", Call)  # the request as recorded, for the handler


def even(value: float) -> int:
    """The nearest even whole number (H.264 in yuv420p needs even sides)."""
    return max(2, round(value / 2) * 2)


class RecordingFake(TwoListeners):
    """An aiohttp app on two 127.0.0.1 ports: the provider's API and a "CDN" (another origin).

    Every request is recorded in ``calls`` (``port`` tells which listener got it). Subclasses add
    their routes (``_add_routes``), say which paths the CDN serves (``_cdn_path``), which API paths
    need no key (``_public_path``), how a key is checked (``_authorized``) and what a provider's
    error body looks like (``_error_body``).
    """

    prefix: ClassVar[str] = ""  # removed from ``Call.path``

    def __init__(self, *, api_key: str, cache_dir: Path | None = None) -> None:
        self.api_key = api_key
        self.cache_dir = cache_dir or _default_cache_dir()
        self.calls: list[Call] = []
        self._faults = FaultScript(whole_path=True)
        self._media_locks: dict[Path, asyncio.Lock] = {}
        self.port = 0
        self.cdn_port = 0

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._middleware], client_max_size=32 << 20)
        self._add_routes(app.router)
        await self._listen(app)
        return self

    @property
    def origin(self) -> str:
        """Origin of the API listener."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_origin(self) -> str:
        """Origin of the listener that plays the provider's file storage."""
        return f"http://127.0.0.1:{self.cdn_port}"

    # -- controls and inspection --------------------------------------------------------------------

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

        ``path_regex`` must match the whole ``Call.path``; ``body`` is a dict (JSON), a string
        (sent as is) or None for the provider's usual error body for that status.
        """
        self._faults.add(method, path_regex, status, body, headers, count)

    def count(self, method: str, path_regex: str) -> int:
        """Number of requests with this method whose path matches the regex (on either listener)."""
        pattern = re.compile(path_regex)
        return sum(1 for call in self.calls if call.method == method.upper() and pattern.fullmatch(call.path))

    @property
    def cdn_calls(self) -> list[Call]:
        """The requests the storage listener received."""
        return [call for call in self.calls if call.port == self.cdn_port]

    # -- what subclasses define ---------------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def _cdn_path(self, path: str) -> bool:
        raise NotImplementedError

    def _public_path(self, path: str) -> bool:
        return False

    def _authorized(self, header: str | None) -> bool:
        raise NotImplementedError

    def _error_body(self, status: int, message: str | None) -> Any:
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        call = await self._record(request)
        fault = self._faults.take(call.method, call.path)
        if fault is not None:
            return self._fault_response(fault)
        on_cdn = call.port == self.cdn_port
        if on_cdn != self._cdn_path(call.path):
            return web.Response(status=404, text="Not Found")
        if not (
            on_cdn or self._public_path(call.path) or self._authorized(call.headers.get("authorization"))
        ):
            return web.json_response(self._error_body(401, None), status=401)
        try:
            return await handler(request)
        except RequestRefused as refused:
            return web.json_response(refused.body, status=refused.status)

    async def _record(self, request: web.Request) -> Call:
        path = request.path
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path.removeprefix(self.prefix)
        port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
        call = Call(
            method=request.method,
            path=path,
            query=dict(request.query),
            query_string=request.raw_path.partition("?")[2],
            headers={name.lower(): value for name, value in request.headers.items()},
            port=port,
        )
        if request.body_exists:
            call = await _with_body(call, request)
        self.calls.append(call)
        request[CALL] = call
        return call

    def _fault_response(self, fault: ScriptedFault) -> web.Response:
        body = self._error_body(fault.status, None) if fault.body is None else fault.body
        if isinstance(body, str):
            content_type = "text/html" if body.lstrip().startswith("<") else "text/plain"
            return web.Response(
                status=fault.status, text=body, content_type=content_type, headers=fault.headers
            )
        return web.json_response(body, status=fault.status, headers=fault.headers)

    async def _media(self, size: str, seconds: int, seed: int) -> Path:
        """A real MP4 for this size, length and seed (generated once per test process)."""
        width, height = (int(side) for side in size.split("x"))
        path = self.cache_dir / f"{size}-{seconds}s-{seed}.mp4"  # the same name as the Videos fake's
        async with self._media_locks.setdefault(path, asyncio.Lock()):
            if not path.exists():
                await asyncio.to_thread(_write_media, path, "video", width, height, seconds, seed)
        return path

    async def _serve_mp4(self, size: str, seconds: int, seed: int) -> web.StreamResponse:
        path = await self._media(size, seconds, seed)
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})

    async def media_bytes(self, size: str, seconds: int, seed: int) -> bytes:
        """The bytes the fake serves for a clip (tests compare downloads with them)."""
        return (await self._media(size, seconds, seed)).read_bytes()


@dataclass
class FakeJob:
    id: str
    number: int
    model: dict[str, Any]
    prompt: str
    duration: int
    size: str  # what the clip is rendered at
    resolution: str | None
    generate_audio: bool | None
    frame_images: list[dict[str, Any]]
    end: tuple[str, str | None]  # final status and its error
    polls: int = 0
    outputs_gone: bool = False

    @property
    def cost(self) -> float:
        skus = self.model.get("pricing_skus") or {}
        price = skus.get(f"per-video-second-{self.resolution}") or skus.get("per-video-second", "0")
        return float(Decimal(price) * self.duration)


class FakeOpenRouter(RecordingFake):
    """The fake OpenRouter. Switches are plain attributes; see the module docstring."""

    prefix = API_PREFIX

    def __init__(
        self,
        *,
        api_key: str = "sk-or-v1-fake-0123456789abcdef",
        poll_script: tuple[str, ...] = ("pending", "in_progress", "completed"),
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__(api_key=api_key, cache_dir=cache_dir)
        self.poll_script = poll_script
        self.absolute_polling_url = False  # the docs show both; relative is the spec's example
        self.signed_urls = True  # completed jobs carry ``urls`` (signed, on the storage listener)
        self.send_progress = False  # a ``progress`` field while in progress (S4 mentions one)
        self.models: list[dict[str, Any]] = [dict(model) for model in MODELS]
        self.jobs: dict[str, FakeJob] = {}
        self._ends: list[tuple[str, str | None]] = []

    @property
    def base_url(self) -> str:
        """What an operator configures: ``…/api/v1``."""
        return self.origin + API_PREFIX

    def end_next_job(self, status: str = "failed", error: str | None = "Content policy violation") -> None:
        """The next job accepted ends with this status (failed, cancelled, expired) and error."""
        self._ends.append((status, error))

    def drop_outputs(self, job_id: str) -> None:
        """Forget a finished job's file: its content and signed URLs answer 404."""
        self.jobs[job_id].outputs_gone = True

    async def job_bytes(self, job_id: str) -> bytes:
        job = self.jobs[job_id]
        return await self.media_bytes(job.size, job.duration, job.number)

    # -- RecordingFake ------------------------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(f"{API_PREFIX}/videos", self._create)
        router.add_get(f"{API_PREFIX}/videos/models", self._list_models)
        router.add_get(f"{API_PREFIX}/videos/{{job_id}}", self._retrieve)
        router.add_get(f"{API_PREFIX}/videos/{{job_id}}/content", self._content)
        router.add_get("/signed/{job_id}.mp4", self._signed)

    def _cdn_path(self, path: str) -> bool:
        return path.startswith("/signed/")

    def _public_path(self, path: str) -> bool:
        return path == "/videos/models"

    def _authorized(self, header: str | None) -> bool:
        return header == f"Bearer {self.api_key}"

    def _error_body(self, status: int, message: str | None) -> dict[str, Any]:
        text = message or _DEFAULT_MESSAGES.get(status, "Injected failure")
        return {"error": {"code": status, "message": text, "metadata": None}, "user_id": None}

    def _refuse(self, status: int, message: str) -> RequestRefused:
        return RequestRefused(status, self._error_body(status, message))

    # -- routes -------------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        body = request[CALL].json
        if not isinstance(body, dict):
            raise self._refuse(400, "Request body must be a JSON object")
        model = next((m for m in self.models if m["id"] == body.get("model")), None)
        if model is None:
            raise self._refuse(400, f"{body.get('model')} is not a valid model ID")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise self._refuse(400, "prompt is required for this model")
        duration = body.get("duration", sorted(model["supported_durations"])[0])
        if not isinstance(duration, int) or isinstance(duration, bool):
            raise self._refuse(400, "duration must be an integer")
        _check_choice(model, "supported_durations", duration, "duration", self._refuse)
        size, resolution = self._size(model, body)
        audio = body.get("generate_audio")
        if audio is not None and (not isinstance(audio, bool) or (audio and not model["generate_audio"])):
            raise self._refuse(400, f"generate_audio is not supported by {model['id']}")
        frames = body.get("frame_images") or []
        for frame in frames:
            self._check_frame(model, frame)
        number = len(self.jobs) + 1
        job_id = f"gen-vid-{int(time.time())}-{''.join(secrets.choice(_ID_CHARS) for _ in range(20))}"
        self.jobs[job_id] = FakeJob(
            id=job_id,
            number=number,
            model=model,
            prompt=prompt,
            duration=duration,
            size=size,
            resolution=resolution,
            generate_audio=audio,
            frame_images=frames,
            end=self._ends.pop(0) if self._ends else ("completed", None),
        )
        return web.json_response(
            {"id": job_id, "polling_url": self._polling_url(job_id), "status": "pending"}, status=202
        )

    def _size(self, model: dict[str, Any], body: dict[str, Any]) -> tuple[str, str | None]:
        """The clip's ``WxH`` and resolution name from ``size`` or ``aspect_ratio`` + ``resolution``."""
        if "size" in body:
            if model["supported_sizes"] is None:
                raise self._refuse(
                    400, f"size is not supported by {model['id']}; use aspect_ratio and resolution"
                )
            _check_choice(model, "supported_sizes", body["size"], "size", self._refuse)
            width, height = (int(side) for side in body["size"].split("x"))
            return body["size"], f"{min(width, height)}p"
        for key, name in (
            ("supported_resolutions", "resolution"),
            ("supported_aspect_ratios", "aspect_ratio"),
        ):
            if name in body:
                _check_choice(model, key, body[name], name, self._refuse)
        resolution = body.get("resolution", (model["supported_resolutions"] or ["720p"])[0])
        aspect = body.get("aspect_ratio", (model["supported_aspect_ratios"] or ["16:9"])[0])
        short = int(resolution.rstrip("p"))
        across, down = (int(part) for part in aspect.split(":"))
        if across >= down:
            return f"{even(short * across / down)}x{short}", resolution
        return f"{short}x{even(short * down / across)}", resolution

    def _check_frame(self, model: dict[str, Any], frame: Any) -> None:
        if not isinstance(frame, dict) or frame.get("type") != "image_url":
            raise self._refuse(400, "frame_images entries must be image_url parts")
        _check_choice(model, "supported_frame_images", frame.get("frame_type"), "frame_type", self._refuse)
        url = (frame.get("image_url") or {}).get("url")
        try:
            image = _data_url_file(url, param="frame_images")
        except RequestRefused:
            raise self._refuse(400, "frame image url must be a https URL or a base64 data URL") from None
        if image.content_type not in IMAGE_TYPES or not image.data:
            raise self._refuse(400, f"unsupported frame image type {image.content_type}")

    def _polling_url(self, job_id: str) -> str:
        path = f"{API_PREFIX}/videos/{job_id}"
        return self.origin + path if self.absolute_polling_url else path

    def _find(self, job_id: str) -> FakeJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise self._refuse(404, "Video generation job not found")
        return job

    async def _retrieve(self, request: web.Request) -> web.Response:
        job = self._find(request.match_info["job_id"])
        job.polls += 1
        script = (*self.poll_script[:-1], job.end[0])
        status = script[min(job.polls, len(script)) - 1]
        body: dict[str, Any] = {"id": job.id, "polling_url": self._polling_url(job.id), "status": status}
        if status == "in_progress" and self.send_progress:
            body["progress"] = round(100 * job.polls / len(script))
        if status == "completed":
            body["generation_id"] = f"gen-{job.number}-{job.id[-8:]}"
            body["unsigned_urls"] = [f"{self.origin}{API_PREFIX}/videos/{job.id}/content?index=0"]
            if self.signed_urls:
                body["urls"] = [f"{self.cdn_origin}/signed/{job.id}.mp4?sig={secrets.token_hex(8)}"]
                body["expires_at"] = int(time.time()) + 3600
            body["usage"] = {"cost": job.cost, "is_byok": False}
        elif status in ("failed", "cancelled", "expired") and job.end[1]:
            body["error"] = job.end[1]
        return web.json_response(body)

    def _finished(self, job: FakeJob) -> bool:
        return job.end[0] == "completed" and job.polls >= len(self.poll_script)

    async def _content(self, request: web.Request) -> web.StreamResponse:
        job = self._find(request.match_info["job_id"])
        index = request.query.get("index", "0")
        if not index.isdigit():
            raise self._refuse(400, "index must be a non-negative integer")
        if not self._finished(job):
            raise self._refuse(400, "Video generation is not completed")
        if int(index) != 0 or job.outputs_gone:
            raise self._refuse(404, "Video content not found")
        return await self._serve_mp4(job.size, job.duration, job.number)

    async def _signed(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None or job.outputs_gone or not self._finished(job) or "sig" not in request.query:
            return web.Response(status=404, text="Not Found")
        return await self._serve_mp4(job.size, job.duration, job.number)

    async def _list_models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": self.models})


def _check_choice(
    model: dict[str, Any], key: str, value: Any, name: str, refuse: Callable[[int, str], RequestRefused]
) -> None:
    allowed = model[key]
    if allowed is None or value not in allowed:
        choices = ", ".join(str(v) for v in sorted(allowed)) if allowed else "none"
        raise refuse(400, f"{name} {value!r} is not supported by {model['id']}; supported: {choices}")
