"""Errors we cause: logged with context, answered with a short apology and a reference id."""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

log = logging.getLogger(__name__)


class UserFacingError(app_commands.AppCommandError):
    """Something the member can fix; the message (shown privately) says how."""


def new_reference() -> str:
    """A short id the member can quote and the operator can grep for in the log."""
    return secrets.token_hex(4)


def apology(reference: str) -> str:
    return (
        "Sorry, something went wrong on our side. "
        f"If it keeps happening, tell an admin: reference `{reference}`."
    )


async def handle_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """The tree's error handler: expected refusals answered privately, the rest apologised for."""
    if isinstance(error, app_commands.MissingPermissions):
        await send_private(interaction, "⚠️ Only members with **Manage Server** can do that.")
    elif isinstance(error, UserFacingError | app_commands.CheckFailure):
        await send_private(interaction, f"⚠️ {error}")
    else:
        await report_unexpected(interaction, getattr(error, "original", error))


async def report_unexpected(interaction: discord.Interaction, error: BaseException) -> str:
    """Log `error` with the interaction's context and tell the member privately; returns the reference."""
    reference = new_reference()
    command = (
        interaction.command.qualified_name
        if interaction.command
        else interaction.data and interaction.data.get("custom_id")
    )
    log.error(
        "Unexpected error [ref %s] in %s (guild %s, channel %s, user %s)",
        reference,
        command,
        interaction.guild_id,
        interaction.channel_id,
        interaction.user.id,
        exc_info=error,
    )
    await send_private(interaction, apology(reference))
    return reference


async def send_private(interaction: discord.Interaction, content: str) -> None:
    """Answer privately whatever state the interaction is in; a dead token is only logged."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(content, ephemeral=True)
        else:
            await interaction.edit_original_response(content=content, embed=None, view=None)
    except discord.HTTPException as exc:
        log.warning("Could not answer interaction %s privately: %s", interaction.id, exc)
