"""What members see of the server queue, Cancel, Extend and `/video info`, through the real bot.

The real bot (`World.running_bot`) against the fake Discord and the fake providers: cards' text, private
answers, posted clips (their bytes, frames and duration, read back with PyAV), the money left
(`bot.quotas.status`) and what reached the provider. Waits are on messages and calls, never on time.
"""

from __future__ import annotations

import io
import itertools
import re
from typing import Any

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from bot.app import SoraBot
from bot.cards import message_link
from bot.jobs.models import JOB_SELECT, Job, JobStatus
from tests.fakes.discord_fake import FakeInteraction, FakeMember, FakeMessage
from tests.fakes.discord_models import walk_components
from tests.fakes.videos_fake import Call
from tests.harness import World, spent_today

fal = pytest.mark.parametrize("family", ["fal"])
#: sora-2 (the openai family's default model) at its defaults: 1280x720, 4 s at $0.10/s.
CLIP_COST = 400_000
#: Three clips of one member in a day: more than the default $1.00.
ROOMY = {"quota_member_daily_usd": "5"}
QUEUED_NOTE = "Queued — #{} in this server's queue"
IN_QUEUE = "waits in this server's queue"
CANCELLED = "Cancelled; nothing was charged."
ONLY_REQUESTER = "⚠️ Only the member who asked for this video, or a manager, can cancel it."
NOT_HERE = "⚠️ I can't find that clip in this server."
CHANNEL_POST = r".*/channels/\d+/messages"


# -- helpers -----------------------------------------------------------------------------------------


def is_clip(message: FakeMessage) -> bool:
    return any(attachment.filename.endswith(".mp4") for attachment in message.attachments)


def clips(world: World) -> list[FakeMessage]:
    return [message for message in world.channel_messages() if is_clip(message)]


def cards(world: World) -> list[FakeMessage]:
    return [message for message in world.channel_messages() if message.embeds]


async def next_clip(world: World, *earlier: FakeMessage) -> FakeMessage:
    seen = {message.id for message in earlier}
    return await world.discord.wait_for_message(
        lambda m: m.channel_id == world.general.id and is_clip(m) and m.id not in seen, timeout=20
    )


async def card_of(world: World, prompt: str, *shows: str) -> FakeMessage:
    """The card of the job asked with `prompt`, once its text shows every one of `shows`."""
    return await world.wait_for_card(lambda text: prompt in text and all(s in text for s in shows))


async def settled(interaction: FakeInteraction) -> FakeMessage:
    return await interaction.wait_original(lambda message: not message.loading, timeout=15)


def fields(call: Call) -> dict[str, Any]:
    """A submission's fields, JSON or multipart."""
    return call.json if isinstance(call.json, dict) else call.form


def is_submission(call: Call, prompt: str | None = None) -> bool:
    if call.method != "POST" or call.path != "/videos" or call.dropped:
        return False
    return prompt is None or fields(call).get("prompt") == prompt


async def submission(world: World, prompt: str) -> Call:
    """The submission of the job asked with `prompt`, waiting for it if needed."""
    return await world.videos.wait_for_call(lambda call: is_submission(call, prompt), within=15)


def submitted_prompts(world: World) -> list[str]:
    """The prompts the provider received, in the order it received them."""
    return [fields(call)["prompt"] for call in world.videos.calls if is_submission(call)]


def video_id_for(world: World, prompt: str) -> str:
    (video,) = [video for video in world.videos.videos.values() if video.prompt == prompt]
    return video.id


async def provider_bytes(world: World, prompt: str) -> bytes:
    return (await world.videos.content_path(video_id_for(world, prompt))).read_bytes()


def link_to(message: FakeMessage) -> str:
    assert message.guild_id is not None
    return message_link(message.guild_id, message.channel_id, message.id)


async def jobs(bot: SoraBot) -> dict[str, Job]:
    """Every job by its prompt."""
    rows = await bot.db.fetchall(f"SELECT {JOB_SELECT} FROM jobs ORDER BY id")
    return {job.prompt: job for job in map(Job.from_row, rows)}


async def click(world: World, message: FakeMessage, custom_id: str, member: FakeMember) -> FakeMessage:
    """Click a button on `message` and return the private answer once it settled."""
    return await settled(await world.discord.click_component(message, custom_id, member))


def cancel_id(card: FakeMessage) -> str:
    (custom_id,) = [custom_id for custom_id in card.custom_ids() if custom_id.startswith("cancel:")]
    return custom_id


async def card_without_buttons(world: World, card: FakeMessage, *shows: str) -> FakeMessage:
    """The card once it shows every one of `shows` and has no component left."""
    return await world.discord.wait_for_message(
        lambda m: m.id == card.id and not m.components and all(s in m.text() for s in shows), timeout=20
    )


# -- the server queue ----------------------------------------------------------------------------------


async def test_three_requests_with_one_slot_wait_and_run_one_at_a_time(world: World) -> None:
    prompts = ["the first cat", "the second cat", "the third cat"]
    world.videos.hold_jobs()
    async with world.running_bot(max_concurrent_jobs_per_guild=1, **ROOMY) as bot:
        answers = [await world.generate(prompt=prompts[0])]
        await submission(world, prompts[0])
        answers += [await world.generate(prompt=prompt) for prompt in prompts[1:]]
        second = await card_of(world, prompts[1], QUEUED_NOTE.format(1))
        third = await card_of(world, prompts[2], QUEUED_NOTE.format(2))
        assert submitted_prompts(world) == prompts[:1], "a queued job reached the provider"
        assert "cancel:2" in second.custom_ids() and "cancel:3" in third.custom_ids()
        posted: list[FakeMessage] = []
        for index, prompt in enumerate(prompts):
            await submission(world, prompt)
            # While one is at the provider, nothing else is: only it was submitted, and it is unfinished.
            assert submitted_prompts(world) == prompts[: index + 1]
            statuses = [video.status for video in world.videos.videos.values()]
            assert statuses[:index] == ["completed"] * index and statuses[index] != "completed"
            if index == 1:  # the third moved up when the second started
                await card_of(world, prompts[2], QUEUED_NOTE.format(1))
            world.videos.complete(video_id_for(world, prompt))
            posted.append(await next_clip(world, *posted))
        await bot.runner.wait_idle()
        by_prompt = await jobs(bot)
        spent = await spent_today(bot, world)
    on_its_way, *waiting = (answer.original for answer in answers)
    assert on_its_way is not None and on_its_way.ephemeral and "on its way" in on_its_way.content
    for answer, card in zip(waiting, (second, third), strict=True):
        assert answer is not None and answer.ephemeral
        assert IN_QUEUE in answer.content and link_to(card) in answer.content
    # Each was posted once, as a reply to its own card, with the provider's bytes.
    assert [c.id for c in clips(world)] == [c.id for c in posted]
    for clip, prompt in zip(posted, prompts, strict=True):
        job = by_prompt[prompt]
        assert job.status is JobStatus.POSTED and job.clip_message_id == clip.id
        assert clip.reply_to == job.card_message_id
        assert list(clip.files.values()) == [await provider_bytes(world, prompt)]
    assert len(cards(world)) == 3
    # One at a time: each provider job was created after the one before it had finished.
    videos = sorted(world.videos.videos.values(), key=lambda video: video.number)
    assert [video.prompt for video in videos] == prompts
    for before, after in itertools.pairwise(videos):
        assert before.completed_at is not None and before.completed_at <= after.created_at
    assert spent == 3 * CLIP_COST


async def test_members_take_turns_in_the_queue(world: World) -> None:
    bob = world.discord.add_member(world.guild, "bob")
    hold = world.videos.hold_jobs()
    async with world.running_bot(max_concurrent_jobs_per_guild=1) as bot:
        # The admin's video holds the only slot while alice queues two and bob one after her.
        await world.generate(member=world.admin, prompt="the admin's video")
        await submission(world, "the admin's video")
        for member, prompt in ((world.alice, "alice one"), (world.alice, "alice two"), (bob, "bob one")):
            answer = (await world.generate(member=member, prompt=prompt)).original
            assert answer is not None and IN_QUEUE in answer.content
        await card_of(world, "alice one", QUEUED_NOTE.format(1))
        await card_of(world, "bob one", QUEUED_NOTE.format(2))
        assert await bot.store.queue_order(world.guild.id) == [2, 4, 3]  # alice, bob, alice
        hold.set()
        for _ in range(4):
            await next_clip(world, *clips(world))
        await bot.runner.wait_idle()
        by_prompt = await jobs(bot)
    assert submitted_prompts(world) == ["the admin's video", "alice one", "bob one", "alice two"]
    assert all(job.status is JobStatus.POSTED for job in by_prompt.values())
    assert len(clips(world)) == 4


async def test_a_card_shows_its_new_place_when_a_newcomer_goes_ahead_by_turns(world: World) -> None:
    bob = world.discord.add_member(world.guild, "bob")
    world.videos.hold_jobs()
    async with world.running_bot(max_concurrent_jobs_per_guild=1):
        await world.generate(member=world.admin, prompt="the admin's video")
        await submission(world, "the admin's video")
        await world.generate(prompt="alice one")
        await world.generate(prompt="alice two")
        await card_of(world, "alice two", QUEUED_NOTE.format(2))
        await world.generate(member=bob, prompt="bob one")  # bob's turn comes before alice's second
        await card_of(world, "bob one", QUEUED_NOTE.format(2))
        await world.discord.wait_for_message(
            lambda m: "alice two" in m.text() and QUEUED_NOTE.format(3) in m.text(), timeout=3
        )


async def test_a_full_queue_refuses_privately_and_reserves_nothing(world: World) -> None:
    world.videos.hold_jobs()
    async with world.running_bot(
        max_concurrent_jobs_per_guild=1, max_queued_jobs_per_guild=1, **ROOMY
    ) as bot:
        await world.generate(prompt="running")
        await submission(world, "running")
        queued = (await world.generate(prompt="waiting")).original
        refused = (await world.generate(prompt="one too many")).original
        by_prompt = await jobs(bot)
        spent = await spent_today(bot, world)
        reservations = await bot.db.fetchall(
            "SELECT * FROM ledger WHERE job_id = ?", (by_prompt["one too many"].id,)
        )
    assert queued is not None and IN_QUEUE in queued.content
    assert refused is not None and refused.ephemeral and refused.content.startswith("⚠️")
    assert "queue is full" in refused.content and "1 waiting (the most it takes)" in refused.content
    assert "1 video in progress" in refused.content
    assert by_prompt["one too many"].status is JobStatus.FAILED and reservations == []
    assert spent == 2 * CLIP_COST
    assert [c for c in cards(world) if "one too many" in c.text()] == []
    assert submitted_prompts(world) == ["running"]


async def test_without_a_queue_a_busy_server_refuses_as_before(world: World) -> None:
    world.videos.hold_jobs()
    async with world.running_bot(max_concurrent_jobs_per_guild=1, max_queued_jobs_per_guild=0) as bot:
        await world.generate(prompt="running")
        await submission(world, "running")
        refused = (await world.generate(prompt="no room")).original
        spent = await spent_today(bot, world)
        status = (await jobs(bot))["no room"].status
    assert refused is not None and refused.ephemeral
    assert refused.content == "⚠️ This server already has 1 video in progress; try again when one finishes."
    assert status is JobStatus.FAILED and spent == CLIP_COST
    assert len(cards(world)) == 1 and submitted_prompts(world) == ["running"]


async def test_a_queue_survives_a_restart_in_order(world: World) -> None:
    prompts = ["running before", "queued first", "queued second"]
    hold = world.videos.hold_jobs()
    async with world.running_bot(max_concurrent_jobs_per_guild=1, **ROOMY):
        await world.generate(prompt=prompts[0])
        await submission(world, prompts[0])
        for prompt in prompts[1:]:
            await world.generate(prompt=prompt)
        await card_of(world, prompts[2], QUEUED_NOTE.format(2))
    assert submitted_prompts(world) == prompts[:1]
    cards_before = [card.id for card in cards(world)]
    async with world.running_bot(max_concurrent_jobs_per_guild=1, **ROOMY) as bot:
        hold.set()
        posted: list[FakeMessage] = []
        for _ in prompts:
            posted.append(await next_clip(world, *posted))
        await bot.runner.wait_idle()
        by_prompt = await jobs(bot)
    assert submitted_prompts(world) == prompts
    assert [card.id for card in cards(world)] == cards_before, "a card was posted again"
    assert [c.id for c in clips(world)] == [c.id for c in posted]
    for clip, prompt in zip(posted, prompts, strict=True):
        assert by_prompt[prompt].clip_message_id == clip.id
        assert list(clip.files.values()) == [await provider_bytes(world, prompt)]


# -- Cancel --------------------------------------------------------------------------------------------


async def test_queued_jobs_are_cancelled_by_the_requester_or_a_manager_only(world: World) -> None:
    bob = world.discord.add_member(world.guild, "bob")
    hold = world.videos.hold_jobs()
    async with world.running_bot(max_concurrent_jobs_per_guild=1, **ROOMY) as bot:
        await world.generate(prompt="running")
        await submission(world, "running")
        await world.generate(prompt="cancelled by alice")
        await world.generate(prompt="cancelled by the admin")
        await world.generate(prompt="kept")
        mine = await card_of(world, "cancelled by alice", QUEUED_NOTE.format(1))
        theirs = await card_of(world, "cancelled by the admin", QUEUED_NOTE.format(2))
        spent_before = await spent_today(bot, world)

        # Another member may not.
        refused = await click(world, mine, cancel_id(mine), bob)
        assert refused.ephemeral and refused.content == ONLY_REQUESTER
        assert (await jobs(bot))["cancelled by alice"].status is JobStatus.QUEUED
        assert cancel_id(world.discord.messages[mine.id]) == cancel_id(mine)

        # The requester may.
        answer = await click(world, mine, cancel_id(mine), world.alice)
        assert answer.ephemeral and answer.content == CANCELLED
        mine = await card_without_buttons(world, mine, f"Cancelled by <@{world.alice.id}>")
        assert "❌" in mine.text()
        assert await spent_today(bot, world) == spent_before - CLIP_COST
        # The one behind it moved up.
        await card_of(world, "cancelled by the admin", QUEUED_NOTE.format(1))

        # A manager may, on anyone's.
        answer = await click(world, theirs, cancel_id(theirs), world.admin)
        assert answer.ephemeral and answer.content == CANCELLED
        await card_without_buttons(world, theirs, f"Cancelled by <@{world.admin.id}>")
        assert await spent_today(bot, world) == spent_before - 2 * CLIP_COST

        hold.set()
        first = await next_clip(world)
        await next_clip(world, first)
        await bot.runner.wait_idle()
        by_prompt = await jobs(bot)
        spent = await spent_today(bot, world)
    assert submitted_prompts(world) == ["running", "kept"]
    for prompt in ("cancelled by alice", "cancelled by the admin"):
        assert by_prompt[prompt].status is JobStatus.FAILED and by_prompt[prompt].clip_message_id is None
    assert spent == 2 * CLIP_COST
    assert len(clips(world)) == 2


async def test_a_job_at_a_provider_that_cannot_cancel_has_no_cancel_button(world: World) -> None:
    world.videos.hold_jobs()
    async with world.running_bot():
        await world.generate(prompt="at the provider")
        (call,) = [
            c for c in world.discord.calls if c.method == "POST" and re.fullmatch(CHANNEL_POST, c.path)
        ]
        first = call.payload
        card = await card_of(world, "at the provider", "🎬")
        card = await card_without_buttons(world, card, "🎬")
    # It had Cancel before it was submitted, and none once the provider had it.
    assert [leaf["custom_id"] for leaf in walk_components(first["components"])] == ["cancel:1"]
    assert card.custom_ids() == []


@fal
async def test_a_running_fal_job_is_cancelled_at_fal_and_refunded(world: World) -> None:
    fake = world.fal
    assert fake is not None
    fake.queue_ahead, fake.running_polls = 0, 1_000_000  # it runs until cancelled
    async with world.running_bot() as bot:
        await world.generate(prompt="a boat that never sails")
        card = await card_of(world, "a boat that never sails", "🎬")
        assert card.custom_ids() == ["cancel:1"], "fal can cancel a running job"
        assert fake.count("PUT", r".*/cancel") == 0
        answer = await click(world, card, "cancel:1", world.alice)
        assert answer.ephemeral and answer.content == CANCELLED
        await card_without_buttons(world, card, f"Cancelled by <@{world.alice.id}>")
        await bot.runner.wait_idle()
        (job,) = (await jobs(bot)).values()
        spent = await spent_today(bot, world)
    (request,) = fake.requests.values()
    assert fake.count("PUT", rf"/fal-ai/wan-25-preview/requests/{request.id}/cancel") == 1
    assert request.cancelled
    assert job.status is JobStatus.FAILED and job.clip_message_id is None
    assert spent == 0
    assert clips(world) == []


# -- Extend --------------------------------------------------------------------------------------------


def frames_of(data: bytes) -> tuple[Image.Image, Image.Image]:
    """The first and last frames of an MP4, decoded with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        first = last = None
        for frame in container.decode(video=0):
            if first is None:
                first = frame.to_image()
            last = frame
        assert first is not None and last is not None
        return first, last.to_image()


def difference(one: Image.Image, two: Image.Image) -> float:
    """Mean absolute difference of two RGB pictures (0..255)."""
    return sum(ImageStat.Stat(ImageChops.difference(one.convert("RGB"), two.convert("RGB"))).mean) / 3


def probe(data: bytes) -> tuple[float, int, int, bool]:
    """Duration (s), width, height and whether there is sound."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        assert container.duration is not None
        return (
            container.duration / av.time_base,
            video.codec_context.width,
            video.codec_context.height,
            bool(container.streams.audio),
        )


async def assert_extended(world: World, bot: SoraBot, source: FakeMessage, prompt: str) -> None:
    """The extension of `source` with `prompt`: submitted from its last frame, posted as one joined clip,
    only the continuation charged."""
    extension = await next_clip(world, source)
    card = await card_of(world, prompt, "Done")
    (source_bytes,) = source.files.values()
    (joined,) = extension.files.values()
    call = await submission(world, prompt)
    assert (fields(call)["size"], fields(call)["seconds"]) == ("1280x720", "4")
    upload = call.files["input_reference"]
    image = Image.open(io.BytesIO(upload.data))
    assert image.size == (1280, 720)
    first_frame, last_frame = frames_of(source_bytes)
    assert difference(image, last_frame) < 3, "the image is not the source's last frame"
    assert difference(image, first_frame) > 10, "the first and last frames must differ for this test"
    seconds, width, height, sound = probe(joined)
    source_seconds = probe(source_bytes)[0]
    assert (width, height) == (1280, 720) and sound
    assert abs(seconds - (source_seconds + 4)) < 0.25, (seconds, source_seconds)
    assert len(extension.attachments) == 1 and extension.reply_to == card.id
    assert f"Extension of {link_to(source)}" in extension.content
    assert link_to(source) in card.text()
    await bot.runner.wait_idle()
    job = (await jobs(bot))[prompt]
    assert job.cost_micros == CLIP_COST and job.seconds == 4
    assert await spent_today(bot, world) == 2 * CLIP_COST  # the source and the continuation only


async def test_extend_button_continues_a_clip_from_its_last_frame(world: World) -> None:
    async with world.running_bot() as bot:
        await world.generate(prompt="a cat on a surfboard")
        source = await world.wait_for_clip()
        assert "extend:1" in source.custom_ids()
        opened = await world.discord.click_component(source, "extend:1", world.alice)
        await opened.wait_response()
        assert opened.callback_type == 9 and opened.modal is not None
        assert opened.modal["title"] == "Extend this video"
        assert "What happens next?" in str(opened.modal["components"])
        (prompt_input,) = [
            leaf for leaf in walk_components(opened.modal["components"]) if "custom_id" in leaf
        ]
        assert prompt_input["custom_id"] == "prompt" and not prompt_input.get("value")
        submit = await world.discord.submit_modal(
            opened.modal["custom_id"], {"prompt": "the cat jumps off the board"}, world.alice, world.general
        )
        answer = await settled(submit)
        assert answer.ephemeral and "on its way" in answer.content
        await assert_extended(world, bot, source, "the cat jumps off the board")
    assert len(clips(world)) == 2


async def extend_command(
    world: World, video: str, prompt: str, member: FakeMember | None = None
) -> FakeMessage:
    return await settled(
        await world.discord.dispatch_slash_command(
            world.guild,
            world.general,
            member or world.alice,
            "video",
            {"video": video, "prompt": prompt},
            subcommand="extend",
        )
    )


async def test_extend_command_with_a_link_does_the_same(world: World) -> None:
    async with world.running_bot() as bot:
        await world.generate(prompt="a cat on a surfboard")
        source = await world.wait_for_clip()
        answer = await extend_command(world, link_to(source), "the cat waves")
        assert answer.ephemeral and "on its way" in answer.content
        await assert_extended(world, bot, source, "the cat waves")
        extension = await next_clip(world, source)
        details_id = next(c for c in extension.custom_ids() if c.startswith("details:"))
        click = await world.discord.click_component(extension, details_id, world.alice)
        details = await click.wait_original(lambda m: not m.loading)
    assert "Length: 8 s (4 s added)" in details.content  # the posted clip: the source and its continuation
    assert f"Extension of {link_to(source)}" in details.content


async def test_an_extension_is_remixed_from_its_joined_clips_first_frame(world: World) -> None:
    """The provider made only the continuation of an extension: its own remix would drop the source's
    part, so the whole posted clip is remixed from its first frame, as a new submission."""
    async with world.running_bot(**ROOMY) as bot:
        await world.generate(prompt="a cat on a surfboard")
        source = await world.wait_for_clip()
        await extend_command(world, link_to(source), "the cat waves")
        await assert_extended(world, bot, source, "the cat waves")
        extension = await next_clip(world, source)
        await bot.runner.wait_idle()
        # The continuation's file is gone at the provider (it keeps files about an hour): no matter.
        await bot.db.execute("UPDATE jobs SET expires_at = 1 WHERE prompt = ?", ("the cat waves",))
        click = await world.discord.click_component(extension, extension.custom_ids()[0], world.alice)
        await click.wait_response()
        assert click.modal is not None and extension.custom_ids()[0].startswith("remix:")
        submit = await world.discord.submit_modal(
            click.modal["custom_id"], {"prompt": "the cat waves at night"}, world.alice, world.general
        )
        assert "on its way" in (await settled(submit)).content
        remix = await next_clip(world, source, extension)
        call = await submission(world, "the cat waves at night")
        await bot.runner.wait_idle()
    assert world.videos.count("POST", r"/videos/.+/remix") == 0
    (joined,) = extension.files.values()
    first_frame, _ = frames_of(joined)
    image = Image.open(io.BytesIO(call.files["input_reference"].data))
    assert difference(image, first_frame) < 3, "the image is not the extension's first frame"
    assert f"Remix of {link_to(extension)}" in remix.content


async def test_another_servers_clip_cannot_be_extended(world: World) -> None:
    elsewhere = world.discord.add_guild("Elsewhere", channels=("lobby",))
    bob = world.discord.add_member(elsewhere, "bob")
    (lobby,) = elsewhere.text_channels
    async with world.running_bot(discord_guild_id=None) as bot:  # global commands: both servers
        await world.generate(member=bob, channel=lobby, prompt="a secret elsewhere")
        theirs = await world.wait_for_clip(channel=lobby)
        (video_id,) = world.videos.videos
        answers = [
            await extend_command(world, link_to(theirs), "stolen"),
            await extend_command(world, video_id, "stolen"),
            await extend_command(world, message_link(world.guild.id, world.general.id, theirs.id), "stolen"),
        ]
        spent = await spent_today(bot, world)
    assert all(answer.ephemeral and answer.content == NOT_HERE for answer in answers)
    assert submitted_prompts(world) == ["a secret elsewhere"]
    assert world.channel_messages() == [] and spent == 0


# -- /video info ---------------------------------------------------------------------------------------


async def test_info_lists_models_limits_money_left_and_the_queue(world: World) -> None:
    world.videos.hold_jobs()
    async with world.running_bot(max_concurrent_jobs_per_guild=1, quota_guild_monthly_usd="20"):
        await world.generate(prompt="running")
        await submission(world, "running")
        await world.generate(prompt="waiting")
        interaction = await world.discord.dispatch_slash_command(
            world.guild, world.general, world.alice, "video", {}, subcommand="info"
        )
        answer = await settled(interaction)
    assert answer.ephemeral
    text = answer.content
    lines = text.splitlines()
    (sora,) = [line for line in lines if "`sora-2`" in line]
    (pro,) = [line for line in lines if "`sora-2-pro`" in line]
    assert "Sora 2" in sora and "$0.10/s" in sora and "4/8/12 s" in sora
    assert "1280x720" in sora and "720x1280" in sora and "1792x1024" not in sora
    assert "$0.30–$0.50/s" in pro and "4/8/12 s" in pro and "1792x1024" in pro and "1024x1792" in pro
    # Two clips reserved at $0.40: the server's and alice's windows.
    (today,) = [line for line in lines if "Server today" in line]
    assert "$0.80 of $5.00" in today and "$4.20 left" in today
    (month,) = [line for line in lines if "Server this month" in line]
    assert "$0.80 of $20.00" in month and "$19.20 left" in month
    (mine,) = [line for line in lines if "You today" in line]
    assert "$0.80 of $1.00" in mine and "$0.20 left" in mine
    assert "1 of at most 1 videos in progress" in text
    assert "1 waiting" in text and "the queue takes 10" in text
