"""The AI/ML API dialect: ``/v2/video/generations`` with ``openai/sora-2-t2v``-style model names.

It has no listing, remix, delete or content route: the finished clip is fetched from the
``video.url`` the status answer carries, and there is no progress figure.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import replace

from yarl import URL

from .base import BaseVideoClient
from .errors import InvalidRequestError
from .models import ReferenceImage, Video

_GENERATIONS = ("v2", "video", "generations")


def provider_model(model: str, *, with_image: bool) -> str:
    """``sora-2`` → ``openai/sora-2-t2v`` (or ``-i2v`` with an image); names with a ``/`` pass as given."""
    if "/" in model:
        return model
    return f"openai/{model}-{'i2v' if with_image else 't2v'}"


def neutral_model(name: str | None) -> str | None:
    """``openai/sora-2-pro-i2v`` → ``sora-2-pro``: the name the rest of the bot uses."""
    if name is None:
        return None
    return re.sub(r"-[ti]2v$", "", name.removeprefix("openai/"))


def aspect_and_resolution(size: str) -> tuple[str, str]:
    """``1280x720`` → ``("16:9", "720p")``; the short side decides the resolution."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×*]\s*(\d+)\s*", size)
    if match is None:
        raise InvalidRequestError(f"size must look like 1280x720, not {size!r}")
    width, height = int(match.group(1)), int(match.group(2))
    return ("16:9" if width > height else "9:16"), ("720p" if min(width, height) <= 720 else "1080p")


class AimlapiVideoClient(BaseVideoClient):
    dialect = "aimlapi"

    @staticmethod
    def _api_root(base_url: URL) -> URL:
        # Operators often paste the OpenAI-compatible base (…/v1); the video routes live at /v2.
        return base_url.with_path(re.sub(r"/v[12]/?$", "", base_url.path))

    async def create(
        self, *, prompt: str, model: str, size: str, seconds: int, image: ReferenceImage | None = None
    ) -> Video:
        """Submit a job as JSON; the image travels inline as a ``data:`` URL. Retried only on 429."""
        aspect_ratio, resolution = aspect_and_resolution(size)
        body: dict[str, object] = {
            "model": provider_model(model, with_image=image is not None),
            "prompt": prompt,
            "duration": seconds,
            "aspect_ratio": aspect_ratio,
            "resolution": resolution,
        }
        if image is not None:
            encoded = base64.b64encode(await asyncio.to_thread(image.path.read_bytes)).decode("ascii")
            body["image_url"] = f"data:{image.mime_type};base64,{encoded}"
        video = await self._submit(self._url(*_GENERATIONS), what="create video", json_body=body)
        video = self._with_neutral_model(video)
        return self._fill_known(video, prompt=prompt, model=model, size=size, seconds=seconds)

    async def retrieve(self, video_id: str) -> Video:
        url = self._url(*_GENERATIONS, query={"generation_id": video_id})
        payload, headers = await self._call("GET", url)
        return self._with_neutral_model(self._parse_video(payload, headers))

    @staticmethod
    def _with_neutral_model(video: Video) -> Video:
        return replace(video, model=neutral_model(video.model))
