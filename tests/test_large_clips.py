"""A clip over the server's upload limit is fitted under it, sound kept, and no temporary file remains."""

from __future__ import annotations

import io

import av

from tests.harness import MIB, World


async def test_a_14_mib_clip_is_compressed_under_10_mib(world: World) -> None:
    world.videos.large_clips = True
    async with world.running_bot() as bot:
        await world.generate(prompt="a very detailed storm")
        clip = await world.wait_for_clip(within=60)
        card = await world.wait_for_card(lambda text: "Done" in text)
        await bot.runner.wait_idle()
        work = bot.settings.work_dir
    (video_id,) = world.videos.videos
    original = await world.videos.content_path(video_id)
    assert original.stat().st_size > 10 * MIB
    (posted,) = clip.files.values()
    assert len(posted) <= 10 * MIB
    with av.open(io.BytesIO(posted)) as container:
        assert container.streams.video and container.streams.audio
        duration = container.duration / av.time_base
    assert abs(duration - 4.0) <= 0.2
    assert "Compressed to fit" in clip.content and "Compressed to fit" in card.text()
    assert [p for p in work.rglob("*") if p.is_file()] == []


async def test_a_corrupt_download_falls_back_to_the_thumbnail(world: World) -> None:
    world.videos.corrupt_clips = True
    async with world.running_bot() as bot:
        await world.generate(prompt="a storm")
        fallback = await world.discord.wait_for_message(
            lambda m: m.channel_id == world.general.id and "was made, but" in m.content, timeout=30
        )
        card = await world.wait_for_card(lambda text: "not postable" in text)
        await bot.runner.wait_idle()
        work = bot.settings.work_dir
    assert (
        "damaged" in card.text().lower()
        or "could not" in card.text().lower()
        or "can't" in card.text().lower()
    )
    assert fallback.pinged.users == {world.alice.id}
    assert [name for name in fallback.files] == [name for name in fallback.files if name.endswith(".webp")]
    assert fallback.files, "the thumbnail is posted instead"
    assert not any(a.filename.endswith(".mp4") for m in world.channel_messages() for a in m.attachments)
    assert [p for p in work.rglob("*") if p.is_file()] == []


async def test_an_unpostable_clip_with_a_provider_url_gets_a_download_button(world: World) -> None:
    world.videos.corrupt_clips = True
    world.videos.gateway = True
    async with world.running_bot() as bot:
        await world.generate(prompt="a storm")
        fallback = await world.discord.wait_for_message(
            lambda m: m.channel_id == world.general.id and "was made, but" in m.content, timeout=30
        )
        await bot.runner.wait_idle()
        interaction = await world.discord.dispatch_slash_command(
            world.guild, world.general, world.alice, "video", {}, subcommand="jobs"
        )
        listing = await interaction.wait_original(lambda m: not m.loading)
    buttons = [c for row in fallback.components for c in row.get("components", [])]
    (download,) = [b for b in buttons if b.get("label") == "Download"]
    assert download["url"].startswith(world.videos.cdn_origin + "/files/")
    assert download["url"] in listing.content
