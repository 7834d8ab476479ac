"""The Discord side of delivery: the card, the clip post and private notices, all with the bot token.

The card is a normal channel message, so it is edited through the channel endpoint: that keeps working
after the 15-minute interaction token has expired and after a restart.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import discord
from discord.http import Route

from bot.cards import clip_caption, job_link, render_card
from bot.jobs.delivery import DeliveryError
from bot.jobs.models import Job
from bot.jobs.store import JobStore

log = logging.getLogger(__name__)

FILE_TOO_LARGE = 40005
UNKNOWN_CHANNEL = 10003
#: How many messages after the card are searched for a clip posted before a restart.
HISTORY_SEARCH = 100
#: Edit a card at most this often; cards older than an hour more slowly (Discord's code 30046).
EDIT_INTERVAL = 3.0
SLOW_EDIT_INTERVAL = 30.0
SLOW_AFTER = 3600.0

ViewFactory = Callable[[Job], discord.ui.View | None]


#: One letter per kind of post, appended to the job's nonce.
NONCE_KINDS = {"card": "c", "clip": "v", "fallback": "f"}


def nonce_for(job: Job, what: str) -> str:
    """The job's random nonce (never the row id: another database reuses ids) plus what is posted.

    Discord returns the first message when a post with the same nonce is retried within a few minutes;
    past that window, `find_posted` looks in the channel instead.
    """
    return f"{job.nonce}{NONCE_KINDS[what]}"


def refuse_for_good(error: discord.HTTPException, what: str) -> None:
    """Raise DeliveryError for a Discord refusal no retry mends; return for one that may pass (429, 5xx)."""
    if isinstance(error, discord.Forbidden):
        reason = "I can no longer post in that channel (missing permissions)."
    elif error.code == UNKNOWN_CHANNEL:
        reason = "The channel was deleted, so the video can't be posted there."
    elif error.status == 413 or error.code == FILE_TOO_LARGE:
        reason = "the file is larger than this server's upload limit."
    elif 400 <= error.status < 500 and error.status != 429:
        reason = f"Discord refused the {what} (error {error.code or error.status})."
    else:
        return
    raise DeliveryError(reason) from error


class DiscordDelivery:
    def __init__(
        self,
        bot: discord.Client,
        store: JobStore,
        *,
        clip_view: ViewFactory = lambda job: None,
        edit_interval: float = EDIT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot = bot
        self.store = store
        self.clip_view = clip_view
        self.edit_interval = edit_interval
        self.clock = clock
        self._last_edit: dict[int, tuple[float, str]] = {}

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    async def _source_link(self, job: Job) -> str | None:
        if job.remixed_from is None:
            return None
        source = await self.store.get(job.remixed_from)
        return job_link(source) if source is not None else None

    def upload_limit(self, job: Job) -> int:
        """The bot posts in the channel, so the server's tier limit applies (a member's Nitro does not)."""
        guild = self.bot.get_guild(job.guild_id)
        return min(job.upload_limit, guild.filesize_limit) if guild else job.upload_limit

    async def ensure_card(self, job: Job) -> int:
        if job.card_message_id is not None:
            return job.card_message_id
        embed = render_card(job, source_link=await self._source_link(job))
        try:
            message = await self._channel(job).send(embed=embed, nonce=nonce_for(job, "card"))
        except discord.HTTPException as error:
            refuse_for_good(error, "card")
            raise
        self._last_edit[job.id] = (self.clock(), json.dumps(embed.to_dict(), sort_keys=True))
        return message.id

    async def update_card(self, job: Job, *, note: str | None = None, final: bool = False) -> None:
        if job.card_message_id is None:
            return
        embed = render_card(job, source_link=await self._source_link(job), note=note)
        rendered = json.dumps(embed.to_dict(), sort_keys=True)
        now = self.clock()
        last_time, last_text = self._last_edit.get(job.id, (float("-inf"), ""))
        if rendered == last_text:
            return
        interval = self.edit_interval * (10 if time.time() - job.created_at > SLOW_AFTER else 1)
        if not final and now - last_time < interval:
            return
        self._last_edit[job.id] = (now, rendered)
        try:
            await self._channel(job).get_partial_message(job.card_message_id).edit(embed=embed)
        except discord.HTTPException as error:
            log.warning("Job %s: could not edit its card %s: %s", job.id, job.card_message_id, error)

    async def post_clip(self, job: Job, clip: Path, *, compressed: bool) -> int:
        caption = clip_caption(job, compressed=compressed, source_link=await self._source_link(job))
        file = discord.File(clip, filename=f"soracord-{job.id}.mp4")
        return await self._post(job, caption, file, "clip", self.clip_view(job))

    async def post_fallback(self, job: Job, reason: str, thumbnail: Path | None) -> int:
        text = f"<@{job.member_id}> your video was made, but it can't be posted here: {reason}"
        view = None
        if job.result_url:
            text += "\nUse **Download** while the provider keeps the file (`/video jobs` has the link too)."
            view = discord.ui.View(timeout=None)
            view.add_item(discord.ui.Button(label="Download", url=job.result_url))
        else:
            text += (
                f"\nThe provider gave no public link; an admin can fetch video `{job.provider_video_id}` "
                "from it while it keeps the file."
            )
        file = discord.File(thumbnail, filename=f"soracord-{job.id}-thumbnail.webp") if thumbnail else None
        return await self._post(job, text, file, "fallback", view)

    async def _post(
        self, job: Job, content: str, file: discord.File | None, what: str, view: discord.ui.View | None
    ) -> int:
        reference = None
        if job.card_message_id is not None:
            reference = discord.MessageReference(
                message_id=job.card_message_id,
                channel_id=job.channel_id,
                guild_id=job.guild_id,
                fail_if_not_exists=False,
            )
        try:
            message = await self._channel(job).send(
                content,
                file=file if file is not None else discord.utils.MISSING,
                reference=reference if reference is not None else discord.utils.MISSING,
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[discord.Object(job.member_id)], replied_user=False
                ),
                view=view if view is not None else discord.utils.MISSING,
                nonce=nonce_for(job, what),
            )
        except discord.HTTPException as error:
            refuse_for_good(error, "clip")
            raise
        return message.id

    async def find_posted(self, job: Job) -> int | None:
        """Our own message replying to the card: nonces are not in history, so author and reply decide."""
        if job.card_message_id is None or self.bot.user is None:
            return None
        after = discord.Object(job.card_message_id)
        try:
            async for message in self._channel(job).history(limit=HISTORY_SEARCH, after=after):
                reference = message.reference
                if (
                    message.author.id == self.bot.user.id
                    and reference is not None
                    and reference.message_id == job.card_message_id
                ):
                    return message.id
        except discord.HTTPException as error:
            refuse_for_good(error, "channel history")
            raise
        return None

    async def clip_url(self, job: Job) -> str | None:
        """Where Discord serves a posted clip's file (read fresh: attachment links expire), or None."""
        if job.clip_message_id is None:
            return None
        try:
            message = await self._channel(job).fetch_message(job.clip_message_id)
        except discord.HTTPException as error:
            log.info("Job %s: cannot read its clip message: %s", job.id, error)
            return None
        clip = next((a for a in message.attachments if a.filename.endswith(".mp4")), None)
        return clip.url if clip else None

    def forget(self, job_id: int) -> None:
        self._last_edit.pop(job_id, None)

    async def tell_interrupted(self, job: Job) -> None:
        if not job.interaction_token or (job.token_expires_at or 0) < time.time():
            return
        route = Route(
            "PATCH",
            "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
            webhook_id=job.application_id,
            webhook_token=job.interaction_token,
        )
        try:
            await self.bot.http.request(
                route, json={"content": job.error or "Interrupted.", "allowed_mentions": {"parse": []}}
            )
        except discord.HTTPException as error:
            log.info("Job %s: could not tell the member it was interrupted: %s", job.id, error)
