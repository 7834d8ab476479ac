"""Errors we cause: logged with context, answered with a short apology and a reference id."""

from __future__ import annotations

import logging
import secrets

import discord

log = logging.getLogger(__name__)


def new_reference() -> str:
    """A short id the member can quote and the operator can grep for in the log."""
    return secrets.token_hex(4)


def apology(reference: str) -> str:
    return f"Sorry, something went wrong on our side. If it keeps happening, tell an admin: reference `{reference}`."


async def report_unexpected(interaction: discord.Interaction, error: BaseException) -> str:
    """Log `error` with the interaction's context and tell the member privately; returns the reference."""
    reference = new_reference()
    command = interaction.command.qualified_name if interaction.command else interaction.data and interaction.data.get("custom_id")
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
            await interaction.edit_original_response(content=content, embed=None, view=None, attachments=[])
    except discord.HTTPException as exc:
        log.warning("Could not answer interaction %s privately: %s", interaction.id, exc)
