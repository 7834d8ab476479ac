"""The fake Discord against the real discord.py client: login, gateway, commands, messages, faults."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord_fake import FakeChannel, FakeDiscord, FakeGuild, FakeMember, Pinged
from tests.fakes.discord_models import compute_pings
from tests.fakes.videos_fake import ManualClock

MIB = 1024 * 1024


@pytest.fixture
def fake(fake_discord: FakeDiscord) -> FakeDiscord:
    return fake_discord


@dataclass
class World:
    """One guild with two channels and two members."""

    guild: FakeGuild
    channel: FakeChannel
    alice: FakeMember
    bob: FakeMember


@pytest.fixture
def world(fake: FakeDiscord) -> World:
    guild = fake.add_guild("Fake Server", channels=("general", "videos"))
    alice = fake.add_member(guild, "alice", flags=2)  # completed onboarding
    return World(guild, guild.text_channels[0], alice, fake.add_member(guild, "bob"))


class RemixModal(discord.ui.Modal, title="Remix"):
    """A modal with a label-wrapped text input (discord.py 2.6+ layout)."""

    prompt = discord.ui.Label(text="New prompt", component=discord.ui.TextInput(custom_id="prompt"))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.prompt.component, discord.ui.TextInput)
        await interaction.response.send_message(f"remixing: {self.prompt.component.value}", ephemeral=True)


class LegacyModal(discord.ui.Modal, title="Remix"):
    """A modal with a bare text input (sent in an action row)."""

    prompt = discord.ui.TextInput(label="New prompt", custom_id="prompt")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"legacy: {self.prompt.value}", ephemeral=True)


class RemixView(discord.ui.View):
    """A persistent view with one Remix button."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Remix", custom_id="remix:1")
    async def remix(self, interaction: discord.Interaction, button: discord.ui.Button[RemixView]) -> None:
        await interaction.response.send_modal(RemixModal(custom_id="remix-modal:1"))

    @discord.ui.button(label="Hide", custom_id="hide:1")
    async def hide(self, interaction: discord.Interaction, button: discord.ui.Button[RemixView]) -> None:
        await interaction.response.edit_message(content="hidden", view=None)


class QuickBot(commands.Bot):
    """A bot that re-identifies at once (discord.py waits 5 s before every IDENTIFY after the first)."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


class QuickShardedBot(commands.AutoShardedBot):
    """The sharded twin of QuickBot: it starts each shard without discord.py's 5 s pause."""

    before_identify_hook = QuickBot.before_identify_hook


def make_bot(
    errors: list[Exception],
    captured: list[discord.Interaction],
    *,
    sharded: bool = False,
    **shard_options: Any,
) -> commands.Bot:
    """A small bot: /video generate, a message context menu and a persistent Remix button.

    `sharded` (every shard `GET /gateway/bot` names) or `shard_ids=…, shard_count=…` make it an
    AutoShardedBot."""
    intents = discord.Intents.default()
    intents.members = True
    cls = QuickShardedBot if sharded or shard_options else QuickBot
    bot = cls(
        command_prefix="!", intents=intents, guild_ready_timeout=0.05, help_command=None, **shard_options
    )
    video = app_commands.Group(name="video", description="Make videos")

    @video.command(name="generate", description="Generate a clip")
    async def generate(
        interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
    ) -> None:
        captured.append(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        size = len(await image.read()) if image else 0
        limit = interaction.filesize_limit
        await interaction.edit_original_response(
            content=f"queued {prompt!r} with {size} bytes, limit {limit}"
        )

    @video.command(name="jobs", description="List jobs")
    async def jobs(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("job list", ephemeral=True)
        original = await interaction.original_response()
        await interaction.followup.send(f"page 2 of {original.id}", ephemeral=True)

    @app_commands.context_menu(name="Remix video")
    async def remix_video(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_modal(LegacyModal(custom_id=f"legacy:{message.id}"))

    bot.tree.add_command(video)
    bot.tree.add_command(remix_video)
    bot.add_view(RemixView())

    @bot.tree.error
    async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        errors.append(error)

    return bot


@pytest.fixture
async def bot(fake: FakeDiscord, world: World) -> AsyncIterator[commands.Bot]:
    """The small bot, connected, commands synced to the world's guild; app command errors fail the test."""
    errors: list[Exception] = []
    client = make_bot(errors, [])
    async with fake.run_bot(client):
        client.tree.copy_global_to(guild=discord.Object(world.guild.id))
        await client.tree.sync(guild=discord.Object(world.guild.id))
        yield client
    assert errors == []


async def text_channel(bot: commands.Bot, channel: FakeChannel) -> discord.TextChannel:
    found = bot.get_channel(channel.id)
    assert isinstance(found, discord.TextChannel)
    return found


async def test_login_ready_and_guild_create(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    assert bot.user is not None and bot.user.id == fake.bot_user.id
    assert bot.application_id == fake.application_id
    [guild] = bot.guilds
    assert (guild.id, guild.name) == (world.guild.id, "Fake Server")
    assert [channel.name for channel in guild.text_channels] == ["general", "videos"]
    assert sorted(member.name for member in guild.members) == ["Soracord", "alice", "bob"]
    alice = guild.get_member(world.alice.id)
    assert alice is not None and alice.flags.completed_onboarding
    assert guild.me.guild_permissions.attach_files and guild.me.guild_permissions.mention_everyone
    assert guild.filesize_limit == 10 * MIB
    identify = next(frame for frame in fake.gateway_received if frame["op"] == 2)
    assert identify["d"]["intents"] == bot.intents.value
    await fake.wait_for(lambda: any(frame["op"] == 1 for frame in fake.gateway_received))


@pytest.mark.parametrize(
    ("allowed_mentions", "bot_may_mention_everyone", "expected"),
    [
        # Mention Everyone also lets the author ping roles that are not mentionable ("staff").
        (None, True, Pinged(frozenset({"alice"}), frozenset({"fans", "staff"}), True)),
        (None, False, Pinged(frozenset({"alice"}), frozenset({"fans"}), False)),
        ({"parse": []}, True, Pinged()),
        ({"parse": ["users", "roles"]}, True, Pinged(frozenset({"alice"}), frozenset({"fans", "staff"}))),
        (
            {"parse": ["everyone"], "users": ["bob"], "roles": ["staff"]},
            True,
            Pinged(roles=frozenset({"staff"}), everyone=True),
        ),
        ({"parse": [], "users": ["alice"], "replied_user": True}, True, Pinged(frozenset({"alice", "bob"}))),
    ],
)
def test_mention_rules(
    fake: FakeDiscord, allowed_mentions: dict | None, bot_may_mention_everyone: bool, expected: Pinged
) -> None:
    everyone = discord.Permissions(mention_everyone=True).value
    guild = fake.add_guild(bot_permissions=everyone if bot_may_mention_everyone else 0)
    names = {
        "alice": fake.add_member(guild, "alice").id,
        "bob": fake.add_member(guild, "bob").id,
        "fans": fake.add_role(guild, "fans", mentionable=True).id,
        "staff": fake.add_role(guild, "staff").id,
    }
    if allowed_mentions is not None:
        for key in ("users", "roles"):
            if key in allowed_mentions:
                allowed_mentions = allowed_mentions | {key: [names[name] for name in allowed_mentions[key]]}
    content = f"<@{names['alice']}> <@&{names['fans']}> <@&{names['staff']}> @here"
    pinged = compute_pings(
        content,
        allowed_mentions,
        guild=guild,
        author_id=fake.bot_user.id,
        known_users=set(fake.users),
        replied_user_id=names["bob"],
    )
    reply_pings = allowed_mentions is None or allowed_mentions.get("replied_user", False)
    assert pinged.users == {names[name] for name in expected.users} | (
        {names["bob"]} if reply_pings else set()
    )
    assert pinged.roles == {names[name] for name in expected.roles}
    assert pinged.everyone is expected.everyone


async def test_wrong_token_is_refused(fake: FakeDiscord, world: World) -> None:
    rest_bot = make_bot([], [])
    with pytest.raises(discord.LoginFailure):
        await rest_bot.login("not-the-token")
    await rest_bot.close()
    assert fake.calls[-1].status == 401

    gateway_bot = make_bot([], [])
    await gateway_bot.login(fake.token)
    gateway_bot.http.token = "stolen-token"
    with pytest.raises(discord.ConnectionClosed) as closed:
        await gateway_bot.connect(reconnect=False)
    assert closed.value.code == 4004
    assert fake.gateway_connects == []


async def test_sync_stores_commands_with_stable_ids(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    stored = {command["name"]: command for command in fake.guild_commands[world.guild.id]}
    assert set(stored) == {"video", "Remix video"}
    assert [option["name"] for option in stored["video"]["options"]] == ["generate", "jobs"]
    assert stored["Remix video"]["type"] == 3
    again = await bot.tree.sync(guild=discord.Object(world.guild.id))
    assert {command.name: str(command.id) for command in again} == {
        name: command["id"] for name, command in stored.items()
    }
    assert fake.global_commands == []


async def test_slash_command_deferred_then_edited(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    image = fake.add_attachment("cat.png", b"\x89PNG fake image", "image/png", width=2, height=2)
    interaction = await fake.dispatch_slash_command(
        world.guild,
        world.channel,
        world.alice,
        "video",
        {"prompt": "a cat @everyone", "image": image},
        subcommand="generate",
        attachment_size_limit=25 * MIB,
    )
    message = await interaction.wait_original(lambda m: not m.loading)
    assert interaction.callback is not None
    assert interaction.callback.payload == {"type": 5, "data": {"flags": 64}}
    assert interaction.callback.query == {"with_response": "1"}
    assert message.flags == 64 and message.ephemeral
    assert message.content == f"queued 'a cat @everyone' with 15 bytes, limit {25 * MIB}"
    assert message.pinged.nobody
    assert message.interaction_token == interaction.token
    assert [call.path for call in fake.calls_to("GET", r"^/cdn/")] == [
        f"/cdn/attachments/{image['id']}/cat.png"
    ]
    [edit] = fake.calls_to("PATCH", r"/messages/@original$")
    assert edit.ok and edit.payload["content"] == message.content
    assert fake.messages_in(world.channel, include_ephemeral=False) == []


async def test_channel_message_with_file_and_mentions(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    channel = await text_channel(bot, world.channel)
    only_alice = discord.AllowedMentions(users=[discord.Object(world.alice.id)], everyone=False)
    content = f"done {world.alice.mention} {world.bob.mention} @everyone"
    clip = discord.File(io.BytesIO(b"\x00\x00\x00\x18ftypmp42 clip"), "clip.mp4")
    sent = await channel.send(content, file=clip, allowed_mentions=only_alice)
    [stored] = fake.messages_in(world.channel)
    assert stored.id == sent.id
    assert stored.files == {"clip.mp4": b"\x00\x00\x00\x18ftypmp42 clip"}
    assert stored.attachments[0].content_type == "video/mp4"
    assert stored.pinged == Pinged(users=frozenset({world.alice.id}))
    assert stored.allowed_mentions is not None and stored.allowed_mentions["users"] == [world.alice.id]
    assert await sent.attachments[0].read() == b"\x00\x00\x00\x18ftypmp42 clip"
    assert [member.id for member in sent.mentions] == [world.alice.id]

    reply = await sent.reply("everyone, look @everyone")
    stored_reply = fake.messages[reply.id]
    assert stored_reply.reply_to == sent.id and stored_reply.type == 19
    assert stored_reply.pinged == Pinged(everyone=True)  # no allowed_mentions: Discord parses everything

    quiet = await channel.send("@everyone", allowed_mentions=discord.AllowedMentions.none())
    assert fake.messages[quiet.id].pinged.nobody


async def test_nonce_with_enforce_nonce_creates_one_message(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    channel = await text_channel(bot, world.channel)
    first = await channel.send("clip ready", nonce="job-42")
    second = await channel.send("clip ready (retry)", nonce="job-42")
    assert second.id == first.id and second.content == "clip ready"
    assert [message.content for message in fake.messages_in(world.channel)] == ["clip ready"]
    posts = fake.calls_to("POST", r"^/channels/\d+/messages$")
    assert [(call.payload["nonce"], call.payload["enforce_nonce"]) for call in posts] == [
        ("job-42", True)
    ] * 2
    other = await channel.send("another job", nonce="job-43")
    assert other.id != first.id


async def test_rate_limited_post_is_retried(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    fake.rate_limit_next("POST", r"^/channels/\d+/messages$", retry_after=0.2)
    channel = await text_channel(bot, world.channel)
    sent = await channel.send("after the limit")
    posts = fake.calls_to("POST", r"^/channels/\d+/messages$")
    assert [call.status for call in posts] == [429, 200]
    assert posts[0].response["retry_after"] == 0.2
    assert posts[1].time - posts[0].time >= 0.2
    assert [message.id for message in fake.messages_in(world.channel)] == [sent.id]


async def test_channel_faults(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    channel = await text_channel(bot, world.channel)
    fake.fail_next("POST", r"/messages$", 503)
    with pytest.raises(discord.DiscordServerError):
        await channel.send("first try")
    big = discord.File(io.BytesIO(b"x" * (10 * MIB + 1)), "big.mp4")
    with pytest.raises(discord.HTTPException) as too_large:
        await channel.send(file=big)
    assert (too_large.value.status, too_large.value.code) == (413, 40005)
    fake.deny_channel(world.channel)
    with pytest.raises(discord.Forbidden) as denied:
        await channel.send("no rights")
    assert denied.value.code == 50013
    assert fake.messages_in(world.channel) == []


async def test_expired_token_refuses_webhook_edits(fake: FakeDiscord, world: World) -> None:
    captured: list[discord.Interaction] = []
    client = make_bot([], captured)
    async with fake.run_bot(client):
        await client.tree.sync()
        interaction = await fake.dispatch_slash_command(
            world.guild, world.channel, world.bob, "video", {"prompt": "sea"}, subcommand="generate"
        )
        await interaction.wait_original(lambda m: not m.loading)
        fake.expire_token(interaction)
        with pytest.raises(discord.HTTPException) as expired:
            await captured[0].edit_original_response(content="too late")
        assert (expired.value.status, expired.value.code) == (401, 50027)


async def test_button_opens_modal_and_submit_answers(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    channel = await text_channel(bot, world.channel)
    posted = await channel.send("clip", view=RemixView())
    click = await fake.click_component(fake.messages[posted.id], "remix:1", world.alice)
    await click.wait_response()
    assert click.callback_type == 9 and click.modal is not None
    assert click.modal["components"][0]["type"] == 18
    submit = await fake.submit_modal("remix-modal:1", {"prompt": "make it night"}, world.alice, world.channel)
    answer = await submit.wait_original()
    assert (answer.content, answer.ephemeral) == ("remixing: make it night", True)


async def test_message_command_opens_legacy_modal(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    channel = await text_channel(bot, world.channel)
    target = fake.messages[(await channel.send("a clip")).id]
    menu = await fake.dispatch_message_command("Remix video", target, world.bob)
    await menu.wait_response()
    assert menu.modal is not None and menu.modal["components"][0]["type"] == 1
    submit = await fake.submit_modal(f"legacy:{target.id}", {"prompt": "in winter"}, world.bob, world.channel)
    assert (await submit.wait_original()).content == "legacy: in winter"


async def test_reply_followup_and_update_message(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    jobs = await fake.dispatch_slash_command(
        world.guild, world.channel, world.alice, "video", subcommand="jobs"
    )
    [followup] = await fake.wait_for(lambda: jobs.followups)
    original = fake.original_response(jobs)
    assert original is not None and (original.content, original.flags, original.type) == ("job list", 64, 20)
    assert (followup.content, followup.ephemeral) == (f"page 2 of {original.id}", True)
    assert jobs.callback_type == 4 and fake.calls_to("GET", r"/messages/@original$")[0].ok

    channel = await text_channel(bot, world.channel)
    posted = fake.messages[(await channel.send("clip", view=RemixView())).id]
    assert posted.custom_ids() == ["remix:1", "hide:1"]
    click = await fake.click_component(posted, "hide:1", world.bob)
    await fake.wait_for_message(lambda m: m.id == posted.id and m.content == "hidden")
    assert click.callback_type == 7 and posted.components == [] and posted.edited_at is not None
    assert [revision.content for revision in posted.history] == ["clip", "hidden"]


@pytest.mark.parametrize("allow_resume", [True, False])
async def test_reconnect_after_drop(
    fake: FakeDiscord, world: World, bot: commands.Bot, allow_resume: bool
) -> None:
    fake.allow_resume = allow_resume
    await fake.drop_connection()
    expected = ["identify", "resume" if allow_resume else "identify"]
    await fake.wait_for(lambda: fake.gateway_connects == expected)
    if allow_resume:
        resume = next(frame for frame in fake.gateway_received if frame["op"] == 6)
        assert resume["d"]["session_id"] == bot.ws.session_id
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    interaction = await fake.dispatch_slash_command(
        world.guild, world.channel, world.alice, "video", {"prompt": "still here"}, subcommand="generate"
    )
    assert (await interaction.wait_original(lambda m: not m.loading)).content.startswith(
        "queued 'still here'"
    )


# ----------------------------------------------------------------- history, nonces, deleted channels


@pytest.fixture
def clock(fake: FakeDiscord) -> ManualClock:
    """A manual clock for the fake's calls, edits and nonces (request it before anything calls the fake)."""
    fake.clock = ManualClock()
    return fake.clock


@pytest.fixture
async def http(fake: FakeDiscord, clock: ManualClock) -> AsyncIterator[discord.http.HTTPClient]:
    """discord.py's own REST client, logged in to the fake (one GET /users/@me) on the manual clock."""
    client = discord.http.HTTPClient(asyncio.get_running_loop())
    await client.static_login(fake.token)
    yield client
    await client.close()


async def post(http: discord.http.HTTPClient, channel: FakeChannel, content: str) -> dict[str, Any]:
    with discord.http.handle_message_parameters(content=content) as params:
        return await http.send_message(channel.id, params=params)


async def edit(http: discord.http.HTTPClient, message: dict[str, Any], content: str) -> None:
    with discord.http.handle_message_parameters(content=content) as params:
        await http.edit_message(message["channel_id"], message["id"], params=params)


async def test_history_is_newest_first_without_nonces_or_private_answers(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    channel = await text_channel(bot, world.channel)
    request = fake.add_message(world.channel, world.alice, "make a cat", files={"cat.png": b"\x89PNG cat"})
    clip = await channel.send("clip", file=discord.File(io.BytesIO(b"mp4 bytes"), "clip.mp4"), nonce="job-1")
    reply = await clip.reply("details")
    jobs = await fake.dispatch_slash_command(
        world.guild, world.channel, world.alice, "video", subcommand="jobs"
    )
    await fake.wait_for(lambda: jobs.followups)
    assert clip.nonce == "job-1"  # the create answer carries it

    newest, middle, oldest = [message async for message in channel.history(limit=10)]
    assert [newest.id, middle.id, oldest.id] == [reply.id, clip.id, request.id]
    assert (oldest.author.id, oldest.author.bot, oldest.content) == (world.alice.id, False, "make a cat")
    assert (middle.author.id, middle.author.bot, middle.nonce) == (fake.bot_user.id, True, None)
    [video] = middle.attachments
    assert (video.filename, video.size) == ("clip.mp4", 9) and await video.read() == b"mp4 bytes"
    assert [(a.filename, a.size) for a in oldest.attachments] == [("cat.png", 8)]
    assert newest.type is discord.MessageType.reply and newest.reference is not None
    assert newest.reference.message_id == clip.id
    assert isinstance(newest.reference.resolved, discord.Message) and newest.reference.resolved.id == clip.id

    await clip.delete()
    [after_delete, _] = [message async for message in channel.history(limit=10)]
    assert after_delete.reference is not None
    assert isinstance(after_delete.reference.resolved, discord.DeletedReferencedMessage)
    assert clip.id in fake.deleted_messages


async def test_history_pages_before_after_around_and_limit(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    ids = [fake.add_message(world.channel, content=f"m{n}").id for n in range(55)]
    channel = await text_channel(bot, world.channel)

    async def page(**query: Any) -> list[int]:
        return [int(message["id"]) for message in await bot.http.logs_from(channel.id, **query)]

    assert await page(limit=2) == [ids[54], ids[53]]
    assert await page(limit=2, before=ids[3]) == [ids[2], ids[1]]
    assert await page(limit=2, after=ids[1]) == [ids[3], ids[2]]  # the next ones, still newest first
    assert await page(limit=3, around=ids[10]) == [ids[11], ids[10], ids[9]]
    assert [m.id async for m in channel.history(limit=3, after=discord.Object(ids[50]))] == ids[51:54]
    with pytest.raises(discord.HTTPException) as too_many:
        await page(limit=101)
    assert (too_many.value.status, too_many.value.code) == (400, 50035)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as session:
        async with session.get(f"{fake.api_base}/channels/{channel.id}/messages") as response:
            assert len(await response.json(content_type=None)) == 50  # Discord's default limit


async def test_history_needs_view_channel_and_read_message_history(
    fake: FakeDiscord, bot: commands.Bot
) -> None:
    can_read = discord.Permissions(view_channel=True, send_messages=True).value
    no_history = fake.add_guild("no history", bot_permissions=can_read, everyone_permissions=0).text_channels[
        0
    ]
    old = fake.add_message(no_history, content="old news")
    hidden = fake.add_guild("hidden", bot_permissions=0, everyone_permissions=0).text_channels[0]
    assert await bot.http.logs_from(no_history.id, 10) == []  # Discord returns nothing, not an error
    with pytest.raises(discord.Forbidden) as no_read:
        await bot.http.get_message(no_history.id, old.id)
    assert no_read.value.code == 50001
    with pytest.raises(discord.Forbidden) as forbidden:
        await bot.http.logs_from(hidden.id, 10)
    assert forbidden.value.code == 50001


async def test_nonce_window_is_per_author_forgettable_and_refuses_a_deleted_message(
    fake: FakeDiscord, world: World, bot: commands.Bot, clock: ManualClock
) -> None:
    general, videos = world.guild.text_channels
    first = await (await text_channel(bot, general)).send("clip", nonce="job-7")
    elsewhere = await (await text_channel(bot, videos)).send("clip again", nonce="job-7")
    assert elsewhere.id == first.id  # Discord keys the nonce on its author, not on the channel

    channel = await text_channel(bot, general)
    clock.advance(fake.nonce_window - 1)
    assert (await channel.send("still deduped", nonce="job-7")).id == first.id
    clock.advance(1)
    later = await channel.send("a few minutes later", nonce="job-7")
    assert later.id != first.id
    await later.delete()
    with pytest.raises(discord.NotFound) as gone:  # Discord does not post again what was deleted
        await channel.send("retry after deleting", nonce="job-7")
    assert gone.value.code == 10008

    kept = await channel.send("card", nonce="job-8")
    fake.forget_nonces()
    assert (await channel.send("card", nonce="job-8")).id != kept.id
    assert [m.content for m in fake.messages_in(general)] == ["clip", "card", "card"]


async def test_a_nonce_from_an_earlier_run_returns_the_old_message(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    earlier = fake.add_message(world.channel, content="clip posted before the restart", nonce="job-9")
    channel = await text_channel(bot, world.channel)
    again = await channel.send("clip posted again", nonce="job-9")
    assert (again.id, again.content) == (earlier.id, "clip posted before the restart")
    assert fake.messages_in(world.channel) == [earlier]


async def test_deleted_channel_is_unknown_everywhere(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    channel = await text_channel(bot, world.channel)
    card = await channel.send("card")
    await fake.delete_channel(world.channel)
    attempts = [
        channel.send("clip"),
        card.edit(content="done"),
        channel.fetch_message(card.id),
        bot.http.logs_from(channel.id, 5),
        bot.fetch_channel(channel.id),
    ]
    for attempt in attempts:
        with pytest.raises(discord.NotFound) as unknown:
            await attempt
        assert (unknown.value.code, unknown.value.text) == (10003, "Unknown Channel")
    await fake.wait_for(lambda: bot.get_channel(channel.id) is None)  # CHANNEL_DELETE reached the bot
    assert fake.messages_in(world.channel) == [] and card.id in fake.deleted_messages


async def test_one_post_answers_any_scripted_status_and_code(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    fake.fail_next(
        "POST", rf"^/channels/{world.channel.id}/messages$", 403, {"message": "Missing Access", "code": 50001}
    )
    channel = await text_channel(bot, world.channel)
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("first")
    assert refused.value.code == 50001
    assert (await channel.send("second")).content == "second"


# ----------------------------------------------------------------- rate accounting and the global limit


async def test_requests_per_second_peak_and_edit_times(
    fake: FakeDiscord, world: World, clock: ManualClock, http: discord.http.HTTPClient
) -> None:
    messages = [await post(http, world.channel, f"card {n}") for n in range(3)]  # with the login: 4 at t
    start = clock.now
    clock.advance(0.5)
    await edit(http, messages[0], "25%")
    async with aiohttp.ClientSession() as session:  # interaction endpoints: outside the global limit
        for _ in range(3):
            async with session.post(f"{fake.api_base}/interactions/1/no-token/callback", json={"type": 5}):
                pass
    clock.advance(0.6)
    await edit(http, messages[0], "50%")
    assert fake.requests_per_second_peak() == 5  # t, t+0.5 (t+1.1 falls outside t's second)
    assert fake.requests_per_second_peak(exclude_interaction_callbacks=False) == 8
    assert fake.edits_of(int(messages[0]["id"])) == pytest.approx([start + 0.5, start + 1.1])
    assert fake.edits_of(int(messages[1]["id"])) == []


async def test_global_limit_answers_a_global_429_and_discord_py_waits(
    fake: FakeDiscord, world: World, clock: ManualClock, http: discord.http.HTTPClient
) -> None:
    fake.global_limit = 1
    await post(http, world.channel, "one")
    clock.advance(0.5)
    late = asyncio.create_task(post(http, world.channel, "two"))
    limited = await fake.wait_for_call(lambda call: call.status == 429)
    assert limited.response == {"message": "You are being rate limited.", "retry_after": 0.5, "global": True}
    headers = limited.response_headers
    assert (headers["X-RateLimit-Global"], headers["X-RateLimit-Scope"], headers["Retry-After"]) == (
        "true",
        "global",
        "1",
    )
    async with aiohttp.ClientSession() as session:  # callbacks are exempt even now
        async with session.post(
            f"{fake.api_base}/interactions/1/no-token/callback", json={"type": 5}
        ) as answer:
            assert answer.status == 404
    clock.advance(0.5)  # discord.py retries after the 0.5 s it was told
    await late
    statuses = [call.status for call in fake.calls_to("POST", r"^/channels/\d+/messages$")]
    assert statuses[:2] == [200, 429] and statuses[-1] == 200 and set(statuses[1:-1]) == {429}
    assert [m.content for m in fake.messages_in(world.channel)] == ["one", "two"]


# ----------------------------------------------------------------- shards


@dataclass
class Shard:
    """One process's bot on one shard, with the interaction ids it received."""

    bot: commands.Bot
    seen: list[int]


def sharded_bot(shard_id: int, shard_count: int, errors: list[Exception]) -> Shard:
    bot = make_bot(errors, [], shard_ids=[shard_id], shard_count=shard_count)
    seen: list[int] = []

    async def on_interaction(interaction: discord.Interaction) -> None:
        seen.append(interaction.id)

    bot.add_listener(on_interaction)
    return Shard(bot, seen)


async def test_two_processes_each_get_only_their_shards_guilds_and_interactions(fake: FakeDiscord) -> None:
    fake.shards = 2
    guilds = [fake.add_guild(f"server {n}", shard=(n % 2, 2)) for n in range(3)]  # shards 0, 1, 0
    members = [fake.add_member(guild, f"member {n}") for n, guild in enumerate(guilds)]
    errors: list[Exception] = []
    shards = [sharded_bot(0, 2, errors), sharded_bot(1, 2, errors)]
    async with fake.run_bot(shards[0].bot), fake.run_bot(shards[1].bot):
        await shards[0].bot.tree.sync()
        assert {guild.id for guild in shards[0].bot.guilds} == {guilds[0].id, guilds[2].id}
        assert {guild.id for guild in shards[1].bot.guilds} == {guilds[1].id}
        identifies = [frame["d"]["shard"] for frame in fake.gateway_received if frame["op"] == 2]
        assert identifies == [[0, 2], [1, 2]]

        commands_ = []
        for guild, member in zip(guilds, members, strict=True):
            interaction = await fake.dispatch_slash_command(
                guild, guild.text_channels[0], member, "video", {"prompt": guild.name}, subcommand="generate"
            )
            answer = await interaction.wait_original(lambda m: not m.loading)
            assert answer.content.startswith(f"queued '{guild.name}'")
            commands_.append(interaction.id)

        channel = guilds[1].text_channels[0]
        sent = await (await text_channel(shards[1].bot, channel)).send("clip", view=RemixView())
        click = await fake.click_component(fake.messages[sent.id], "remix:1", members[1])
        await click.wait_response()
        submit = await fake.submit_modal("remix-modal:1", {"prompt": "at dusk"}, members[1], channel)
        assert (await submit.wait_original()).content == "remixing: at dusk"
        assert shards[0].seen == [commands_[0], commands_[2]]
        assert shards[1].seen == [commands_[1], click.id, submit.id]

        await fake.drop_connection(shard_id=1)
        await fake.wait_for(lambda: fake.gateway_connects == ["identify", "identify", "resume"])
        again = await fake.dispatch_slash_command(
            guilds[1],
            guilds[1].text_channels[0],
            members[1],
            "video",
            {"prompt": "back"},
            subcommand="generate",
        )
        assert (await again.wait_original(lambda m: not m.loading)).content.startswith("queued 'back'")
        assert shards[1].seen[-1] == again.id and len(shards[0].seen) == 2
    assert errors == []


async def test_one_auto_sharded_process_runs_every_shard_gateway_bot_names(fake: FakeDiscord) -> None:
    fake.shards = 2
    guilds = {fake.add_guild(f"server {n}", shard=(n, 2)).id for n in range(2)}
    bot = make_bot([], [], sharded=True)
    async with fake.run_bot(bot):
        assert bot.shard_count == 2 and {guild.id for guild in bot.guilds} == guilds
        assert {guild.shard_id for guild in bot.guilds} == {0, 1}
        shard_count, url, limit = await bot.http.get_bot_gateway()
    assert (shard_count, url) == (2, fake.gateway_url)
    assert limit["remaining"] == limit["total"] - 2  # one session start per shard


async def test_closing_with_1000_ends_the_session(fake: FakeDiscord) -> None:
    """discord.py itself closes with 4000 (even in `Client.close`), so Discord keeps its session; a client
    that closes with 1000 ends it (events/gateway.mdx)."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(fake.gateway_url) as socket:
            await socket.receive_json()  # HELLO
            await socket.send_json({"op": 2, "d": {"token": fake.token, "intents": 0}})
            session_id = (await socket.receive_json())["d"]["session_id"]
            assert fake.sessions == {session_id: (0, 1)}
            await socket.close(code=1000)
        await fake.wait_for(lambda: not fake.sessions)
        async with session.ws_connect(fake.gateway_url) as socket:
            await socket.receive_json()
            await socket.send_json({"op": 6, "d": {"token": fake.token, "session_id": session_id, "seq": 1}})
            assert (await socket.receive_json())["op"] == 9  # INVALID_SESSION


async def test_identify_with_a_shard_outside_the_count_is_closed_4010(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(fake.gateway_url) as socket:
        hello = await socket.receive_json()
        assert hello["op"] == 10
        await socket.send_json({"op": 2, "d": {"token": fake.token, "intents": 0, "shard": [2, 2]}})
        closed = await socket.receive()
    assert (closed.type, socket.close_code) == (aiohttp.WSMsgType.CLOSE, 4010)
    assert fake.gateway_connects == []


async def test_autocomplete_is_answered_with_choices_of_the_options_type(
    fake: FakeDiscord, world: World
) -> None:
    """Type 4 interactions: the focused option arrives as typed text, the answer is callback type 8."""
    seen: list[tuple[Any, str]] = []
    client = QuickBot(
        command_prefix="!", intents=discord.Intents.none(), guild_ready_timeout=0.05, help_command=None
    )
    invoked: list[str] = []

    @app_commands.command(name="pick", description="Pick a length")
    async def pick(interaction: discord.Interaction, model: str, seconds: int) -> None:
        invoked.append(model)

    @pick.autocomplete("seconds")
    async def seconds_choices(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        seen.append((interaction.namespace.model, current))
        return [app_commands.Choice(name=f"{s} s", value=s) for s in (4, 8, 12) if current in str(s)]

    @pick.autocomplete("model")
    async def model_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name="x" * 101, value="too-long-a-name")]

    client.tree.add_command(pick, guild=discord.Object(world.guild.id))
    async with fake.run_bot(client):
        await client.tree.sync(guild=discord.Object(world.guild.id))
        lengths = await fake.dispatch_autocomplete(
            world.guild, world.channel, world.alice, "pick", {"model": "sora-2", "seconds": 1}, "seconds"
        )
        callback = await lengths.wait_response()
        untyped = await fake.dispatch_autocomplete(
            world.guild, world.channel, world.alice, "pick", {}, "seconds"
        )
        await untyped.wait_response()
        refused = await fake.dispatch_autocomplete(
            world.guild, world.channel, world.alice, "pick", {}, "model"
        )
        [answer] = await fake.wait_for(
            lambda: [
                c for c in fake.calls_to("POST", rf"/interactions/{refused.id}/.+/callback$") if c.status
            ]
        )
    assert lengths.payload["type"] == 4
    [option_seconds] = [o for o in lengths.payload["data"]["options"] if o.get("focused")]
    assert option_seconds == {"name": "seconds", "type": 4, "value": "1", "focused": True}
    assert seen == [("sora-2", "1"), (None, "")]
    assert callback.payload == {"type": 8, "data": {"choices": [{"name": "12 s", "value": 12}]}}
    assert lengths.choices == [{"name": "12 s", "value": 12}]
    assert [c["value"] for c in untyped.choices or []] == [4, 8, 12]
    assert answer.status == 400 and refused.choices is None and refused.callback_type is None
    assert invoked == [], "an autocomplete interaction never runs the command"
    assert fake.messages_in(world.channel) == []
