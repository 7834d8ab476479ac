"""`/video jobs`: the member's recent and running jobs, privately."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.cards import inert, message_link, preview
from bot.jobs.models import Job, JobStatus
from cogs.intake import bot_of
from cogs.video_group import add_to_video_group, remove_from_video_group

STATUS_LABELS = {
    JobStatus.RECEIVED: "checking",
    JobStatus.RESERVED: "starting",
    JobStatus.SUBMITTING: "starting",
    JobStatus.SUBMITTED: "generating",
    JobStatus.COMPLETED: "posting",
    JobStatus.POSTED: "done",
    JobStatus.FAILED: "failed",
}


def describe_job(job: Job) -> str:
    """One line per job: number, status, age, what it was, and where to find it."""
    status = STATUS_LABELS[job.status]
    if job.status is JobStatus.SUBMITTED and job.progress:
        status += f" {job.progress}%"
    line = f"**#{job.id}** · {status} · <t:{int(job.created_at)}:R> · {inert(preview(job.prompt, 80))}"
    target = job.clip_message_id or job.card_message_id
    if target:
        line += f" · {message_link(job.guild_id, job.channel_id, target)}"
    if job.status is JobStatus.POSTED and job.error:
        line += (
            f" · [download]({job.result_url})"
            if job.result_url
            else f" · provider id `{job.provider_video_id}`"
        )
    if job.status is JobStatus.FAILED and job.error:
        line += f"\n  ↳ {job.error}"
    return line


@app_commands.command(name="jobs", description="Your last 10 videos and the ones still running")
async def jobs(interaction: discord.Interaction) -> None:
    assert interaction.guild_id is not None
    recent = await bot_of(interaction).store.recent_for_member(interaction.guild_id, interaction.user.id, 10)
    if not recent:
        text = "You have no videos here yet. Try `/video generate`."
    else:
        text = "\n".join(describe_job(job) for job in recent)
    await interaction.response.send_message(text[:2000], ephemeral=True, suppress_embeds=True)


async def setup(bot: commands.Bot) -> None:
    add_to_video_group(bot.tree, jobs)


async def teardown(bot: commands.Bot) -> None:
    remove_from_video_group(bot.tree, "jobs")
