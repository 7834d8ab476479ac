"""Scripted failures shared by both fakes: "answer the next N matching requests with this instead"."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class ScriptedFault:
    method: str  # an HTTP method, or "*"
    pattern: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    count: int


class FaultScript:
    """Faults in the order they were added; the first match with answers left is used up by one."""

    def __init__(self, *, whole_path: bool) -> None:
        self._whole_path = whole_path
        self._faults: list[ScriptedFault] = []

    def add(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        count: int = 1,
    ) -> None:
        self._faults.append(
            ScriptedFault(method.upper(), re.compile(path_regex), status, body, dict(headers or {}), count)
        )

    def take(self, method: str, path: str) -> ScriptedFault | None:
        for fault in self._faults:
            match = fault.pattern.fullmatch(path) if self._whole_path else fault.pattern.search(path)
            if fault.count > 0 and fault.method in ("*", method) and match:
                fault.count -= 1
                return fault
        return None
