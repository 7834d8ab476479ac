"""Every job ends exactly once, through the real bot and the fakes: the faults seen in review."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.harness import World, only_job, spent_today

UNKNOWN_CHANNEL = {"code": 10003, "message": "Unknown Channel"}
INVALID_TOKEN = {"code": 50027, "message": "Invalid Webhook Token"}


def clips(world: World) -> list:
    return [m for m in world.channel_messages() if any(a.filename.endswith(".mp4") for a in m.attachments)]


def downloads(world: World) -> int:
    return world.videos.count("GET", r"/videos/[^/]+/content")


async def test_deleted_channel_ends_the_job_once_and_refunds(world: World) -> None:
    hold = world.videos.hold_jobs()
    async with world.running_bot() as bot:
        await world.generate(prompt="a cat in a room that will vanish")
        await world.wait_for_card(lambda text: "Generating" in text or "Queued" in text)
        await world.discord.delete_channel(world.general)
        hold.set()
        job = await only_job(bot)
        spent = await spent_today(bot, world)
    assert job.status.value == "failed" and "deleted" in (job.error or "")
    assert downloads(world) == 1, "a permanent Discord error must not be retried (re-downloading each time)"
    assert spent == 0


async def test_card_refused_by_discord_is_told_privately_and_never_submitted(world: World) -> None:
    world.discord.fail_next(
        "POST", r"/channels/\d+/messages", 400, {"code": 50035, "message": "Invalid Form"}
    )
    async with world.running_bot() as bot:
        interaction = await world.generate(prompt="a cat")
        job = await only_job(bot)
        spent = await spent_today(bot, world)
    assert interaction.original.ephemeral and interaction.original.content.startswith("⚠️")
    assert job.status.value == "failed" and job.card_message_id is None
    assert world.videos.count("POST", "/videos") == 0, "a failed job must never reach the provider"
    assert spent == 0


async def test_invalid_private_answer_token_does_not_stop_the_job(world: World) -> None:
    world.discord.fail_next("PATCH", r"/webhooks/\d+/[^/]+/messages/@original", 401, INVALID_TOKEN)
    async with world.running_bot() as bot:
        await world.discord.dispatch_slash_command(
            world.guild, world.general, world.alice, "video", {"prompt": "a cat"}, subcommand="generate"
        )
        clip = await world.wait_for_clip()
        job = await only_job(bot)
    assert job.status.value == "posted" and job.clip_message_id == clip.id


async def test_rate_limited_submission_waits_and_is_made_once(world: World) -> None:
    world.videos.fail_next("POST", "/videos", 429, headers={"Retry-After": "0"}, count=6)
    async with world.running_bot() as bot:
        await world.generate(prompt="a patient cat")
        await world.wait_for_clip()
        job = await only_job(bot)
        spent = await spent_today(bot, world)
    assert world.videos.count("POST", "/videos") == 7
    assert len(world.videos.videos) == 1 and job.status.value == "posted"
    assert spent == job.cost_micros > 0


async def test_restart_in_posting_after_discord_forgot_the_nonce_posts_nothing_new(world: World) -> None:
    async with world.running_bot() as bot:
        await world.generate(prompt="a cat")
        first = await world.wait_for_clip()
        await bot.runner.wait_idle()
        # As a crash between posting and recording leaves it: marked posting, no message id stored.
        await bot.db.execute("UPDATE jobs SET status = 'posting', clip_message_id = NULL")
        await bot.runner.stop()
    world.discord.forget_nonces()
    async with world.running_bot() as bot:
        job = await only_job(bot)
    assert [c.id for c in clips(world)] == [first.id]
    assert job.status.value == "posted" and job.clip_message_id == first.id
    assert downloads(world) == 1


async def test_restart_in_posting_before_the_post_went_out_posts_once(world: World) -> None:
    hold = world.videos.hold_jobs()
    async with world.running_bot() as bot:
        await world.generate(prompt="a cat")
        await world.videos.wait_for_call(lambda c: c.method == "GET" and c.path.startswith("/videos/"))
        await bot.runner.stop()
        (video_id,) = world.videos.videos
        world.videos.complete(video_id)
        await bot.db.execute("UPDATE jobs SET status = 'posting', progress = 100")
    hold.set()
    async with world.running_bot() as bot:
        clip = await world.wait_for_clip()
        job = await only_job(bot)
    assert [c.id for c in clips(world)] == [clip.id] and job.clip_message_id == clip.id


async def test_fresh_database_in_the_same_channel_posts_its_own_clip(world: World) -> None:
    async with world.running_bot() as bot:
        await world.generate(prompt="the first cat")
        first = await world.wait_for_clip()
        await bot.runner.wait_idle()
    (world.tmp / "data" / "bot.sqlite3").unlink()  # a wiped database (or a second deployment)
    async with world.running_bot() as bot:
        await world.generate(prompt="the second cat")
        second = await world.discord.wait_for_message(
            lambda m: m.id != first.id and any(a.filename.endswith(".mp4") for a in m.attachments), timeout=20
        )
        job = await only_job(bot)
    assert second.id != first.id and len(clips(world)) == 2
    video_ids = list(world.videos.videos)
    expected = (await world.videos.content_path(video_ids[-1])).read_bytes()
    assert list(second.files.values()) == [expected]
    assert job.clip_message_id == second.id


@pytest.mark.parametrize(
    "prompt",
    ["\u2060", "\u00ad", "\u180e", "\u3164", "\u115f", "\u034f", "\U000e0041\U000e0062", "\u200b \u2060\n"],
)
async def test_invisible_prompts_are_refused_privately_and_never_billed(world: World, prompt: str) -> None:
    async with world.running_bot() as bot:
        interaction = await world.generate(prompt=prompt)
        spent = await spent_today(bot, world)
    assert interaction.original.ephemeral and "empty" in interaction.original.content
    assert world.videos.count("POST", "/videos") == 0 and spent == 0
    assert world.channel_messages() == []


async def test_visible_prompts_with_format_characters_stay_valid(world: World) -> None:
    async with world.running_bot() as bot:
        await world.generate(prompt="co\u00adoperative 👨\u200d👩\u200d👧 cafe\u0301")
        await world.wait_for_clip()
        job = await only_job(bot)
    assert job.prompt == "co\u00adoperative 👨\u200d👩\u200d👧 café"


@pytest.fixture
async def silent_cdn() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A CDN that accepts the image request and never answers until the test lets it."""
    release = asyncio.Event()

    async def never(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", never)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/image.png", release
    finally:
        release.set()
        await runner.cleanup()


async def test_killed_right_after_the_defer_is_answered_after_restart(
    world: World, silent_cdn: tuple[str, asyncio.Event], tmp_path: Path
) -> None:
    url, _ = silent_cdn
    image = world.discord.add_attachment("cat.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")
    image["url"] = image["proxy_url"] = url
    process, _ = await world.start_bot_process(tmp_path)
    try:
        interaction = await world.discord.dispatch_slash_command(
            world.guild,
            world.general,
            world.alice,
            "video",
            {"prompt": "a cat", "image": image},
            subcommand="generate",
        )
        await interaction.wait_original(lambda message: message.loading, timeout=15)
    finally:
        process.kill()  # while it fetches the image: no chance to clean up, as in a crash
        await process.wait()
    assert interaction.original.loading
    async with world.running_bot():
        await interaction.wait_original(lambda message: not message.loading, timeout=15)
    assert "Interrupted" in interaction.original.content and interaction.original.ephemeral
    assert world.videos.count("POST", "/videos") == 0


async def test_a_slow_database_does_not_make_the_bot_miss_discords_3_seconds(world: World) -> None:
    async with world.running_bot() as bot:
        bot.intake.row_wait = 0.0  # "slow" means slower than this
        async with bot.db.transaction():  # the database is busy: the request's row must wait
            interaction = await world.dispatch_generate(prompt="a lighthouse in fog")
            await interaction.wait_response()
            rows_meanwhile = await bot.db.fetchall("SELECT id FROM jobs")
        await interaction.wait_original(lambda message: not message.loading, timeout=15)
        clip = await world.wait_for_clip()
    assert interaction.callback_type == 5 and interaction.original.ephemeral  # acknowledged privately
    assert rows_meanwhile == []  # ... before its row was written
    assert "on its way" in interaction.original.content
    assert clip.attachments and world.videos.count("POST", "/videos") == 1


async def test_a_request_acknowledged_too_late_is_dropped_without_spending(world: World) -> None:
    async with world.running_bot() as bot:
        world.discord.interaction_deadline = 0.0  # every acknowledgement comes too late
        completed = asyncio.ensure_future(bot.wait_for("app_command_completion", timeout=15))
        interaction = await world.dispatch_generate(prompt="a lighthouse in fog")
        await completed
        [job] = await bot.db.fetchall("SELECT status, error FROM jobs")
        spent = await bot.db.fetchall("SELECT * FROM ledger")
    assert job["status"] == "failed" and "too late" in job["error"]
    assert spent == [] and world.videos.count("POST", "/videos") == 0
    assert interaction.callback_type is None  # nothing was answered
