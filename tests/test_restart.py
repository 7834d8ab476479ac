"""Restarts: unfinished jobs resume from their stored state; nothing is submitted or posted twice."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.harness import World

ROOT = Path(__file__).resolve().parent.parent


def clips(world: World) -> list:
    return [m for m in world.channel_messages() if any(a.filename.endswith(".mp4") for a in m.attachments)]


async def stopped_mid_job(world: World, prompt: str) -> asyncio.Event:
    """Generate, then stop the bot while the provider holds the job; returns the event releasing it."""
    hold = world.videos.hold_jobs()
    async with world.running_bot():
        await world.generate(prompt=prompt)
        await world.videos.wait_for_call(lambda c: c.method == "GET" and c.path.startswith("/videos/"))
    return hold


async def set_job(world: World, sql: str) -> None:
    """Change the stored job while no bot runs, as a crash at that moment would have left it."""
    async with world.running_bot() as bot:
        await bot.runner.stop()
        await bot.db.execute(sql)


async def test_stopped_mid_job_resumes_and_posts_once(world: World) -> None:
    hold = await stopped_mid_job(world, "a patient cat")
    assert clips(world) == []
    hold.set()
    async with world.running_bot() as bot:
        clip = await world.wait_for_clip()
        await bot.runner.wait_idle()
        (done,) = await bot.store.recent_for_member(world.guild.id, world.alice.id)
        status = await bot.quotas.status(world.guild.id, world.alice.id)
    assert world.videos.count("POST", "/videos") == 1
    assert [c.id for c in clips(world)] == [clip.id] and done.clip_message_id == clip.id
    assert status.member_today.spent == 400_000 and status.in_flight == 0


async def test_completed_but_not_posted_is_posted_after_restart(world: World) -> None:
    hold = await stopped_mid_job(world, "a cat")
    (video_id,) = world.videos.videos
    world.videos.complete(video_id)
    hold.set()
    await set_job(world, "UPDATE jobs SET status = 'completed', progress = 100")
    async with world.running_bot() as bot:
        clip = await world.wait_for_clip()
        await bot.runner.wait_idle()
    assert world.videos.count("POST", "/videos") == 1
    assert [c.id for c in clips(world)] == [clip.id]


async def test_crash_after_posting_before_recording_posts_nothing_new(world: World) -> None:
    async with world.running_bot() as bot:
        await world.generate(prompt="a cat")
        first = await world.wait_for_clip()
        await bot.runner.wait_idle()
    await set_job(world, "UPDATE jobs SET status = 'posting', clip_message_id = NULL")
    async with world.running_bot() as bot:
        await bot.runner.wait_idle()
        (job,) = await bot.store.recent_for_member(world.guild.id, world.alice.id)
    assert [c.id for c in clips(world)] == [first.id], "the clip in the channel must be recognised"
    assert job.clip_message_id == first.id


async def test_lost_submission_is_adopted_not_resubmitted(world: World) -> None:
    hold = await stopped_mid_job(world, "a cat we almost lost")
    await set_job(world, "UPDATE jobs SET status = 'submitting', provider_video_id = NULL")
    hold.set()
    async with world.running_bot():
        clip = await world.wait_for_clip()
    assert world.videos.count("POST", "/videos") == 1
    assert world.videos.count("GET", "/videos") >= 1  # looked it up in the provider's list
    assert clip.files


async def test_lost_submission_unknown_to_the_provider_is_refunded(world: World) -> None:
    hold = await stopped_mid_job(world, "a cat")
    await set_job(world, "UPDATE jobs SET status = 'submitting', provider_video_id = NULL, prompt = 'other'")
    hold.set()
    async with world.running_bot() as bot:
        card = await world.wait_for_card(lambda text: "Failed" in text)
        status = await bot.quotas.status(world.guild.id, world.alice.id)
    assert "did not confirm" in card.text()
    assert world.videos.count("POST", "/videos") == 1
    assert status.member_today.spent == 0


async def test_python_m_bot_against_the_fakes_stops_cleanly_on_sigterm(world: World, tmp_path: Path) -> None:
    async def run_once() -> tuple[int, str]:
        process, lines = await world.start_bot_process(tmp_path)
        assert process.stdout is not None
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            lines += [raw.decode() async for raw in process.stdout]
            return await process.wait(), "".join(lines)

    code, output = await run_once()
    assert code == 0, output
    assert "Stopped cleanly" in output and "Synced" in output
    code, output = await run_once()
    assert code == 0, output
    assert "unchanged since the last sync" in output
    assert len(world.discord.calls_to("PUT", r".*/commands")) == 1
    assert world.discord.token not in output and world.videos.api_key not in output
