"""`/quota show | set | usage`: the server's budgets, who spent what, and how admins change them."""

from __future__ import annotations

import asyncio
import io

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import SoraBot
from bot.charts import render_daily_spend_png
from bot.errors import UserFacingError
from bot.money import format_usd
from bot.quotas import DEFAULT, UNCHANGED, Limits, Override, WindowStatus
from bot.settings import parse_usd, usd_to_micros

MAX_CONCURRENT = 50
NO_LIMIT_WORDS = {"none", "unlimited", "off", "no limit"}


def window_line(label: str, window: WindowStatus) -> str:
    spent = format_usd(window.spent)
    if window.limit is None:
        return f"**{label}**: {spent} spent · no limit"
    left = format_usd(window.left or 0, rounding="down")
    return (
        f"**{label}**: {spent} of {format_usd(window.limit)} · {left} left · resets <t:{window.resets_at}:R>"
    )


def parse_budget(option: str, value: str | None, *, allow_no_limit: bool = False) -> int | Override | None:
    """`None` → unchanged; "default" → the operator's default; "none" → no limit (monthly only)."""
    if value is None:
        return UNCHANGED
    text = value.strip().lower()
    if text == "default":
        return DEFAULT
    if allow_no_limit and text in NO_LIMIT_WORDS:
        return None
    try:
        return usd_to_micros(parse_usd(text))
    except ValueError as error:
        hint = ', "none" for no limit' if allow_no_limit else ""
        raise UserFacingError(f'`{option}` {error} (or "default"{hint}).') from None


def limits_text(limits: Limits) -> dict[str, str]:
    return {
        "Server daily": format_usd(limits.guild_daily),
        "Server monthly": "no limit" if limits.guild_monthly is None else format_usd(limits.guild_monthly),
        "Member daily": format_usd(limits.member_daily),
        "Videos in progress": str(limits.max_concurrent),
    }


@app_commands.guild_only()
class QuotaCog(commands.GroupCog, group_name="quota", group_description="Video budgets of this server"):
    def __init__(self, bot: SoraBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(
        name="show", description="Budgets of this server and yours: spent, left, and when they reset"
    )
    async def show(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        status = await self.bot.quotas.status(interaction.guild_id, interaction.user.id)
        lines = [
            window_line("Server today", status.guild_today),
            window_line("Server this month", status.guild_month),
            window_line("You today", status.member_today),
            f"**Videos in progress**: {status.in_flight} of at most {status.limits.max_concurrent}",
        ]
        await interaction.edit_original_response(content="\n".join(lines))

    @app_commands.command(name="set", description="Change this server's budgets (Manage Server only)")
    @app_commands.describe(
        guild_daily_usd='Server budget per UTC day in US dollars, e.g. 5 or 2.50 ("default" to reset)',
        guild_monthly_usd='Server budget per UTC month in US dollars ("none" for no limit, "default")',
        member_daily_usd='Budget per member per UTC day in US dollars ("default" to reset)',
        max_concurrent_jobs="How many videos may be in progress at once on this server",
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def set_limits(
        self,
        interaction: discord.Interaction,
        guild_daily_usd: str | None = None,
        guild_monthly_usd: str | None = None,
        member_daily_usd: str | None = None,
        max_concurrent_jobs: app_commands.Range[int, 0, MAX_CONCURRENT] | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        if all(
            value is None
            for value in (guild_daily_usd, guild_monthly_usd, member_daily_usd, max_concurrent_jobs)
        ):
            raise UserFacingError("Give at least one value to change, e.g. `/quota set guild_daily_usd:10`.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        old, new = await self.bot.quotas.set_limits(
            interaction.guild_id,
            by=interaction.user.id,
            guild_daily=parse_budget("guild_daily_usd", guild_daily_usd),
            guild_monthly=parse_budget("guild_monthly_usd", guild_monthly_usd, allow_no_limit=True),
            member_daily=parse_budget("member_daily_usd", member_daily_usd),
            max_concurrent=UNCHANGED if max_concurrent_jobs is None else max_concurrent_jobs,
        )
        before, after = limits_text(old), limits_text(new)
        lines = [
            f"**{name}**: {before[name]} → {after[name]}" for name in after if before[name] != after[name]
        ]
        await interaction.edit_original_response(
            content="Budgets updated:\n" + ("\n".join(lines) or "nothing changed (same values)")
        )

    @app_commands.command(
        name="usage", description="Who spent what today and this month (Manage Server only)"
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def usage(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        quotas = self.bot.quotas
        report = await quotas.usage(interaction.guild_id)
        days = await quotas.daily_spend(interaction.guild_id, 30)
        png = await asyncio.to_thread(render_daily_spend_png, days, title="Spend per day, last 30 days (UTC)")
        lines = ["**Spend per member** (today · this month · videos this month)"]
        lines += [
            f"<@{m.member_id}>: {format_usd(m.today)} · {format_usd(m.month)} · {m.videos}"
            for m in report.members
        ]
        if report.rest.members:
            rest = report.rest
            lines.append(
                f"{rest.members} others: {format_usd(rest.today)} · {format_usd(rest.month)} · {rest.videos}"
            )
        total = report.total
        lines.append(
            f"**Total**: {format_usd(total.today)} today · {format_usd(total.month)} this month · "
            f"{total.videos} videos"
        )
        lines.append(f"In progress (reserved): {format_usd(report.open_micros)}")
        lines.append(f"Refunded this month: {report.refunds} videos, {format_usd(report.refunded_micros)}")
        await interaction.edit_original_response(
            content="\n".join(lines)[:2000], attachments=[discord.File(io.BytesIO(png), filename="spend.png")]
        )


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, SoraBot)
    await bot.add_cog(QuotaCog(bot))
