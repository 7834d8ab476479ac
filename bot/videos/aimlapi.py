"""The AI/ML API dialect: ``POST /v2/video/generations`` (JSON), polled with ``GET ?generation_id=``.

Models are served by AI/ML API's own ids (``vendor/model-t2v``, …), sent
as the catalogue gives them. The request carries ``prompt``, ``duration`` (an integer), an aspect
ratio and a resolution derived from the ``WxH`` size, ``image_url`` (a ``data:`` URL) with a first
frame, and ``generate_audio`` when the model's sound is optional and the member chose.

``ModelSpec.wire`` hints read here:

- ``image_model``: the id to send instead when an image is given (AI/ML API splits many models
  into a text-to-video and an image-to-video id, e.g. ``vendor/model-i2v``).
- ``aspect_field``: the name of the aspect-ratio field (default ``aspect_ratio``; ``ratio`` for
  MiniMax H3); an empty string leaves it out.
- ``resolution``: a fixed resolution to send (e.g. ``2K``) instead of the one derived from the
  size; an empty string leaves it out.

It has no listing, remix, delete, cancel or content route: the finished clip is fetched from the
``video.url`` the status answer carries, and there is no progress figure. The submit answer
reports what the job costs in ``meta.usage`` (``usd_spent``, or ``credits_used`` at 2,000,000
credits per dollar); it becomes ``Video.cost_micros`` of the Video ``create`` returns (polls do
not repeat it).
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from yarl import URL

from bot.catalogue import Audio, ModelSpec

from .base import BaseVideoClient
from .errors import InvalidRequestError
from .models import ReferenceImage, Video
from .parsing import parse_amount, parse_usd_micros

_GENERATIONS = ("v2", "video", "generations")
_ASPECT_RATIOS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
_RESOLUTIONS = ((480, "480p"), (720, "720p"), (1080, "1080p"), (2160, "4k"))  # by the short side
CREDITS_PER_MICRO = 2  # AI/ML API: $1 = 2,000,000 credits = 1,000,000 micro-dollars


def aspect_and_resolution(size: str) -> tuple[str, str]:
    """``1280x720`` → ``("16:9", "720p")``: the nearest of AI/ML API's ratios and resolutions."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", size)
    if match is None or 0 in (int(match.group(1)), int(match.group(2))):
        raise InvalidRequestError(f"size must look like 1280x720, not {size!r}")
    width, height = int(match.group(1)), int(match.group(2))

    def distance(ratio: str) -> float:
        across, down = (int(part) for part in ratio.split(":"))
        return abs(math.log(width / height) - math.log(across / down))

    short = min(width, height)
    resolution = min(_RESOLUTIONS, key=lambda entry: abs(entry[0] - short))[1]
    return min(_ASPECT_RATIOS, key=distance), resolution


def cost_micros(payload: Mapping[str, Any]) -> int | None:
    """What ``meta.usage`` says a job cost, in micro-dollars (``usd_spent``, else ``credits_used``)."""
    meta = payload.get("meta")
    usage = meta.get("usage") if isinstance(meta, dict) else None
    if not isinstance(usage, dict):
        return None
    usd = parse_usd_micros(usage.get("usd_spent"))
    if usd is not None:
        return usd
    credits = parse_amount(usage.get("credits_used"))
    return None if credits is None else round(credits / CREDITS_PER_MICRO)


class AimlapiVideoClient(BaseVideoClient):
    dialect = "aimlapi"

    @staticmethod
    def _api_root(base_url: URL) -> URL:
        # Operators often paste the OpenAI-compatible base (…/v1); the video routes live at /v2.
        return base_url.with_path(re.sub(r"/v[12]/?$", "", base_url.path))

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
        """Submit a job as JSON; the image travels inline as a ``data:`` URL. Retried only on 429."""
        body = await self._request(prompt=prompt, model=model, size=size, seconds=seconds, image=image)
        if audio is not None and model.audio is Audio.OPTIONAL:
            body["generate_audio"] = audio
        video = await self._submit(self._url(*_GENERATIONS), what="create video", json_body=body)
        video = replace(video, cost_micros=cost_micros(video.raw))
        return self._fill_known(video, prompt=prompt, model=model.id, size=size, seconds=seconds)

    async def retrieve(self, video_id: str, locator: str | None = None) -> Video:
        url = self._url(*_GENERATIONS, query={"generation_id": video_id})
        payload, headers = await self._call("GET", url)
        video = self._parse_video(payload, headers)
        return replace(video, cost_micros=cost_micros(video.raw))

    @staticmethod
    async def _request(
        *, prompt: str, model: ModelSpec, size: str, seconds: int, image: ReferenceImage | None
    ) -> dict[str, Any]:
        aspect_ratio, resolution = aspect_and_resolution(size)
        body: dict[str, Any] = {
            "model": model.wire.get("image_model", model.id) if image is not None else model.id,
            "prompt": prompt,
            "duration": seconds,
        }
        aspect_field = model.wire.get("aspect_field", "aspect_ratio")
        if aspect_field:
            body[aspect_field] = aspect_ratio
        resolution = model.wire.get("resolution", resolution)
        if resolution:
            body["resolution"] = resolution
        if image is not None:
            encoded = base64.b64encode(await asyncio.to_thread(image.path.read_bytes)).decode("ascii")
            body["image_url"] = f"data:{image.mime_type};base64,{encoded}"
        return body
