"""The OpenAI ``/videos`` dialect, also spoken by Azure's v1 API, CometAPI and New-API gateways."""

from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from .base import BaseVideoClient
from .errors import ProviderUnavailableError
from .models import ReferenceImage, Video, VideoPage
from .parsing import parse_video_page

_VARIANTS = ("video", "thumbnail", "spritesheet")


class OpenAIVideoClient(BaseVideoClient):
    dialect = "openai"

    async def create(
        self, *, prompt: str, model: str, size: str, seconds: int, image: ReferenceImage | None = None
    ) -> Video:
        """Submit a job as multipart/form-data, as the official SDK does (retried only on 429)."""
        image_bytes = await asyncio.to_thread(image.path.read_bytes) if image else None

        def form() -> aiohttp.FormData:
            data = aiohttp.FormData(default_to_multipart=True)
            data.add_field("prompt", prompt)
            data.add_field("model", model)
            data.add_field("seconds", str(seconds))
            data.add_field("size", size)
            if image is not None and image_bytes is not None:
                data.add_field(
                    "input_reference", image_bytes, filename=image.path.name, content_type=image.mime_type
                )
            return data

        video = await self._submit(self._url("videos"), what="create video", form=form)
        return self._fill_known(video, prompt=prompt, model=model, size=size, seconds=seconds)

    async def retrieve(self, video_id: str) -> Video:
        """One status poll; not retried here (the runner schedules the next poll)."""
        payload, headers = await self._call("GET", self._url("videos", video_id))
        return self._parse_video(payload, headers)

    async def list_recent(self, *, limit: int = 100, after: str | None = None) -> VideoPage:
        """Newest first; pass the page's ``last_id`` as ``after`` for the next page."""
        query = {"limit": str(max(1, min(100, limit))), "order": "desc"}
        if after:
            query["after"] = after
        url = self._url("videos", query=query)
        payload, _ = await self._retrying(lambda: self._call("GET", url), what="list videos")
        try:
            return parse_video_page(payload)
        except ValueError as exc:
            raise ProviderUnavailableError(f"unexpected answer to GET /videos: {exc}") from None

    async def remix(self, video_id: str, *, prompt: str) -> Video:
        """Start a new job from a completed video; retried only on 429, like ``create``."""
        url = self._url("videos", video_id, "remix")
        video = await self._submit(url, what=f"remix {video_id}", json_body={"prompt": prompt})
        return self._fill_known(video, prompt=prompt, remixed_from_video_id=video_id)

    async def delete(self, video_id: str) -> None:
        url = self._url("videos", video_id)
        await self._retrying(lambda: self._call("DELETE", url), what=f"delete {video_id}")

    def _content_url(self, video_id: str, variant: str) -> URL | None:
        if variant not in _VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(_VARIANTS)}")
        return self._url("videos", video_id, "content", query={"variant": variant})
