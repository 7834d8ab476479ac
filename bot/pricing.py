"""PRICES_FILE: the operator's prices of video models, and the price parsing the catalogue shares.

Providers bill per requested second, at a price that depends on the model and, for some models, the
size. Every price the bot uses comes from the model catalogue (:mod:`bot.catalogue`); resellers charge
differently, so the operator can set `PRICES_FILE`, a TOML file (or JSON with the same structure,
chosen by the `.json` extension), which replaces the prices of the catalogue models it names:

    # US dollars per generated second.
    "vendor/model-a" = 0.08       # one price for every size
    "vendor/model-a-2025-10-06" = 0.10   # a dated snapshot may have its own price

    ["vendor/model-b"]            # names with a slash or dot need quotes
    default = 0.30                # any size not listed below (optional)
    "1792x1024" = 0.50
    "1024x1792" = 0.50

A model named in the file has its catalogue prices replaced entirely (a size the file does not price,
with no `default`, has no price any more); models not named keep theirs. A name the catalogue does not
know is ignored, with a warning at start. Prices are numbers (or strings such as "0.125") from 0 up to
1000 with at most six decimals. Model names and sizes are compared ignoring case. A dated snapshot such
as `vendor/model-a-2025-10-06` costs what `vendor/model-a` costs unless the snapshot has its own entry.
A model or size with no price is refused (`NoPriceError`) rather than run for free. The file is checked
when the bot starts; every problem is reported at once, naming the file and the entry
(`PriceFileError`).
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


def read_price_file(path: Path) -> dict[str, ModelPrice]:
    """Parse and validate a price file (format in the module docstring)."""
    data = read_table_file(path)
    if not isinstance(data, dict):
        raise PriceFileError(
            path, ['must be a table of models, like `"vendor/model-a" = 0.10` (see the format).']
        )
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
