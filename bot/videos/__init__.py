"""Client for the Videos API: one interface, a class per dialect, shared models, errors and retry policy.

Build a client with :func:`create_video_client` (the dialect name comes from ``VIDEO_PROVIDER``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bot.catalogue import ModelSpec

from .aimlapi import AimlapiVideoClient
from .base import BaseVideoClient
from .errors import (
    AuthenticationError,
    BillingError,
    InvalidRequestError,
    ModerationError,
    NotFoundError,
    ProviderUnavailableError,
    RateLimitedError,
    ServerError,
    UnsupportedOperation,
    VideoAPIError,
)
from .fal import FalVideoClient
from .models import ReferenceImage, Video, VideoError, VideoPage, VideoStatus
from .openai import OpenAIVideoClient
from .openrouter import OpenRouterVideoClient
from .retry import RetryPolicy


class VideoClient(Protocol):
    """What the job runner needs from a provider, whatever family it is.

    ``locator`` is an opaque string a client may put on a Video (e.g. the status/result/cancel URLs a
    queue answered with); the runner stores it with the job and hands it back to every later call.
    """

    #: True when ``cancel`` can stop a job at the provider.
    can_cancel: bool
    #: True when ``list_recent`` works (a lost submission can be looked up).
    can_list: bool

    async def create(
        self,
        *,
        prompt: str,
        model: ModelSpec,
        size: str,
        seconds: int,
        image: ReferenceImage | None = None,
        audio: bool | None = None,
    ) -> Video: ...

    async def retrieve(self, video_id: str, locator: str | None = None) -> Video: ...

    async def list_recent(self, *, limit: int = 100, after: str | None = None) -> VideoPage: ...

    async def remix(
        self, video_id: str, *, prompt: str, model: ModelSpec, locator: str | None = None
    ) -> Video: ...

    async def download(
        self, video: Video, dest: Path, *, variant: str = "video", max_bytes: int | None = None
    ) -> int: ...

    async def cancel(self, video_id: str, locator: str | None = None) -> bool: ...

    async def list_models(self) -> list[ModelSpec] | None:
        """The models the provider says it serves, or None when it publishes no list."""
        ...

    async def delete(self, video_id: str) -> None: ...


DIALECTS: dict[str, type[BaseVideoClient]] = {
    OpenAIVideoClient.dialect: OpenAIVideoClient,
    AimlapiVideoClient.dialect: AimlapiVideoClient,
    OpenRouterVideoClient.dialect: OpenRouterVideoClient,
    FalVideoClient.dialect: FalVideoClient,
}


def create_video_client(
    dialect: str, base_url: str, api_key: str, session: aiohttp.ClientSession, **options: Any
) -> VideoClient:
    """A client for ``dialect`` (a key of :data:`DIALECTS`, case-insensitive); ValueError if unknown.

    ``options`` are the dialect class's keyword arguments (auth, retry, sleep, timeouts, and the
    ``budget`` every HTTP request of the client takes first).
    """
    try:
        cls = DIALECTS[dialect.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown video provider dialect {dialect!r}; expected one of: {known}") from None
    return cls(base_url, api_key, session, **options)


__all__ = [
    "DIALECTS",
    "AimlapiVideoClient",
    "AuthenticationError",
    "BillingError",
    "InvalidRequestError",
    "ModerationError",
    "NotFoundError",
    "OpenAIVideoClient",
    "ProviderUnavailableError",
    "RateLimitedError",
    "ReferenceImage",
    "RetryPolicy",
    "ServerError",
    "UnsupportedOperation",
    "Video",
    "VideoAPIError",
    "VideoClient",
    "VideoError",
    "VideoPage",
    "VideoStatus",
    "create_video_client",
]
