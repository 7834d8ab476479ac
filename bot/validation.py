"""Checks on what a member asks for, before anything is spent. Pure functions."""

from __future__ import annotations

import re
import unicodedata

from bot.reasons import PlainError

#: The API allows 32,000 characters; Discord's string option allows 6,000 — the stricter one wins.
MAX_PROMPT_CHARS = 4000
ALLOWED_SECONDS = (4, 8, 12)
LANDSCAPE, PORTRAIT = "1280x720", "720x1280"
WIDE, TALL = "1792x1024", "1024x1792"
SIZES_BY_FAMILY = {"sora-2-pro": (LANDSCAPE, PORTRAIT, WIDE, TALL), "sora-2": (LANDSCAPE, PORTRAIT)}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


class RequestRefused(PlainError):
    """Something the member can fix; `reason` tells them how."""


def normalise_prompt(text: str) -> str:
    """Strip control and bidi-override characters, normalise, trim; refuse empty or too long."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\t", " ")).strip()
    if not text:
        raise RequestRefused(
            "The prompt is empty. Describe the video you want, e.g. *a cat surfing at sunset*."
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise RequestRefused(
            f"The prompt is {len(text):,} characters long; "
            f"the limit is {MAX_PROMPT_CHARS:,}. Please shorten it."
        )
    return text


def allowed_sizes(model: str) -> tuple[str, ...]:
    """Sizes a model accepts; dated snapshots (`sora-2-pro-2025-10-06`) follow their family."""
    for family, sizes in SIZES_BY_FAMILY.items():
        if model == family or model.startswith(family + "-"):
            return sizes
    return (LANDSCAPE, PORTRAIT)


def check_combination(model: str, size: str, seconds: int, offered_models: list[str]) -> None:
    if model not in offered_models:
        raise RequestRefused(f"`{model}` is not offered here. Choose one of: {', '.join(offered_models)}.")
    sizes = allowed_sizes(model)
    if size not in sizes:
        raise RequestRefused(
            f"`{model}` cannot make {size} videos. Allowed sizes for it: {', '.join(sizes)}."
        )
    if seconds not in ALLOWED_SECONDS:
        raise RequestRefused("A video can be 4, 8 or 12 seconds long.")
