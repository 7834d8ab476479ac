"""Remixing posted clips: Remix and Details buttons under every clip, a "Remix video" message
context menu, and `/video remix`. Every way in ends in the shared intake (`take_request`).

Button state lives in the custom_id (`remix:<job id>`, `details:<job id>`) and the database, so the
buttons keep working for clips posted before a restart.
"""

from __future__ import annotations

import re
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cards import inert, job_link, preview
from bot.jobs.models import Job, JobStatus
from bot.money import format_usd
from bot.validation import MAX_PROMPT_CHARS
from cogs.intake import VideoRequest, bot_of, take_request
from cogs.video_group import add_to_video_group, remove_from_video_group

#: How many ancestors the Details answer lists.
LINEAGE_DEPTH = 5
FORM_PREFIX = "remix-modal:"
PROMPT_INPUT = "prompt"
MENU_NAME = "Remix video"

NOT_HERE = "I can't find that clip in this server."
NOT_A_CLIP = "That message isn't a clip I made."
NEVER_FINISHED = "That video never finished, so there is nothing to remix."
EXPIRED = (
    "That clip is too old to remix; its files have expired at the provider. "
    "Generate a new one with /video generate."
)

MESSAGE_LINK = re.compile(
    r"^<?https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(?P<guild_id>[0-9]+|@me)"
    r"/(?P<channel_id>[0-9]+)/(?P<message_id>[0-9]+)/?>?$"
)


# ----------------------------------------------------------------------------- looking jobs up


async def job_by_reference(interaction: discord.Interaction, reference: str) -> Job | None:
    """Resolve `/video remix`'s `video` option: a message link or a provider video id."""
    reference = reference.strip()
    link = MESSAGE_LINK.match(reference)
    if link is not None:
        if link["guild_id"] != str(interaction.guild_id):
            return None
        return await bot_of(interaction).store.by_message(int(link["message_id"]))
    return await bot_of(interaction).store.by_provider_video(reference)


async def remixable(interaction: discord.Interaction, source: Job | None) -> Job | None:
    """`source` when it can be remixed here; otherwise the member is told why, privately."""
    problem = refusal(interaction, source)
    if problem is not None:
        await say_privately(interaction, problem)
        return None
    return source


def refusal(interaction: discord.Interaction, source: Job | None) -> str | None:
    """Why `source` can't be remixed here, or None when it can. Another server's job is "not found"."""
    if source is None or source.guild_id != interaction.guild_id:
        return NOT_HERE
    if source.status is not JobStatus.POSTED or not source.provider_video_id:
        return NEVER_FINISHED
    if source.expires_at is not None and source.expires_at <= time.time():
        return EXPIRED
    return None


async def say_privately(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message(f"⚠️ {text}", ephemeral=True)


# ----------------------------------------------------------------------------- remixing


async def remix(interaction: discord.Interaction, source: Job | None, prompt: str) -> None:
    """Check the source, then hand over to the shared intake at the source's model, size and length."""
    if (source := await remixable(interaction, source)) is None:
        return
    await take_request(
        interaction,
        VideoRequest(prompt, source.model, source.size, source.seconds, remix_of=source),
    )


def remix_form(source: Job) -> discord.ui.Modal:
    """The form asking for the new prompt, pre-filled with the source's.

    Its custom_id names the source, and submits are handled by `on_remix_submit` rather than by the
    modal object (which is dropped at once), so a form opened before a restart still works after it.
    """
    form = discord.ui.Modal(title="Remix this video", custom_id=f"{FORM_PREFIX}{source.id}")
    form.add_item(
        discord.ui.TextInput(
            label="New prompt",
            style=discord.TextStyle.paragraph,
            custom_id=PROMPT_INPUT,
            default=source.prompt[:MAX_PROMPT_CHARS],
            min_length=1,
            max_length=MAX_PROMPT_CHARS,
        )
    )
    return form


def submitted_text(components: list[dict[str, Any]], custom_id: str) -> str | None:
    """A text input's value in a modal submit, in action-row (type 1) or label (type 18) layout."""
    for component in components:
        children = component.get("components") or (
            [component["component"]] if "component" in component else []
        )
        for child in children:
            if child.get("custom_id") == custom_id:
                return child.get("value")
    return None


async def on_remix_submit(interaction: discord.Interaction) -> None:
    """Every remix form submit, whenever the form was opened."""
    data = interaction.data or {}
    custom_id = str(data.get("custom_id", ""))
    if interaction.type is not discord.InteractionType.modal_submit or not custom_id.startswith(FORM_PREFIX):
        return
    prompt = submitted_text(data.get("components", []), PROMPT_INPUT)  # type: ignore[arg-type]
    source_id = custom_id.removeprefix(FORM_PREFIX)
    # Read the source again: it may have expired while the form was open.
    source = await bot_of(interaction).store.get(int(source_id)) if source_id.isdigit() else None
    await remix(interaction, source, prompt or "")


async def open_modal(interaction: discord.Interaction, source: Job | None) -> None:
    """The modal must be the first response; a source that can't be remixed is refused instead."""
    if (source := await remixable(interaction, source)) is not None:
        form = remix_form(source)
        await interaction.response.send_modal(form)
        form.stop()  # the submit goes to on_remix_submit, which needs nothing from this object


# ----------------------------------------------------------------------------- buttons


BUTTON_STYLES = {
    "remix": ("Remix", "🔁", discord.ButtonStyle.primary),
    "details": ("Details", "ℹ️", discord.ButtonStyle.secondary),
}


class ClipButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?P<action>remix|details):(?P<job_id>[0-9]+)"
):
    """A button under a clip; its action and job live in the custom_id, so it survives restarts."""

    def __init__(self, action: str, job_id: int) -> None:
        label, emoji, style = BUTTON_STYLES[action]
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=f"{action}:{job_id}")
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> ClipButton:
        return cls(match["action"], int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        job = await bot_of(interaction).store.get(self.job_id)
        if self.action == "remix":
            await open_modal(interaction, job)
        else:
            await show_details(interaction, job)


async def show_details(interaction: discord.Interaction, job: Job | None) -> None:
    """The clip's parameters, cost, requester, prompt and lineage, privately."""
    if job is None or job.guild_id != interaction.guild_id:
        await say_privately(interaction, NOT_HERE)
        return
    store = bot_of(interaction).store
    lineage: list[str] = []
    parent_id = job.remixed_from
    while parent_id is not None and len(lineage) < LINEAGE_DEPTH:
        parent = await store.get(parent_id)
        if parent is None:
            break
        lineage.append(job_link(parent))
        parent_id = parent.remixed_from
    await interaction.response.send_message(details_text(job, lineage), ephemeral=True)


def details_text(job: Job, lineage: list[str]) -> str:
    """The Details answer; `lineage` lists the sources' links, nearest first."""
    lines = [
        f"**Video #{job.id}**",
        f"Model: {inert(job.model)}",
        f"Size: {job.size} · Length: {job.seconds} s",
        f"Cost: {format_usd(job.cost_micros, rounding='up')}",
        f"Requested by: <@{job.member_id}>",
    ]
    if lineage:
        lines.append("Remix of " + " ← ".join(lineage))
    else:
        lines.append("Original (not a remix)")
    lines.append(f"Prompt: {inert(preview(job.prompt, 1500))}")
    return "\n".join(lines)


def clip_view(job: Job) -> discord.ui.View:
    """The persistent buttons under a posted clip."""
    view = discord.ui.View(timeout=None)
    view.add_item(ClipButton("remix", job.id))
    view.add_item(ClipButton("details", job.id))
    return view


def no_view(job: Job) -> None:
    return None


# ----------------------------------------------------------------------------- commands


@app_commands.guild_only()
async def remix_menu(interaction: discord.Interaction, message: discord.Message) -> None:
    """Message context menu: remix the clip (or card) this message is."""
    client_user = interaction.client.user
    job = None
    if client_user is not None and message.author.id == client_user.id:
        job = await bot_of(interaction).store.by_message(message.id)
    if job is None:
        await say_privately(interaction, NOT_A_CLIP)
        return
    await open_modal(interaction, job)


@app_commands.command(name="remix", description="Remix a clip made here with a new prompt")
@app_commands.describe(
    video="The clip's message link, or its video id",
    prompt="What should change?",
)
async def remix_command(
    interaction: discord.Interaction, video: str, prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS]
) -> None:
    await remix(interaction, await job_by_reference(interaction, video), prompt)


def remix_context_menu() -> app_commands.ContextMenu:
    return app_commands.ContextMenu(name=MENU_NAME, callback=remix_menu)


async def setup(bot: commands.Bot) -> None:
    bot.add_dynamic_items(ClipButton)
    bot.tree.add_command(remix_context_menu(), override=True)
    add_to_video_group(bot.tree, remix_command)
    bot.delivery.clip_view = clip_view  # type: ignore[attr-defined]
    bot.add_listener(on_remix_submit, "on_interaction")


async def teardown(bot: commands.Bot) -> None:
    bot.remove_dynamic_items(ClipButton)
    bot.tree.remove_command(MENU_NAME, type=discord.AppCommandType.message)
    remove_from_video_group(bot.tree, "remix")
    bot.delivery.clip_view = no_view  # type: ignore[attr-defined]
    bot.remove_listener(on_remix_submit, "on_interaction")
