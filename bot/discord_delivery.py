"""The Discord side of delivery: the card, the clip post and private notices, all with the bot token.

The card is a normal channel message, so it is edited through the channel endpoint: that keeps working
after the 15-minute interaction token has expired and after a restart.

Cards, card edits and posts go through discord.py's HTTP layer (`bot.http`) with the payloads
`Messageable.send` and `PartialMessage.edit` would send, but without their cost: no answer is parsed
into a `discord.Message`, and no view is kept in discord.py's view store for every message ever posted
(the buttons are answered by the `DynamicItem` that `cogs/video.py` registers, whatever message they are on).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import aiohttp
import discord
from discord.http import Route, handle_message_parameters
from discord.utils import MISSING

from bot.buttons import ViewFactory
from bot.card_edits import URGENT, CardEdits, discord_priority
from bot.cards import clip_caption, job_link, render_card, source_of
from bot.clip_upload import ClipFile
from bot.downloads import DownloadFailed, download_capped
from bot.jobs.delivery import DeliveryError
from bot.jobs.models import Job
from bot.jobs.store import JobStore

log = logging.getLogger(__name__)

FILE_TOO_LARGE = 40005
UNKNOWN_CHANNEL = 10003
#: How many messages after the card are searched for a clip posted before a restart.
HISTORY_SEARCH = 100
#: Edit a card at most this often (finals included); cards older than an hour more slowly.
EDIT_INTERVAL = 3.0


#: The card pings no one, whatever the client's default.
NO_ONE = discord.AllowedMentions.none()
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
        session: aiohttp.ClientSession,
        *,
        clip_view: ViewFactory = lambda job: None,
        card_view: ViewFactory = lambda job: None,
        edit_interval: float = EDIT_INTERVAL,
    ) -> None:
        self.bot = bot
        self.store = store
        self.session = session  # for Discord's CDN (the clip a remix or extension starts from)
        self.clip_view = clip_view
        self.card_view = card_view
        self.cards = CardEdits(self._render_card, self._edit_card, interval=edit_interval)

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)

    async def _source_link(self, job: Job) -> str | None:
        source_id = source_of(job)
        if source_id is None:
            return None
        source = await self.store.get(source_id)
        return job_link(source) if source is not None else None

    def upload_limit(self, job: Job) -> int:
        """The bot posts in the channel, so the server's tier limit applies (a member's Nitro does not)."""
        guild = self.bot.get_guild(job.guild_id)
        return min(job.upload_limit, guild.filesize_limit) if guild else job.upload_limit

    async def _render_card(self, job: Job, note: str | None) -> tuple[discord.Embed, discord.ui.View | None]:
        return render_card(job, source_link=await self._source_link(job), note=note), self.card_view(job)

    async def _edit_card(self, job: Job, embed: discord.Embed, view: discord.ui.View | None) -> None:
        """As `PartialMessage.edit` sends it: `view=None` removes the buttons; no content, so no mentions."""
        assert job.card_message_id is not None
        with handle_message_parameters(embed=embed, view=view) as params:
            await self.bot.http.edit_message(job.channel_id, job.card_message_id, params=params)

    async def ensure_card(self, job: Job) -> int:
        if job.card_message_id is not None:
            return job.card_message_id
        embed, view = await self._render_card(job, None)
        card_id = await self._send(job, "card", content=None, embed=embed, view=view, mentions=NO_ONE)
        self.cards.posted(job.id, embed, view)
        return card_id

    async def update_card(
        self, job: Job, *, note: str | None = None, final: bool = False, next_look: float | None = None
    ) -> None:
        """Show the job's state on its card soon (coalesced, at most one edit per card per interval)."""
        self.cards.want(job, note=note, final=final, next_look=next_look)

    def looking(self, job: Job, next_look: float) -> None:
        self.cards.looking(job.id, next_look)

    async def post_clip(self, job: Job, clip: Path, *, compressed: bool) -> int:
        caption = clip_caption(job, compressed=compressed, source_link=await self._source_link(job))
        with ClipFile.open(clip) as opened:
            file = discord.File(opened, filename=f"soracord-{job.id}.mp4")
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
        """A reply to the card (when there is one) that pings the requester only."""
        reference = None
        if job.card_message_id is not None:
            reference = discord.MessageReference(
                message_id=job.card_message_id,
                channel_id=job.channel_id,
                guild_id=job.guild_id,
                fail_if_not_exists=False,
            )
        mentions = discord.AllowedMentions(
            everyone=False, roles=False, users=[discord.Object(job.member_id)], replied_user=False
        )
        return await self._send(
            job, what, content=content, file=file, view=view, reference=reference, mentions=mentions
        )

    async def _send(
        self,
        job: Job,
        what: str,
        *,
        content: str | None,
        mentions: discord.AllowedMentions,
        embed: discord.Embed | None = None,
        file: discord.File | None = None,
        view: discord.ui.View | None = None,
        reference: discord.MessageReference | None = None,
    ) -> int:
        """Post in the job's channel as `Messageable.send` would (`mentions` merged over the client's
        default); return the new message's id."""
        try:
            with (
                discord_priority(URGENT),
                handle_message_parameters(
                    content=content,
                    embed=embed if embed is not None else MISSING,
                    file=file if file is not None else MISSING,
                    view=view if view is not None else MISSING,
                    nonce=nonce_for(job, what),
                    allowed_mentions=mentions,
                    previous_allowed_mentions=self.bot.allowed_mentions,
                    message_reference=reference.to_message_reference_dict() if reference else MISSING,
                ) as params,
            ):
                data = await self.bot.http.send_message(job.channel_id, params=params)
        except discord.HTTPException as error:
            refuse_for_good(error, "card" if what == "card" else "clip")  # a fallback stands in for the clip
            raise
        return int(data["id"])

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

    async def fetch_clip(self, job: Job, dest: Path, max_bytes: int) -> bool:
        """Download the job's posted clip from Discord to `dest`; False when it is not there anymore."""
        url = await self.clip_url(job)
        if url is None:
            return False
        failed = "the clip could not be downloaded from Discord"
        try:
            await download_capped(self.session, url, dest, max_bytes, failed=failed, too_large=failed)
        except DownloadFailed as error:
            log.info("Job %s: %s", job.id, error.reason)
            return False
        return True

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
        self.cards.forget(job_id)

    async def close(self) -> None:
        """Show every card edit still waiting (at shutdown)."""
        await self.cards.drain()

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
