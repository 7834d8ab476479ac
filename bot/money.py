"""Money is integer micro-dollars everywhere; this module shows it as dollars and cents."""

from __future__ import annotations

from typing import Literal

MICROS_PER_DOLLAR = 1_000_000
MICROS_PER_CENT = 10_000

Rounding = Literal["nearest", "down", "up"]


def format_usd(micros: int, *, rounding: Rounding = "nearest") -> str:
    """`1_200_000` -> `"$1.20"`, with thousands separators.

    Amounts finer than a cent are rounded on their magnitude: "nearest" (half away from zero), "down"
    (towards zero: use it for what is left, so the bot never promises money it does not have) or "up"
    (away from zero: use it for a cost, so it never looks cheaper than it is).
    """
    sign = "-" if micros < 0 else ""
    cents, rest = divmod(abs(micros), MICROS_PER_CENT)
    if rest and (rounding == "up" or (rounding == "nearest" and rest * 2 >= MICROS_PER_CENT)):
        cents += 1
    dollars, cents = divmod(cents, 100)
    return f"{sign}${dollars:,}.{cents:02d}"
