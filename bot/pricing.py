"""Prices of generated video and cost estimates, in integer micro-dollars.

Providers bill per requested second, at a price that depends on the model and, for some models, the
size. The built-in table holds the widely quoted OpenAI prices; resellers charge differently, so the
operator can override it with `PRICES_FILE`, a TOML file (or JSON with the same structure, chosen by
the `.json` extension):

    # US dollars per generated second.
    sora-2 = 0.08                 # one price for every size

    [sora-2-pro]
    default = 0.30                # any size not listed below (optional)
    "1792x1024" = 0.50
    "1024x1792" = 0.50

    ["openai/sora-2-t2v"]         # names with a slash or dot need quotes
    default = 0.10

A model named in the file replaces that model's built-in prices entirely; models not named keep theirs.
Prices are numbers (or strings such as "0.125") from 0 up to 1000 with at most six decimals. Model
names and sizes are compared ignoring case. A dated snapshot such as `sora-2-2025-10-06` costs what
`sora-2` costs unless the snapshot has its own entry. A model or size with no price is refused
(`NoPriceError`) rather than run for free. The file is checked when the bot starts; every problem is
reported at once, naming the file and the entry (`PriceFileError`).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bot.money import MICROS_PER_DOLLAR

SIZE_KEY = re.compile(r"^\d{2,5}x\d{2,5}$")
SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")
MAX_PRICE_USD = Decimal(1000)


class PriceFileError(ValueError):
    """A settings file cannot be used; `problems` holds one plain sentence per bad entry.

    `setting` names the file's setting in every line: `PRICES_FILE` here, `MODELS_FILE` for the catalogue.
    """

    def __init__(self, path: Path, problems: list[str], *, setting: str = "PRICES_FILE") -> None:
        self.path = path
        self.problems = problems
        self.setting = setting
        super().__init__("\n".join(f"{setting} {path}: {problem}" for problem in problems))


class NoPriceError(LookupError):
    """No price is known for this model and size, so the video must not be made."""

    def __init__(self, model: str, size: str) -> None:
        self.model = model
        self.size = size
        super().__init__(
            f"This bot has no price for {model} at {size}, so it will not make that video; "
            "the bot's operator can add one in PRICES_FILE."
        )


@dataclass(frozen=True)
class ModelPrice:
    """Micro-dollars per second for one model: per size, and `default` for sizes not listed."""

    default: int | None = None
    sizes: Mapping[str, int] = field(default_factory=dict)

    def per_second(self, size: str) -> int | None:
        return self.sizes.get(size.lower(), self.default)


class PriceTable:
    """Model name → `ModelPrice`, looked up ignoring case and snapshot dates."""

    def __init__(self, models: Mapping[str, ModelPrice]) -> None:
        self._models = {name.lower(): price for name, price in models.items()}

    def merged(self, overrides: Mapping[str, ModelPrice]) -> PriceTable:
        """A new table where every model in `overrides` replaces this table's entry for it."""
        return PriceTable({**self._models, **{name.lower(): price for name, price in overrides.items()}})

    def _entry(self, model: str) -> ModelPrice | None:
        key = model.lower()
        if key in self._models:
            return self._models[key]
        snapshot = SNAPSHOT.match(key)
        return self._models.get(snapshot.group("base")) if snapshot else None

    def has_model(self, model: str) -> bool:
        """Whether the model has any price at all (a start-up check for `VIDEO_MODELS`)."""
        return self._entry(model) is not None

    def per_second(self, model: str, size: str) -> int:
        """Micro-dollars per generated second; raises `NoPriceError`."""
        entry = self._entry(model)
        price = entry.per_second(size) if entry else None
        if price is None:
            raise NoPriceError(model, size)
        return price

    def estimate(self, model: str, size: str, seconds: int) -> int:
        """The cost of one video in micro-dollars: price per second × seconds."""
        if seconds <= 0:
            raise ValueError(f"seconds must be positive, not {seconds}")
        return self.per_second(model, size) * seconds


BUILTIN_PRICES = PriceTable(
    {
        "sora-2": ModelPrice(default=100_000),
        "sora-2-pro": ModelPrice(
            sizes={"1280x720": 300_000, "720x1280": 300_000, "1792x1024": 500_000, "1024x1792": 500_000}
        ),
    }
)


def load_prices(path: Path | None) -> PriceTable:
    """The built-in table, overridden by `path` if given; raises `PriceFileError`."""
    if path is None:
        return BUILTIN_PRICES
    return BUILTIN_PRICES.merged(read_price_file(path))


def read_price_file(path: Path) -> dict[str, ModelPrice]:
    """Parse and validate a price file (format in the module docstring)."""
    data = read_table_file(path)
    if not isinstance(data, dict):
        raise PriceFileError(path, ["must be a table of models, like `sora-2 = 0.10` (see the format)."])
    problems: list[str] = []
    models: dict[str, ModelPrice] = {}
    for name, value in data.items():
        key = name.strip().lower()
        if not key:
            problems.append("a model has an empty name.")
        elif key in models:
            problems.append(f"model {name!r} is listed twice (names are compared ignoring case).")
        elif (entry := parse_model_price(value, f"model {name!r}", problems)) is not None:
            models[key] = entry
    if problems:
        raise PriceFileError(path, problems)
    return models


def read_table_file(path: Path, *, setting: str = "PRICES_FILE") -> Any:
    """A .toml or .json settings file's contents, numbers as Decimal; raises `PriceFileError`."""
    suffix = path.suffix.lower()
    if suffix not in {".toml", ".json"}:
        raise PriceFileError(path, ["must be a .toml or .json file."], setting=setting)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceFileError(path, [f"cannot be read ({exc.strerror or exc})."], setting=setting) from None
    except UnicodeDecodeError:
        raise PriceFileError(path, ["is not UTF-8 text."], setting=setting) from None
    try:
        if suffix == ".json":
            # Decimal, never float: 0.1 must stay exactly 0.1.
            return json.loads(text, parse_float=Decimal, parse_constant=Decimal)
        return tomllib.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        raise PriceFileError(path, [problem], setting=setting) from None
    except tomllib.TOMLDecodeError as exc:
        raise PriceFileError(path, [f"is not valid TOML: {exc}."], setting=setting) from None


def parse_model_price(value: object, where: str, problems: list[str]) -> ModelPrice | None:
    """One model's prices: a number, or a table of `default` and sizes; None after recording problems."""
    if not isinstance(value, dict):
        price = price_micros(value, where, problems)
        return None if price is None else ModelPrice(default=price)
    if not value:
        problems.append(f'{where} has no prices; give `default` and/or sizes like "1280x720".')
        return None
    default: int | None = None
    sizes: dict[str, int] = {}
    failed = False
    for key, raw in value.items():
        size = key.strip().lower()
        if size != "default" and not SIZE_KEY.match(size):
            problems.append(f'{where}: unknown key {key!r}; use `default` or a size like "1280x720".')
            failed = True
        elif size in sizes or (size == "default" and default is not None):
            problems.append(f"{where}: {key!r} is listed twice.")
            failed = True
        elif (price := price_micros(raw, f"{where}, {key!r}", problems)) is None:
            failed = True
        elif size == "default":
            default = price
        else:
            sizes[size] = price
    return None if failed else ModelPrice(default=default, sizes=sizes)


def price_micros(value: object, where: str, problems: list[str]) -> int | None:
    """A price in dollars per second, as exact micro-dollars, or None after recording the problem."""
    amount: Decimal | None = None
    if isinstance(value, Decimal | int | str) and not isinstance(value, bool):
        try:
            amount = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite():
        problems.append(
            f"{where}: the price must be a number of dollars per second, like 0.10 (got {value!r})."
        )
        return None
    if not 0 <= amount <= MAX_PRICE_USD:
        problems.append(
            f"{where}: the price must be from 0 to {MAX_PRICE_USD} dollars per second (got {amount})."
        )
        return None
    micros = amount * MICROS_PER_DOLLAR
    if micros != micros.to_integral_value():
        problems.append(f"{where}: the price may have at most six decimals (got {amount}).")
        return None
    return int(micros)
