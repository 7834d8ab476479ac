"""Keeps the catalogue's provider layer current where the provider publishes its models (OpenRouter).

Read at start and every few hours; a provider that is down at start leaves the last list that was
saved in the database in place, so a command never ends up with no models.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.catalogue import Catalogue, load_provider_models, save_provider_models
from bot.db import Database
from bot.videos import VideoAPIError, VideoClient

log = logging.getLogger(__name__)

REFRESH_EVERY = 6 * 3600.0


class ModelsRefresher:
    def __init__(
        self, catalogue: Catalogue, client: VideoClient, db: Database, *, every: float = REFRESH_EVERY
    ) -> None:
        self.catalogue = catalogue
        self.client = client
        self.db = db
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the provider's list (or the saved one), then refresh it in the background."""
        if await self.refresh() is None:
            return  # this provider publishes no list: the built-in catalogue and MODELS_FILE are all
        self._task = asyncio.create_task(self._every_few_hours(), name="models-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> bool | None:
        """True when the provider's list was applied, False when the saved one stands in, None: no list."""
        family = self.catalogue.family
        try:
            specs = await self.client.list_models()
        except VideoAPIError as error:
            log.warning("Could not read %s's model list (%s); keeping the last known one", family, error)
            if self._task is None:  # at start: fall back to what was saved last time
                saved = await load_provider_models(self.db, family)
                if saved is not None:
                    self.catalogue.apply_provider_list(saved.specs)
            return False
        if specs is None:
            return None
        self.catalogue.apply_provider_list(specs)
        await save_provider_models(self.db, family, specs)
        return True

    async def _every_few_hours(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.refresh()
            except Exception:
                log.exception("Refreshing the model list failed; trying again later")
