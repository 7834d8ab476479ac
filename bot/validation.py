"""Checks on what a member types, before anything is spent. Pure functions."""

from __future__ import annotations

import unicodedata

from bot.reasons import PlainError

#: Discord's text inputs (the remix and extend forms) take at most 4,000 characters; a model may allow fewer.
MAX_PROMPT_CHARS = 4000

#: Characters that render as nothing but are not format characters: Hangul fillers, the combining
#: grapheme joiner, the Mongolian vowel separator, the braille blank.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u034f\u180e\u2800")
_ZERO_WIDTH_JOINER = "\u200d"
_SOFT_HYPHEN = "\u00ad"
#: What counts as something to see: letters, digits, punctuation and symbols (emoji are symbols).
_VISIBLE_CATEGORIES = ("L", "N", "P", "S")


class RequestRefused(PlainError):
    """Something the member can fix; `reason` tells them how."""


def normalise_prompt(text: str, limit: int = MAX_PROMPT_CHARS) -> str:
    """Strip control, format and other invisible characters, normalise, trim; refuse empty or too long.

    Kept: line breaks, a soft hyphen inside a word, a zero-width joiner inside an emoji sequence,
    combining accents. Refused: a prompt with nothing visible left.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\t", " "))
    kept = [char for index, char in enumerate(text) if _keeps(text, index, char)]
    text = "".join(kept).strip()
    if not any(unicodedata.category(char).startswith(_VISIBLE_CATEGORIES) for char in text):
        raise RequestRefused(
            "The prompt is empty. Describe the video you want, e.g. *a cat surfing at sunset*."
        )
    if len(text) > limit:
        raise RequestRefused(
            f"The prompt is {len(text):,} characters long; the limit for this model is {limit:,}. "
            "Please shorten it."
        )
    return text


def _keeps(text: str, index: int, char: str) -> bool:
    if char == "\n":
        return True
    if char in _INVISIBLE:
        return False
    category = unicodedata.category(char)
    if category == "Cc":
        return False
    if category == "Cf":  # format characters: bidi overrides, zero-width spaces, tags, word joiners…
        before = text[index - 1] if index > 0 else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        if char == _SOFT_HYPHEN:
            return before.isalpha() and after.isalpha()
        if char == _ZERO_WIDTH_JOINER:
            return _is_symbol(before) and _is_symbol(after)
        return False
    return True


def _is_symbol(char: str) -> bool:
    return bool(char) and (unicodedata.category(char) == "So" or char == "\ufe0f")
