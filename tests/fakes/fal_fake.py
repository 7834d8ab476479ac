"""A fake fal.ai queue on 127.0.0.1, written from fal's queue docs and its SDKs' types.

Usage::

    async with FakeFal() as fake:
        client = FalVideoClient(fake.base_url, fake.api_key, session)
        ...
        assert fake.count("PUT", r"/fal-ai/veo3\\.1/requests/.+/cancel") == 1

``POST /{endpoint id}`` (the full id, e.g. ``fal-ai/veo3.1/image-to-video``) takes the model's
input as JSON and answers the queue status with ``request_id``, ``status_url``, ``response_url``
and ``cancel_url``; those live under ``/{owner}/{alias}/requests/{id}`` (the subpath left out),
and the fake answers nothing under a full endpoint id there. ``Authorization: Key <key>`` is
required on the API listener; results point at ``video.url`` on the second (CDN) listener, which
needs no key (``cdn_calls`` shows what reached it).

A request moves on by status polls, never by time: it waits ``queue_ahead`` polls with a
``queue_position`` counting down to 0 (HTTP 202), runs for ``running_polls`` polls (202), then is
``COMPLETED`` (200). Results are kept an hour after completion on ``clock`` (six minutes for
results of 10 KB or more), then ``response_url`` answers 404. A run that fails
(``fail_next_job``) is COMPLETED with ``error``/``error_type``, and its result answers 422 with the
model's ``detail`` list. Input errors are pydantic-style 422 ``detail`` lists.

[inferred] What fal answers after a cancellation is not documented: here a cancelled request is
COMPLETED with an ``error``, and a cancel of a finished one is 400 ``ALREADY_COMPLETED``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.openrouter_fake import CALL, RecordingFake, even
from tests.fakes.videos_fake import IMAGE_TYPES, ManualClock, RequestRefused, _data_url_file

_RESULT_TTL = 3600.0
_LARGE_RESULT_TTL = 360.0
_LARGE_RESULT = 10 * 1024
_NAMESPACES = ("workflows", "comfy")


@dataclass(frozen=True)
class Endpoint:
    """One model endpoint's input schema (the parts the fake checks) and output defaults."""

    choices: dict[str, tuple[str, ...]]
    required: tuple[str, ...] = ("prompt",)
    images: tuple[str, ...] = ()  # fields that carry an image URL
    flags: tuple[str, ...] = ("generate_audio",)
    max_prompt: int = 20000
    defaults: dict[str, str] = field(default_factory=dict)

    def output_size(self, body: dict[str, Any]) -> str:
        """The rendered clip's ``WxH`` from the request's aspect ratio and resolution."""
        aspect = body.get("aspect_ratio", self.defaults.get("aspect_ratio", "16:9"))
        aspect = "16:9" if aspect == "auto" else aspect
        short = {"4k": 2160}.get(
            resolution := body.get("resolution", self.defaults.get("resolution", "720p")),
            int(resolution.rstrip("p")),
        )
        across, down = (int(part) for part in aspect.split(":"))
        if across >= down:
            return f"{even(short * across / down)}x{short}"
        return f"{short}x{even(short * down / across)}"

    def seconds(self, body: dict[str, Any]) -> int:
        return int(str(body.get("duration", self.defaults["duration"])).rstrip("s"))


_VEO = {
    "aspect_ratio": ("16:9", "9:16"),
    "duration": ("4s", "6s", "8s"),
    "resolution": ("720p", "1080p", "4k"),
}
_VEO_DEFAULTS = {"duration": "8s", "resolution": "720p"}
_KLING_DEFAULTS = {"duration": "5", "resolution": "1080p"}
_WAN = {
    "duration": ("5", "10"),
    "aspect_ratio": ("16:9", "9:16", "1:1"),
    "resolution": ("480p", "720p", "1080p"),
}
_WAN_DEFAULTS = {"duration": "5", "resolution": "1080p"}
# From fal-js's generated endpoint types (providers.md §2.7).
ENDPOINTS: dict[str, Endpoint] = {
    "fal-ai/veo3.1": Endpoint(_VEO, defaults=_VEO_DEFAULTS),
    "fal-ai/veo3.1/image-to-video": Endpoint(
        {**_VEO, "aspect_ratio": ("auto", "16:9", "9:16")},
        required=("prompt", "image_url"),
        images=("image_url",),
        defaults=_VEO_DEFAULTS,
    ),
    "fal-ai/kling-video/v2.6/pro/text-to-video": Endpoint(
        {"duration": ("5", "10"), "aspect_ratio": ("16:9", "9:16", "1:1")}, defaults=_KLING_DEFAULTS
    ),
    "fal-ai/kling-video/v2.6/pro/image-to-video": Endpoint(
        {"duration": ("5", "10")},
        required=("prompt", "start_image_url"),
        images=("start_image_url", "end_image_url"),
        defaults=_KLING_DEFAULTS,
    ),
    "fal-ai/wan-25-preview/text-to-video": Endpoint(_WAN, flags=(), max_prompt=1500, defaults=_WAN_DEFAULTS),
    "fal-ai/wan-25-preview/image-to-video": Endpoint(
        {"duration": _WAN["duration"], "resolution": _WAN["resolution"]},
        required=("prompt", "image_url"),
        images=("image_url",),
        flags=(),
        max_prompt=1500,
        defaults=_WAN_DEFAULTS,
    ),
}


def app_path(endpoint_id: str) -> str:
    """``fal-ai/kling-video/v2.6/pro/text-to-video`` → ``fal-ai/kling-video``: where its requests live."""
    parts = endpoint_id.split("/")
    return "/".join(parts[:3] if parts[0] in _NAMESPACES else parts[:2])


@dataclass
class FakeRequest:
    id: str
    number: int
    endpoint: str
    input: dict[str, Any]
    size: str
    seconds: int
    queue_ahead: int
    running_polls: int
    failure: tuple[str, str] | None  # (error, error_type) when the run fails
    polls: int = 0
    cancelled: bool = False
    completed_at: float | None = None  # on the fake's clock
    media_gone: bool = False

    @property
    def state(self) -> str:
        if self.cancelled or self.polls > self.queue_ahead + self.running_polls:
            return "COMPLETED"
        return "IN_QUEUE" if self.polls <= self.queue_ahead else "IN_PROGRESS"


class FakeFal(RecordingFake):
    """The fake fal queue. Switches are plain attributes; see the module docstring."""

    def __init__(
        self,
        *,
        api_key: str = "fal-fake-key-id:0123456789abcdef",
        queue_ahead: int = 2,
        running_polls: int = 1,
        clock: Callable[[], float] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__(api_key=api_key, cache_dir=cache_dir)
        self.queue_ahead = queue_ahead
        self.running_polls = running_polls
        self.clock = clock or ManualClock()
        self.requests: dict[str, FakeRequest] = {}
        self._failures: list[tuple[str, str]] = []

    @property
    def base_url(self) -> str:
        """What an operator configures, like ``https://queue.fal.run``."""
        return self.origin

    def fail_next_job(
        self,
        error: str = "The content could not be processed because it contained material flagged by a "
        "content checker.",
        error_type: str = "content_policy_violation",
    ) -> None:
        """The next request accepted runs, then ends COMPLETED with this error."""
        self._failures.append((error, error_type))

    def delete_media(self, request_id: str) -> None:
        """The CDN forgets the request's video (its ``video.url`` answers 404)."""
        self.requests[request_id].media_gone = True

    async def request_bytes(self, request_id: str) -> bytes:
        request = self.requests[request_id]
        return await self.media_bytes(request.size, request.seconds, request.number)

    # -- RecordingFake ------------------------------------------------------------------------------

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/files/{request_id}/output.mp4", self._file)
        router.add_route("*", "/{tail:.+}", self._dispatch)

    def _cdn_path(self, path: str) -> bool:
        return path.startswith("/files/")

    def _authorized(self, header: str | None) -> bool:
        return header == f"Key {self.api_key}"

    def _error_body(self, status: int, message: str | None) -> dict[str, Any]:
        defaults = {
            401: "No authentication credentials were provided or they are invalid.",
            404: "Not Found",
            429: "Rate limit exceeded",
            502: "Bad Gateway",
            503: "Runner disconnected",
            504: "Request timed out",
        }
        return {"detail": message or defaults.get(status, "Internal Server Error")}

    # -- routes -------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        if "/requests/" not in path:
            if request.method != "POST":
                raise RequestRefused(405, {"detail": "Method Not Allowed"})
            return self._submit(path, request[CALL].json)
        app, _, rest = path.partition("/requests/")
        request_id, _, action = rest.partition("/")
        queued = self.requests.get(request_id)
        if queued is None or app_path(queued.endpoint) != app:
            raise RequestRefused(404, {"detail": f"Request {request_id} not found"})
        self._refresh(queued)
        if (request.method, action) == ("GET", "status"):
            return self._status(queued)
        if (request.method, action) == ("GET", ""):
            return self._result(queued)
        if (request.method, action) == ("PUT", "cancel"):
            return self._cancel(queued)
        raise RequestRefused(405, {"detail": "Method Not Allowed"})

    def _submit(self, endpoint_id: str, body: Any) -> web.Response:
        endpoint = ENDPOINTS.get(endpoint_id)
        if endpoint is None:
            raise RequestRefused(404, {"detail": f"Application '{endpoint_id}' not found"})
        if not isinstance(body, dict):
            raise _unprocessable([_problem((), "Input should be a valid dictionary", "dict_type", body)])
        _validate(endpoint, body)
        request_id = str(uuid.uuid4())
        self.requests[request_id] = queued = FakeRequest(
            id=request_id,
            number=len(self.requests) + 1,
            endpoint=endpoint_id,
            input=body,
            size=endpoint.output_size(body),
            seconds=endpoint.seconds(body),
            queue_ahead=self.queue_ahead,
            running_polls=self.running_polls,
            failure=self._failures.pop(0) if self._failures else None,
        )
        return web.json_response(self._status_body(queued))

    def _urls(self, queued: FakeRequest) -> dict[str, str]:
        base = f"{self.origin}/{app_path(queued.endpoint)}/requests/{queued.id}"
        return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    def _status_body(self, queued: FakeRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"status": queued.state, "request_id": queued.id, **self._urls(queued)}
        if queued.state == "IN_QUEUE":
            body.update(queue_position=queued.queue_ahead - queued.polls, logs=None, metrics={})
        elif queued.state == "IN_PROGRESS":
            body["logs"] = [
                {"message": "Generating video", "level": "INFO", "source": "USER", "timestamp": ""}
            ]
        else:
            body.update(logs=[], metrics={"inference_time": 42.0})
            error = ("Request was cancelled", "request_cancelled") if queued.cancelled else queued.failure
            if error is not None:
                body.update(error=error[0], error_type=error[1])
        return body

    def _refresh(self, queued: FakeRequest) -> None:
        if queued.state == "COMPLETED" and queued.completed_at is None:
            queued.completed_at = self.clock()

    def _status(self, queued: FakeRequest) -> web.Response:
        queued.polls += 1
        self._refresh(queued)
        body = self._status_body(queued)
        return web.json_response(body, status=200 if queued.state == "COMPLETED" else 202)

    def _result(self, queued: FakeRequest) -> web.Response:
        if queued.state != "COMPLETED":
            raise RequestRefused(400, {"detail": "Request is still in progress"})
        if queued.cancelled:
            raise RequestRefused(400, {"detail": "Request was cancelled"})
        if queued.failure is not None:
            error, error_type = queued.failure
            raise _unprocessable(
                [_problem(("body", "prompt"), error, error_type, queued.input.get("prompt"))]
            )
        result = {
            "video": {
                "url": f"{self.cdn_origin}/files/{queued.id}/output.mp4",
                "content_type": "video/mp4",
                "file_name": "output.mp4",
                "file_size": None,
            }
        }
        assert queued.completed_at is not None
        ttl = _LARGE_RESULT_TTL if len(json.dumps(result)) >= _LARGE_RESULT else _RESULT_TTL
        if self.clock() > queued.completed_at + ttl:
            raise RequestRefused(404, {"detail": f"Request {queued.id} not found"})
        return web.json_response(result)

    def _cancel(self, queued: FakeRequest) -> web.Response:
        if queued.state == "COMPLETED":
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
        queued.cancelled = True
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        queued = self.requests.get(request.match_info["request_id"])
        if queued is None or queued.media_gone or queued.state != "COMPLETED" or queued.failure:
            return web.Response(status=404, text="Not Found")
        return await self._serve_mp4(queued.size, queued.seconds, queued.number)


def _problem(loc: tuple[str, ...], msg: str, kind: str, value: Any, **ctx: Any) -> dict[str, Any]:
    """One entry of a pydantic-style ``detail`` list, as fal's 422 answers carry them."""
    entry: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": kind, "input": value}
    if ctx:
        entry["ctx"] = ctx
    return entry


def _unprocessable(problems: list[dict[str, Any]]) -> RequestRefused:
    return RequestRefused(422, {"detail": problems})


def _validate(endpoint: Endpoint, body: dict[str, Any]) -> None:
    problems = [
        _problem(("body", name), "Field required", "missing", body)
        for name in endpoint.required
        if name not in body
    ]
    prompt = body.get("prompt")
    if "prompt" in body and not isinstance(prompt, str):
        problems.append(_problem(("body", "prompt"), "Input should be a valid string", "string_type", prompt))
    elif isinstance(prompt, str) and len(prompt) > endpoint.max_prompt:
        problems.append(
            _problem(
                ("body", "prompt"),
                f"String should have at most {endpoint.max_prompt} characters",
                "string_too_long",
                prompt,
                max_length=endpoint.max_prompt,
            )
        )
    for name, allowed in endpoint.choices.items():
        if name in body and body[name] not in allowed:
            expected = " or ".join([", ".join(f"'{v}'" for v in allowed[:-1]), f"'{allowed[-1]}'"])
            problems.append(
                _problem(
                    ("body", name),
                    f"Input should be {expected}",
                    "literal_error",
                    body[name],
                    expected=expected,
                )
            )
    for name in endpoint.flags:
        if name in body and not isinstance(body[name], bool):
            problems.append(
                _problem(("body", name), "Input should be a valid boolean", "bool_type", body[name])
            )
    for name in endpoint.images:
        if name in body:
            problems.extend(_image_problems(name, body[name]))
    if problems:
        raise _unprocessable(problems)


def _image_problems(name: str, url: Any) -> list[dict[str, Any]]:
    try:
        image = _data_url_file(url, param=name)
    except RequestRefused:
        return [_problem(("body", name), "Failed to load the image: not a data URI", "image_load_error", url)]
    if image.content_type not in IMAGE_TYPES or not image.data:
        return [
            _problem(("body", name), f"Unsupported image type {image.content_type}", "image_load_error", url)
        ]
    return []
