"""The OpenRouter dialect: ``POST /videos``, polled at the ``polling_url`` it answers with.

One key reaches Veo, Seedance, Wan, Kling and Hailuo; the finished job says what it cost
(``usage.cost``). There is no cancel, list, remix or delete. The clip is fetched from the
authenticated content route (``/videos/{id}/content?index=0``, what ``unsigned_urls`` point at),
falling back to the signed storage URL (``urls[0]``), which gets no key.

``ModelSpec.wire`` keys read here:

``size_params``
    Size → the exact request fields that ask for it, e.g. ``{"1280x720": {"aspect_ratio": "16:9",
    "resolution": "720p"}}`` (what :func:`bot.catalogue.specs_from_openrouter_models` gives).
``size_fields``
    For sizes ``size_params`` does not name: the request fields derived from the size, ``["size"]``
    (the default: ``"1280x720"``), or ``["aspect_ratio", "resolution"]`` (``"16:9"`` and ``"720p"``)
    for models that take aspect ratios and resolutions, or just ``["resolution"]``.

The size and image helpers here are shared with the fal dialect.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from yarl import URL

from bot.catalogue import Audio, ModelSpec, dimensions, specs_from_openrouter_models

from .base import BaseVideoClient
from .errors import InvalidRequestError, ProviderUnavailableError, UnsupportedOperation
from .models import ReferenceImage, Video, VideoError, VideoStatus
from .parsing import parse_usd_micros

log = logging.getLogger(__name__)

# The aspect ratios OpenRouter's request schema knows; a size maps to the nearest one.
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21")
_STATUSES = {
    "pending": VideoStatus.QUEUED,
    "in_progress": VideoStatus.IN_PROGRESS,
    "completed": VideoStatus.COMPLETED,
    "failed": VideoStatus.FAILED,
    "cancelled": VideoStatus.CANCELLED,
    "expired": VideoStatus.FAILED,
}
_EXPIRED = "OpenRouter gave up on this job: it ran past the time a job may take."


def aspect_ratio(width: int, height: int) -> str:
    """The nearest of :data:`ASPECT_RATIOS` (``1280x720`` → ``16:9``, ``1366x768`` → ``16:9``)."""

    def distance(ratio: str) -> float:
        across, down = (int(part) for part in ratio.split(":"))
        return abs(math.log(width / height) - math.log(across / down))

    return min(ASPECT_RATIOS, key=distance)


def size_params(size: str, fields: Iterable[str]) -> dict[str, str]:
    """The request fields for ``size``: ``size`` as given, ``aspect_ratio`` and/or ``resolution``
    (the short side: ``1920x1080`` → ``"1080p"``)."""
    width, height = dimensions(size)
    values = {
        "size": f"{width}x{height}",
        "aspect_ratio": aspect_ratio(width, height),
        "resolution": f"{min(width, height)}p",
    }
    unknown = set(fields) - set(values)
    if unknown:
        raise ValueError(f"unknown size field(s) {', '.join(sorted(unknown))} in the model's wire hints")
    return {name: values[name] for name in fields}


async def data_url(image: ReferenceImage) -> str:
    """The image inline as ``data:<mime>;base64,…`` (read in a worker thread)."""
    encoded = base64.b64encode(await asyncio.to_thread(image.path.read_bytes)).decode("ascii")
    return f"data:{image.mime_type};base64,{encoded}"


def check_image(model: ModelSpec, image: ReferenceImage | None) -> None:
    if image is not None and not model.image:
        raise InvalidRequestError(f"{model.label} cannot start from an image")


def _size_request(model: ModelSpec, size: str) -> Mapping[str, str]:
    exact = model.wire.get("size_params", {}).get(size)
    return exact if exact else size_params(size, model.wire.get("size_fields", ("size",)))


class OpenRouterVideoClient(BaseVideoClient):
    dialect = "openrouter"
    can_cancel = False
    can_list = False

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
        """Submit a job as JSON; the image travels inline as the first frame. Retried only on 429."""
        check_image(model, image)
        body: dict[str, Any] = {
            "model": model.id,
            "prompt": prompt,
            "duration": seconds,
            **_size_request(model, size),
        }
        if model.audio is Audio.OPTIONAL and audio is not None:
            body["generate_audio"] = audio
        if image is not None:
            body["frame_images"] = [
                {
                    "type": "image_url",
                    "image_url": {"url": await data_url(image)},
                    "frame_type": "first_frame",
                }
            ]
        video = await self._submit(self._url("videos"), what="create video", json_body=body)
        return self._fill_known(video, prompt=prompt, model=model.id, size=size, seconds=seconds)

    async def retrieve(self, video_id: str, locator: str | None = None) -> Video:
        """One status poll at the job's ``polling_url`` (its locator); not retried here."""
        url = URL(locator, encoded=True) if locator else self._url("videos", video_id)
        payload, headers = await self._call("GET", url)
        video = self._parse_video(payload, headers)
        return video if video.locator else replace(video, locator=locator)

    async def list_models(self) -> list[ModelSpec]:
        """What ``GET /videos/models`` publishes, as catalogue entries."""
        url = self._url("videos", "models")
        payload, _ = await self._retrying(lambda: self._call("GET", url), what="list video models")
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise ProviderUnavailableError("unexpected answer to GET /videos/models: no data list")
        return specs_from_openrouter_models(payload)

    def _content_url(self, video_id: str, variant: str) -> URL | None:
        if variant != "video":
            raise UnsupportedOperation("OpenRouter serves only the video itself (no thumbnails)")
        return self._url("videos", video_id, "content", query={"index": "0"})

    def _parse_video(self, payload: Any, headers: Mapping[str, str]) -> Video:  # type: ignore[override]
        """The shared parsing plus OpenRouter's own fields: statuses, polling URL, cost, file URLs."""
        video = BaseVideoClient._parse_video(payload, headers)
        raw = video.raw
        said = str(raw.get("status", "")).strip().lower()
        status = _STATUSES.get(said, video.status)
        error = video.error
        if said == "expired" and error is None:
            error = VideoError(code="expired", message=_EXPIRED)
        usage = raw.get("usage")
        return replace(
            video,
            status=status,
            error=error,
            locator=self._polling_url(raw.get("polling_url")),
            cost_micros=parse_usd_micros(usage.get("cost")) if isinstance(usage, dict) else None,
            result_url=_first_url(raw.get("urls")) or _first_url(raw.get("unsigned_urls")),
        )

    def _polling_url(self, value: object) -> str | None:
        """``polling_url`` made absolute (it may be relative to the API's origin), or None when it
        is missing or points elsewhere (the job is then polled at ``/videos/{id}``)."""
        if not isinstance(value, str) or not value.strip():
            return None
        url = self._origin.join(URL(value.strip()))
        if url.origin() != self._origin:
            log.warning("ignoring a polling_url on another host: %s", url.origin())
            return None
        return str(url)


def _first_url(value: object) -> str | None:
    if isinstance(value, list) and value and isinstance(value[0], str) and value[0].startswith("http"):
        return value[0]
    return None
