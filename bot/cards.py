"""How a job looks in Discord: the public card and the clip's caption. Pure rendering, no I/O."""

from __future__ import annotations

import functools

import discord

from bot.jobs.models import Job, JobStatus
from bot.money import format_usd

BAR_CELLS = 12
PROMPT_PREVIEW = 1500
COLOURS = {
    JobStatus.POSTED: discord.Colour.green(),
    JobStatus.FAILED: discord.Colour.red(),
}


TITLES = {"Original": "Video", "Remix": "Video remix", "Extension": "Video extension"}


def lineage_kind(job: Job) -> str:
    """What the job is of its source: "Remix", "Extension" (it continues it) or "Original"."""
    if job.extended_from is not None:
        return "Extension"
    return "Remix" if job.remixed_from is not None else "Original"


def source_of(job: Job) -> int | None:
    """The job this one remixes or extends."""
    return job.extended_from if job.extended_from is not None else job.remixed_from


@functools.lru_cache(maxsize=2048)  # a card shows the same prompt at every edit
def inert(text: str) -> str:
    """Member text made safe to show publicly: markdown and masked links escaped, mentions defused."""
    escaped = discord.utils.escape_markdown(text, ignore_links=False)
    escaped = escaped.replace("[", "\\[").replace("]", "\\]")
    return discord.utils.escape_mentions(escaped)


def preview(text: str, limit: int = PROMPT_PREVIEW) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def progress_bar(percent: int) -> str:
    percent = max(0, min(100, percent))
    filled = round(percent * BAR_CELLS / 100)
    return f"`{'█' * filled}{'░' * (BAR_CELLS - filled)}` {percent}%"


def message_link(guild_id: int, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def job_link(job: Job) -> str:
    """Where a job shows: its clip, else its card, else just its number."""
    message_id = job.clip_message_id or job.card_message_id
    return message_link(job.guild_id, job.channel_id, message_id) if message_id else f"job #{job.id}"


def status_line(job: Job) -> str:
    match job.status:
        case JobStatus.QUEUED:
            return "🕒 Waiting for a free slot on this server"
        case JobStatus.RECEIVED | JobStatus.RESERVED | JobStatus.SUBMITTING:
            return "⏳ Sending to the video provider…"
        case JobStatus.SUBMITTED:
            return "🎬 Queued at the provider…" if job.progress == 0 else "🎬 Generating…"
        case JobStatus.COMPLETED | JobStatus.POSTING:
            return "📥 Finished; posting the clip…"
        case JobStatus.POSTED:
            return "✅ Done" if job.error is None else "⚠️ Made, but not postable here"
        case JobStatus.FAILED:
            return "❌ Failed"


def render_card(job: Job, *, source_link: str | None = None, note: str | None = None) -> discord.Embed:
    """The job's public card. Elapsed time is a Discord timestamp, so the text only changes with progress."""
    embed = discord.Embed(
        title=TITLES[lineage_kind(job)],
        description=inert(preview(job.prompt)),
        colour=COLOURS.get(job.status, discord.Colour.blurple()),
    )
    embed.add_field(name="Requested by", value=f"<@{job.member_id}>")
    embed.add_field(name="Model", value=inert(job.model))
    embed.add_field(name="Size · length", value=f"{job.size} · {job.seconds} s")
    embed.add_field(name="Estimated cost", value=format_usd(job.cost_micros, rounding="up"))
    embed.add_field(name="Started", value=f"<t:{int(job.created_at)}:R>")
    if source_link:
        embed.add_field(name=f"{lineage_kind(job)} of", value=source_link, inline=False)
    lines = [status_line(job)]
    if job.status in (JobStatus.SUBMITTED, JobStatus.COMPLETED):
        lines.append(progress_bar(job.progress))
    if job.status is JobStatus.POSTED and job.clip_message_id:
        lines.append(f"Posted: {message_link(job.guild_id, job.channel_id, job.clip_message_id)}")
    if job.compressed:
        lines.append("Compressed to fit Discord's upload limit.")
    if job.error:
        lines.append(job.error)
    if note:
        lines.append(note)
    embed.add_field(name="Status", value="\n".join(lines), inline=False)
    embed.set_footer(text=f"Job #{job.id}")
    return embed


def clip_caption(job: Job, *, compressed: bool, source_link: str | None = None) -> str:
    """The clip message's text: it mentions the requester (the only allowed ping)."""
    parts = [f"<@{job.member_id}> your video is ready."]
    if source_link:
        parts.append(f"{lineage_kind(job)} of {source_link}.")
    if compressed:
        parts.append("Compressed to fit Discord's upload limit.")
    return " ".join(parts)
