"""One aiohttp app on two loopback ports: the provider's API and its file storage (a "CDN" on another
origin, so a test sees whether the API key travelled there)."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class TwoListeners:
    """Lifecycle shared by the provider fakes; a subclass builds its app in `start` and calls `_listen`."""

    port: int
    cdn_port: int
    _runner: web.AppRunner | None = None

    async def start(self) -> Self:
        raise NotImplementedError

    async def _listen(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        for _ in range(2):
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        (_, self.port), (_, self.cdn_port) = (address[:2] for address in self._runner.addresses)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
