"""When to retry a failed call and how long to wait first. Pure: the caller does the sleeping."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .errors import ProviderUnavailableError, RateLimitedError, ServerError


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff ``base × 2^attempt`` capped at ``cap``, with jitter.

    ``full`` jitter waits anywhere in ``[0, backoff]``; ``equal`` jitter in ``[backoff/2, backoff]``
    (never hammers the provider right away, which suits polling). A delay the provider asked
    for (Retry-After) is honoured as given, up to ``max_server_delay``. ``attempts`` is how many
    times in all the client tries a call that it retries inline.
    """

    base: float = 0.5
    cap: float = 8.0
    jitter: Literal["full", "equal"] = "equal"
    max_server_delay: float = 120.0
    attempts: int = 4
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        server_delay = getattr(error, "retry_after", None)
        if server_delay is not None:
            return min(max(0.0, server_delay), self.max_server_delay)
        backoff = min(self.cap, self.base * 2 ** min(max(0, attempt), 32))
        if self.jitter == "full":
            return backoff * self.random()
        return backoff / 2 + backoff / 2 * self.random()

    def is_retryable(self, error: BaseException) -> bool:
        """True for failures that may pass on their own: 429, 5xx/408/409, network errors.

        Billing errors (402, 429 ``insufficient_quota``) are a different class and never retried.
        """
        return isinstance(error, RateLimitedError | ServerError | ProviderUnavailableError)
