"""`/video generate` end to end: the real bot against the fake Discord and the fake Videos API."""

from __future__ import annotations

from tests.harness import World


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
    progress_edits = [rev for rev in card.history if "%" in " ".join(f.get("value", "") for e in rev.embeds for f in e.get("fields", []))]
    assert progress_edits, "the card never showed progress"
    public = world.channel_messages()
    assert [m.id for m in public] == [card.id, clip.id]
