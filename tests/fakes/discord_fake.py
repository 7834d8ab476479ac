"""A fake Discord (gateway + REST + CDN) on 127.0.0.1 that the real discord.py 2.7 client talks to.

Build state first (`add_guild`, `add_member`, …), start the server (`async with FakeDiscord() as fake`),
point discord.py at it (`with fake.patch_discord():`), run a bot (`async with fake.run_bot(bot):`),
then drive it with `dispatch_slash_command`, `click_component`, `submit_modal`, … and assert on
`fake.calls` and `fake.messages`. Waiting helpers wake on every change; nothing sleeps.

Shards: several clients (or processes) may connect, one gateway session per `[shard_id, shard_count]`;
each gets only its guilds and the events (interactions included) of those guilds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import mimetypes
import re
import secrets
import time
import traceback
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import discord
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

from tests.fakes.discord_models import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    EDITABLE_FLAGS,
    EPHEMERAL,
    LOADING,
    REPLY,
    Call,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    Part,
    Pinged,
    Snowflakes,
    compute_pings,
    shard_of,
    utcnow,
    walk_components,
)
from tests.fakes.faults import FaultScript

__all__ = [
    "Call",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "Part",
    "Pinged",
]

T = TypeVar("T")
ClientT = TypeVar("ClientT", bound=discord.Client)
API_PREFIX = "/api/v10"
MIB = 1024 * 1024
_FILE_FIELD = re.compile(r"files\[(\d+)\]")
#: Discord's global limit counts requests per second (topics/rate-limits.mdx, "Global Rate Limit").
_GLOBAL_WINDOW = 1.0
_VIEW_CHANNEL = discord.Permissions(view_channel=True).value
_READ_MESSAGE_HISTORY = discord.Permissions(read_message_history=True).value
# Interaction types and callback types from Discord's docs.
_APPLICATION_COMMAND, _COMPONENT, _AUTOCOMPLETE, _MODAL_SUBMIT = 2, 3, 4, 5
_MESSAGE, _DEFERRED_MESSAGE, _DEFERRED_UPDATE, _UPDATE_MESSAGE, _MODAL = 4, 5, 6, 7, 9
_AUTOCOMPLETE_RESULT = 8
#: Autocomplete answers (interactions/receiving-and-responding.mdx, "Autocomplete"): at most 25 choices,
#: names of 1-100 characters, string values of at most 100; a value's type is the option's.
_MAX_CHOICES, _MAX_CHOICE_TEXT = 25, 100
_CHOICE_TYPES: dict[int, tuple[type, ...]] = {3: (str,), 4: (int,), 10: (int, float)}


class ApiError(Exception):
    """An error answer in Discord's JSON shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def reply(self) -> _Reply:
        """The answer for this error."""
        return _Reply(self.status, {"message": self.message, "code": self.code})


@dataclass
class _Reply:
    """An answer: JSON `data` (Content-Type exactly `application/json`, as discord.py requires) or `raw`."""

    status: int
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"

    def response(self) -> web.Response:
        if self.status == 204:
            return web.Response(status=204)
        body = self.raw if self.raw is not None else json.dumps(self.data).encode()
        return web.Response(
            status=self.status, body=body, headers={"Content-Type": self.content_type, **self.headers}
        )


_Handler = Callable[[web.Request, Call], Awaitable[_Reply]]


def _rate_limited(retry_after: float, *, is_global: bool) -> _Reply:
    """A 429 as Discord sends it (topics/rate-limits.mdx); `Via` tells discord.py it is not Cloudflare."""
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Scope": "global" if is_global else "user",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
    return _Reply(429, body, headers)


@dataclass
class _Session:
    """A gateway session: its shard, sequence, every dispatch sent (for RESUME replay), current socket."""

    id: str
    socket: web.WebSocketResponse | None
    shard: tuple[int, int] = (0, 1)
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def peak_in_one_second(times: Iterable[float]) -> int:
    """The most of these moments that fall within any half-open second [t, t + 1)."""
    ordered = sorted(times)
    peak = first = 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= _GLOBAL_WINDOW:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


class FakeDiscord:
    """The fake Discord server and its state. See the module docstring for the workflow."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        heartbeat_interval_ms: int = 1000,
        allow_resume: bool = True,
        interaction_deadline: float = 3.0,
        nonce_window: float = 300.0,
        shards: int = 1,
        global_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.snowflakes = Snowflakes()
        #: Times calls, edits, interactions and nonces; tests may inject a ManualClock.
        self.clock = clock
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        #: When False, RESUME gets INVALID_SESSION (op 9) and the client must IDENTIFY again.
        self.allow_resume = allow_resume
        #: Seconds after its creation an interaction can still be answered (Discord: 3).
        self.interaction_deadline = interaction_deadline
        #: Seconds a nonce sent with `enforce_nonce` dedupes posts by the same author ("a few minutes").
        self.nonce_window = nonce_window
        #: Shard count that `GET /gateway/bot` recommends.
        self.shards = shards
        #: IDENTIFYs left today, as `GET /gateway/bot` reports them; each IDENTIFY uses one.
        self.session_start_limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        #: When set, more than this many bot-token requests within a second get a global 429.
        self.global_limit = global_limit
        self.bot_user = FakeUser(self.snowflakes.next(), "Soracord", bot=True)
        self.owner = FakeUser(self.snowflakes.next(), "app-owner")
        self.application_id = self.bot_user.id
        self.users: dict[int, FakeUser] = {user.id: user for user in (self.bot_user, self.owner)}
        self.guilds: dict[int, FakeGuild] = {}
        #: Every live message by id, in creation order (channel posts, responses, followups).
        self.messages: dict[int, FakeMessage] = {}
        #: Messages deleted by the bot or with their channel, by id.
        self.deleted_messages: dict[int, FakeMessage] = {}
        self.attachments: dict[int, FakeAttachment] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.calls: list[Call] = []
        #: Every frame the client sent on the gateway (heartbeats included), in order.
        self.gateway_received: list[dict[str, Any]] = []
        #: "identify" or "resume" for each handshake that completed (READY or RESUMED sent).
        self.gateway_connects: list[str] = []
        #: Bugs in the fake itself or routes it lacks; a test fixture should assert this stays empty.
        self.server_errors: list[str] = []
        self.expired_tokens: set[str] = set()
        self.denied_channels: set[int] = set()
        self._faults = FaultScript(whole_path=False)
        #: (author id, nonce) -> (message id, time it was first sent).
        self._nonces: dict[tuple[int, str], tuple[int, float]] = {}
        self._global_window: deque[float] = deque()
        #: Gateway sessions by id, in the order they identified.
        self._sessions: dict[str, _Session] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ----------------------------------------------------------------- lifecycle

    @property
    def api_base(self) -> str:
        """Value for `discord.http.Route.BASE`."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """Value for `DiscordWebSocket.DEFAULT_GATEWAY` (also sent as resume_gateway_url)."""
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application(client_max_size=256 * MIB)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/cdn/attachments/{attachment_id}/{filename}", self._endpoint(self._cdn))
        api = [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("GET", "/applications/{app_id}/commands", self._get_commands),
            ("PUT", "/applications/{app_id}/commands", self._put_commands),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._interaction_callback),
            ("POST", "/webhooks/{app_id}/{token}", self._post_followup),
            ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self._get_webhook_message),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", self._edit_webhook_message),
            ("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}", self._delete_webhook_message),
            ("GET", "/channels/{channel_id}/messages", self._get_channel_messages),
            ("POST", "/channels/{channel_id}/messages", self._post_channel_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_channel_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_channel_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_channel_message),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("GET", "/guilds/{guild_id}", self._get_guild),
        ]
        for method, path, handler in api:
            app.router.add_route(method, API_PREFIX + path, self._endpoint(handler))
        app.router.add_route("*", "/{tail:.*}", self._endpoint(self._unknown_route))
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Close gateway sockets and stop the server."""
        for socket in list(self._sockets):
            await socket.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py's REST base and default gateway at this fake; restore both on exit."""
        old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    @contextlib.asynccontextmanager
    async def run_bot(
        self,
        bot: ClientT,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 (tests expect timeout=)
    ) -> AsyncIterator[ClientT]:
        """Log `bot` (any client, sharded or not) in with the fake's token, connect, wait for `on_ready`;
        close it on exit."""
        await bot.login(self.token)
        runner = asyncio.create_task(bot.connect())
        ready = asyncio.create_task(bot.wait_until_ready())
        try:
            done, _ = await asyncio.wait(
                {runner, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if runner in done:
                runner.result()
                raise RuntimeError("the bot stopped before it was ready")
            if ready not in done:
                raise TimeoutError(f"the bot was not ready after {timeout} s")
            yield bot
        finally:
            ready.cancel()
            await bot.close()
            await runner

    # ----------------------------------------------------------------- state builders

    def add_guild(
        self,
        name: str = "Test Server",
        *,
        premium_tier: int = 0,
        channels: Iterable[str] = ("general",),
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        locale: str = "en-US",
        shard: tuple[int, int] | None = None,
    ) -> FakeGuild:
        """Add a guild with @everyone, the bot's managed role, the bot's member and text channels.

        `shard=(shard_id, shard_count)` picks an id that shard owns. Build state before the bot
        connects: GUILD_CREATE is sent on IDENTIFY.
        """
        guild = FakeGuild(self.snowflakes.next(shard=shard), name, self.owner.id, premium_tier, locale)
        guild.roles[guild.id] = FakeRole(guild.id, "@everyone", everyone_permissions)
        bot_role = FakeRole(self.snowflakes.next(), self.bot_user.username, bot_permissions, 1, managed=True)
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user.id] = FakeMember(self.bot_user, guild.id, [bot_role.id])
        self.guilds[guild.id] = guild
        for channel in channels:
            self.add_channel(guild, channel)
        return guild

    def add_channel(self, guild: FakeGuild, name: str) -> FakeChannel:
        """Add a text channel to `guild`."""
        channel = FakeChannel(self.snowflakes.next(), guild.id, name, len(guild.channels))
        guild.channels[channel.id] = channel
        return channel

    async def delete_channel(self, channel: FakeChannel) -> None:
        """Delete a channel with its messages: every route on it answers 404 code 10003 (Unknown Channel).

        A connected bot gets CHANNEL_DELETE, as on Discord.
        """
        guild = self.guilds[channel.guild_id]
        del guild.channels[channel.id]
        for message in self.messages_in(channel):
            self._forget_message(message)
        if self._session_for(guild.id) is not None:
            await self.dispatch("CHANNEL_DELETE", channel.payload())
        await self._notify()

    def add_message(
        self,
        channel: FakeChannel,
        author: FakeMember | None = None,
        content: str = "",
        *,
        files: dict[str, bytes] | None = None,
        reply_to: FakeMessage | None = None,
        nonce: str | None = None,
    ) -> FakeMessage:
        """Put a message in a channel as if posted earlier, by `author` or (by default) the bot.

        No gateway event is sent. A `nonce` is remembered as if sent with `enforce_nonce` just now, so
        a bot that posts with it (a fresh database, same channel) gets this message back.
        """
        payload: dict[str, Any] = {"content": content}
        if reply_to is not None:
            payload["message_reference"] = {"message_id": reply_to.id}
        numbered = enumerate((files or {}).items())
        parts = [Part(f"files[{n}]", name, None, data) for n, (name, data) in numbered]
        message = self._create_message(
            channel,
            payload,
            parts,
            kind=REPLY if reply_to is not None else 0,
            author=author.user if author is not None else self.bot_user,
        )
        if nonce is not None:
            self._remember_nonce(message, nonce, self.clock())
        return message

    def add_role(
        self, guild: FakeGuild, name: str, permissions: int = 0, *, mentionable: bool = False
    ) -> FakeRole:
        """Add a role (use `discord.Permissions(...).value` for `permissions`)."""
        role = FakeRole(self.snowflakes.next(), name, permissions, len(guild.roles), mentionable)
        guild.roles[role.id] = role
        return role

    def add_member(
        self,
        guild: FakeGuild,
        username: str,
        *,
        roles: Iterable[FakeRole] = (),
        flags: int = 0,
        nick: str | None = None,
    ) -> FakeMember:
        """Add a new user as a member of `guild` with the given roles."""
        user = FakeUser(self.snowflakes.next(), username)
        self.users[user.id] = user
        member = FakeMember(user, guild.id, [role.id for role in roles], flags, nick)
        guild.members[user.id] = member
        return member

    def add_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
    ) -> dict[str, Any]:
        """Serve `data` on the CDN; return the attachment object for an interaction option."""
        attachment = self._store_attachment(filename, data, content_type, ephemeral=True)
        attachment.width, attachment.height = width, height
        return attachment.payload()

    def guild_of(self, channel_id: int) -> FakeGuild:
        """The guild that owns a channel (ApiError 404 Unknown Channel if none)."""
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild
        raise ApiError(404, 10003, "Unknown Channel")

    # ----------------------------------------------------------------- queries and waiting

    def messages_in(self, channel: FakeChannel | int, *, include_ephemeral: bool = True) -> list[FakeMessage]:
        """Live messages in a channel in creation order; ephemeral ones only if asked."""
        channel_id = channel if isinstance(channel, int) else channel.id
        return [
            message
            for message in self.messages.values()
            if message.channel_id == channel_id and (include_ephemeral or not message.ephemeral)
        ]

    @property
    def sessions(self) -> dict[str, tuple[int, int]]:
        """Gateway sessions that still exist (connected or resumable): id -> (shard_id, shard_count)."""
        return {session.id: session.shard for session in self._sessions.values()}

    def original_response(self, interaction: FakeInteraction) -> FakeMessage | None:
        """The original response of an interaction (None before it answers with a message)."""
        return interaction.original

    def calls_to(self, method: str, path_regex: str) -> list[Call]:
        """Recorded calls with this method whose path matches `path_regex` (re.search)."""
        pattern = re.compile(path_regex)
        return [call for call in self.calls if call.method == method and pattern.search(call.path)]

    def edits_of(self, message_id: int) -> list[float]:
        """When each edit of a message (live or deleted) happened, on the fake's clock, in order."""
        message = self.messages.get(message_id) or self.deleted_messages[message_id]
        return [revision.time for revision in message.history[1:]]

    def requests_per_second_peak(self, *, exclude_interaction_callbacks: bool = True) -> int:
        """The most bot-token REST calls (answered or refused) that fell within any one second.

        Interaction endpoints (the callback and the token's webhooks) are left out unless
        `exclude_interaction_callbacks` is False, as Discord's global limit leaves them out.
        """
        return peak_in_one_second(
            call.time
            for call in self.calls
            if self._bot_call(call) or (call.interaction_endpoint and not exclude_interaction_callbacks)
        )

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 (tests expect timeout=)
    ) -> T:
        """Wait until `predicate()` returns something truthy (re-checked on every change); return it."""
        result: T | None = None

        def check() -> bool:
            nonlocal result
            result = predicate()
            return bool(result)

        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(check), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the fake Discord did not reach the awaited state within {timeout} s"
            ) from None
        assert result is not None
        return result

    async def wait_for_call(
        self,
        predicate: Callable[[Call], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 (tests expect timeout=)
        *,
        start: int = 0,
    ) -> Call:
        """Wait for a recorded call (index >= `start`) matching `predicate`; return the first one."""
        return await self.wait_for(
            lambda: next((call for call in self.calls[start:] if predicate(call)), None), timeout
        )

    async def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 (tests expect timeout=)
    ) -> FakeMessage:
        """Wait until some live message satisfies `predicate` (checked again after each edit)."""
        return await self.wait_for(
            lambda: next((message for message in self.messages.values() if predicate(message)), None), timeout
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ----------------------------------------------------------------- fault switches

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Any = None,
        count: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `count` matching requests (`method` or "*") with `status` and `body`."""
        body = body if body is not None else {"message": f"{status}: injected failure", "code": 0}
        self._faults.add(method, path_regex, status, body, headers, count)

    def rate_limit_next(
        self,
        method: str,
        path_regex: str,
        retry_after: float = 0.05,
        count: int = 1,
        *,
        is_global: bool = False,
    ) -> None:
        """Answer the next matching requests with a real-looking 429 (Via and X-RateLimit-* headers)."""
        bucket = hashlib.sha1(f"{method} {path_regex}".encode()).hexdigest()[:16]
        reply = _rate_limited(retry_after, is_global=is_global)
        reply.headers |= {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        self.fail_next(method, path_regex, 429, reply.data, count, reply.headers)

    def forget_nonces(self) -> None:
        """Forget every nonce, as Discord does a few minutes after a post: the next post is new."""
        self._nonces.clear()

    def expire_token(self, interaction: FakeInteraction | str) -> None:
        """Make an interaction token answer 401 code 50027 on webhook routes and the callback."""
        self.expired_tokens.add(interaction if isinstance(interaction, str) else interaction.token)

    def deny_channel(self, channel: FakeChannel | int) -> None:
        """Make channel posts there fail with 403 code 50013 (Missing Permissions)."""
        self.denied_channels.add(channel if isinstance(channel, int) else channel.id)

    # ----------------------------------------------------------------- gateway

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a dispatch (op 0) to the session of the shard that owns `data["guild_id"]` (shard 0 for
        events without one, gateway.mdx "Sharding"); buffered for RESUME while it is disconnected."""
        guild_id = int(data.get("guild_id") or 0)
        session = self._session_for(guild_id)
        if session is None:
            raise RuntimeError(f"no gateway session for the shard of guild {guild_id}: connect the bot first")
        await self._send_dispatch(session, event, data)

    async def drop_connection(self, code: int = 4000, *, shard_id: int | None = None) -> None:
        """Close gateway sockets (all, or those of `shard_id`) with `code`; sessions stay resumable
        (unless `allow_resume` is False)."""
        sockets = list(self._sockets) if shard_id is None else []
        for session in self._sessions.values():
            if shard_id in (None, session.shard[0]) and session.socket is not None:
                sockets.append(session.socket)
                session.socket = None  # detached first: the client's echo of `code` must not end it
        for socket in set(sockets):
            await socket.close(code=code, message=b"dropped by the fake")

    def _session_for(self, guild_id: int) -> _Session | None:
        """The newest session whose shard owns `guild_id` (0 for events without a guild)."""
        for session in reversed(self._sessions.values()):
            shard_id, count = session.shard
            if shard_of(guild_id, count) == shard_id:
                return session
        return None

    async def _send_dispatch(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.sent.append(frame)
            if session.socket is not None and not session.socket.closed:
                await session.socket.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        """The gateway: plain JSON text frames; the `compress`/`encoding` query is ignored."""
        socket = web.WebSocketResponse(compress=False, max_msg_size=0)
        await socket.prepare(request)
        self._sockets.add(socket)
        hello = {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None}
        try:
            await socket.send_str(json.dumps(hello))
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    await socket.close(code=4002, message=b"Error while decoding payload.")
                    break
                frame = json.loads(message.data)
                self.gateway_received.append(frame)
                await self._on_frame(socket, frame)
                await self._notify()
        finally:
            self._sockets.discard(socket)
            for session in list(self._sessions.values()):
                if session.socket is socket:
                    session.socket = None
                    if socket.close_code in (1000, 1001):  # the client's close ends it (gateway.mdx)
                        del self._sessions[session.id]
            await self._notify()
        return socket

    async def _on_frame(self, socket: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d") or {}
        if op == 1:
            await socket.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        elif op in (2, 6) and data.get("token") != self.token:
            await socket.close(code=4004, message=b"Authentication failed.")
        elif op == 2:
            await self._identify(socket, data.get("shard"))
        elif op == 6:
            await self._resume(socket, data)

    async def _identify(self, socket: web.WebSocketResponse, shard: list[int] | None) -> None:
        """A new session for `shard` (`[0, 1]` when absent) with that shard's guilds; it replaces an
        earlier session on the same shard. A shard id outside the count closes with 4010."""
        shard_id, count = shard or (0, 1)
        if not 0 <= shard_id < count:
            await socket.close(code=4010, message=b"Invalid shard.")
            return
        for earlier in [s for s in self._sessions.values() if s.shard == (shard_id, count)]:
            del self._sessions[earlier.id]
        session = _Session(secrets.token_hex(16), socket, (shard_id, count))
        self._sessions[session.id] = session
        self.session_start_limit["remaining"] = max(0, self.session_start_limit["remaining"] - 1)
        guilds = [guild for guild in self.guilds.values() if shard_of(guild.id, count) == shard_id]
        ready = {
            "v": 10,
            "user": self.bot_user.payload() | {"verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
        }
        if shard is not None:
            ready["shard"] = [shard_id, count]
        await self._send_dispatch(session, "READY", ready)
        for guild in guilds:
            await self._send_dispatch(session, "GUILD_CREATE", guild.payload(full=True))
        self.gateway_connects.append("identify")

    async def _resume(self, socket: web.WebSocketResponse, data: dict[str, Any]) -> None:
        session = self._sessions.get(data.get("session_id") or "")
        if session is None or not self.allow_resume:
            self._sessions.pop(data.get("session_id") or "", None)
            await socket.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        async with session.lock:
            session.socket = socket
            for frame in session.sent:
                if frame["s"] > (data.get("seq") or 0):
                    await socket.send_str(json.dumps(frame))
        await self._send_dispatch(session, "RESUMED", {})
        self.gateway_connects.append("resume")

    # ----------------------------------------------------------------- interactions (test side)

    async def dispatch_slash_command(
        self,
        guild: FakeGuild,
        channel: FakeChannel,
        user: FakeMember,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        app_permissions: int | None = None,
        attachment_size_limit: int = 10 * MIB,
        locale: str = "en-US",
        entitlements: Iterable[dict[str, Any]] = (),
    ) -> FakeInteraction:
        """Send a chat-input INTERACTION_CREATE for a synced command.

        `subcommand` is "sub" or "group sub". `options` maps option names to values, converted by the
        synced option type; an attachment option's value is a dict from `add_attachment`.
        """
        command, scoped = self._find_command(name, 1, guild.id)
        wrappers, definitions = _subcommand_path(command, name, subcommand)
        resolved: dict[str, Any] = {}
        values = self._command_options(definitions, options or {}, resolved)
        for wrapper in reversed(wrappers):
            values = [{"type": wrapper["type"], "name": wrapper["name"], "options": values}]
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": values}
        if scoped:
            data["guild_id"] = str(guild.id)
        if resolved:
            data["resolved"] = resolved
        return await self._dispatch_interaction(
            _APPLICATION_COMMAND,
            data,
            channel,
            user,
            app_permissions=app_permissions,
            attachment_size_limit=attachment_size_limit,
            locale=locale,
            entitlements=entitlements,
        )

    async def dispatch_autocomplete(
        self,
        guild: FakeGuild,
        channel: FakeChannel,
        user: FakeMember,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        subcommand: str | None = None,
        **kwargs: Any,
    ) -> FakeInteraction:
        """Send an APPLICATION_COMMAND_AUTOCOMPLETE (type 4) INTERACTION_CREATE for a synced command.

        `options` are what the member has typed so far (required ones may still be missing); `focused`
        names the option being typed, whose value is sent as the raw text typed, as Discord does for
        every option type. The bot must answer with callback type 8 ``{"choices": [...]}``: see
        `FakeInteraction.choices` (after `wait_response`).
        """
        command, scoped = self._find_command(name, 1, guild.id)
        wrappers, definitions = _subcommand_path(command, name, subcommand)
        target = next((d for d in definitions if d["name"] == focused), None)
        if target is None or not target.get("autocomplete"):
            raise LookupError(f"option {focused!r} of /{name} {subcommand or ''} has no autocomplete")
        typed = {key: value for key, value in options.items() if key != focused}
        values = self._command_options(definitions, typed, {}, partial=True)
        values.append(
            {"name": focused, "type": target["type"], "value": str(options.get(focused, "")), "focused": True}
        )
        for wrapper in reversed(wrappers):
            values = [{"type": wrapper["type"], "name": wrapper["name"], "options": values}]
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": values}
        if scoped:
            data["guild_id"] = str(guild.id)
        return await self._dispatch_interaction(
            _AUTOCOMPLETE, data, channel, user, focused_type=target["type"], **kwargs
        )

    async def dispatch_message_command(
        self, name: str, target_message: FakeMessage, user: FakeMember, **kwargs: Any
    ) -> FakeInteraction:
        """Send a message context-menu INTERACTION_CREATE (`data.resolved.messages`) for a synced command."""
        channel = self.guild_of(target_message.channel_id).channels[target_message.channel_id]
        command, scoped = self._find_command(name, 3, channel.guild_id)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": str(target_message.id),
            "resolved": {"messages": {str(target_message.id): target_message.payload(self)}},
        }
        if scoped:
            data["guild_id"] = str(channel.guild_id)
        return await self._dispatch_interaction(_APPLICATION_COMMAND, data, channel, user, **kwargs)

    async def click_component(
        self,
        message: FakeMessage,
        custom_id: str,
        user: FakeMember,
        *,
        values: list[str] | None = None,
        **kwargs: Any,
    ) -> FakeInteraction:
        """Click a button (or pick `values` in a select) on `message`; it must be there and enabled."""
        component = next(
            (c for c in walk_components(message.components) if c.get("custom_id") == custom_id), None
        )
        if component is None:
            raise LookupError(f"message {message.id} has no component {custom_id!r}: {message.custom_ids()}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            data["values"] = values
        channel = self.guild_of(message.channel_id).channels[message.channel_id]
        return await self._dispatch_interaction(_COMPONENT, data, channel, user, message=message, **kwargs)

    async def submit_modal(
        self,
        custom_id: str,
        values: dict[str, str | list[str]],
        user: FakeMember,
        channel: FakeChannel,
        message: FakeMessage | None = None,
        **kwargs: Any,
    ) -> FakeInteraction:
        """Submit the modal the bot last opened with `custom_id`, mirroring its layout.

        `values` maps input custom_ids to text (or to a list of picked values for selects). Label
        (type 18) and action-row (type 1) layouts are both answered in kind, as discord.py parses both.
        """
        modal = next(
            (
                it.modal
                for it in reversed(self.interactions.values())
                if it.modal is not None and it.modal["custom_id"] == custom_id
            ),
            None,
        )
        if modal is None:
            raise LookupError(f"the bot never opened a modal with custom_id {custom_id!r}")
        unused = set(values)
        components = []
        for item in modal["components"]:
            if item["type"] == 1:
                leaves = [self._modal_value(leaf, values, unused) for leaf in item["components"]]
                components.append({"type": 1, "components": leaves})
            elif item["type"] == 18:
                components.append(
                    {"type": 18, "component": self._modal_value(item["component"], values, unused)}
                )
        if unused:
            raise LookupError(f"modal {custom_id!r} has no inputs {sorted(unused)}")
        data = {"custom_id": custom_id, "components": components}
        return await self._dispatch_interaction(_MODAL_SUBMIT, data, channel, user, message=message, **kwargs)

    @staticmethod
    def _modal_value(
        leaf: dict[str, Any], values: dict[str, str | list[str]], unused: set[str]
    ) -> dict[str, Any]:
        key = leaf["custom_id"]
        if key not in values and leaf.get("required", True):
            raise ValueError(f"modal input {key!r} is required")
        unused.discard(key)
        value = values.get(key, "" if leaf["type"] == 4 else [])
        return {"type": leaf["type"], "custom_id": key, ("value" if leaf["type"] == 4 else "values"): value}

    def _find_command(self, name: str, kind: int, guild_id: int) -> tuple[dict[str, Any], bool]:
        for scoped, commands_ in (
            (True, self.guild_commands.get(guild_id, [])),
            (False, self.global_commands),
        ):
            for command in commands_:
                if command["name"] == name and command.get("type", 1) == kind:
                    return command, scoped
        raise LookupError(f"command {name!r} (type {kind}) was never synced")

    def _command_options(
        self,
        definitions: list[dict[str, Any]],
        options: dict[str, Any],
        resolved: dict[str, Any],
        *,
        partial: bool = False,
    ) -> list[dict[str, Any]]:
        """Options in Discord's shape; `partial` (autocomplete) lets required ones be missing."""
        by_name = {definition["name"]: definition for definition in definitions}
        missing = [
            d["name"] for d in definitions if d.get("required") and d["name"] not in options and not partial
        ]
        if missing or set(options) - set(by_name):
            raise LookupError(f"options {sorted(options)} do not fit {sorted(by_name)} (missing {missing})")
        values = []
        for name, value in options.items():
            kind = by_name[name]["type"]
            if kind == 11:
                resolved.setdefault("attachments", {})[value["id"]] = value
                value = value["id"]
            else:
                converters: dict[int, Callable[[Any], Any]] = {3: str, 4: int, 5: bool, 10: float}
                if kind not in converters:
                    raise NotImplementedError(f"option type {kind} is not supported by the fake")
                value = converters[kind](value)
            values.append({"name": name, "type": kind, "value": value})
        return values

    async def _dispatch_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        channel: FakeChannel,
        user: FakeMember,
        *,
        message: FakeMessage | None = None,
        app_permissions: int | None = None,
        attachment_size_limit: int = 10 * MIB,
        locale: str = "en-US",
        entitlements: Iterable[dict[str, Any]] = (),
        focused_type: int | None = None,
    ) -> FakeInteraction:
        guild = self.guilds[channel.guild_id]
        permissions = guild.permissions_for(user.id)
        if app_permissions is None:
            app_permissions = guild.permissions_for(self.bot_user.id)
        interaction_id, token = self.snowflakes.next(), f"fake-interaction-{secrets.token_urlsafe(24)}"
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.locale, "features": []},
            "channel_id": str(channel.id),
            "channel": channel.payload() | {"permissions": str(permissions)},
            "member": user.payload(permissions=permissions),
            "token": token,
            "version": 1,
            "app_permissions": str(app_permissions),
            "locale": locale,
            "guild_locale": guild.locale,
            "entitlements": list(entitlements),
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": attachment_size_limit,
        }
        if message is not None:
            payload["message"] = message.payload(self)
        interaction = FakeInteraction(
            fake=self,
            id=interaction_id,
            token=token,
            type=kind,
            payload=payload,
            guild_id=guild.id,
            channel_id=channel.id,
            user_id=user.id,
            created_at=self.clock(),
            attachment_size_limit=attachment_size_limit,
            source_message_id=message.id if message is not None else None,
            focused_type=focused_type,
        )
        self.interactions[token] = interaction
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # ----------------------------------------------------------------- HTTP plumbing

    def _endpoint(self, handler: _Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Wrap a handler: record the call, check auth, apply scripted faults, turn errors into JSON."""

        async def endpoint(request: web.Request) -> web.Response:
            try:
                call = await self._read_call(request)
            except Exception:
                return self._crashed().response()
            try:
                reply = (
                    self._check_auth(call)
                    or self._global_rate_limit(call)
                    or self._take_fault(call)
                    or await handler(request, call)
                )
            except ApiError as error:
                reply = error.reply()
            except Exception:
                reply = self._crashed()
            call.status, call.response, call.response_headers = reply.status, reply.data, reply.headers
            self.calls.append(call)
            await self._notify()
            return reply.response()

        return endpoint

    def _crashed(self) -> _Reply:
        """Record the fake's own bug; answer 400, not 500, which discord.py retries with long sleeps."""
        self.server_errors.append(traceback.format_exc())
        return _Reply(400, {"message": "fake Discord crashed; see fake.server_errors", "code": 0})

    async def _unknown_route(self, request: web.Request, call: Call) -> _Reply:
        self.server_errors.append(f"the fake has no route for {call.method} {call.path}")
        return _Reply(404, {"message": "404: Not Found", "code": 0})

    async def _read_call(self, request: web.Request) -> Call:
        arrived = self.clock()
        parts: list[Part] = []
        body: Any = None
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                assert isinstance(part, BodyPartReader)
                data = bytes(await part.read(decode=False))
                parts.append(Part(part.name or "", part.filename, part.headers.get("Content-Type"), data))
        elif request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        path = request.path.removeprefix(API_PREFIX)
        return Call(request.method, path, dict(request.query), dict(request.headers), body, parts, arrived)

    def _check_auth(self, call: Call) -> _Reply | None:
        token_routes = ("/webhooks/", "/interactions/", "/cdn/")
        if call.path.startswith(token_routes) or call.headers.get("Authorization") == f"Bot {self.token}":
            return None
        return _Reply(401, {"message": "401: Unauthorized", "code": 0})

    def _bot_call(self, call: Call) -> bool:
        """True for a call that counts against the bot's global rate limit: the bot token, no interaction
        endpoint (topics/rate-limits.mdx, "Global Rate Limit")."""
        return call.headers.get("Authorization") == f"Bot {self.token}" and not call.interaction_endpoint

    def _global_rate_limit(self, call: Call) -> _Reply | None:
        """With `global_limit`, refuse a bot call when that many were served in the last second."""
        if self.global_limit is None or not self._bot_call(call):
            return None
        served = self._global_window
        while served and call.time - served[0] >= _GLOBAL_WINDOW:
            served.popleft()
        if len(served) >= self.global_limit:
            wait = max(0.001, round(served[0] + _GLOBAL_WINDOW - call.time, 3))  # Discord gives ms
            return _rate_limited(wait, is_global=True)
        served.append(call.time)
        return None

    def _take_fault(self, call: Call) -> _Reply | None:
        fault = self._faults.take(call.method, call.path)
        return _Reply(fault.status, fault.body, fault.headers) if fault else None

    # ----------------------------------------------------------------- REST: login, gateway, commands

    async def _get_me(self, request: web.Request, call: Call) -> _Reply:
        return _Reply(200, self.bot_user.payload() | {"verified": True, "mfa_enabled": False, "flags": 0})

    async def _get_application(self, request: web.Request, call: Call) -> _Reply:
        return _Reply(
            200,
            {
                "id": str(self.application_id),
                "name": self.bot_user.username,
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.owner.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "bot": self.bot_user.payload(),
            },
        )

    async def _get_gateway(self, request: web.Request, call: Call) -> _Reply:
        return _Reply(200, {"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request, call: Call) -> _Reply:
        """The gateway, the recommended `shards` and the `session_start_limit` (events/gateway.mdx)."""
        limit = dict(self.session_start_limit)
        return _Reply(200, {"url": self.gateway_url, "shards": self.shards, "session_start_limit": limit})

    def _command_list(self, request: web.Request) -> list[dict[str, Any]]:
        if int(request.match_info["app_id"]) != self.application_id:
            raise ApiError(403, 50001, "Missing Access")
        if "guild_id" not in request.match_info:
            return self.global_commands
        guild_id = int(request.match_info["guild_id"])
        if guild_id not in self.guilds:
            raise ApiError(403, 50001, "Missing Access")
        return self.guild_commands.setdefault(guild_id, [])

    async def _get_commands(self, request: web.Request, call: Call) -> _Reply:
        return _Reply(200, self._command_list(request))

    async def _put_commands(self, request: web.Request, call: Call) -> _Reply:
        """Bulk overwrite: keep ids of commands with the same name and type, as Discord does."""
        current = self._command_list(request)
        old_ids = {(command["name"], command.get("type", 1)): command["id"] for command in current}
        stored = []
        for command in call.json:
            key = (command["name"], command.get("type", 1))
            stored.append(
                {"description": "", "type": 1, "default_member_permissions": None, **command}
                | {
                    "id": old_ids.get(key) or str(self.snowflakes.next()),
                    "application_id": str(self.application_id),
                    "version": str(self.snowflakes.next()),
                }
                | ({"guild_id": request.match_info["guild_id"]} if "guild_id" in request.match_info else {})
            )
        current[:] = stored
        return _Reply(200, stored)

    # ----------------------------------------------------------------- REST: channels and guilds

    def _channel(self, request: web.Request) -> FakeChannel:
        channel_id = int(request.match_info["channel_id"])
        return self.guild_of(channel_id).channels[channel_id]

    def _channel_message(self, request: web.Request) -> FakeMessage:
        channel = self._channel(request)
        message = self.messages.get(int(request.match_info["message_id"]))
        if message is None or message.channel_id != channel.id or message.ephemeral:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    async def _get_channel(self, request: web.Request, call: Call) -> _Reply:
        return _Reply(200, self._channel(request).payload())

    async def _get_guild(self, request: web.Request, call: Call) -> _Reply:
        guild = self.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return _Reply(200, guild.payload(full=False))

    async def _get_channel_messages(self, request: web.Request, call: Call) -> _Reply:
        """History, newest first: `around`, `before` or `after` (used in that order if several are
        sent), `limit` 1-100 (default 50). Without View Channel 403 code 50001; without Read Message
        History no messages (resources/message.mdx, "Get Channel Messages")."""
        channel = self._channel(request)
        permissions = self._bot_permissions(channel.id)
        if not permissions & _VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        limit = int(call.query.get("limit", 50))
        if not 1 <= limit <= 100:
            raise ApiError(400, 50035, "Invalid Form Body: limit must be between 1 and 100.")
        if not permissions & _READ_MESSAGE_HISTORY:
            return _Reply(200, [])
        oldest_first = self.messages_in(channel, include_ephemeral=False)
        query = {key: int(call.query[key]) for key in ("around", "before", "after") if key in call.query}
        if "around" in query:  # the message itself (or the next), newer ones, then `limit // 2` older
            older = [message for message in oldest_first if message.id < query["around"]][::-1][: limit // 2]
            rest = [message for message in oldest_first if message.id >= query["around"]]
            page = rest[: limit - len(older)][::-1] + older
        elif "before" in query:
            page = [message for message in oldest_first if message.id < query["before"]][::-1]
        elif "after" in query:  # the `limit` oldest after it, still newest first
            page = [message for message in oldest_first if message.id > query["after"]][:limit][::-1]
        else:
            page = oldest_first[::-1]
        return _Reply(200, [message.payload(self) for message in page[:limit]])

    async def _post_channel_message(self, request: web.Request, call: Call) -> _Reply:
        """Create a message. With `nonce` + `enforce_nonce`, an earlier post by the same author with that
        nonce within `nonce_window` is returned instead (resources/message.mdx, "Create Message"), or
        404 Unknown Message if it was deleted since (discord-api-docs PR 6647)."""
        channel = self._channel(request)
        if channel.id in self.denied_channels:
            raise ApiError(403, 50013, "Missing Permissions")
        payload, files = self._body(call)
        self._check_sizes(files, self.guilds[channel.guild_id].filesize_limit)
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            earlier = self._nonces.get((self.bot_user.id, str(nonce)))
            if earlier and call.time - earlier[1] < self.nonce_window:
                if earlier[0] not in self.messages:
                    raise ApiError(404, 10008, "Unknown Message")
                return _Reply(200, self._created(self.messages[earlier[0]]))
        message = self._create_message(
            channel, payload, files, kind=REPLY if "message_reference" in payload else 0
        )
        if nonce is not None:
            self._remember_nonce(message, str(nonce), call.time)
        return _Reply(200, self._created(message))

    def _remember_nonce(self, message: FakeMessage, nonce: str, at: float) -> None:
        message.nonce = nonce
        self._nonces[(message.author.id, nonce)] = (message.id, at)

    def _created(self, message: FakeMessage) -> dict[str, Any]:
        """A message as Create Message returns it: the only answer that carries the `nonce`."""
        nonce = {"nonce": message.nonce} if message.nonce is not None else {}
        return message.payload(self) | nonce

    async def _get_channel_message(self, request: web.Request, call: Call) -> _Reply:
        """One message; needs View Channel and Read Message History (resources/message.mdx)."""
        message = self._channel_message(request)
        if ~self._bot_permissions(message.channel_id) & (_VIEW_CHANNEL | _READ_MESSAGE_HISTORY):
            raise ApiError(403, 50001, "Missing Access")
        return _Reply(200, message.payload(self))

    def _bot_permissions(self, channel_id: int) -> int:
        """The bot's permissions in a channel (guild-wide: the fake has no channel overwrites)."""
        return self.guild_of(channel_id).permissions_for(self.bot_user.id)

    async def _edit_channel_message(self, request: web.Request, call: Call) -> _Reply:
        message = self._channel_message(request)
        payload, files = self._body(call)
        self._check_sizes(files, self.guild_of(message.channel_id).filesize_limit)
        self._edit_message(message, payload, files)
        return _Reply(200, message.payload(self))

    async def _delete_channel_message(self, request: web.Request, call: Call) -> _Reply:
        self._forget_message(self._channel_message(request))
        return _Reply(204)

    # ----------------------------------------------------------------- REST: interactions and webhooks

    def _live_interaction(self, token: str) -> FakeInteraction | None:
        if token in self.expired_tokens:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return self.interactions.get(token)

    async def _interaction_callback(self, request: web.Request, call: Call) -> _Reply:
        """Answer types 4, 5, 6, 7, 8 (autocomplete only) and 9; `?with_response=1` returns the callback
        resource (200)."""
        interaction = self._live_interaction(request.match_info["token"])
        if interaction is None or str(interaction.id) != request.match_info["interaction_id"]:
            raise ApiError(404, 10062, "Unknown interaction")
        if interaction.callback_type is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if call.time - interaction.created_at > self.interaction_deadline:
            raise ApiError(404, 10062, "Unknown interaction")
        body, files = self._body(call)
        kind, data = body.get("type"), body.get("data") or {}
        channel = self.guild_of(interaction.channel_id).channels[interaction.channel_id]
        message: FakeMessage | None = None
        if interaction.type == _AUTOCOMPLETE and kind != _AUTOCOMPLETE_RESULT:
            raise ApiError(
                400, 50035, f"Invalid Form Body: callback type {kind} for an autocomplete interaction"
            )
        if kind in (_MESSAGE, _DEFERRED_MESSAGE):
            self._check_sizes(files, interaction.attachment_size_limit)
            if kind == _DEFERRED_MESSAGE:
                data, files = {"flags": LOADING | (data.get("flags", 0) & EPHEMERAL)}, []
            message = self._create_message(
                channel, data, files, kind=self._response_type(interaction), interaction=interaction
            )
            interaction.original_message_id = message.id
        elif kind in (_DEFERRED_UPDATE, _UPDATE_MESSAGE) and interaction.source_message_id is not None:
            if kind == _UPDATE_MESSAGE:
                message = self.messages[interaction.source_message_id]
                self._check_sizes(files, interaction.attachment_size_limit)
                self._edit_message(message, data, files)
            interaction.original_message_id = interaction.source_message_id
        elif kind == _AUTOCOMPLETE_RESULT and interaction.type == _AUTOCOMPLETE:
            interaction.choices = self._check_choices(data, interaction.focused_type)
        elif kind == _MODAL and interaction.type != _MODAL_SUBMIT:
            interaction.modal = data
        else:
            raise ApiError(
                400, 50035, f"Invalid Form Body: callback type {kind} for interaction type {interaction.type}"
            )
        interaction.callback, interaction.callback_type = call, kind
        if call.query.get("with_response") not in ("1", "true", "True"):
            return _Reply(204)
        info: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
        resource: dict[str, Any] = {"type": kind}
        if message is not None:
            info |= {
                "response_message_id": str(message.id),
                "response_message_loading": message.loading,
                "response_message_ephemeral": message.ephemeral,
            }
            resource["message"] = message.payload(self)
        return _Reply(200, {"interaction": info, "resource": resource})

    @staticmethod
    def _check_choices(data: dict[str, Any], option_type: int | None) -> list[dict[str, Any]]:
        """An autocomplete answer's choices, refused (400 50035) where Discord refuses them."""
        choices = data.get("choices")
        if not isinstance(choices, list) or len(choices) > _MAX_CHOICES:
            raise ApiError(400, 50035, f"Invalid Form Body: choices must be a list of at most {_MAX_CHOICES}")
        allowed = _CHOICE_TYPES.get(option_type or 3, (str,))
        for choice in choices:
            name, value = (
                (choice.get("name"), choice.get("value")) if isinstance(choice, dict) else (None, None)
            )
            if not isinstance(name, str) or not 1 <= len(name) <= _MAX_CHOICE_TEXT:
                raise ApiError(400, 50035, f"Invalid Form Body: choice name {name!r}")
            if isinstance(value, bool) or not isinstance(value, allowed):
                raise ApiError(
                    400, 50035, f"Invalid Form Body: choice value {value!r} for option type {option_type}"
                )
            if isinstance(value, str) and len(value) > _MAX_CHOICE_TEXT:
                raise ApiError(400, 50035, f"Invalid Form Body: choice value {value!r} is too long")
        return choices

    @staticmethod
    def _response_type(interaction: FakeInteraction) -> int:
        """Message type of a response: 20 chat input, 23 context menu, 0 otherwise."""
        if interaction.type != _APPLICATION_COMMAND:
            return 0
        return 23 if interaction.payload["data"].get("type", 1) in (2, 3) else 20

    def _webhook(self, request: web.Request) -> FakeInteraction:
        interaction = self._live_interaction(request.match_info["token"])
        if (
            interaction is None
            or int(request.match_info["app_id"]) != self.application_id
            or interaction.callback_type is None
        ):
            raise ApiError(404, 10015, "Unknown Webhook")
        return interaction

    def _webhook_message(self, request: web.Request) -> tuple[FakeInteraction, FakeMessage]:
        interaction = self._webhook(request)
        raw = request.match_info["message_id"]
        message_id = interaction.original_message_id if raw == "@original" else int(raw)
        if message_id not in (interaction.original_message_id, *interaction.followup_ids):
            raise ApiError(404, 10008, "Unknown Message")
        message = self.messages.get(message_id or 0)
        if message is None:
            raise ApiError(404, 10008, "Unknown Message")
        return interaction, message

    async def _post_followup(self, request: web.Request, call: Call) -> _Reply:
        """A followup; after a deferral the first one fills the "thinking…" message, as Discord does."""
        interaction = self._webhook(request)
        payload, files = self._body(call)
        self._check_sizes(files, interaction.attachment_size_limit)
        original = interaction.original
        if interaction.callback_type == _DEFERRED_MESSAGE and original is not None and original.loading:
            message = original
            self._edit_message(message, payload, files)
        else:
            channel = self.guild_of(interaction.channel_id).channels[interaction.channel_id]
            message = self._create_message(
                channel, payload, files, kind=self._response_type(interaction), interaction=interaction
            )
            interaction.followup_ids.append(message.id)
        if call.query.get("wait") not in ("1", "true", "True"):
            return _Reply(204)
        return _Reply(200, message.payload(self))

    async def _get_webhook_message(self, request: web.Request, call: Call) -> _Reply:
        return _Reply(200, self._webhook_message(request)[1].payload(self))

    async def _edit_webhook_message(self, request: web.Request, call: Call) -> _Reply:
        interaction, message = self._webhook_message(request)
        payload, files = self._body(call)
        self._check_sizes(files, interaction.attachment_size_limit)
        self._edit_message(message, payload, files)
        return _Reply(200, message.payload(self))

    async def _delete_webhook_message(self, request: web.Request, call: Call) -> _Reply:
        self._forget_message(self._webhook_message(request)[1])
        return _Reply(204)

    # ----------------------------------------------------------------- CDN

    async def _cdn(self, request: web.Request, call: Call) -> _Reply:
        attachment = self.attachments.get(int(request.match_info["attachment_id"]))
        if attachment is None or attachment.filename != request.match_info["filename"]:
            raise ApiError(404, 0, "404: Not Found")
        content_type = attachment.content_type or "application/octet-stream"
        return _Reply(200, raw=attachment.data, content_type=content_type)

    # ----------------------------------------------------------------- messages

    @staticmethod
    def _body(call: Call) -> tuple[dict[str, Any], list[Part]]:
        """The message payload and its file parts from a JSON or multipart request."""
        return call.payload or {}, call.files

    @staticmethod
    def _check_sizes(files: list[Part], limit: int) -> None:
        if any(len(part.data) > limit for part in files):
            raise ApiError(413, 40005, "Request entity too large")

    def _store_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        ephemeral: bool = False,
        description: str | None = None,
    ) -> FakeAttachment:
        attachment_id = self.snowflakes.next()
        url = f"{self.base_url}/cdn/attachments/{attachment_id}/{quote(filename)}"
        content_type = content_type or mimetypes.guess_type(filename)[0]
        attachment = FakeAttachment(
            attachment_id,
            filename,
            data,
            url,
            url,
            content_type,
            description=description,
            ephemeral=ephemeral,
        )
        self.attachments[attachment_id] = attachment
        return attachment

    def _new_attachments(self, payload: dict[str, Any], files: list[Part]) -> list[FakeAttachment]:
        """Attachments for the uploaded `files[n]` parts, named by the payload's `attachments` entries."""
        described = {str(item.get("id")): item for item in payload.get("attachments") or []}
        created = []
        for part in files:
            match = _FILE_FIELD.fullmatch(part.name)
            entry = described.get(match.group(1) if match else "", {})
            filename = entry.get("filename") or part.filename or "unknown"
            created.append(
                self._store_attachment(filename, part.data, None, description=entry.get("description"))
            )
        return created

    def _validate(self, payload: dict[str, Any], content: str, has_body: bool) -> None:
        if len(content) > 2000:
            raise ApiError(400, 50035, "Invalid Form Body: content must be 2000 or fewer in length.")
        if not has_body:
            raise ApiError(400, 50006, "Cannot send an empty message")
        reference = payload.get("message_reference")
        if reference and reference.get("fail_if_not_exists", True):
            if int(reference.get("message_id", 0)) not in self.messages:
                raise ApiError(400, 50035, "Invalid Form Body: Unknown message")

    def _create_message(
        self,
        channel: FakeChannel,
        payload: dict[str, Any],
        files: list[Part],
        *,
        kind: int,
        interaction: FakeInteraction | None = None,
        author: FakeUser | None = None,
    ) -> FakeMessage:
        content = payload.get("content") or ""
        loading = bool(payload.get("flags", 0) & LOADING)
        has_body = bool(
            content or payload.get("embeds") or payload.get("components") or files or payload.get("poll")
        )
        self._validate(payload, content, has_body or loading)
        message = FakeMessage(
            id=self.snowflakes.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author or self.bot_user,
            type=kind,
            content=content,
            embeds=payload.get("embeds") or [],
            components=payload.get("components") or [],
            flags=payload.get("flags") or 0,
            attachments=self._new_attachments(payload, files),
            message_reference=payload.get("message_reference"),
            allowed_mentions=payload.get("allowed_mentions"),
            interaction_token=interaction.token if interaction else None,
        )
        message.pinged = self._pings(message)
        message.snapshot(self.clock())
        self.messages[message.id] = message
        return message

    def _forget_message(self, message: FakeMessage) -> None:
        self.deleted_messages[message.id] = self.messages.pop(message.id)

    def _edit_message(self, message: FakeMessage, payload: dict[str, Any], files: list[Part]) -> None:
        """Apply an edit; `attachments` in the payload lists which existing files to keep."""
        content = (payload.get("content") or "") if "content" in payload else message.content
        embeds = (payload.get("embeds") or []) if "embeds" in payload else message.embeds
        components = (payload.get("components") or []) if "components" in payload else message.components
        attachments = message.attachments
        if "attachments" in payload:
            keep = {str(item.get("id")) for item in payload.get("attachments") or []}
            attachments = [attachment for attachment in attachments if str(attachment.id) in keep]
        self._validate(payload, content, bool(content or embeds or components or attachments or files))
        was_loading = message.loading
        message.content, message.embeds, message.components = content, embeds, components
        message.attachments = attachments + self._new_attachments(payload, files)
        if payload.get("flags") is not None:
            message.flags = (message.flags & ~EDITABLE_FLAGS) | (payload["flags"] & EDITABLE_FLAGS)
        if "allowed_mentions" in payload:
            message.allowed_mentions = payload["allowed_mentions"]
        message.flags &= ~LOADING
        if was_loading:  # filling a deferred response is its first real content: it notifies
            message.pinged = self._pings(message)
        else:
            message.edited_at = utcnow()
        message.snapshot(self.clock())

    def _pings(self, message: FakeMessage) -> Pinged:
        if message.ephemeral or message.loading:
            return Pinged()
        replied = self.messages.get(message.reply_to or 0)
        return compute_pings(
            message.content,
            message.allowed_mentions,
            guild=self.guilds.get(message.guild_id or 0),
            author_id=message.author.id,
            known_users=set(self.users),
            replied_user_id=replied.author.id if replied else None,
        )


def _subcommand_path(
    command: dict[str, Any], name: str, subcommand: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The (sub)command groups named by `subcommand` ("sub" or "group sub"), and the options of the last."""
    definitions = command.get("options", [])
    wrappers: list[dict[str, Any]] = []
    for part in (subcommand or "").split():
        found = next((d for d in definitions if d["name"] == part and d["type"] in (1, 2)), None)
        if found is None:
            raise LookupError(f"/{name} has no subcommand {part!r}")
        wrappers.append(found)
        definitions = found.get("options", [])
    return wrappers, definitions
