"""`/video generate` end to end on the OpenRouter and fal families: the real bot, the fake Discord and
each provider's wire-level fake (`tests/fakes/openrouter_fake.py`, `tests/fakes/fal_fake.py`).

The `/v1/videos` (openai) family's scenarios are tests/test_generate.py and its neighbours.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes.discord_models import FakeMessage
from tests.harness import World, only_job

openrouter = pytest.mark.parametrize("family", ["openrouter"])
fal = pytest.mark.parametrize("family", ["fal"])
CREATE = "/videos"
CONTENT = r"/videos/[^/]+/content"


def card_texts(card: FakeMessage) -> list[str]:
    """The Status field of every revision of the card, in order."""
    return [
        field["value"]
        for revision in card.history
        for embed in revision.embeds
        for field in embed.get("fields", [])
        if field.get("name") == "Status"
    ]


def key_in(headers: dict[str, str], key: str) -> bool:
    return any(key in value for value in headers.values())


def write_models_file(world: World, text: str) -> Path:
    path = world.tmp / "models.toml"
    path.write_text(text)
    return path


# -- OpenRouter ----------------------------------------------------------------------------------------


@openrouter
async def test_openrouter_text_job_posts_the_clip_and_charges_the_actual_cost(world: World) -> None:
    fake = world.openrouter
    assert fake is not None
    fake.send_progress = True
    # The operator's estimate (MODELS_FILE) is above what OpenRouter bills: $0.12/s against the
    # $0.10/s of the model's published SKU, which is what the fake's usage.cost reports.
    models = write_models_file(world, '[models."alibaba/wan-2.6"]\nusd_per_second = 0.12\n')
    # The keyed content route is missing once, so the bot takes the signed storage URL (another host).
    fake.fail_next("GET", CONTENT, 404)
    async with world.running_bot(models_file=models) as bot:
        interaction = await world.generate(prompt="a lighthouse in a storm", model="alibaba/wan-2.6")
        clip = await world.wait_for_clip()
        card = await world.wait_for_card(lambda text: "Done" in text)
        job = await only_job(bot)
        status = await bot.quotas.status(world.guild.id, world.alice.id)
    assert interaction.original.ephemeral and "on its way" in interaction.original.content
    assert fake.count("POST", CREATE) == 1
    (provider_job,) = fake.jobs.values()
    [create] = [c for c in fake.calls if c.method == "POST" and c.path == CREATE]
    assert create.json["model"] == "alibaba/wan-2.6" and create.json["duration"] == 5
    assert (create.json["aspect_ratio"], create.json["resolution"]) == ("16:9", "720p")
    assert list(clip.files.values()) == [await fake.job_bytes(provider_job.id)]
    assert clip.reply_to == card.id
    assert any("67%" in text for text in card_texts(card)), card_texts(card)
    # The clip came from the storage host, and the key never went there.
    assert fake.cdn_calls, "the signed URL was never used"
    assert not any(key_in(call.headers, fake.api_key) for call in fake.cdn_calls)
    estimate, actual = 600_000, round(provider_job.cost * 1_000_000)
    assert job.cost_micros == estimate and actual == 500_000
    assert job.actual_cost_micros == actual
    # Charged what OpenRouter billed, not the estimate (DESIGN, "A job's life" 8).
    assert status.member_today.spent == actual, "the ledger charged the estimate, not usage.cost"
    assert status.member_today.left == 1_000_000 - actual
    assert status.in_flight == 0


@openrouter
async def test_openrouter_image_goes_as_a_first_frame_jpeg_at_the_jobs_size(world: World) -> None:
    fake = world.openrouter
    assert fake is not None
    picture = io.BytesIO()
    Image.new("RGB", (640, 640), (20, 160, 90)).save(picture, "PNG")
    attachment = world.discord.add_attachment(
        "square.png", picture.getvalue(), "image/png", width=640, height=640
    )
    async with world.running_bot():
        await world.generate(prompt="the square comes alive", image=attachment, size="720x1280")
        clip = await world.wait_for_clip()
    [create] = [c for c in fake.calls if c.method == "POST" and c.path == CREATE]
    [frame] = create.json["frame_images"]
    assert frame["type"] == "image_url" and frame["frame_type"] == "first_frame"
    match = re.fullmatch(r"data:image/jpeg;base64,(.+)", frame["image_url"]["url"], re.DOTALL)
    assert match is not None, frame["image_url"]["url"][:40]
    with Image.open(io.BytesIO(base64.b64decode(match.group(1)))) as image:
        assert image.format == "JPEG" and image.size == (720, 1280)
        red, green, blue = image.convert("RGB").getpixel((360, 640))
    assert abs(red - 20) < 12 and abs(green - 160) < 12 and abs(blue - 90) < 12
    (provider_job,) = fake.jobs.values()
    assert provider_job.size == "720x1280"
    assert list(clip.files.values()) == [await fake.job_bytes(provider_job.id)]


@openrouter
async def test_openrouter_402_at_submit_ends_the_job_plainly_and_refunds(world: World) -> None:
    fake = world.openrouter
    assert fake is not None
    fake.fail_next("POST", CREATE, 402)
    async with world.running_bot() as bot:
        await world.generate(prompt="a cat with no credits")
        card = await world.wait_for_card(lambda text: "Failed" in text)
        job = await only_job(bot)
        status = await bot.quotas.status(world.guild.id, world.alice.id)
    assert "tell an admin" in card.text()
    # Mentions and timestamps are ids and clocks, which may contain "402" by chance.
    shown = re.sub(r"<@\d+>|<t:\d+:R>", "", card.text())
    assert "Traceback" not in shown and "402" not in shown
    assert job.status.value == "failed"
    assert fake.count("POST", CREATE) == 1, "a 402 is not retried"
    assert fake.jobs == {}
    assert status.member_today.spent == 0 and status.in_flight == 0
    assert not any(m.attachments for m in world.channel_messages())


@openrouter
async def test_openrouter_429_at_submit_waits_then_makes_one_job(world: World) -> None:
    fake = world.openrouter
    assert fake is not None
    fake.fail_next("POST", CREATE, 429, headers={"Retry-After": "0"}, count=2)
    async with world.running_bot() as bot:
        await world.generate(prompt="a patient cat")
        clip = await world.wait_for_clip()
        job = await only_job(bot)
    assert fake.count("POST", CREATE) == 3
    (provider_job,) = fake.jobs.values()
    assert job.provider_video_id == provider_job.id and job.status.value == "posted"
    assert list(clip.files.values()) == [await fake.job_bytes(provider_job.id)]


# -- fal -----------------------------------------------------------------------------------------------


@fal
async def test_fal_job_shows_its_queue_position_and_posts_the_clip(world: World) -> None:
    fake = world.fal
    assert fake is not None
    fake.queue_ahead = 2  # two status polls in the queue (#2, then #1), one running, then done
    async with world.running_bot() as bot:
        interaction = await world.generate(prompt="a paper boat on a river")
        clip = await world.wait_for_clip()
        card = await world.wait_for_card(lambda text: "Done" in text)
        job = await only_job(bot)
    assert interaction.original.ephemeral
    (queued,) = fake.requests.values()
    assert queued.endpoint == "fal-ai/wan-25-preview/text-to-video"
    assert queued.input["duration"] == "5" and queued.input["resolution"] == "720p"
    texts = card_texts(card)
    assert any("#2 in the provider's queue" in text for text in texts), texts
    assert any("#1 in the provider's queue" in text for text in texts), texts
    assert list(clip.files.values()) == [await fake.request_bytes(queued.id)]
    assert job.status.value == "posted" and job.clip_message_id == clip.id
    # The result lives on fal's CDN (another host): fetched from there, without the key.
    assert fake.cdn_calls, "the clip was not fetched from fal's CDN"
    assert not any(key_in(call.headers, fake.api_key) for call in fake.cdn_calls)
    assert fake.count("POST", r"/fal-ai/wan-25-preview/text-to-video") == 1
