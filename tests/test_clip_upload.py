"""A posted clip is read for its upload on one trip to a worker thread, and closed on none."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp.payload import IOBasePayload

from tests.harness import World


class RecordingExecutor(ThreadPoolExecutor):
    """The loop's default executor, remembering each function it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.functions: list[Callable[..., Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.functions.append(fn)
        return super().submit(fn, *args, **kwargs)


def reads_a_file_upload(fn: Callable[..., Any]) -> bool:
    return isinstance(getattr(fn, "__self__", None), IOBasePayload)


def is_discord_close_stub(fn: Callable[..., Any]) -> bool:
    """discord.py's no-op stand-in for an uploaded file's `close`."""
    code = getattr(fn, "__code__", None)
    return code is not None and code.co_filename.endswith(os.path.join("discord", "file.py"))


def open_files_under(folder: Path) -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed by now
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [link for link in links if link.startswith(str(folder))]


async def test_a_clip_is_uploaded_in_one_trip_to_a_thread_and_then_closed(world: World) -> None:
    executor = RecordingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    async with world.running_bot() as bot:
        await world.generate(prompt="a lighthouse at dusk")
        clip = await world.wait_for_clip()
        await bot.runner.wait_idle()
        work = bot.settings.work_dir
        assert open_files_under(work) == []  # the clip's file was closed once it was posted
    (video_id,) = world.videos.videos
    (posted,) = clip.files.values()
    assert posted == (await world.videos.content_path(video_id)).read_bytes()
    assert len(posted) < 256 * 1024  # one chunk of aiohttp's
    assert len([fn for fn in executor.functions if reads_a_file_upload(fn)]) == 1
    assert [fn for fn in executor.functions if is_discord_close_stub(fn)] == []  # no trip to close it
