"""The buttons on cards and under clips. Their state is the custom_id (`<action>:<job id>`), so they keep
working after a restart; `cogs/video.py` registers the handler that matches `TEMPLATE`."""

from __future__ import annotations

from collections.abc import Callable

import discord

from bot.catalogue import ModelSpec, Remix
from bot.jobs.models import Job

TEMPLATE = r"(?P<action>remix|extend|details|cancel):(?P<job_id>[0-9]+)"
STYLES = {
    "remix": ("Remix", "🔁", discord.ButtonStyle.primary),
    "extend": ("Extend", "⏩", discord.ButtonStyle.primary),
    "details": ("Details", "ℹ️", discord.ButtonStyle.secondary),
    "cancel": ("Cancel", "✖️", discord.ButtonStyle.danger),
}

ViewFactory = Callable[[Job], discord.ui.View | None]


def button(action: str, job_id: int) -> discord.ui.Button[discord.ui.View]:
    label, emoji, style = STYLES[action]
    return discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=f"{action}:{job_id}")


def view_of(*buttons: discord.ui.Button[discord.ui.View]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in buttons:
        view.add_item(item)
    return view


def clip_view_factory(models: Callable[[str], ModelSpec | None]) -> ViewFactory:
    """Under a posted clip: Remix where the model can remix, Extend where it takes a first frame, Details."""

    def clip_view(job: Job) -> discord.ui.View:
        spec = models(job.model)
        actions = []
        if spec is not None and spec.remix is not Remix.NONE:
            actions.append("remix")
        if spec is not None and spec.image:
            actions.append("extend")
        return view_of(*(button(action, job.id) for action in [*actions, "details"]))

    return clip_view


def card_view_factory(cancellable: Callable[[Job], bool]) -> ViewFactory:
    """On a job's card: Cancel while the job can still be cancelled, nothing after."""

    def card_view(job: Job) -> discord.ui.View | None:
        return view_of(button("cancel", job.id)) if cancellable(job) else None

    return card_view
