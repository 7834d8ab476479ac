"""The event loop the bot runs on: uvloop where it is installed (Linux and macOS), else asyncio's own.

uvloop runs the same asyncio code with a cheaper loop and cheaper sockets; with a thousand jobs in
flight most of the bot's CPU goes to HTTP requests and loop turns (`bench/README.md`). It is not
built for Windows, where the bot uses asyncio's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on `new_event_loop()`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
