"""Fetching a file from a URL (Discord's CDN) to disk: streamed, size-capped, off the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from bot.reasons import PlainError


class DownloadFailed(PlainError):
    """The file could not be fetched (or was too large); `reason` is meant for the member."""


async def download_capped(
    session: aiohttp.ClientSession, url: str, dest: Path, limit: int, *, failed: str, too_large: str
) -> None:
    """Stream `url` to `dest`, refusing as soon as it passes `limit` bytes (the caller removes `dest`)."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=120)) as response:
            if response.status != 200:
                raise DownloadFailed(failed)
            written = 0
            with dest.open("wb") as out:
                async for chunk in response.content.iter_chunked(256 * 1024):
                    written += len(chunk)
                    if written > limit:
                        raise DownloadFailed(too_large)
                    await asyncio.to_thread(out.write, chunk)
    except (aiohttp.ClientError, TimeoutError):
        raise DownloadFailed(failed) from None
