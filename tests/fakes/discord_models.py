"""Data model of the fake Discord: users, guilds, messages, recorded calls, mention rules."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from tests.fakes.discord_fake import FakeDiscord

DISCORD_EPOCH_MS = 1420070400000
#: Message type of a reply.
REPLY = 19
EPHEMERAL = 1 << 6
LOADING = 1 << 7
#: Message flags a client may change on edit (SUPPRESS_EMBEDS, IS_COMPONENTS_V2).
EDITABLE_FLAGS = (1 << 2) | (1 << 15)
MENTION_EVERYONE = discord.Permissions(mention_everyone=True).value
ADMINISTRATOR = discord.Permissions(administrator=True).value
ALL_PERMISSIONS = discord.Permissions.all().value
#: What a member may do in a fresh server (the @everyone role).
DEFAULT_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    attach_files=True,
    embed_links=True,
    use_application_commands=True,
    add_reactions=True,
).value
#: What the bot's managed role grants by default: everything a video bot needs, and Mention Everyone so
#: tests prove that suppressing pings is the bot's doing, not a missing permission.
DEFAULT_BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    attach_files=True,
    embed_links=True,
    use_application_commands=True,
    mention_everyone=True,
    add_reactions=True,
    use_external_emojis=True,
).value

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE_MENTION = re.compile(r"@(everyone|here)")


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that receives a guild's events: Discord's sharding formula (0 for events without one)."""
    return (guild_id >> 22) % shard_count


class Snowflakes:
    """Unique snowflakes built from the current time with Discord's epoch formula."""

    def __init__(self) -> None:
        self._last = 0

    def next(self, *, shard: tuple[int, int] | None = None) -> int:
        """Return a new snowflake, strictly greater than the previous one.

        With `shard=(shard_id, shard_count)` the snowflake's timestamp is moved a few milliseconds
        ahead so that `shard_of` puts it on that shard.
        """
        value = max((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22, self._last + 1)
        if shard is not None:
            shard_id, count = shard
            ahead = (shard_id - shard_of(value, count)) % count
            if ahead:
                value = ((value >> 22) + ahead) << 22
        self._last = value
        return value


def iso(moment: dt.datetime) -> str:
    """Discord's ISO 8601 timestamp format."""
    return moment.isoformat(timespec="microseconds")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware."""
    return dt.datetime.now(dt.UTC)


@dataclass
class FakeUser:
    """A Discord user (a member's account, or the bot)."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    def payload(self) -> dict[str, Any]:
        """The user object as Discord sends it."""
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }

    @property
    def mention(self) -> str:
        """The mention markup for this user."""
        return f"<@{self.id}>"


@dataclass
class FakeRole:
    """A guild role."""

    id: int
    name: str
    permissions: int
    position: int = 0
    mentionable: bool = False
    managed: bool = False

    def payload(self) -> dict[str, Any]:
        """The role object as Discord sends it."""
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }

    @property
    def mention(self) -> str:
        """The mention markup for this role."""
        return f"<@&{self.id}>"


@dataclass
class FakeChannel:
    """A guild text channel."""

    id: int
    guild_id: int
    name: str
    position: int = 0

    def payload(self) -> dict[str, Any]:
        """The channel object as Discord sends it."""
        return {
            "id": str(self.id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
        }


@dataclass
class FakeMember:
    """A user's membership of a guild."""

    user: FakeUser
    guild_id: int
    roles: list[int] = field(default_factory=list)
    flags: int = 0
    nick: str | None = None
    joined_at: dt.datetime = field(default_factory=utcnow)

    @property
    def id(self) -> int:
        """The member's user id."""
        return self.user.id

    @property
    def mention(self) -> str:
        """The mention markup for this member."""
        return self.user.mention

    def payload(self, *, permissions: int | None = None) -> dict[str, Any]:
        """The member object; interactions add the member's `permissions`."""
        data: dict[str, Any] = {
            "user": self.user.payload(),
            "roles": [str(role) for role in self.roles],
            "nick": self.nick,
            "avatar": None,
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": self.flags,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass
class FakeGuild:
    """A guild with its roles, text channels and members (the bot is one of them)."""

    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    locale: str = "en-US"
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)

    @property
    def everyone(self) -> FakeRole:
        """The @everyone role (its id is the guild's id)."""
        return self.roles[self.id]

    @property
    def filesize_limit(self) -> int:
        """Per-attachment upload limit for channel sends, by boost tier."""
        return {2: 50, 3: 100}.get(self.premium_tier, 10) * 1024 * 1024

    @property
    def text_channels(self) -> list[FakeChannel]:
        """The guild's channels in position order."""
        return sorted(self.channels.values(), key=lambda channel: channel.position)

    def permissions_for(self, user_id: int) -> int:
        """Guild-level permissions of a member (no channel overwrites in this fake)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members[user_id]
        value = self.everyone.permissions
        for role_id in member.roles:
            value |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def payload(self, *, full: bool) -> dict[str, Any]:
        """The guild object; `full` adds what GUILD_CREATE carries (channels, members)."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_id": str(self.owner_id),
            "roles": [role.payload() for role in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "preferred_locale": self.locale,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "afk_channel_id": None,
            "afk_timeout": 300,
        }
        if full:
            data.update(
                unavailable=False,
                large=False,
                member_count=len(self.members),
                joined_at=iso(utcnow()),
                channels=[channel.payload() for channel in self.text_channels],
                members=[member.payload() for member in self.members.values()],
                threads=[],
                voice_states=[],
                presences=[],
                stage_instances=[],
                guild_scheduled_events=[],
                soundboard_sounds=[],
            )
        return data


@dataclass
class FakeAttachment:
    """A file: registered by a test for members to upload, or posted by the bot (bytes kept)."""

    id: int
    filename: str
    data: bytes
    url: str
    proxy_url: str
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        """The attachment object as Discord sends it."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.proxy_url,
        }
        optional = {
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
            "description": self.description,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        if self.ephemeral:
            data["ephemeral"] = True
        return data


@dataclass(frozen=True)
class Pinged:
    """Who a message notified, by Discord's rules. `everyone` covers @everyone and @here."""

    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    everyone: bool = False

    @property
    def nobody(self) -> bool:
        """True when the message pinged no one at all."""
        return not (self.users or self.roles or self.everyone)


def compute_pings(
    content: str,
    allowed_mentions: dict[str, Any] | None,
    *,
    guild: FakeGuild | None,
    author_id: int,
    known_users: set[int],
    replied_user_id: int | None,
) -> Pinged:
    """Apply Discord's mention rules: content markup filtered by `allowed_mentions` and permissions.

    Without `allowed_mentions` everything in the content is parsed and a reply pings the replied-to
    author. With it, only the `parse` types and the listed ids ping, and a reply pings only with
    `replied_user: true`. Roles ping when mentionable (or the author may mention everyone); @everyone
    and @here need the Mention Everyone permission.
    """
    can_mention_everyone = bool(guild and guild.permissions_for(author_id) & MENTION_EVERYONE)
    users = {int(match) for match in _USER_MENTION.findall(content)} & known_users
    roles = {int(match) for match in _ROLE_MENTION.findall(content)}
    roles = {
        role
        for role in roles
        if guild and role in guild.roles and (guild.roles[role].mentionable or can_mention_everyone)
    }
    everyone = bool(_EVERYONE_MENTION.search(content)) and can_mention_everyone
    reply_pings = True
    if allowed_mentions is not None:
        parse = allowed_mentions.get("parse", [])
        if "users" not in parse:
            users &= {int(user) for user in allowed_mentions.get("users", [])}
        if "roles" not in parse:
            roles &= {int(role) for role in allowed_mentions.get("roles", [])}
        everyone = everyone and "everyone" in parse
        reply_pings = bool(allowed_mentions.get("replied_user", False))
    if replied_user_id is not None and reply_pings:
        users.add(replied_user_id)
    users.discard(author_id)
    return Pinged(frozenset(users), frozenset(roles), everyone)


@dataclass
class Revision:
    """A message's visible state after one create or edit, with the monotonic time it happened."""

    time: float
    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    attachments: list[str]


@dataclass
class FakeMessage:
    """A message as the fake stores it: what was sent, its files' bytes, and who it pinged."""

    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    type: int = 0
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    attachments: list[FakeAttachment] = field(default_factory=list)
    message_reference: dict[str, Any] | None = None
    allowed_mentions: dict[str, Any] | None = None
    nonce: str | None = None
    interaction_token: str | None = None
    pinged: Pinged = field(default_factory=Pinged)
    created_at: dt.datetime = field(default_factory=utcnow)
    edited_at: dt.datetime | None = None
    history: list[Revision] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        """True for ephemeral messages (flag 64)."""
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is a deferred response's "thinking…" placeholder (flag 128)."""
        return bool(self.flags & LOADING)

    @property
    def files(self) -> dict[str, bytes]:
        """Attachment bytes by filename."""
        return {attachment.filename: attachment.data for attachment in self.attachments}

    @property
    def reply_to(self) -> int | None:
        """The id of the message this replies to, if any."""
        if self.message_reference is None or "message_id" not in self.message_reference:
            return None
        return int(self.message_reference["message_id"])

    def text(self) -> str:
        """Content, embed titles/descriptions/fields and text display components, joined for searching."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title", ""), embed.get("description", "")]
            parts += [f"{item.get('name', '')} {item.get('value', '')}" for item in embed.get("fields", [])]
        parts += [item.get("content", "") for item in walk_components(self.components)]
        return "\n".join(part for part in parts if part)

    def custom_ids(self) -> list[str]:
        """Every component custom_id on the message, in order."""
        return [item["custom_id"] for item in walk_components(self.components) if "custom_id" in item]

    def snapshot(self, now: float) -> None:
        """Append the current state to `history`."""
        names = [attachment.filename for attachment in self.attachments]
        self.history.append(Revision(now, self.content, self.embeds, self.components, names))

    def payload(self, fake: FakeDiscord, *, resolve_reference: bool = True) -> dict[str, Any]:
        """The message object as Discord returns it from REST reads (so without `nonce`).

        `referenced_message` is sent only for replies (type 19) and is null once the replied-to
        message is deleted (resources/message.mdx, Message Object, note 4); the fake resolves one level.
        """
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "channel_id": str(self.channel_id),
            "author": self.author.payload(),
            "content": self.content,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": [attachment.payload() for attachment in self.attachments],
            "mentions": [fake.users[user].payload() for user in sorted(self.pinged.users)],
            "mention_roles": [str(role) for role in sorted(self.pinged.roles)],
            "mention_everyone": self.pinged.everyone,
            "flags": self.flags,
            "tts": False,
            "pinned": False,
            "timestamp": iso(self.created_at),
            "edited_timestamp": iso(self.edited_at) if self.edited_at else None,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.interaction_token is not None:
            data["webhook_id"] = str(fake.application_id)
            data["application_id"] = str(fake.application_id)
        if self.message_reference is not None:
            given = {key: self.message_reference.get(key) for key in ("message_id", "channel_id", "guild_id")}
            data["message_reference"] = {
                "type": self.message_reference.get("type", 0),
                "channel_id": str(self.channel_id),
            } | {key: str(value) for key, value in given.items() if value is not None}
            if self.type == REPLY and resolve_reference:
                referenced = fake.messages.get(self.reply_to or 0)
                data["referenced_message"] = (
                    referenced.payload(fake, resolve_reference=False) if referenced else None
                )
        return data


def walk_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten rows, containers, sections and labels into their leaf components."""
    leaves: list[dict[str, Any]] = []
    for item in components:
        children = list(item.get("components", []))
        children += [item[key] for key in ("component", "accessory") if key in item]
        leaves += walk_components(children) if children else [item]
    return leaves


@dataclass
class Part:
    """One part of a multipart request body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    def text(self) -> str:
        """The part decoded as UTF-8."""
        return self.data.decode()


@dataclass
class Call:
    """One HTTP request the fake received, and what it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    parts: list[Part]
    #: When it arrived, on the fake's clock (monotonic unless a test injects one).
    time: float
    status: int = 0
    response: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def payload(self) -> Any:
        """The JSON body, or the `payload_json` part of a multipart body."""
        for part in self.parts:
            if part.name == "payload_json":
                return json.loads(part.text())
        return self.json

    @property
    def files(self) -> list[Part]:
        """The uploaded file parts (`files[n]`)."""
        return [part for part in self.parts if part.filename is not None]

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    @property
    def interaction_endpoint(self) -> bool:
        """True for the callback and the interaction webhooks, which Discord keeps out of the global
        rate limit (interactions/receiving-and-responding.mdx, "Endpoints")."""
        return self.path.startswith(("/interactions/", "/webhooks/"))


@dataclass
class FakeInteraction:
    """An interaction the fake dispatched, and how the bot answered it so far."""

    fake: FakeDiscord = field(repr=False)
    id: int
    token: str
    type: int
    payload: dict[str, Any] = field(repr=False)
    guild_id: int | None
    channel_id: int
    user_id: int
    created_at: float
    attachment_size_limit: int
    source_message_id: int | None = None
    callback: Call | None = None
    callback_type: int | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    #: An autocomplete interaction's answer (callback type 8), and the focused option's type.
    choices: list[dict[str, Any]] | None = None
    focused_type: int | None = None

    @property
    def original(self) -> FakeMessage | None:
        """The original response message (for 6/7 answers, the message the component was on)."""
        return self.fake.messages.get(self.original_message_id or 0)

    @property
    def followups(self) -> list[FakeMessage]:
        """Followup messages that still exist, in order."""
        return [self.fake.messages[i] for i in self.followup_ids if i in self.fake.messages]

    async def wait_response(self, timeout: float = 5.0) -> Call:  # noqa: ASYNC109 (tests expect timeout=)
        """Wait until the bot answered the callback successfully; return that call."""
        await self.fake.wait_for(lambda: self.callback_type is not None, timeout=timeout)
        assert self.callback is not None
        return self.callback

    async def wait_original(
        self,
        predicate: Callable[[FakeMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (tests expect timeout=)
    ) -> FakeMessage:
        """Wait until the original response exists (and satisfies `predicate`, if given)."""

        def check() -> FakeMessage | None:
            message = self.original
            if message is None or (predicate is not None and not predicate(message)):
                return None
            return message

        return await self.fake.wait_for(check, timeout=timeout)
