"""The buttons under a posted clip. Their state is the custom_id (`<action>:<job id>`), so they keep
working after a restart; `cogs/video.py` registers the handler that matches `TEMPLATE`."""

from __future__ import annotations

from collections.abc import Callable

import discord

from bot.catalogue import ModelSpec, Remix
from bot.jobs.models import Job

TEMPLATE = r"(?P<action>remix|details):(?P<job_id>[0-9]+)"
STYLES = {
    "remix": ("Remix", "🔁", discord.ButtonStyle.primary),
    "details": ("Details", "ℹ️", discord.ButtonStyle.secondary),
}


def clip_button(action: str, job_id: int) -> discord.ui.Button[discord.ui.View]:
    label, emoji, style = STYLES[action]
    return discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=f"{action}:{job_id}")


def clip_view_factory(models: Callable[[str], ModelSpec | None]) -> Callable[[Job], discord.ui.View]:
    """Views for posted clips: Remix only where the job's model can remix, Details always."""

    def clip_view(job: Job) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        spec = models(job.model)
        if spec is not None and spec.remix is not Remix.NONE:
            view.add_item(clip_button("remix", job.id))
        view.add_item(clip_button("details", job.id))
        return view

    return clip_view
