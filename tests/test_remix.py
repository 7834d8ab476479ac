"""Remixing posted clips end to end: buttons, the context menu and `/video remix` against the fakes."""

from __future__ import annotations

import time
from typing import Any

from bot.app import SoraBot
from bot.cards import message_link
from tests.fakes.discord_fake import FakeInteraction, FakeMember, FakeMessage
from tests.fakes.discord_models import walk_components
from tests.harness import World

REMIX_PATH = r".*/videos/[^/]+/remix"
MENU = "Remix video"


def is_clip(message: FakeMessage) -> bool:
    return any(attachment.filename.endswith(".mp4") for attachment in message.attachments)


async def make_clip(world: World, prompt: str = "a cat surfing at sunset") -> FakeMessage:
    """Generate a clip through `/video generate` and return its posted message."""
    await world.generate(prompt=prompt)
    return await world.wait_for_clip()


async def next_clip(world: World, *earlier: FakeMessage) -> FakeMessage:
    seen = {message.id for message in earlier}
    return await world.discord.wait_for_message(
        lambda m: m.channel_id == world.general.id and is_clip(m) and m.id not in seen, timeout=20
    )


async def settled(interaction: FakeInteraction) -> FakeMessage:
    """The private answer once it is no longer "thinking…"."""
    return await interaction.wait_original(lambda message: not message.loading, timeout=15)


def modal_input(interaction: FakeInteraction, custom_id: str) -> dict[str, Any]:
    assert interaction.modal is not None, "no modal was opened"
    leaves = walk_components(interaction.modal["components"])
    return next(leaf for leaf in leaves if leaf["custom_id"] == custom_id)


def link_to(message: FakeMessage) -> str:
    assert message.guild_id is not None
    return message_link(message.guild_id, message.channel_id, message.id)


async def slash_remix(
    world: World, video: str, prompt: str = "now at night", member: FakeMember | None = None
) -> FakeInteraction:
    return await world.discord.dispatch_slash_command(
        world.guild,
        world.general,
        member or world.alice,
        "video",
        {"video": video, "prompt": prompt},
        subcommand="remix",
    )


async def remix_by_button(world: World, clip: FakeMessage, prompt: str) -> FakeInteraction:
    """Click Remix under `clip`, check the modal is pre-filled, submit `prompt`; return the submit."""
    remix_id = next(custom_id for custom_id in clip.custom_ids() if custom_id.startswith("remix:"))
    click = await world.discord.click_component(clip, remix_id, world.alice)
    await click.wait_response()
    assert click.callback_type == 9, "the modal must be the first response"
    assert click.modal is not None
    submit = await world.discord.submit_modal(
        click.modal["custom_id"], {"prompt": prompt}, world.alice, world.general, message=clip
    )
    await settled(submit)
    return submit


def only_provider_id(world: World) -> str:
    (video_id,) = world.videos.videos
    return video_id


async def assert_remix_posted(world: World, first: FakeMessage, source_video_id: str, prompt: str) -> None:
    second = await next_clip(world, first)
    card = await world.wait_for_card(lambda text: "Remix of" in text and "Done" in text)
    assert world.videos.count("POST", REMIX_PATH) == 1
    assert world.videos.count("POST", "/videos") == 1
    [call] = [c for c in world.videos.calls if c.method == "POST" and c.path.endswith("/remix")]
    assert call.path == f"/videos/{source_video_id}/remix"
    remixed = [v for v in world.videos.videos.values() if v.remixed_from_video_id == source_video_id]
    assert len(remixed) == 1 and remixed[0].prompt == prompt
    assert f"Remix of {link_to(first)}" in second.content
    assert link_to(first) in card.text()
    assert second.reply_to == card.id


async def test_remix_button_modal_and_a_linked_second_clip(world: World) -> None:
    async with world.running_bot():
        first = await make_clip(world)
        source = only_provider_id(world)
        assert first.custom_ids() == ["remix:1", "extend:1", "details:1"]
        click = await world.discord.click_component(first, "remix:1", world.alice)
        await click.wait_response()
        prompt_input = modal_input(click, "prompt")
        assert prompt_input["value"] == "a cat surfing at sunset" and prompt_input["style"] == 2
        assert prompt_input["max_length"] == 4000
        assert click.modal is not None
        submit = await world.discord.submit_modal(
            click.modal["custom_id"], {"prompt": "the cat surfs at night"}, world.alice, world.general
        )
        answer = await settled(submit)
        assert answer.ephemeral and "on its way" in answer.content
        await assert_remix_posted(world, first, source, "the cat surfs at night")


async def test_remix_button_works_after_a_restart(world: World) -> None:
    async with world.running_bot():
        first = await make_clip(world)
    source = only_provider_id(world)
    async with world.running_bot():
        await remix_by_button(world, first, "the same cat, in the rain")
        await assert_remix_posted(world, first, source, "the same cat, in the rain")


async def test_a_remix_form_opened_before_a_restart_is_accepted_after_it(world: World) -> None:
    async with world.running_bot():
        first = await make_clip(world)
        click = await world.discord.click_component(first, "remix:1", world.alice)
        await click.wait_response()
    source = only_provider_id(world)
    assert click.modal is not None
    async with world.running_bot():
        submit = await world.discord.submit_modal(
            click.modal["custom_id"],
            {"prompt": "after the restart"},
            world.alice,
            world.general,
            message=first,
        )
        answer = await settled(submit)
        assert answer.ephemeral and "on its way" in answer.content
        await assert_remix_posted(world, first, source, "after the restart")


async def test_details_button_shows_parameters_and_lineage(world: World) -> None:
    async with world.running_bot():
        first = await make_clip(world, prompt="a **bold** cat @everyone")
        await remix_by_button(world, first, "the cat, remixed")
        second = await next_clip(world, first)
        details_id = next(c for c in second.custom_ids() if c.startswith("details:"))
        click = await world.discord.click_component(second, details_id, world.admin)
        answer = await click.wait_original(lambda m: not m.loading)
        plain = await world.discord.click_component(first, "details:1", world.admin)
        plain_answer = await plain.wait_original(lambda m: not m.loading)
    assert answer.ephemeral
    for expected in ("sora-2", "1280x720", "4 s", "$0.40", f"<@{world.alice.id}>", "the cat, remixed"):
        assert expected in answer.content
    assert f"Remix of {link_to(first)}" in answer.content
    assert "Original" in plain_answer.content and "\\*\\*bold\\*\\*" in plain_answer.content
    assert "@everyone" not in plain_answer.content.replace("@\u200beveryone", "")


async def test_context_menu_on_a_clip_and_its_card(world: World) -> None:
    async with world.running_bot():
        first = await make_clip(world)
        card = await world.wait_for_card(lambda text: "Done" in text)
        on_card = await world.discord.dispatch_message_command(MENU, card, world.alice)
        await on_card.wait_response()
        assert modal_input(on_card, "prompt")["value"] == "a cat surfing at sunset"
        on_clip = await world.discord.dispatch_message_command(MENU, first, world.alice)
        await on_clip.wait_response()
        assert on_clip.modal is not None
        submit = await world.discord.submit_modal(
            on_clip.modal["custom_id"], {"prompt": "from the menu"}, world.alice, world.general
        )
        await settled(submit)
        await assert_remix_posted(world, first, only_provider_id_of_first(world), "from the menu")


def only_provider_id_of_first(world: World) -> str:
    return next(v.id for v in world.videos.videos.values() if v.remixed_from_video_id is None)


async def test_context_menu_on_other_messages_refuses(world: World) -> None:
    async with world.running_bot() as bot:
        member_message = FakeMessage(
            id=world.discord.snowflakes.next(),
            channel_id=world.general.id,
            guild_id=world.guild.id,
            author=world.alice.user,
            content="look at my cat",
        )
        world.discord.messages[member_message.id] = member_message
        sent = await bot.get_partial_messageable(world.general.id, guild_id=world.guild.id).send("hello")
        bot_message = world.discord.messages[sent.id]
        answers = []
        for target in (member_message, bot_message):
            menu = await world.discord.dispatch_message_command(MENU, target, world.alice)
            answers.append(await menu.wait_original())
            assert menu.modal is None
    assert all(a.ephemeral and a.content == "⚠️ That message isn't a clip I made." for a in answers)
    assert world.videos.count("POST", REMIX_PATH) == 0


async def test_slash_remix_with_a_message_link(world: World) -> None:
    async with world.running_bot():
        first = await make_clip(world)
        source = only_provider_id(world)
        link = link_to(first).replace("https://discord.com", "https://canary.discord.com")
        answer = await settled(await slash_remix(world, link, "linked remix"))
        assert answer.ephemeral and "on its way" in answer.content
        await assert_remix_posted(world, first, source, "linked remix")


async def test_slash_remix_with_a_raw_video_id(world: World) -> None:
    async with world.running_bot():
        first = await make_clip(world)
        source = only_provider_id(world)
        await settled(await slash_remix(world, source, "by id"))
        await assert_remix_posted(world, first, source, "by id")


async def refusal_of(interaction: FakeInteraction) -> str:
    answer = await settled(interaction)
    assert answer.ephemeral
    return answer.content


async def test_a_clip_from_another_server_is_not_found(world: World) -> None:
    elsewhere = world.discord.add_guild("Elsewhere", channels=("lobby",))
    bob = world.discord.add_member(elsewhere, "bob")
    (lobby,) = elsewhere.text_channels
    async with world.running_bot(discord_guild_id=None):  # global commands: usable in both servers
        await world.generate(member=bob, channel=lobby, prompt="a secret elsewhere")
        theirs = await world.wait_for_clip(channel=lobby)
        source = only_provider_id(world)
        answers = [
            await refusal_of(await slash_remix(world, source)),
            await refusal_of(await slash_remix(world, link_to(theirs))),
            # A link rewritten to claim this server still doesn't reach the other server's job.
            await refusal_of(
                await slash_remix(world, message_link(world.guild.id, world.general.id, theirs.id))
            ),
        ]
    assert answers == ["⚠️ I can't find that clip in this server."] * 3
    assert world.videos.count("POST", REMIX_PATH) == 0
    assert world.channel_messages() == []


async def test_expired_and_unfinished_sources_are_refused(world: World) -> None:
    async with world.running_bot() as bot:
        first = await make_clip(world)
        source = only_provider_id(world)
        assert bot.db is not None
        await bot.db.execute("UPDATE jobs SET expires_at = ? WHERE id = 1", (time.time() - 60,))
        by_command = await refusal_of(await slash_remix(world, source))
        click = await world.discord.click_component(first, "remix:1", world.alice)
        by_button = (await click.wait_original()).content
        assert click.modal is None
        await bot.db.execute("UPDATE jobs SET expires_at = NULL, status = 'posting' WHERE id = 1")
        being_saved = await refusal_of(await slash_remix(world, link_to(first)))
        await bot.db.execute("UPDATE jobs SET status = 'failed' WHERE id = 1")
        unfinished = await refusal_of(await slash_remix(world, link_to(first)))
    assert "too old to remix" in by_command and "/video generate" in by_command
    assert by_button == by_command
    assert "still being saved" in being_saved and "try again" in being_saved
    assert "never finished" in unfinished
    assert world.videos.count("POST", REMIX_PATH) == 0


async def test_expiry_while_the_modal_is_open_is_refused_on_submit(world: World) -> None:
    async with world.running_bot() as bot:
        first = await make_clip(world)
        click = await world.discord.click_component(first, "remix:1", world.alice)
        await click.wait_response()
        assert bot.db is not None and click.modal is not None
        await bot.db.execute("UPDATE jobs SET expires_at = ? WHERE id = 1", (time.time() - 1,))
        submit = await world.discord.submit_modal(
            click.modal["custom_id"], {"prompt": "too late"}, world.alice, world.general
        )
        assert "too old to remix" in await refusal_of(submit)
    assert world.videos.count("POST", REMIX_PATH) == 0


async def test_over_quota_remix_is_refused_without_a_provider_call(world: World) -> None:
    async with world.running_bot(quota_member_daily_usd="0.40") as bot:
        first = await make_clip(world)
        jobs_before = await job_count(bot)
        submit = await remix_by_button(world, first, "one too many")
        answer = submit.original
        assert answer is not None and answer.ephemeral and answer.content.startswith("⚠️")
        assert await job_count(bot) == jobs_before + 1
    assert world.videos.count("POST", REMIX_PATH) == 0
    assert [m for m in world.channel_messages() if is_clip(m)] == [first]


async def job_count(bot: SoraBot) -> int:
    assert bot.db is not None
    row = await bot.db.fetchone("SELECT COUNT(*) AS n FROM jobs", ())
    assert row is not None
    return int(row["n"])
