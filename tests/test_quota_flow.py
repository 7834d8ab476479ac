"""Budgets in the generate flow and the /quota commands, through the fakes."""

from __future__ import annotations

import io

from PIL import Image

from tests.harness import World


async def quota_command(world: World, member, subcommand: str, **options):
    interaction = await world.discord.dispatch_slash_command(
        world.guild, world.general, member, "quota", options, subcommand=subcommand
    )
    return await interaction.wait_original(lambda m: not m.loading)


async def test_second_video_over_the_daily_budget_is_refused(world: World) -> None:
    async with world.running_bot(quota_member_daily_usd="0.40"):
        await world.generate(prompt="first")
        await world.wait_for_clip()
        second = await world.generate(prompt="second")
    answer = second.original
    assert answer.ephemeral
    assert "costs $0.40" in answer.content and "you have $0.00 left today" in answer.content
    assert "<t:" in answer.content  # when it resets
    assert world.videos.count("POST", "/videos") == 1


async def test_moderation_failure_refunds_so_the_next_request_fits(world: World) -> None:
    world.videos.moderate_next_job()
    async with world.running_bot(quota_member_daily_usd="0.40"):
        await world.generate(prompt="blocked")
        await world.wait_for_card(lambda text: "Failed" in text)
        await world.generate(prompt="allowed")
        clip = await world.wait_for_clip()
    assert clip.files
    assert world.videos.count("POST", "/videos") == 2


async def test_quota_set_requires_manage_server(world: World) -> None:
    async with world.running_bot() as bot:
        refused = await quota_command(world, world.alice, "set", guild_daily_usd="100")
        limits = await bot.quotas.limits_for(world.guild.id)
        assert refused.ephemeral and "Manage Server" in refused.content
        assert limits.guild_daily == 5_000_000

        changed = await quota_command(
            world, world.admin, "set", guild_daily_usd="12.50", guild_monthly_usd="none"
        )
        assert changed.ephemeral and "$5.00 → $12.50" in changed.content
        assert (await bot.quotas.limits_for(world.guild.id)).guild_daily == 12_500_000

        bad = await quota_command(world, world.admin, "set", member_daily_usd="1.234")
        assert bad.ephemeral and "two decimals" in bad.content
        nothing = await quota_command(world, world.admin, "set")
        assert nothing.ephemeral and "at least one" in nothing.content


async def test_quota_show_and_usage(world: World) -> None:
    async with world.running_bot():
        await world.generate(prompt="a cat")
        await world.wait_for_clip()
        shown = await quota_command(world, world.alice, "show")
        usage = await quota_command(world, world.admin, "usage")
    assert shown.ephemeral and "$0.40 of $1.00" in shown.content and "resets <t:" in shown.content
    assert usage.ephemeral and f"<@{world.alice.id}>" in usage.content
    png = usage.files["spend.png"]
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert usage.pinged.nobody
