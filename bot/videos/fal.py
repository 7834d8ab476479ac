"""The fal.ai queue dialect: submit to ``{base}/{endpoint id}``, then follow the URLs it answers.

The submission answers ``status_url``, ``response_url`` and ``cancel_url``; fal says never to
build them by hand (they leave the endpoint's subpath out), so they travel with the job as its
locator (compact JSON). Status answers are 202 while queued (with ``queue_position``) or running
and 200 when ``COMPLETED``, which is also how a failed run ends (with ``error``/``error_type``).
The result (``{"video": {"url": …}}`` on fal's CDN, fetched without the key) is kept only an hour
after completion (six minutes when large). There is no cost figure, no list and no remix.

``ModelSpec.wire`` keys read here (the model id is the endpoint for text-only jobs):

``image_endpoint``
    The endpoint id for jobs that start from an image (default: the model id).
``image_field``
    The input field for the image's data URL (default ``image_url``; Kling: ``start_image_url``).
``duration_format``
    How ``duration`` is written: absent for an integer, ``"{}"`` for ``"5"``, ``"{}s"`` for ``"8s"``.
``size_fields`` / ``image_size_fields``
    The fields that carry the size (see :func:`bot.videos.openrouter.size_params`) for text and for
    image jobs; default ``["aspect_ratio", "resolution"]``, and the image list defaults to the text one.

``generate_audio`` is sent only to models whose sound is optional.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from bot.catalogue import Audio, ModelSpec

from .base import BaseVideoClient, _read_text
from .errors import InvalidRequestError, NotFoundError, ProviderUnavailableError, VideoAPIError
from .models import ReferenceImage, Video, VideoError, VideoStatus
from .openrouter import check_image, data_url, size_params
from .parsing import ErrorDetails, parse_error_body, parse_retry_after

_STATES = {
    "IN_QUEUE": VideoStatus.QUEUED,
    "IN_PROGRESS": VideoStatus.IN_PROGRESS,
    "COMPLETED": VideoStatus.COMPLETED,
}
_DEFAULT_SIZE_FIELDS = ("aspect_ratio", "resolution")
_CANCEL_ANSWERS = {
    "ALREADY_COMPLETED": "the request had already finished",
    "NOT_FOUND": "fal does not know this request",
}
_GONE = (
    "fal no longer has this video: it keeps a result for an hour after it is ready "
    "(six minutes for large ones), and it was not fetched in time."
)
_MAX_DETAIL = 500


@dataclass(frozen=True, slots=True)
class QueueURLs:
    """Where fal said a request can be found again."""

    status_url: str
    response_url: str
    cancel_url: str

    KEYS: ClassVar[tuple[str, ...]] = ("status_url", "response_url", "cancel_url")

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> QueueURLs | None:
        values = [payload.get(key) for key in cls.KEYS]
        if not all(isinstance(value, str) and value.startswith(("https://", "http://")) for value in values):
            return None
        return cls(*values)

    @classmethod
    def from_locator(cls, video_id: str, locator: str | None) -> QueueURLs:
        try:
            urls = cls.from_payload(json.loads(locator)) if locator else None
        except (ValueError, AttributeError):
            urls = None
        if urls is None:
            raise NotFoundError(f"fal request {video_id} cannot be looked up: its queue URLs were not kept")
        return urls

    def locator(self) -> str:
        return json.dumps(
            {key: getattr(self, key) for key in self.KEYS}, separators=(",", ":"), sort_keys=True
        )

    def url(self, key: str) -> URL:
        return URL(getattr(self, key), encoded=True)


class FalVideoClient(BaseVideoClient):
    dialect = "fal"
    can_cancel = True
    can_list = False

    def __init__(self, base_url: str, api_key: str, session: aiohttp.ClientSession, **options: Any) -> None:
        super().__init__(base_url, api_key, session, **options)
        self._auth_value = f"Key {api_key}"  # fal's scheme; base.py knows Bearer and bare keys

    async def create(
        self,
        *,
        prompt: str,
        model: ModelSpec,
        size: str,
        seconds: int,
        image: ReferenceImage | None = None,
        audio: bool | None = None,
    ) -> Video:
        """Queue a job with the model's own input names; retried only on 429."""
        check_image(model, image)
        wire = model.wire
        size_fields = wire.get("size_fields", _DEFAULT_SIZE_FIELDS)
        endpoint = model.id
        if image is not None:
            endpoint = wire.get("image_endpoint", model.id)
            size_fields = wire.get("image_size_fields", size_fields)
        duration_format = wire.get("duration_format")
        body: dict[str, Any] = {
            "prompt": prompt,
            "duration": seconds if duration_format is None else duration_format.format(seconds),
            **size_params(size, size_fields),
        }
        if model.audio is Audio.OPTIONAL and audio is not None:
            body["generate_audio"] = audio
        if image is not None:
            body[wire.get("image_field", "image_url")] = await data_url(image)
        video = await self._submit(self._url(*endpoint.split("/")), what="queue video", json_body=body)
        if video.locator is None:
            raise ProviderUnavailableError("fal accepted the job but gave no status, result and cancel URLs")
        return self._fill_known(video, prompt=prompt, model=model.id, size=size, seconds=seconds)

    async def retrieve(self, video_id: str, locator: str | None = None) -> Video:
        """One status poll; when the run is done, also the result (its ``video.url``)."""
        urls = QueueURLs.from_locator(video_id, locator)
        payload, _ = await self._call("GET", urls.url("status_url"))
        video = replace(_queue_video(payload, video_id), locator=locator)
        if video.status is VideoStatus.COMPLETED:
            video = await self._with_result(video, urls)
        return video

    async def cancel(self, video_id: str, locator: str | None = None) -> bool:
        """Ask fal to stop the job: True when it accepted, False when the job had already finished."""
        url = QueueURLs.from_locator(video_id, locator).url("cancel_url")
        try:
            await self._retrying(lambda: self._call("PUT", url), what=f"cancel {video_id}")
        except InvalidRequestError as exc:
            if exc.code == "ALREADY_COMPLETED":
                return False
            raise
        return True

    async def download(
        self, video: Video, dest: Path, *, variant: str = "video", max_bytes: int | None = None
    ) -> int:
        """Stream the result from fal's CDN (no key goes there); a file gone from it is NotFoundError."""
        try:
            return await super().download(video, dest, variant=variant, max_bytes=max_bytes)
        except NotFoundError as exc:
            raise NotFoundError(_GONE, status=exc.status) from exc

    async def _with_result(self, video: Video, urls: QueueURLs) -> Video:
        try:
            payload, _ = await self._call("GET", urls.url("response_url"))
        except NotFoundError as exc:
            raise NotFoundError(_GONE, status=exc.status) from exc
        except InvalidRequestError as exc:
            if exc.status != 422:  # the model's own refusal, relayed as its result
                raise
            return replace(
                video, status=VideoStatus.FAILED, error=VideoError(code=exc.code, message=exc.message)
            )
        result = payload.get("video") if isinstance(payload, dict) else None
        url = result.get("url") if isinstance(result, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ProviderUnavailableError("fal's result for this job has no video URL")
        return replace(video, result_url=url)

    @staticmethod
    def _parse_video(payload: Any, headers: Mapping[str, str]) -> Video:
        """A submission's answer: the queue status, whose three URLs become the locator."""
        return _queue_video(payload, None)

    async def _error_from(self, resp: aiohttp.ClientResponse) -> VideoAPIError:
        try:
            body = await _read_text(resp)
        except (aiohttp.ClientError, TimeoutError):
            body = ""
        reason = f"HTTP {resp.status} {resp.reason or ''}".strip()
        details = fal_error_details(body, reason=reason, error_type=resp.headers.get("x-fal-error-type"))
        return self._error(resp.status, details, retry_after=parse_retry_after(resp.headers))


def _queue_video(payload: Any, video_id: str | None) -> Video:
    """A Video from one of fal's queue status objects (``video_id`` when the answer leaves it out)."""
    if not isinstance(payload, dict):
        raise ProviderUnavailableError("unexpected answer from fal's queue: not a JSON object")
    request_id = payload.get("request_id") or video_id
    if not isinstance(request_id, str) or not request_id:
        raise ProviderUnavailableError("unexpected answer from fal's queue: no request_id")
    status = _STATES.get(str(payload.get("status", "")).upper(), VideoStatus.IN_PROGRESS)
    error = None
    if status is VideoStatus.COMPLETED and (payload.get("error") or payload.get("error_type")):
        status = VideoStatus.FAILED
        message = payload.get("error")
        error = VideoError(
            code=str(payload.get("error_type") or "") or None,
            message=str(message) if message else "the model could not make this video",
        )
    position = payload.get("queue_position")
    urls = QueueURLs.from_payload(payload)
    return Video(
        id=request_id,
        status=status,
        error=error,
        queue_position=position if isinstance(position, int) and status is VideoStatus.QUEUED else None,
        locator=urls.locator() if urls else None,
        raw=payload,
    )


def fal_error_details(body: str, *, reason: str, error_type: str | None = None) -> ErrorDetails:
    """An error answer as one readable sentence: a 422 ``detail`` list (``duration: Input should
    be '5' or '10'; image_url: Field required.``), ``{"detail": "…", "error_type": "…"}``, or a
    cancel answer's ``{"status": "ALREADY_COMPLETED"}``; anything else as :func:`parse_error_body`."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        details = parse_error_body(body, reason=reason)
        return replace(details, code=details.code or error_type)
    detail, status = data.get("detail"), data.get("status")
    kind = data.get("error_type") if isinstance(data.get("error_type"), str) else error_type
    if isinstance(detail, list) and detail:
        problems = [item for item in detail if isinstance(item, dict)]
        first = problems[0] if problems else {}
        kind = first.get("type") if isinstance(first.get("type"), str) else kind
        sentence = "; ".join(_problem_text(item) for item in problems) or reason
        param = _field(first.get("loc")) or None
        return ErrorDetails(message=(sentence + ".")[:_MAX_DETAIL], code=kind, type=kind, param=param)
    if isinstance(detail, str) and detail.strip():
        return ErrorDetails(message=detail.strip()[:_MAX_DETAIL], code=kind, type=kind)
    if isinstance(status, str) and status:
        return ErrorDetails(message=_CANCEL_ANSWERS.get(status, status), code=status)
    details = parse_error_body(body, reason=reason)
    return replace(details, code=details.code or kind)


def _field(loc: object) -> str:
    """``["body", "image_url"]`` → ``image_url``."""
    if not isinstance(loc, list):
        return ""
    return ".".join(str(part) for part in loc if part != "body")


def _problem_text(problem: Mapping[str, Any]) -> str:
    message = str(problem.get("msg") or "is not valid").strip().rstrip(".")
    field = _field(problem.get("loc"))
    return f"{field}: {message}" if field else message
