"""Client for the Videos API: one interface, a class per dialect, shared models, errors and retry policy.

Build a client with :func:`create_video_client` (the dialect name comes from ``VIDEO_PROVIDER``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import aiohttp

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
from .models import ReferenceImage, Video, VideoError, VideoPage, VideoStatus
from .openai import OpenAIVideoClient
from .retry import RetryPolicy


class VideoClient(Protocol):
    """What the job runner needs from a provider, whatever dialect it speaks."""

    async def create(
        self, *, prompt: str, model: str, size: str, seconds: int, image: ReferenceImage | None = None
    ) -> Video: ...

    async def retrieve(self, video_id: str) -> Video: ...

    async def list_recent(self, *, limit: int = 100, after: str | None = None) -> VideoPage: ...

    async def remix(self, video_id: str, *, prompt: str) -> Video: ...

    async def download(self, video: Video, dest: Path, *, variant: str = "video") -> int: ...

    async def delete(self, video_id: str) -> None: ...


DIALECTS: dict[str, type[BaseVideoClient]] = {
    OpenAIVideoClient.dialect: OpenAIVideoClient,
    AimlapiVideoClient.dialect: AimlapiVideoClient,
}


def create_video_client(
    dialect: str, base_url: str, api_key: str, session: aiohttp.ClientSession, **options: Any
) -> VideoClient:
    """A client for ``dialect`` (a key of :data:`DIALECTS`, case-insensitive); ValueError if unknown.

    ``options`` are the dialect class's keyword arguments (auth, retry, sleep, timeouts).
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
