"""The OAuth2 invite URL with exactly the scopes and permissions the bot needs."""

from __future__ import annotations

import base64
import binascii

import discord

SCOPES = ("bot", "applications.commands")
REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, attach_files=True, embed_links=True, read_message_history=True
)


def application_id_from_token(token: str) -> int:
    """A bot token's first part is the base64 of the bot's user id, which is its application id."""
    head = token.split(".", 1)[0]
    try:
        return int(base64.b64decode(head + "=" * (-len(head) % 4), validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("DISCORD_TOKEN does not look like a bot token") from None


def invite_url(token: str) -> str:
    return discord.utils.oauth_url(
        application_id_from_token(token), permissions=REQUIRED_PERMISSIONS, scopes=SCOPES
    )
