"""HTTP machinery shared by every dialect: auth, URLs, error mapping, inline retries, downloads."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from yarl import URL

from bot.catalogue import ModelSpec
from bot.ratelimit import RequestBudget

from .errors import (
    NotFoundError,
    ProviderUnavailableError,
    RateLimitedError,
    TooLargeError,
    UnexpectedContentError,
    UnsupportedOperation,
    VideoAPIError,
    error_for_status,
)
from .models import ReferenceImage, Video, VideoPage
from .parsing import (
    SNIFF_BYTES,
    ErrorDetails,
    error_details,
    is_error_envelope,
    parse_error_body,
    parse_poll_after,
    parse_retry_after,
    parse_video,
    sniff_media,
)
from .retry import RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")
AuthScheme = Literal["bearer", "bare"]
Sleep = Callable[[float], Awaitable[object]]

# JSON calls are small: a total limit keeps a stuck gateway from hanging a job forever.
JSON_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10, sock_connect=10, sock_read=60)
# Downloads can be long: no total limit, but the connection must keep delivering.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=60)

_MAX_JSON_BYTES = 8 << 20
_MAX_ERROR_BYTES = 64 << 10
_READ_CHUNK = 64 << 10
_WRITE_BATCH = 1 << 20  # bytes collected before one write in a worker thread
_IMAGES = frozenset({"jpeg", "png", "webp"})  # what a thumbnail or spritesheet may be


class BaseVideoClient(ABC):
    """Common base of the dialects. Operations a dialect lacks raise UnsupportedOperation.

    ``sleep`` is what inline retries wait with (tests inject a recorder); ``retry`` decides
    which failures are retried and how long to wait. ``budget`` (None: no limit) is taken right
    before each HTTP request, so one call that makes several requests (a download that falls back
    to the result URL, inline retries) counts each; a 429 slows the whole budget down.
    """

    dialect: ClassVar[str]
    #: True when ``cancel`` can stop a job at the provider.
    can_cancel: bool = False
    #: True when ``list_recent`` can look up a lost submission; a client may turn it off for itself
    #: once the provider shows it has no list.
    can_list: bool = False

    def __init__(
        self,
        base_url: str,
        api_key: str,
        session: aiohttp.ClientSession,
        *,
        auth: AuthScheme = "bearer",
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        timeout: aiohttp.ClientTimeout = JSON_TIMEOUT,
        download_timeout: aiohttp.ClientTimeout = DOWNLOAD_TIMEOUT,
        budget: RequestBudget | None = None,
    ) -> None:
        base = URL(base_url.rstrip("/"))
        if not base.absolute or base.scheme not in ("http", "https"):
            raise ValueError("base_url must be an absolute http(s) URL")
        self._base = self._api_root(base)
        self._base_text = str(self._base).rstrip("/")  # both read for every request
        self._origin = self._base.origin()
        self._api_key = api_key
        self._session = session
        self._auth_value = f"Bearer {api_key}" if auth == "bearer" else api_key
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._timeout = timeout
        self._download_timeout = download_timeout
        self.budget = budget if budget is not None else RequestBudget(0)

    def __repr__(self) -> str:  # never shows the key
        return f"<{type(self).__name__} {self._base}>"

    @staticmethod
    def _api_root(base_url: URL) -> URL:
        """The URL the dialect's paths hang off, given the configured base URL."""
        return base_url

    # -- the VideoClient interface; dialects override what they support ------------------------

    @abstractmethod
    async def create(
        self,
        *,
        prompt: str,
        model: ModelSpec,
        size: str,
        seconds: int,
        image: ReferenceImage | None = None,
        audio: bool | None = None,
    ) -> Video: ...

    @abstractmethod
    async def retrieve(self, video_id: str, locator: str | None = None) -> Video: ...

    async def list_recent(self, *, limit: int = 100, after: str | None = None) -> VideoPage:
        raise UnsupportedOperation(f"the {self.dialect} dialect cannot list videos")

    async def remix(
        self, video_id: str, *, prompt: str, model: ModelSpec, locator: str | None = None
    ) -> Video:
        raise UnsupportedOperation(f"the {self.dialect} dialect cannot remix videos")

    async def cancel(self, video_id: str, locator: str | None = None) -> bool:
        raise UnsupportedOperation(f"the {self.dialect} dialect cannot cancel videos")

    async def list_models(self) -> list[ModelSpec] | None:
        """The models the provider says it serves; None here: this dialect publishes no list."""
        return None

    async def delete(self, video_id: str) -> None:
        raise UnsupportedOperation(f"the {self.dialect} dialect cannot delete videos")

    async def download(
        self, video: Video, dest: Path, *, variant: str = "video", max_bytes: int | None = None
    ) -> int:
        """Stream one asset of a finished video to ``dest``; returns the number of bytes written.

        Uses the dialect's content route when it has one; for the video itself it falls back to
        the result URL the provider gave (``video.result_url``, or a fresh ``retrieve``) when
        that route is missing or answers 404. More than ``max_bytes`` raises TooLargeError; an
        image variant that is not an image (gateways ignore ``variant`` and send the video)
        raises UnexpectedContentError. Neither leaves a file behind.
        """
        content_url = self._content_url(video.id, variant)
        missing: NotFoundError | None = None
        if content_url is not None:
            try:
                return await self._fetch(
                    content_url, dest, video.id, max_bytes=max_bytes, image=variant != "video"
                )
            except NotFoundError as exc:
                if variant != "video":
                    raise
                missing = exc
        elif variant != "video":
            raise UnsupportedOperation(f"the {self.dialect} dialect only offers the video itself")
        result_url = video.result_url or (await self.retrieve(video.id, video.locator)).result_url
        if result_url is None:
            raise missing or NotFoundError(f"video {video.id} has no downloadable result (yet)")
        if missing is not None:
            log.info("video %s is not at the content route; using its result URL", video.id)
        return await self._fetch(URL(result_url, encoded=True), dest, video.id, max_bytes=max_bytes)

    def _content_url(self, video_id: str, variant: str) -> URL | None:
        """Where the dialect serves a video's bytes, or None if only result URLs exist."""
        return None

    # -- shared helpers --------------------------------------------------------------------------

    def _url(self, *segments: str, query: Mapping[str, str] | None = None) -> URL:
        """The base URL plus path segments, each fully percent-encoded (ids may hold ``/`` or ``:``)."""
        path = "/".join(quote(segment, safe="") for segment in segments)
        text = f"{self._base_text}/{path}"
        if query:
            text += "?" + urlencode(query, quote_via=quote)
        return URL(text, encoded=True)

    def _headers(self, url: URL, **extra: str) -> dict[str, str]:
        """Request headers; the key goes only to the base URL's own origin, never to a CDN."""
        headers = {"User-Agent": "soracord", **extra}
        if url.origin() == self._origin:
            headers["Authorization"] = self._auth_value
        return headers

    async def _budgeted(self, url: URL) -> None:
        """Wait for the provider budget before a request to the provider's own origin: its limits are
        its API's; a download from a CDN (another origin) does not count."""
        if url.origin() == self._origin:
            await self.budget.acquire()

    def _redact(self, text: str) -> str:
        # A very short "key" (tests, misconfiguration) would mangle every message it occurs in.
        return text.replace(self._api_key, "[redacted]") if len(self._api_key) >= 8 else text

    @staticmethod
    def _parse_video(payload: Any, headers: Mapping[str, str]) -> Video:
        try:
            return parse_video(payload, poll_after=parse_poll_after(headers))
        except ValueError as exc:
            raise ProviderUnavailableError(f"unexpected answer instead of a video: {exc}") from None

    @staticmethod
    def _fill_known(video: Video, **known: Any) -> Video:
        """Fill fields the provider left out with what we sent (gateways echo little)."""
        missing = {name: value for name, value in known.items() if getattr(video, name) is None}
        return replace(video, **missing) if missing else video

    async def _retrying(
        self,
        op: Callable[[], Awaitable[T]],
        *,
        what: str,
        retry_if: Callable[[VideoAPIError], bool] | None = None,
    ) -> T:
        """Run ``op``, retrying failures the policy deems transient (or those ``retry_if`` picks)."""
        should_retry = retry_if or self._retry.is_retryable
        attempt = 0
        while True:
            try:
                return await op()
            except VideoAPIError as exc:
                if attempt + 1 >= self._retry.attempts or not should_retry(exc):
                    raise
                delay = self._retry.delay(attempt, exc)
                log.warning("%s failed (%s); retry %d in %.1f s", what, exc, attempt + 1, delay)
                await self._sleep(delay)
                attempt += 1

    async def _submit(self, url: URL, *, what: str, **body: Any) -> Video:
        """POST a request that starts paid work and parse the Video it answers.

        Retried only on 429, which certainly was not accepted; after a 5xx or a timeout the job
        may exist, and a second POST could bill twice (the runner looks it up with ``list_recent``).
        """
        payload, headers = await self._retrying(
            lambda: self._call("POST", url, **body),
            what=what,
            retry_if=lambda error: isinstance(error, RateLimitedError),
        )
        return self._parse_video(payload, headers)

    async def _fetch(
        self,
        url: URL,
        dest: Path,
        video_id: str,
        *,
        max_bytes: int | None = None,
        image: bool = False,
    ) -> int:
        return await self._retrying(
            lambda: self._download_to(url, dest, max_bytes=max_bytes, image=image),
            what=f"download {video_id}",
        )

    async def _call(
        self,
        method: str,
        url: URL,
        *,
        json_body: Any = None,
        form: tuple[bytes, str] | None = None,
    ) -> tuple[Any, Mapping[str, str]]:
        """Send one request and return the decoded JSON answer and the response headers; `form` is an
        encoded body and its Content-Type (`bot.videos.multipart`)."""
        data = None
        headers = self._headers(url, Accept="application/json")
        if form is not None:
            data, headers["Content-Type"] = form
        await self._budgeted(url)
        try:
            async with self._session.request(
                method, url, headers=headers, json=json_body, data=data, timeout=self._timeout
            ) as resp:
                log.debug("%s %s -> %d", method, url.path, resp.status)
                if resp.status >= 400:
                    raise self._slowed_down_by(await self._error_from(resp))
                body = await _read_limited(resp, _MAX_JSON_BYTES)
                answer_headers = resp.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailableError(
                f"{method} {url.path} failed: {type(exc).__name__} {self._redact(str(exc))}".rstrip()
            ) from exc
        if not body.strip() and method == "DELETE":
            return {}, answer_headers
        try:
            payload = orjson.loads(body)
        except ValueError:
            raise ProviderUnavailableError(
                f"{method} {url.path} answered HTTP {resp.status} with something that is not JSON"
                f" ({resp.content_type})"
            ) from None
        if is_error_envelope(payload):
            raise self._error(resp.status, error_details(payload))
        return payload, answer_headers

    async def _error_from(self, resp: aiohttp.ClientResponse) -> VideoAPIError:
        try:
            body = await _read_text(resp)
        except (aiohttp.ClientError, TimeoutError):
            body = ""
        details = parse_error_body(body, reason=f"HTTP {resp.status} {resp.reason or ''}".strip())
        return self._error(resp.status, details, retry_after=parse_retry_after(resp.headers))

    def _slowed_down_by(self, error: VideoAPIError) -> VideoAPIError:
        """A 429 slows every request of the budget down (for its Retry-After, else a second)."""
        if isinstance(error, RateLimitedError):
            self.budget.slow_down(error.retry_after or 1.0)
        return error

    def _error(
        self, status: int, details: ErrorDetails, *, retry_after: float | None = None
    ) -> VideoAPIError:
        details = replace(details, message=self._redact(details.message))
        return error_for_status(status, details, retry_after=retry_after)

    async def _download_to(
        self,
        url: URL,
        dest: Path,
        *,
        max_bytes: int | None = None,
        image: bool = False,
    ) -> int:
        """Stream ``url`` into ``dest`` through a temporary file in the same folder.

        The temporary file is renamed only when complete (and as long as announced), so ``dest``
        never holds a partial video; on any failure or cancellation it is removed. Streaming stops
        as soon as more than ``max_bytes`` arrived (or were announced); with ``image``, the bytes
        must be a JPEG, PNG or WebP picture (see :func:`sniff_media`).
        """
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        sink = _FileSink(temp)
        done = False
        try:
            await self._budgeted(url)
            async with self._session.get(
                url, headers=self._headers(url), timeout=self._download_timeout
            ) as resp:
                log.debug("GET %s -> %d", url.path, resp.status)
                if resp.status >= 400:
                    raise self._slowed_down_by(await self._error_from(resp))
                if resp.content_type == "application/json":
                    # A gateway's JSON answer where bytes were due: there is no content here.
                    body = await _read_text(resp)
                    raise self._error(404, parse_error_body(body, reason="no content at this URL"))
                # With a Content-Encoding the announced length is that of the encoded body.
                expected = None if resp.headers.get("Content-Encoding") else resp.content_length
                if max_bytes is not None and expected is not None and expected > max_bytes:
                    raise _too_large(max_bytes, announced=expected)
                written, head, rest = await _stream_to_file(resp, sink, max_bytes)
            if expected is not None and written != expected:
                raise ProviderUnavailableError(f"download ended after {written} of {expected} bytes")
            if image and sniff_media(head) not in _IMAGES:
                raise _not_an_image(sniff_media(head))
            await asyncio.to_thread(sink.finish, rest, dest)
            done = True
            return written
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailableError(
                f"download of {url.path} failed: {type(exc).__name__} {self._redact(str(exc))}".rstrip()
            ) from exc
        finally:
            sink.close()  # synchronous so it also happens when the task is being cancelled
            if not done:
                temp.unlink(missing_ok=True)


async def _read_limited(resp: aiohttp.ClientResponse, limit: int, *, truncate: bool = False) -> bytes:
    """The body, refusing (or with ``truncate``, cutting) anything longer than ``limit``."""
    if resp.content_length is not None and resp.content_length <= limit:
        return await resp.read()  # the usual answer: its length said up front, and small enough
    body = bytearray()
    async for chunk in resp.content.iter_chunked(_READ_CHUNK):
        body += chunk
        if len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise ProviderUnavailableError(f"answer larger than {limit} bytes")
    return bytes(body)


async def _read_text(resp: aiohttp.ClientResponse) -> str:
    """The start of an error answer's body as text."""
    return (await _read_limited(resp, _MAX_ERROR_BYTES, truncate=True)).decode("utf-8", "replace")


class _FileSink:
    """A file written in batches on worker threads: opened with the first batch, and for a small
    file opened, written, closed and moved into place in one trip to a thread (`finish`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def write(self, data: bytes | bytearray) -> None:
        """In a worker thread."""
        if self._file is None:
            self._file = self.path.open("wb")
        self._file.write(data)

    def finish(self, data: bytes | bytearray, dest: Path) -> None:
        """In a worker thread: the last batch, then the complete file renamed to ``dest``."""
        self.write(data)
        self.close()
        os.replace(self.path, dest)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def _stream_to_file(
    resp: aiohttp.ClientResponse, sink: _FileSink, max_bytes: int | None
) -> tuple[int, bytes, bytearray]:
    """Copy the body into ``sink`` without holding it in memory or blocking the loop on disk I/O.

    Returns the number of bytes, the first :data:`SNIFF_BYTES` of them and the last batch, not
    written yet (under :data:`_WRITE_BATCH`: the caller finishes the file with it); raises
    TooLargeError as soon as more than ``max_bytes`` arrived.
    """
    written = 0
    head = b""
    batch = bytearray()
    async for chunk in resp.content.iter_chunked(_READ_CHUNK):
        written += len(chunk)
        if max_bytes is not None and written > max_bytes:
            raise _too_large(max_bytes)
        if len(head) < SNIFF_BYTES:
            head = (head + chunk)[:SNIFF_BYTES]
        batch += chunk
        if len(batch) >= _WRITE_BATCH:
            await asyncio.to_thread(sink.write, batch)
            batch = bytearray()
    return written, head, batch


def _too_large(limit: int, *, announced: int | None = None) -> TooLargeError:
    size = f" ({announced:,} bytes announced)" if announced is not None else ""
    return TooLargeError(f"download stopped: the file is larger than the {limit:,}-byte limit{size}")


def _not_an_image(kind: str | None) -> UnexpectedContentError:
    what = "the video" if kind in ("mp4", "webm") else "something that is not an image"
    return UnexpectedContentError(f"the provider sent {what} where a picture was asked for")
