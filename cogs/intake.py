"""Taking a request in: acknowledge privately, record it, check it, reserve its cost, post its card.

Shared by `/video generate` and every way of remixing, so both follow exactly the same path.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import aiohttp
import discord

from bot.cards import message_link
from bot.errors import report_unexpected
from bot.invite import REQUIRED_PERMISSIONS
from bot.jobs.models import Job
from bot.jobs.store import NewJob
from bot.media.images import MAX_IMAGE_BYTES, ImageRejected, image_too_large, prepare_reference_image
from bot.pricing import NoPriceError
from bot.reasons import PlainError
from bot.validation import RequestRefused, check_combination, normalise_prompt

if TYPE_CHECKING:
    from bot.app import SoraBot

log = logging.getLogger(__name__)

DOWNLOAD_FAILED = "I couldn't download that image from Discord. Please attach it again."
PERMISSION_NAMES = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "attach_files": "Attach Files",
    "embed_links": "Embed Links",
    "read_message_history": "Read Message History",
}


@dataclass(frozen=True, slots=True)
class VideoRequest:
    prompt: str
    model: str
    size: str
    seconds: int
    image: discord.Attachment | None = None
    remix_of: Job | None = None


def bot_of(interaction: discord.Interaction) -> SoraBot:
    return cast("SoraBot", interaction.client)


async def take_request(interaction: discord.Interaction, request: VideoRequest) -> Job | None:
    """The whole intake; returns the accepted job, or None when it was refused (the member was told)."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot = bot_of(interaction)
    assert interaction.guild_id is not None and interaction.channel_id is not None
    job = await bot.store.create(
        NewJob(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            application_id=interaction.application_id,
            interaction_token=interaction.token,
            token_expires_at=interaction.expires_at.timestamp(),
            upload_limit=interaction.filesize_limit,
            model=request.model,
            size=request.size,
            seconds=request.seconds,
            prompt=request.prompt,
            remixed_from=request.remix_of.id if request.remix_of else None,
        )
    )
    image: Path | None = None
    try:
        prompt = normalise_prompt(request.prompt)
        check_combination(request.model, request.size, request.seconds, bot.settings.video_models)
        check_permissions(interaction.app_permissions)
        cost = bot.prices.estimate(request.model, request.size, request.seconds)
        mime = None
        if request.image is not None:
            image, mime = await fetch_image(bot, job, request.image)
        job = await bot.store.reserve(
            job, cost, prompt=prompt, image_path=str(image) if image else None, image_mime=mime
        )
    except PlainError as refusal:
        return await refuse(interaction, job, refusal.reason, image)
    except NoPriceError:
        log.error("No price for %s at %s: add it to PRICES_FILE", request.model, request.size)
        return await refuse(
            interaction,
            job,
            f"`{request.model}` has no price configured, so it can't run. Tell an admin.",
            image,
        )
    except Exception as error:
        await bot.store.fail(job.id, "Refused after an internal error; nothing was charged.")
        discard(image)
        await report_unexpected(interaction, error)
        return None
    job = await bot.runner.ensure_card(job)
    if job.finished:
        await interaction.edit_original_response(content=f"⚠️ {job.error}")
        return None
    await interaction.edit_original_response(
        content="Your video is on its way: "
        + message_link(job.guild_id, job.channel_id, job.card_message_id or 0)
    )
    bot.runner.launch(job.id)
    return job


async def refuse(interaction: discord.Interaction, job: Job, reason: str, image: Path | None) -> None:
    await bot_of(interaction).store.fail(job.id, reason)
    discard(image)
    await interaction.edit_original_response(content=f"⚠️ {reason}")
    return None


def discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def check_permissions(permissions: discord.Permissions) -> None:
    """The bot must be able to post the card and the clip here."""
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


async def fetch_image(bot: SoraBot, job: Job, attachment: discord.Attachment) -> tuple[Path, str]:
    """Download the member's image (size-capped) and prepare it off the event loop."""
    if attachment.size > MAX_IMAGE_BYTES:
        raise image_too_large()
    inputs = bot.settings.work_dir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    raw = inputs / f"job-{job.id}-{secrets.token_hex(4)}.upload"
    prepared = inputs / f"job-{job.id}.jpg"
    try:
        await download_capped(bot.http_session, attachment.url, raw, MAX_IMAGE_BYTES)
        width, height = job.width_height
        result = await asyncio.to_thread(prepare_reference_image, raw, width, height, prepared)
    except BaseException:
        prepared.unlink(missing_ok=True)
        raise
    finally:
        raw.unlink(missing_ok=True)
    return result.path, result.mime_type


async def download_capped(session: aiohttp.ClientSession | None, url: str, dest: Path, limit: int) -> None:
    """Stream `url` to `dest`, refusing as soon as it passes `limit` bytes."""
    assert session is not None
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=60)) as response:
            if response.status != 200:
                raise ImageRejected(DOWNLOAD_FAILED)
            written = 0
            with dest.open("wb") as out:
                async for chunk in response.content.iter_chunked(64 * 1024):
                    written += len(chunk)
                    if written > limit:
                        raise image_too_large()
                    out.write(chunk)
    except (aiohttp.ClientError, TimeoutError):
        raise ImageRejected(DOWNLOAD_FAILED) from None
