"""What each video model can do and costs: the single source every check, choice, price and card uses.

(Interface skeleton; the loader, built-in entries and merging are filled in by the catalogue work.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Audio(StrEnum):
    ALWAYS = "always"
    OPTIONAL = "optional"
    NONE = "none"


class Remix(StrEnum):
    NATIVE = "native"  # the provider's own remix endpoint
    FRAME = "frame"  # a new job from the source clip's first frame
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model as a provider family serves it. Sizes are always ``WxH``; the first of each is the default.

    ``wire`` holds the provider client's hints for this model (how it wants sizes, durations, the
    image, which endpoint); each client documents the keys it reads. Nothing else names a model.
    """

    id: str
    label: str
    seconds: tuple[int, ...]
    sizes: tuple[str, ...]
    image: bool = False
    audio: Audio = Audio.ALWAYS
    remix: Remix = Remix.NONE
    #: micro-dollars per second by size; key "default" for sizes not listed.
    micros_per_second: Mapping[str, int] = field(default_factory=dict)
    retired: bool = False
    max_prompt_chars: int = 4000
    wire: Mapping[str, Any] = field(default_factory=dict)
