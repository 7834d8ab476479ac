"""Exceptions raised by every Videos API client, one class per thing the caller does about it."""

from __future__ import annotations

from .models import looks_like_moderation
from .parsing import ErrorDetails


class VideoAPIError(Exception):
    """Base class. ``message`` is the provider's text (key already redacted by the client).

    ``retry_after`` is the delay in seconds the provider asked for (``Retry-After`` /
    ``retry-after-ms``), when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.type = type
        self.param = param
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else type(self).__name__
        code = f" [{self.code}]" if self.code else ""
        return f"{where}{code}: {self.message}"


class InvalidRequestError(VideoAPIError):
    """400/422: the request was refused as invalid; ``message`` can be shown to the member."""


class ModerationError(InvalidRequestError):
    """The request (prompt or image) was refused by moderation at submission."""


class AuthenticationError(VideoAPIError):
    """401/403: the key is wrong or lacks access — an operator problem."""


class BillingError(AuthenticationError):
    """The account has no credit (402, or 429 ``insufficient_quota``) — an operator problem, not retryable."""


class NotFoundError(VideoAPIError):
    """404/410: the video is gone (deleted, expired, unknown) or the endpoint/model does not exist."""


class RateLimitedError(VideoAPIError):
    """429: too many requests; wait ``retry_after`` seconds when given."""


class ServerError(VideoAPIError):
    """5xx, 408 or 409: the provider failed; the same request may succeed later."""


class ProviderUnavailableError(VideoAPIError):
    """No usable answer: network error, timeout, or a non-JSON answer from a gateway."""


class UnsupportedOperation(VideoAPIError):
    """This dialect or provider cannot do the operation (e.g. listing or remixing at the AI/ML API).

    From ``list_recent`` it means "could not look", never "looked and found nothing": a lost
    submission cannot be confirmed or ruled out there (an admin can check the provider's dashboard).
    """


class TooLargeError(VideoAPIError):
    """A download went past the ``max_bytes`` it was allowed; nothing was kept. Not retried."""


class UnexpectedContentError(VideoAPIError):
    """The provider sent bytes of the wrong kind, e.g. the video where a thumbnail was asked for."""


def error_for_status(
    status: int, details: ErrorDetails, *, retry_after: float | None = None
) -> VideoAPIError:
    """Build the exception that matches an HTTP error answer.

    A 2xx ``status`` means an error envelope inside a success answer (some gateways do that);
    it is classified like a 400. A 4xx that says the thing does not exist (New-API answers an
    unknown task with 400 ``task_not_exist``) is a NotFoundError, so nobody polls a lost job for hours.
    """
    code, message = details.code, details.message
    cls: type[VideoAPIError]
    if code == "insufficient_quota" or status == 402:
        cls = BillingError
    elif status in (401, 403):
        cls = AuthenticationError
    elif status in (404, 410) or (_may_mean_missing(status) and _names_missing_thing(code, message)):
        cls = NotFoundError
    elif status == 429:
        cls = RateLimitedError
    elif status in (408, 409) or status >= 500:
        cls = ServerError
    elif looks_like_moderation(code, details.type, message):
        cls = ModerationError
    else:
        cls = InvalidRequestError
    return cls(
        message, status=status, code=code, type=details.type, param=details.param, retry_after=retry_after
    )


def _may_mean_missing(status: int) -> bool:
    """An error envelope in a 2xx answer, or a plain 400/422: either may be "no such thing" in disguise."""
    return status < 400 or status in (400, 422)


def _names_missing_thing(*texts: str | None) -> bool:
    return any(
        marker in text.lower() for text in texts if text for marker in ("not_exist", "not exist", "not found")
    )
