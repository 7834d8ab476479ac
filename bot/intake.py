"""Taking a request in: record it, acknowledge privately, check it, reserve its cost, hand it to the runner.

Shared by `/video generate` and every way of remixing, so all follow exactly the same path:

1. the request row is written (with the interaction token) *before* the acknowledgement, so a crash
   right after the defer is found on restart and the member's "thinking…" is answered — unless the
   database takes longer than `Intake.row_wait`: then the acknowledgement goes first (Discord's 3 s);
2. checks before spending (prompt, model/size/length/image against the catalogue, the attachment by
   its bytes, the bot's channel permissions); a refusal edits the private answer and reserves nothing;
3. the cost is reserved with the job's acceptance in one transaction;
4. the runner posts the card and drives the job; the private answer links the card. A failure to
   edit the private answer (token expired, Discord trouble) never stops a job whose card is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import discord

from bot.cards import message_link
from bot.catalogue import Remix, estimate_micros
from bot.downloads import download_capped
from bot.errors import report_unexpected
from bot.invite import REQUIRED_PERMISSIONS
from bot.jobs.models import Job, JobStatus
from bot.jobs.store import NewJob
from bot.media.fit import VideoFitError
from bot.media.frames import extract_frame
from bot.media.images import MAX_IMAGE_BYTES, image_too_large, prepare_reference_image
from bot.pricing import NoPriceError
from bot.reasons import PlainError
from bot.validation import RequestRefused, normalise_prompt

if TYPE_CHECKING:
    from bot.app import SoraBot

log = logging.getLogger(__name__)

DOWNLOAD_FAILED = "I couldn't download that image from Discord. Please attach it again."
SOURCE_GONE = "I couldn't read the source clip from Discord anymore, so it can't be used."
PERMISSION_NAMES = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "attach_files": "Attach Files",
    "embed_links": "Embed Links",
    "read_message_history": "Read Message History",
}
#: A source clip is downloaded from Discord (to take a frame) up to this size.
MAX_SOURCE_BYTES = 512 << 20


@dataclass(frozen=True, slots=True)
class VideoRequest:
    """What the member asked for; unset options take the settings' or the model's defaults."""

    prompt: str
    model: str | None = None
    size: str | None = None
    seconds: int | None = None
    audio: bool | None = None
    image: discord.Attachment | None = None
    remix_of: Job | None = None
    extend_of: Job | None = None


class Intake:
    #: How long the request's row may take to write before the interaction is acknowledged anyway:
    #: the row first (a restart then finds it and tells the member), but never past Discord's 3 s.
    row_wait: float = 1.0

    def __init__(self, bot: SoraBot) -> None:
        self.bot = bot

    async def take(self, interaction: discord.Interaction, request: VideoRequest) -> Job | None:
        """The whole intake; returns the accepted job, or None when it was refused (the member was told)."""
        bot = self.bot
        offer = bot.offer
        assert interaction.guild_id is not None and interaction.channel_id is not None
        model_id = offer.model(request.model)
        spec = bot.catalogue.get(model_id)
        size, seconds = offer.size(spec, request.size), offer.seconds(spec, request.seconds)
        creating = asyncio.create_task(
            bot.store.create(
                NewJob(
                    guild_id=interaction.guild_id,
                    channel_id=interaction.channel_id,
                    member_id=interaction.user.id,
                    application_id=interaction.application_id,
                    interaction_token=interaction.token,
                    token_expires_at=interaction.expires_at.timestamp(),
                    upload_limit=interaction.filesize_limit,
                    model=spec.id if spec else model_id,
                    size=size,
                    seconds=seconds,
                    prompt=request.prompt,
                    audio=request.audio,
                    remixed_from=request.remix_of.id if request.remix_of else None,
                    extended_from=request.extend_of.id if request.extend_of else None,
                )
            )
        )
        await asyncio.wait({creating}, timeout=self.row_wait)
        if not creating.done():
            log.warning("The database is slow: acknowledging a request before its row is written")
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            acknowledged = True
        except discord.NotFound:  # past Discord's 3 s: the member sees "did not respond"; nothing spent
            acknowledged = False
        job = await creating
        if not acknowledged:
            log.warning("Job %s: acknowledged too late (interaction expired); dropped", job.id)
            await bot.store.fail(job.id, "The bot answered too late; nothing was charged.")
            return None
        image: Path | None = None
        try:
            spec = bot.catalogue.check_request(
                model_id,
                size,
                seconds,
                image=request.image is not None,
                video_models=offer.video_models,
            )
            prompt = normalise_prompt(request.prompt, spec.max_prompt_chars)
            check_permissions(interaction.app_permissions)
            cost = estimate_micros(spec, size, seconds)
            mime = None
            if request.image is not None:
                image, mime = await self._member_image(job, request.image)
            elif request.extend_of is not None:
                image, mime = await self._source_frame(job, request.extend_of, "last")
            elif request.remix_of is not None and spec.remix_of(request.remix_of) is Remix.FRAME:
                image, mime = await self._source_frame(job, request.remix_of, "first")
            job = await bot.store.reserve(
                job,
                cost,
                queue_limit=bot.settings.max_queued_jobs_per_guild,
                prompt=prompt,
                image_path=str(image) if image else None,
                image_mime=mime,
            )
        except PlainError as refusal:
            return await self._refuse(interaction, job, refusal.reason, image)
        except NoPriceError:
            log.error("No price for %s at %s: add it to MODELS_FILE or PRICES_FILE", model_id, size)
            reason = f"`{model_id}` has no price configured at {size}, so it can't run. Tell an admin."
            return await self._refuse(interaction, job, reason, image)
        except Exception as error:
            await bot.store.fail(job.id, "Refused after an internal error; nothing was charged.")
            discard(image)
            await report_unexpected(interaction, error)
            return None
        bot.runner.launch(job.id)
        job = await bot.runner.wait_for_card(job.id)
        if job.finished and job.card_message_id is None:
            await self._answer(interaction, job, f"⚠️ {job.error}")
            return None
        where = message_link(job.guild_id, job.channel_id, job.card_message_id) if job.card_message_id else ""
        state = "waits in this server's queue" if job.status is JobStatus.QUEUED else "is on its way"
        await self._answer(interaction, job, f"Your video {state}: {where}".strip(": "))
        return job

    async def _refuse(
        self, interaction: discord.Interaction, job: Job, reason: str, image: Path | None
    ) -> None:
        job = await self.bot.store.fail(job.id, reason)
        discard(image)
        await self._answer(interaction, job, f"⚠️ {reason}")

    async def _answer(self, interaction: discord.Interaction, job: Job, text: str) -> None:
        """Edit the private answer; failing to (an expired token, Discord trouble) is only logged."""
        try:
            await interaction.edit_original_response(content=text)
        except discord.HTTPException as error:
            log.info("Job %s: could not edit the private answer: %s", job.id, error)

    @contextlib.contextmanager
    def _inputs(self, job: Job) -> Iterator[tuple[Path, Path]]:
        """(raw upload, prepared image) paths: the raw file never outlives the block, the prepared
        one only when the block succeeds."""
        inputs = self.bot.settings.work_dir / "inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        raw, prepared = inputs / f"job-{job.id}-{secrets.token_hex(4)}.upload", inputs / f"job-{job.id}.jpg"
        try:
            yield raw, prepared
        except BaseException:
            prepared.unlink(missing_ok=True)
            raise
        finally:
            raw.unlink(missing_ok=True)

    async def _member_image(self, job: Job, attachment: discord.Attachment) -> tuple[Path, str]:
        """Download the member's image (size-capped) and prepare it off the event loop."""
        if attachment.size > MAX_IMAGE_BYTES:
            raise image_too_large()
        with self._inputs(job) as (raw, prepared):
            await download_capped(
                self.bot.http_session,
                attachment.url,
                raw,
                MAX_IMAGE_BYTES,
                failed=DOWNLOAD_FAILED,
                too_large=image_too_large().reason,
            )
            width, height = job.width_height
            result = await asyncio.to_thread(prepare_reference_image, raw, width, height, prepared)
        return result.path, result.mime_type

    async def _source_frame(self, job: Job, source: Job, which: Literal["first", "last"]) -> tuple[Path, str]:
        """A frame of the source clip at the new job's size: the first for a remix on a model without a
        remix route, the last for an extension."""
        with self._inputs(job) as (raw, prepared):
            if not await self.bot.delivery.fetch_clip(source, raw, MAX_SOURCE_BYTES):
                raise RequestRefused(SOURCE_GONE)
            width, height = job.width_height
            try:
                result = await asyncio.to_thread(extract_frame, raw, which, width, height, prepared)
            except VideoFitError as error:
                raise RequestRefused(f"{SOURCE_GONE} ({error.reason})") from error
        return result.path, result.mime_type


def discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def check_permissions(permissions: discord.Permissions) -> None:
    """The bot must be able to post the card and the clip here."""
    if permissions.is_superset(REQUIRED_PERMISSIONS):
        return
    missing = [
        PERMISSION_NAMES[name]
        for name, needed in REQUIRED_PERMISSIONS
        if needed and not getattr(permissions, name)
    ]
    if missing:
        raise RequestRefused(
            f"I'm missing these permissions in this channel: {', '.join(missing)}. "
            "Ask an admin to grant them, or use another channel."
        )
