"""The one base for failures that carry a sentence written for the people who will read it."""

from __future__ import annotations


class PlainError(Exception):
    """`reason` is a plain sentence for a member or admin (no internals, no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
