"""The catalogue drives the whole flow: a model only MODELS_FILE knows, end to end against the `/v1/videos`
fake — its own lengths and sizes on the wire, in the refusals and in autocomplete — and remixes by the
model's `remix` kind ("frame": a new job from the clip's first frame; "none": no Remix at all).
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from tests.fakes import videos_fake
from tests.fakes.discord_fake import FakeInteraction, FakeMessage
from tests.harness import World
from tests.test_remix import is_clip, link_to, next_clip, remix_by_button, settled, slash_remix

#: A model a New-API gateway serves under its operator's own name; the catalogue has never heard of it.
REEL = "acme/reel-2"
MODELS_TOML = f"""
[models."{REEL}"]
label = "Acme Reel 2"
seconds = [6, 3, 9]
sizes = ["1024x576", "576x1024"]
image = true
audio = "always"
remix = "frame"
usd_per_second = 0.05
"""
OFFERED = f"{REEL},minimax/h3"  # minimax/h3: built in, remix = "none", 4–15 s, six sizes


@pytest.fixture
def gateway_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake gateway serves REEL at exactly what MODELS_TOML says (and refuses anything else)."""
    monkeypatch.setitem(
        videos_fake.MODELS, REEL, videos_fake.GatewayModel(("1024x576", "576x1024"), ("6", "3", "9"))
    )


@pytest.fixture
def models_file(world: World, gateway_model: None) -> Path:
    path = world.tmp / "models.toml"
    path.write_text(MODELS_TOML)
    world.overrides.update(models_file=path, video_models=OFFERED)
    return path


def creates(world: World) -> list[videos_fake.Call]:
    return [c for c in world.videos.calls if c.method == "POST" and c.path == "/videos"]


async def test_a_model_only_the_models_file_knows_runs_with_its_own_lengths(
    world: World, models_file: Path
) -> None:
    async with world.running_bot() as bot:
        await world.generate(prompt="a kite over the dunes")  # the first offered model, its defaults
        first = await world.wait_for_clip()
        await world.generate(prompt="a kite at dusk", model=REEL, seconds=9, size="576x1024")
        second = await next_clip(world, first)
        refusals = [
            await world.generate(prompt="a kite", model=REEL, seconds=5),
            await world.generate(prompt="a kite", model=REEL, size="1280x720"),
        ]
        status = await bot.quotas.status(world.guild.id, world.alice.id)
    default, chosen = creates(world)
    # The OpenAI shape: multipart fields, `seconds` a string, whatever lengths the model has.
    assert (default.form["model"], default.form["seconds"], default.form["size"]) == (REEL, "6", "1024x576")
    assert (chosen.form["model"], chosen.form["seconds"], chosen.form["size"]) == (REEL, "9", "576x1024")
    first_id, second_id = world.videos.videos
    assert list(first.files.values()) == [(await world.videos.content_path(first_id)).read_bytes()]
    assert list(second.files.values()) == [(await world.videos.content_path(second_id)).read_bytes()]
    too_long, too_wide = (interaction.original for interaction in refusals)
    assert too_long.ephemeral and too_wide.ephemeral
    assert too_long.content == "⚠️ Acme Reel 2 makes videos of 3, 6, 9 seconds, not 5."
    assert too_wide.content == (
        "⚠️ Acme Reel 2 cannot make 1280x720 videos. "
        "Sizes it can make: 1024x576 · landscape, 576x1024 · portrait."
    )
    assert len(creates(world)) == 2, "a refused request must not reach the provider"
    assert [m.id for m in world.channel_messages() if is_clip(m)] == [first.id, second.id]
    assert status.member_today.spent == (6 + 9) * 50_000


async def autocomplete(world: World, focused: str, **typed: object) -> list[dict[str, object]]:
    """What the bot offers while the member types `focused` of /video generate."""
    interaction: FakeInteraction = await world.discord.dispatch_autocomplete(
        world.guild,
        world.general,
        world.alice,
        "video",
        {"prompt": "a kite", **typed},
        focused,
        subcommand="generate",
    )
    callback = await interaction.wait_response()
    assert callback.payload["type"] == 8
    assert interaction.choices is not None
    return interaction.choices


async def test_autocomplete_offers_exactly_what_the_chosen_model_allows(
    world: World, models_file: Path
) -> None:
    async with world.running_bot():
        reel_sizes = await autocomplete(world, "size", model=REEL, size="")
        h3_sizes = await autocomplete(world, "size", model="minimax/h3", size="")
        default_sizes = await autocomplete(world, "size", size="")  # no model yet: the default one's
        reel_seconds = await autocomplete(world, "seconds", model=REEL, seconds="")
        h3_seconds = await autocomplete(world, "seconds", model="minimax/h3", seconds="1")
        models = await autocomplete(world, "model", model="")
        typed = await autocomplete(world, "model", model="mini")
    assert reel_sizes == [
        {"name": "1024x576 · landscape", "value": "1024x576"},
        {"name": "576x1024 · portrait", "value": "576x1024"},
    ]
    assert default_sizes == reel_sizes
    assert h3_sizes == [
        {"name": label, "value": label.split(" ")[0]}
        for label in (
            "1344x768 · landscape",
            "768x1344 · portrait",
            "768x768 · square",
            "1024x768 · landscape",
            "768x1024 · portrait",
            "1536x672 · landscape",
        )
    ]
    assert reel_seconds == [{"name": f"{s} s", "value": s} for s in (6, 3, 9)]
    assert h3_seconds == [{"name": f"{s} s", "value": s} for s in (10, 11, 12, 13, 14, 15)]
    assert models == [
        {"name": "Acme Reel 2 · $0.05/s", "value": REEL},
        {"name": "MiniMax H3 · $0.072/s", "value": "minimax/h3"},
    ]
    assert typed == [{"name": "MiniMax H3 · $0.072/s", "value": "minimax/h3"}]
    assert world.videos.calls == [] and world.channel_messages() == []


def frames_of(clip: bytes) -> tuple[Image.Image, Image.Image]:
    """The first and last frames of an MP4, decoded."""
    with av.open(io.BytesIO(clip)) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]
    return frames[0], frames[-1]


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0–255."""
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


async def test_remix_of_a_frame_model_starts_a_new_job_from_the_clips_first_frame(
    world: World, models_file: Path
) -> None:
    async with world.running_bot():
        await world.generate(prompt="a kite over the dunes", model=REEL)
        first = await world.wait_for_clip()
        assert first.custom_ids() == ["remix:1", "extend:1", "details:1"]
        submit = await remix_by_button(world, first, "the kite at night")
        assert submit.original is not None and "on its way" in submit.original.content
        second = await next_clip(world, first)
        card = await world.wait_for_card(lambda text: "Remix of" in text and "Done" in text)
    assert world.videos.count("POST", r"/videos/[^/]+/remix") == 0, "a frame model has no remix route"
    source, remix = creates(world)
    assert "input_reference" not in source.files
    assert (remix.form["model"], remix.form["size"], remix.form["seconds"]) == (REEL, "1024x576", "6")
    assert remix.form["prompt"] == "the kite at night"
    upload = remix.files["input_reference"]
    assert upload.content_type == "image/jpeg"
    with Image.open(io.BytesIO(upload.data)) as sent:
        assert sent.format == "JPEG" and sent.size == (1024, 576)
        sent_image = sent.convert("RGB")
    [posted] = first.files.values()
    first_frame, last_frame = frames_of(posted)
    assert difference(sent_image, first_frame) < 4, "the image sent is not the clip's first frame"
    assert difference(sent_image, last_frame) > 4 * difference(sent_image, first_frame) + 1
    assert f"Remix of {link_to(first)}" in second.content and second.reply_to == card.id
    _, remix_id = world.videos.videos
    assert list(second.files.values()) == [(await world.videos.content_path(remix_id)).read_bytes()]


async def test_a_model_without_remix_shows_no_button_and_refuses_remix(
    world: World, models_file: Path
) -> None:
    async with world.running_bot():
        await world.generate(prompt="a kite over the dunes", model="minimax/h3")
        clip: FakeMessage = await world.wait_for_clip()
        refused = await settled(await slash_remix(world, link_to(clip), "the kite at night"))
    assert clip.custom_ids() == ["details:1"], "no Remix button under a clip of a remix = none model"
    assert refused.ephemeral
    assert refused.content == (
        "⚠️ MiniMax H3 clips can't be remixed (the model has no way to start from an earlier clip)."
    )
    assert len(creates(world)) == 1 and world.videos.count("POST", r"/videos/[^/]+/remix") == 0
    assert [m.id for m in world.channel_messages() if is_clip(m)] == [clip.id]
