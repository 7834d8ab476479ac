"""`/video generate` end to end: the real bot against the fake Discord and the fake Videos API."""

from __future__ import annotations

import io

import discord
from PIL import Image

from tests.fakes.discord_models import walk_components
from tests.harness import World, only_job


async def test_happy_path_posts_the_providers_mp4_once(world: World) -> None:
    async with world.running_bot():
        interaction = await world.generate(prompt="a cat surfing at sunset")
        clip = await world.wait_for_clip()
        card = await world.wait_for_card(lambda text: "Done" in text)
    private = interaction.original
    assert private.ephemeral and "on its way" in private.content
    assert world.videos.count("POST", "/videos") == 1
    (video_id,) = world.videos.videos
    expected = (await world.videos.content_path(video_id)).read_bytes()
    assert list(clip.files.values()) == [expected]
    assert clip.reply_to == card.id
    assert clip.pinged.users == {world.alice.id} and not clip.pinged.everyone
    progress_edits = [
        rev
        for rev in card.history
        if "%" in " ".join(f.get("value", "") for e in rev.embeds for f in e.get("fields", []))
    ]
    assert progress_edits, "the card never showed progress"
    public = world.channel_messages()
    assert [m.id for m in public] == [card.id, clip.id]


async def test_cards_and_clips_leave_no_view_in_discord_pys_view_store(world: World) -> None:
    """The buttons are answered by the bot's DynamicItem; a view stored for every card and clip ever posted
    would be kept (and dispatched to) for good."""
    async with world.running_bot() as bot:
        await world.generate(prompt="a cat surfing at sunset")
        clip = await world.wait_for_clip()
        card = await world.wait_for_card(lambda text: "Done" in text)
        job = await only_job(bot)
        assert bot.persistent_views == []
        details = await world.discord.click_component(clip, "details:1", world.admin)
        answer = await details.wait_original(lambda m: not m.loading)
        assert bot.persistent_views == []
    assert (job.card_message_id, job.clip_message_id) == (card.id, clip.id)
    assert len(card.history) > 2, "the card was posted and edited several times"
    assert [leaf["custom_id"] for leaf in walk_components(card.history[0].components)] == ["cancel:1"]
    assert card.custom_ids() == []  # no Cancel once the provider has the job
    assert clip.custom_ids() == ["remix:1", "extend:1", "details:1"]
    assert answer.ephemeral and "sora-2" in answer.content and "a cat surfing at sunset" in answer.content


def provider_posts(world: World) -> int:
    return world.videos.count("POST", "/videos")


async def refused(world: World, **options) -> str:
    """Run /video generate; assert it was refused privately with nothing public or billed; return the text."""
    interaction = await world.generate(**options)
    answer = interaction.original
    assert answer.ephemeral, "a refusal must be private"
    assert answer.content.startswith("⚠️"), answer.content
    assert world.channel_messages() == [], "nothing public for a refused request"
    assert provider_posts(world) == 0
    return answer.content


async def test_bad_requests_are_refused_privately_without_provider_calls(world: World) -> None:
    png_named_ok = world.discord.add_attachment("cat.png", b"this is not an image at all", "image/png")
    truncated = world.discord.add_attachment("cut.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png")
    empty = world.discord.add_attachment("empty.jpg", b"", "image/jpeg")
    async with world.running_bot(max_concurrent_jobs_per_guild=0) as bot:
        assert "empty" in await refused(world, prompt="\u200b \x07 ")
        assert "cannot make 1792x1024" in await refused(world, prompt="a cat", size="1792x1024")
        assert "1280x720 · landscape, 720x1280 · portrait" in await refused(
            world, prompt="a cat", model="sora-2", size="1024x1792"
        )
        for attachment in (png_named_ok, truncated, empty):
            text = await refused(world, prompt="a cat", image=attachment)
            assert "image" in text.lower()
        assert "in progress" in await refused(world, prompt="a cat")
        status = await bot.quotas.status(world.guild.id, world.alice.id)
    assert status.guild_today.spent == 0


async def test_missing_channel_permissions_are_named(world: World) -> None:
    async with world.running_bot():
        interaction = await world.discord.dispatch_slash_command(
            world.guild,
            world.general,
            world.alice,
            "video",
            {"prompt": "a cat"},
            subcommand="generate",
            app_permissions=discord.Permissions(view_channel=True, send_messages=True).value,
        )
        answer = await interaction.wait_original(lambda m: not m.loading)
    assert answer.ephemeral and "Attach Files" in answer.content and "Embed Links" in answer.content
    assert provider_posts(world) == 0 and world.channel_messages() == []


async def test_mentions_in_prompts_ping_nobody(world: World) -> None:
    async with world.running_bot():
        await world.generate(
            prompt=f"@everyone look <@{world.admin.id}> [click](https://evil.example) **bold**"
        )
        clip = await world.wait_for_clip()
        card = await world.wait_for_card(lambda text: "Done" in text)
    assert card.pinged.nobody
    assert clip.pinged.users == {world.alice.id} and not clip.pinged.everyone and not clip.pinged.roles
    description = card.embeds[0]["description"]
    assert "\\[click\\]" in description and "\\*\\*bold\\*\\*" in description
    assert "@everyone" not in description


async def test_image_is_cropped_to_the_exact_size(world: World) -> None:
    image = io.BytesIO()
    Image.new("RGB", (999, 333), (200, 30, 30)).save(image, "PNG")
    attachment = world.discord.add_attachment(
        "wide.png", image.getvalue(), "image/png", width=999, height=333
    )
    async with world.running_bot():
        await world.generate(prompt="a red sky", image=attachment, size="720x1280")
        await world.wait_for_clip()
    (create,) = [c for c in world.videos.calls if c.method == "POST" and c.path == "/videos"]
    upload = create.files["input_reference"]
    assert upload.content_type in {"image/jpeg", "image/png", "image/webp"}
    assert Image.open(io.BytesIO(upload.data)).size == (720, 1280)


async def test_moderation_failure_is_explained_and_refunded(world: World) -> None:
    world.videos.moderate_next_job()
    async with world.running_bot() as bot:
        await world.generate(prompt="something disallowed")
        card = await world.wait_for_card(lambda text: "Failed" in text)
        status = await bot.quotas.status(world.guild.id, world.alice.id)
    assert "safety system" in card.text()
    assert status.member_today.spent == 0 and status.in_flight == 0
    assert not any(m.attachments for m in world.channel_messages())


async def test_rate_limits_and_server_errors_are_retried(world: World) -> None:
    world.videos.fail_next("POST", "/videos", 429, headers={"Retry-After": "0"})
    world.videos.fail_next("GET", "/videos/[^/]+", 503, count=2)
    world.videos.fail_next("GET", "/videos/[^/]+", 429, headers={"retry-after-ms": "10"})
    async with world.running_bot():
        await world.generate(prompt="a cat")
        clip = await world.wait_for_clip()
    assert provider_posts(world) == 2  # the 429 and the accepted retry; never two accepted jobs
    assert len(world.videos.videos) == 1
    assert clip.files


async def test_clip_arrives_after_the_interaction_token_expired(world: World) -> None:
    hold = world.videos.hold_jobs()
    async with world.running_bot():
        interaction = await world.generate(prompt="a slow cat")
        await world.videos.wait_for_call(lambda c: c.method == "GET" and c.path.startswith("/videos/"))
        world.discord.expire_token(interaction)
        hold.set()
        clip = await world.wait_for_clip()
    assert clip.files


async def test_two_jobs_in_two_channels_at_once(world: World) -> None:
    async with world.running_bot():
        await world.generate(prompt="a cat in general")
        await world.generate(member=world.admin, channel=world.other, prompt="a dog in other")
        first = await world.wait_for_clip(world.general)
        second = await world.wait_for_clip(world.other)
    assert provider_posts(world) == 2
    assert list(first.files.values()) != list(second.files.values())
    assert second.pinged.users == {world.admin.id}


async def test_gateway_dialect_answers_are_understood(world: World) -> None:
    world.videos.gateway = True
    async with world.running_bot():
        await world.generate(prompt="a cat")
        clip = await world.wait_for_clip()
    (video_id,) = world.videos.videos
    assert video_id.startswith("task_")
    assert list(clip.files.values()) == [(await world.videos.content_path(video_id)).read_bytes()]


async def test_jobs_command_lists_the_members_jobs(world: World) -> None:
    async with world.running_bot():
        await world.generate(prompt="first clip")
        clip = await world.wait_for_clip()
        interaction = await world.discord.dispatch_slash_command(
            world.guild, world.general, world.alice, "video", {}, subcommand="jobs"
        )
        answer = await interaction.wait_original(lambda m: not m.loading)
    assert answer.ephemeral
    assert "done" in answer.content and "first clip" in answer.content and str(clip.id) in answer.content
