"""The OpenAI ``/videos`` dialect, spoken by the gateways that kept its shape after Sora (SayGM,
LaoZhang, self-hosted New-API) and by Azure's v1 API.

Gateways implement only part of it: New-API has no list or delete route (404 ``Invalid URL``),
answers an unknown task with 400 ``task_not_exist`` (a NotFoundError here) and ignores
``?variant=`` (so a thumbnail request may bring the video; ``download`` checks the bytes).
The model's ``wire`` hints are not read: the request is the same for every model, and ``audio``
has no field here (a model makes sound or not).
"""

from __future__ import annotations

import asyncio

from yarl import URL

from bot.catalogue import ModelSpec

from .base import BaseVideoClient
from .errors import NotFoundError, ProviderUnavailableError, UnsupportedOperation
from .models import ReferenceImage, Video, VideoPage
from .multipart import FilePart, encode_form
from .parsing import parse_video_page

_VARIANTS = ("video", "thumbnail", "spritesheet")


class OpenAIVideoClient(BaseVideoClient):
    dialect = "openai"
    can_list = True

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
        """Submit a job as multipart/form-data, as the official SDK does (retried only on 429).

        ``seconds`` travels as a string, as the OpenAI shape wants, whatever range the model has.
        """
        files = []
        if image is not None:
            data = await asyncio.to_thread(image.path.read_bytes)
            files.append(FilePart("input_reference", data, image.path.name, image.mime_type))
        fields = [("prompt", prompt), ("model", model.id), ("seconds", str(seconds)), ("size", size)]
        video = await self._submit(self._url("videos"), what="create video", form=encode_form(fields, files))
        return self._fill_known(video, prompt=prompt, model=model.id, size=size, seconds=seconds)

    async def retrieve(self, video_id: str, locator: str | None = None) -> Video:
        """One status poll; not retried here (the runner schedules the next poll)."""
        payload, headers = await self._call("GET", self._url("videos", video_id))
        return self._parse_video(payload, headers)

    async def list_recent(self, *, limit: int = 100, after: str | None = None) -> VideoPage:
        """Newest first; pass the page's ``last_id`` as ``after`` for the next page.

        A gateway without the list route raises UnsupportedOperation ("could not look"), and
        this client stops asking (``can_list`` turns False).
        """
        if not self.can_list:
            raise UnsupportedOperation("this provider cannot list videos")
        query = {"limit": str(max(1, min(100, limit))), "order": "desc"}
        if after:
            query["after"] = after
        url = self._url("videos", query=query)
        try:
            payload, _ = await self._retrying(lambda: self._call("GET", url), what="list videos")
        except NotFoundError as exc:
            self.can_list = False
            raise UnsupportedOperation(
                f"this provider cannot list videos (GET /videos answered: {exc.message})", status=exc.status
            ) from None
        try:
            return parse_video_page(payload)
        except ValueError as exc:
            raise ProviderUnavailableError(f"unexpected answer to GET /videos: {exc}") from None

    async def remix(
        self, video_id: str, *, prompt: str, model: ModelSpec, locator: str | None = None
    ) -> Video:
        """Start a new job from a completed video; retried only on 429, like ``create``."""
        url = self._url("videos", video_id, "remix")
        video = await self._submit(url, what=f"remix {video_id}", json_body={"prompt": prompt})
        return self._fill_known(video, prompt=prompt, model=model.id, remixed_from_video_id=video_id)

    async def delete(self, video_id: str) -> None:
        url = self._url("videos", video_id)
        await self._retrying(lambda: self._call("DELETE", url), what=f"delete {video_id}")

    def _content_url(self, video_id: str, variant: str) -> URL | None:
        if variant not in _VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(_VARIANTS)}")
        return self._url("videos", video_id, "content", query={"variant": variant})
