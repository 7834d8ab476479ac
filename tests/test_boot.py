"""The bot boots against the fakes, identifies, and syncs its command tree only when it changed."""

from __future__ import annotations

from tests.harness import World


def command_puts(world: World) -> int:
    return len(world.discord.calls_to("PUT", r".*/commands"))


async def test_boot_identifies_and_syncs_once(world: World) -> None:
    async with world.running_bot() as bot:
        assert [g.id for g in bot.guilds] == [world.guild.id]
        assert bot.failed_extensions == []
        synced = {c["name"] for c in world.discord.guild_commands[world.guild.id]}
        assert synced == {"video", "quota", "Remix video"}
        video = next(c for c in world.discord.guild_commands[world.guild.id] if c["name"] == "video")
        assert {o["name"] for o in video["options"]} >= {"generate", "jobs"}
    assert world.discord.gateway_connects[0] == "identify"
    assert command_puts(world) == 1

    async with world.running_bot():
        pass
    assert command_puts(world) == 1, "a second start with the same tree must not sync again"

    async with world.running_bot(default_seconds=8):
        pass
    assert command_puts(world) == 1, "settings that do not change the tree must not sync"
