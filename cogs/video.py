"""`/video …`: generate, remix and jobs, the buttons under clips, the remix form and the "Remix video" menu.

Options follow the chosen model: `model`, `size` and `seconds` autocomplete with exactly what the
catalogue says that model allows; typed values are checked the same way by the intake.

Button and form state lives in the custom_id (`remix:<job id>`, `details:<job id>`, `remix-modal:<job
id>`) and the database, so buttons and forms opened before a restart keep working after it. Anything
that reads the database before answering defers first (Discord allows 3 s), except opening a form,
which must be the first answer: it reads with a short timeout and opens empty when the database is slow.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import SoraBot
from bot.buttons import TEMPLATE, button
from bot.cards import inert, job_link, lineage_kind, message_link, preview, source_of
from bot.catalogue import Audio, ModelSpec, Remix, closest_seconds, describe, size_label
from bot.errors import send_private
from bot.intake import VideoRequest
from bot.jobs.models import Job, JobStatus
from bot.money import format_usd
from bot.validation import MAX_PROMPT_CHARS
from bot.videos import VideoAPIError
from cogs.quota import window_line

log = logging.getLogger(__name__)

#: How many ancestors the Details answer lists.
LINEAGE_DEPTH = 5
#: The forms behind Remix and Extend: (title, prompt label).
FORMS = {
    "remix": ("Remix this video", "New prompt"),
    "extend": ("Extend this video", "What happens next?"),
}
PROMPT_INPUT = "prompt"
MENU_NAME = "Remix video"
#: Opening a form must be the first answer: the prompt is pre-filled only if the database answers in time.
FORM_READ_TIMEOUT = 1.5

NOT_HERE = "I can't find that clip in this server."
NOT_A_CLIP = "That message isn't a clip I made."
NEVER_FINISHED = "That video never finished, so there is nothing to {action}."
BEING_SAVED = "That clip has only just been posted and is still being saved; try again in a moment."
EXPIRED = (
    "That clip is too old to remix; its files have expired at the provider. "
    "Generate a new one with /video generate."
)
NOT_REMIXABLE = "{label} clips can't be remixed (the model has no way to start from an earlier clip)."
NOT_EXTENDABLE = "{label} clips can't be extended (the model can't start from a clip's last frame)."
ONLY_REQUESTER = "Only the member who asked for this video, or a manager, can cancel it."
TOO_LATE = "This video can't be cancelled anymore: it is already being made or posted."

MESSAGE_LINK = re.compile(
    r"^<?https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(?P<guild_id>[0-9]+|@me)"
    r"/(?P<channel_id>[0-9]+)/(?P<message_id>[0-9]+)/?>?$"
)
STATUS_LABELS = {
    JobStatus.RECEIVED: "checking",
    JobStatus.QUEUED: "queued",
    JobStatus.RESERVED: "starting",
    JobStatus.SUBMITTING: "starting",
    JobStatus.SUBMITTED: "generating",
    JobStatus.COMPLETED: "posting",
    JobStatus.POSTING: "posting",
    JobStatus.POSTED: "done",
    JobStatus.FAILED: "failed",
}


def bot_of(interaction: discord.Interaction) -> SoraBot:
    client = interaction.client
    assert isinstance(client, SoraBot)
    return client


async def say_privately(interaction: discord.Interaction, text: str) -> None:
    await send_private(interaction, f"⚠️ {text}")


class ClipButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """Handles the buttons on cards and under clips (`bot.buttons`), whenever they were posted."""

    def __init__(self, action: str, job_id: int) -> None:
        super().__init__(button(action, job_id))
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> ClipButton:
        return cls(match["action"], int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = bot_of(interaction).get_cog(VideoCog.__cog_name__)
        assert isinstance(cog, VideoCog)
        if self.action in FORMS:
            await cog.open_form(interaction, self.action, self.job_id)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        job = await bot_of(interaction).store.get(self.job_id)
        if self.action == "cancel":
            await cog.cancel(interaction, job)
        else:
            await cog.show_details(interaction, job)


@app_commands.guild_only()
class VideoCog(commands.GroupCog, group_name="video", group_description="Make AI videos with sound"):
    def __init__(self, bot: SoraBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.remix_menu)
        self.menu.guild_only = True
        super().__init__()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ClipButton)
        self.bot.tree.add_command(self.menu, override=True)
        self.bot.add_listener(self.on_form_submit, "on_interaction")

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ClipButton)
        self.bot.tree.remove_command(MENU_NAME, type=discord.AppCommandType.message)
        self.bot.remove_listener(self.on_form_submit, "on_interaction")

    # -- /video generate ------------------------------------------------------------------------

    @app_commands.command(name="generate", description="Make a short video with sound from a prompt")
    @app_commands.describe(
        prompt="What should happen in the video?",
        image="Optional first frame: a JPEG, PNG or WebP (it is cropped to the video's size)",
        model="Which model to use",
        size="Width x height in pixels",
        seconds="Length of the video",
        audio="Make sound (only for models where sound is optional)",
    )
    async def generate(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        image: discord.Attachment | None = None,
        model: str | None = None,
        size: str | None = None,
        seconds: app_commands.Range[int, 1, 600] | None = None,
        audio: bool | None = None,
    ) -> None:
        await self.bot.intake.take(
            interaction,
            VideoRequest(prompt=prompt, model=model, size=size, seconds=seconds, audio=audio, image=image),
        )

    @generate.autocomplete("model")
    async def model_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        needle = current.lower()
        return [
            app_commands.Choice(name=describe(spec)[:100], value=spec.id)
            for spec in self.bot.offer.models()
            if needle in spec.id.lower() or needle in spec.label.lower()
        ][:25]

    def _chosen_spec(self, interaction: discord.Interaction) -> ModelSpec | None:
        chosen = getattr(interaction.namespace, "model", None)
        return self.bot.catalogue.get(self.bot.offer.model(chosen))

    @generate.autocomplete("size")
    async def size_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """Only the sizes the chosen (or default) model allows, e.g. "1280x720 · landscape"."""
        spec = self._chosen_spec(interaction)
        sizes = spec.sizes if spec else ()
        return [app_commands.Choice(name=size_label(s), value=s) for s in sizes if current.lower() in s][:25]

    @generate.autocomplete("seconds")
    async def seconds_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        spec = self._chosen_spec(interaction)
        lengths = spec.seconds if spec else ()
        return [app_commands.Choice(name=f"{s} s", value=s) for s in lengths if str(current) in str(s)][:25]

    # -- remixing -------------------------------------------------------------------------------

    @app_commands.command(name="remix", description="Remix a clip made here with a new prompt")
    @app_commands.describe(video="The clip's message link, or its video id", prompt="What should change?")
    async def remix_command(
        self,
        interaction: discord.Interaction,
        video: str,
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
    ) -> None:
        await self.remix(interaction, await self.job_by_reference(interaction, video), prompt)

    async def job_by_reference(self, interaction: discord.Interaction, reference: str) -> Job | None:
        """A message link (of a clip or card in this server) or a provider video id."""
        reference = reference.strip()
        link = MESSAGE_LINK.match(reference)
        if link is not None:
            if link["guild_id"] != str(interaction.guild_id):
                return None
            return await self.bot.store.by_message(int(link["message_id"]))
        return await self.bot.store.by_provider_video(reference)

    @app_commands.command(name="extend", description="Continue a clip made here: what happens next?")
    @app_commands.describe(video="The clip's message link, or its video id", prompt="What happens next?")
    async def extend_command(
        self,
        interaction: discord.Interaction,
        video: str,
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
    ) -> None:
        await self.start_from(interaction, "extend", await self.job_by_reference(interaction, video), prompt)

    def refusal(self, interaction: discord.Interaction, action: str, source: Job | None) -> str | None:
        """Why `source` can't be remixed (or extended) here, or None. Another server's job is "not found"."""
        if source is None or source.guild_id != interaction.guild_id:
            return NOT_HERE
        if source.status is JobStatus.POSTING:  # on Discord, not yet written down as posted
            return BEING_SAVED
        if source.status is not JobStatus.POSTED or not source.provider_video_id:
            return NEVER_FINISHED.format(action=action)
        spec = self.bot.catalogue.get(source.model)
        label = spec.label if spec else source.model
        if action == "extend":
            return None if spec is not None and spec.image else NOT_EXTENDABLE.format(label=label)
        if spec is None or spec.remix is Remix.NONE:
            return NOT_REMIXABLE.format(label=label)
        native = spec.remix_of(source) is Remix.NATIVE
        if native and source.expires_at is not None and source.expires_at <= time.time():
            return EXPIRED
        return None

    async def remix(self, interaction: discord.Interaction, source: Job | None, prompt: str) -> None:
        await self.start_from(interaction, "remix", source, prompt)

    async def start_from(
        self, interaction: discord.Interaction, action: str, source: Job | None, prompt: str
    ) -> None:
        """Check the source, then hand over to the shared intake at the source's model and size; a remix
        keeps its length, an extension takes the model's length closest to it."""
        if (problem := self.refusal(interaction, action, source)) is not None:
            await say_privately(interaction, problem)
            return
        assert source is not None
        if action == "remix":
            request = VideoRequest(
                prompt, source.model, source.size, source.seconds, source.audio, remix_of=source
            )
        else:
            spec = self.bot.catalogue.get(source.model)
            assert spec is not None
            seconds = closest_seconds(spec, source.seconds)
            request = VideoRequest(prompt, source.model, source.size, seconds, source.audio, extend_of=source)
        await self.bot.intake.take(interaction, request)

    async def remix_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Message context menu: remix the clip (or card) this message is."""
        if self.bot.user is None or message.author.id != self.bot.user.id:
            await say_privately(interaction, NOT_A_CLIP)
            return
        job = await self._read_quickly(self.bot.store.by_message(message.id))
        if job is None:
            await say_privately(interaction, NOT_A_CLIP)
            return
        await self.open_form(interaction, "remix", job.id, job)

    async def open_form(
        self, interaction: discord.Interaction, action: str, job_id: int, job: Job | None = None
    ) -> None:
        """The form must be the first answer; a source that can't be used is refused instead."""
        source = job or await self._read_quickly(self.bot.store.get(job_id))
        if source is not None and (problem := self.refusal(interaction, action, source)) is not None:
            await say_privately(interaction, problem)
            return
        form = prompt_form(action, job_id, source)
        await interaction.response.send_modal(form)
        form.stop()  # the submit goes to on_form_submit, which needs nothing from this object

    @staticmethod
    async def _read_quickly(read: Any) -> Job | None:
        try:
            return await asyncio.wait_for(read, FORM_READ_TIMEOUT)
        except TimeoutError:
            return None

    async def on_form_submit(self, interaction: discord.Interaction) -> None:
        """Every remix and extend form submit, whenever the form was opened."""
        data = interaction.data or {}
        action, _, source_id = str(data.get("custom_id", "")).partition("-modal:")
        if interaction.type is not discord.InteractionType.modal_submit or action not in FORMS:
            return
        prompt = submitted_text(data.get("components", []), PROMPT_INPUT)  # type: ignore[arg-type]
        # Read the source again: it may have expired while the form was open.
        source = await self.bot.store.get(int(source_id)) if source_id.isdigit() else None
        await self.start_from(interaction, action, source, prompt or "")

    # -- cancel ---------------------------------------------------------------------------------

    async def cancel(self, interaction: discord.Interaction, job: Job | None) -> None:
        """The requester or a manager stops a job that can still be stopped (after a defer)."""
        if job is None or job.guild_id != interaction.guild_id:
            await say_privately(interaction, NOT_HERE)
            return
        manager = isinstance(interaction.user, discord.Member) and interaction.permissions.manage_guild
        if interaction.user.id != job.member_id and not manager:
            await say_privately(interaction, ONLY_REQUESTER)
            return
        try:
            ended = await self.bot.runner.cancel(job.id, interaction.user.id)
        except VideoAPIError as error:
            log.warning("Job %s: the provider did not take the cancel: %s", job.id, error)
            await say_privately(interaction, "The video provider did not answer; try Cancel again.")
            return
        if ended.status is JobStatus.FAILED and ended.error and ended.error.startswith("Cancelled"):
            await interaction.edit_original_response(content="Cancelled; nothing was charged.")
        else:
            await say_privately(interaction, TOO_LATE)

    # -- details and jobs -----------------------------------------------------------------------

    async def show_details(self, interaction: discord.Interaction, job: Job | None) -> None:
        """The clip's parameters, cost, requester, prompt and lineage, privately (after a defer)."""
        if job is None or job.guild_id != interaction.guild_id:
            await say_privately(interaction, NOT_HERE)
            return
        lineage: list[str] = []
        extended = 0  # seconds of the clips an extension continues (posted joined to it)
        joined = job.extended_from is not None
        parent_id = source_of(job)
        while parent_id is not None and (len(lineage) < LINEAGE_DEPTH or joined):
            parent = await self.bot.store.get(parent_id)
            if parent is None:
                break
            if len(lineage) < LINEAGE_DEPTH:
                lineage.append(job_link(parent))
            if joined:
                extended += parent.seconds
                joined = parent.extended_from is not None
            parent_id = source_of(parent)
        await interaction.edit_original_response(content=details_text(job, lineage, extended))

    @app_commands.command(
        name="info", description="Models, lengths, sizes and prices here; budgets and queue"
    )
    async def info(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = interaction.guild_id
        status = await self.bot.quotas.status(guild_id, interaction.user.id)
        queued = len(await self.bot.store.queue_order(guild_id))
        lines = [f"**Models** (provider: {self.bot.catalogue.family})"]
        lines += [model_line(spec) for spec in self.bot.offer.models()]
        lines += [
            "**Budgets**",
            window_line("Server today", status.guild_today),
            window_line("Server this month", status.guild_month),
            window_line("You today", status.member_today),
            f"**Now**: {status.in_flight} of at most {status.limits.max_concurrent} videos in progress · "
            f"{queued} waiting (the queue takes {self.bot.settings.max_queued_jobs_per_guild})",
        ]
        await interaction.edit_original_response(content="\n".join(lines)[:2000])

    @app_commands.command(name="jobs", description="Your last 10 videos and the ones still running")
    async def jobs(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        recent = await self.bot.store.recent_for_member(interaction.guild_id, interaction.user.id, 10)
        if not recent:
            text = "You have no videos here yet. Try `/video generate`."
        else:
            text = "\n".join(describe_job(job) for job in recent)
        await interaction.edit_original_response(content=text[:2000])


def prompt_form(action: str, source_id: int, source: Job | None) -> discord.ui.Modal:
    """The form asking for a prompt (a remix's is pre-filled with the source's when it was read in time).

    Its custom_id names the action and the source, and submits are handled by `on_form_submit` rather
    than by the modal object (which is dropped at once), so a form opened before a restart still works.
    """
    title, label = FORMS[action]
    form = discord.ui.Modal(title=title, custom_id=f"{action}-modal:{source_id}")
    prefill = source.prompt[:MAX_PROMPT_CHARS] if source and action == "remix" else None
    form.add_item(
        discord.ui.TextInput(
            label=label,
            style=discord.TextStyle.paragraph,
            custom_id=PROMPT_INPUT,
            default=prefill,
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


SOUND = {Audio.ALWAYS: "with sound", Audio.OPTIONAL: "sound optional", Audio.NONE: "silent"}


def model_line(spec: ModelSpec) -> str:
    """One offered model for `/video info`: label and price, lengths, sizes, sound, first frame."""
    lengths = "/".join(str(seconds) for seconds in spec.seconds)
    sizes = ", ".join(size_label(size) for size in spec.sizes)
    image = " · takes a first frame" if spec.image else ""
    name = f"**{inert(describe(spec))}** (`{inert(spec.id)}`)"
    return f"• {name}: {lengths} s · {sizes} · {SOUND[spec.audio]}{image}"


def cost_line(job: Job) -> str:
    """What the job was charged (the provider's actual cost where it said), else its estimate."""
    if job.status is JobStatus.POSTED:
        charged = job.actual_cost_micros if job.actual_cost_micros is not None else job.cost_micros
        return f"Charged: {format_usd(charged, rounding='up')}"
    if job.status is JobStatus.FAILED:
        return "Charged: nothing (refunded)"
    return f"Estimated cost: {format_usd(job.cost_micros, rounding='up')}"


def details_text(job: Job, lineage: list[str], extended: int = 0) -> str:
    """The Details answer; `lineage` lists the sources' links, nearest first; an extension's clip is
    posted joined to the `extended` seconds it continues."""
    length = f"{extended + job.seconds} s ({job.seconds} s added)" if extended else f"{job.seconds} s"
    lines = [
        f"**Video #{job.id}**",
        f"Model: {inert(job.model)}",
        f"Size: {job.size} · Length: {length}",
        cost_line(job),
        f"Requested by: <@{job.member_id}>",
    ]
    kind = lineage_kind(job)
    lines.append(f"{kind} of " + " ← ".join(lineage) if lineage else "Original (not a remix)")
    lines.append(f"Prompt: {inert(preview(job.prompt, 1500))}")
    return "\n".join(lines)


def describe_job(job: Job) -> str:
    """One line per job: number, status, age, what it was, and where to find it."""
    status = STATUS_LABELS[job.status]
    if job.status is JobStatus.SUBMITTED and job.progress:
        status += f" {job.progress}%"
    line = f"**#{job.id}** · {status} · <t:{int(job.created_at)}:R> · {inert(preview(job.prompt, 80))}"
    line += f" · {cost_line(job).lower()}"
    target = job.clip_message_id or job.card_message_id
    if target:
        line += f" · {message_link(job.guild_id, job.channel_id, target)}"
    if job.status is JobStatus.POSTED and job.error:
        line += (
            f" · [download](<{job.result_url}>)"
            if job.result_url
            else f" · provider id `{job.provider_video_id}`"
        )
    if job.status is JobStatus.FAILED and job.error:
        line += f"\n  ↳ {job.error}"
    return line


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, SoraBot)
    await bot.add_cog(VideoCog(bot))
