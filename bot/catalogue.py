"""What each video model can do and costs: the single source every check, choice, price and card uses.

A :class:`Catalogue` holds the models of one provider family (``VIDEO_PROVIDER``) in four layers; a later
layer wins over an earlier one:

1. the built-in entries, ``bot/catalogue_data/<family>.toml`` (a family without a file starts empty);
2. the provider's own published list where it has one (OpenRouter ``GET /videos/models``), applied with
   :meth:`Catalogue.apply_provider_list` at start and on every refresh. A model it confirms is updated
   from it (durations, sizes, first-frame image, sound, prices); a model it does not list is withdrawn
   from the choices, unless ``MODELS_FILE`` describes that model in full;
3. ``MODELS_FILE``, the operator's file, key by key;
4. ``PRICES_FILE`` (format in :mod:`bot.pricing`): it replaces the prices of the models it names.

Model files (the built-in ones and ``MODELS_FILE``; TOML, or JSON of the same shape) hold one table per
model, keyed by the provider's own model id::

    [models."wan-ai/wan-2.6-t2v"]
    label = "Wan 2.6"                        # shown in choices; at most 60 characters
    seconds = [5, 10]                        # offered lengths in whole seconds; the first is the default
    sizes = ["1280x720", "720x1280"]         # always WxH; the first is the default
    image = true                             # accepts a first-frame image (default false)
    audio = "always"                         # "always" | "optional" | "none" (default "always")
    remix = "frame"                          # "native" | "frame" | "none" (default "none")
    usd_per_second = 0.05                    # or a table: { default = 0.05, "1920x1080" = 0.08 }
    retired = true                           # offered only when VIDEO_MODELS names it (default false)
    max_prompt_chars = 2000                  # the longest prompt it takes (default 4000)
    recommended = true                       # one of the family's default VIDEO_MODELS (default false)

    [models."wan-ai/wan-2.6-t2v".wire]       # free hints for the provider's client: ModelSpec.wire
    image_model = "wan-ai/wan-2.6-i2v"

Rules:

- The file's only top-level key is ``models``; a model's keys are exactly the ones above, so a typo is
  refused rather than silently ignored.
- A model the built-in catalogue does not have must give ``label``, ``seconds`` and ``sizes``; an entry
  for a built-in model may give only the keys it changes (its ``wire`` table is merged key by key).
- ``seconds`` are distinct whole numbers from 1 to 600; ``sizes`` distinct ``WxH`` strings.
- ``remix = "frame"`` needs ``image = true``: the remix sends the clip's first frame as the image.
- Prices are US dollars per generated second, numbers or strings ("0.125"), from 0 to 1000 with at most
  six decimals; a price table's keys are ``default`` or sizes of that model. A size without a price is
  refused (:class:`~bot.pricing.NoPriceError`) rather than run for free.
- Model ids are compared ignoring case; a dated snapshot such as ``sora-2-2025-10-06`` is its base model.
- Every problem is reported at once, one line each naming the file, the model and the key
  (:class:`~bot.pricing.PriceFileError`, whose ``setting`` is ``MODELS_FILE``).
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from bot.money import MICROS_PER_DOLLAR
from bot.pricing import (
    MAX_PRICE_USD,
    SIZE_KEY,
    SNAPSHOT,
    ModelPrice,
    NoPriceError,
    PriceFileError,
    parse_model_price,
    read_price_file,
    read_table_file,
)
from bot.validation import RequestRefused

if TYPE_CHECKING:
    from bot.db import Database
    from bot.jobs.models import Job

log = logging.getLogger(__name__)
_T = TypeVar("_T")

FAMILIES = ("openrouter", "fal", "openai", "aimlapi")
DATA_DIR = Path(__file__).with_name("catalogue_data")
BUILTIN_SETTING = "built-in catalogue"
MODELS_SETTING = "MODELS_FILE"
REQUIRED_KEYS = ("label", "seconds", "sizes")
MAX_LABEL_CHARS = 60
MAX_SECONDS = 600
MAX_PROMPT_CHARS = 32_000


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

    def remix_of(self, source: Job) -> Remix:
        """How a clip of this model is remixed. The provider made only the continuation of an extension
        (the bot joined it to its source), so an extension is remixed from its first frame."""
        if self.remix is Remix.NATIVE and source.extended_from is not None and self.image:
            return Remix.FRAME
        return self.remix


@dataclass(frozen=True)
class Entry:
    """One model as a file gives it: the keys it sets, as ModelSpec field names, and `recommended`."""

    id: str
    fields: Mapping[str, Any]
    recommended: bool | None = None

    @property
    def complete(self) -> bool:
        return all(key in self.fields for key in REQUIRED_KEYS)


@dataclass(frozen=True)
class ProviderListChange:
    """What a new provider list changed in the choices (model ids)."""

    added: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] = ()


class SavedProviderList(NamedTuple):
    specs: list[ModelSpec]
    fetched_at: int


# ---------------------------------------------------------------------------------------------------
# Prices, sizes and words for people


def per_second_micros(spec: ModelSpec, size: str) -> int | None:
    """Micro-dollars per generated second at `size`, or None when the model has no price for it."""
    table = spec.micros_per_second
    return table.get(size.strip().lower(), table.get("default"))


def estimate_micros(spec: ModelSpec, size: str, seconds: int) -> int:
    """The cost of one video: price per second × seconds; raises `NoPriceError` when unpriced."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, not {seconds}")
    price = per_second_micros(spec, size)
    if price is None:
        raise NoPriceError(spec.id, size)
    return price * seconds


def closest_seconds(spec: ModelSpec, seconds: int) -> int:
    """The model's allowed length nearest to `seconds` (the shorter, cheaper one on a tie)."""
    return min(spec.seconds, key=lambda allowed: (abs(allowed - seconds), allowed))


def dimensions(size: str) -> tuple[int, int]:
    """``"1280x720"`` → ``(1280, 720)``."""
    width, height = size.lower().split("x")
    return int(width), int(height)


def orientation(size: str) -> str:
    width, height = dimensions(size)
    return "landscape" if width > height else "portrait" if width < height else "square"


def size_label(size: str) -> str:
    """``"1280x720"`` → ``"1280x720 · landscape"``."""
    return f"{size} · {orientation(size)}"


def format_rate(micros: int) -> str:
    """A per-second price in full: 400_000 → ``"$0.40"``, 72_000 → ``"$0.072"`` (never rounded away)."""
    dollars = Decimal(micros) / MICROS_PER_DOLLAR
    cents = dollars.quantize(Decimal("0.01"))
    return f"${cents:f}" if cents == dollars else f"${dollars.normalize():f}"


def describe(spec: ModelSpec) -> str:
    """A choice's name: ``"Veo 3.1 · $0.40/s"``, ``"Sora 2 Pro · $0.30–$0.50/s · retired"``."""
    prices = [price for size in spec.sizes if (price := per_second_micros(spec, size)) is not None]
    if not spec.sizes or len(prices) < len(spec.sizes):
        rate = "no price"
    else:
        low, high = min(prices), max(prices)
        rate = f"{format_rate(low)}/s" if low == high else f"{format_rate(low)}–{format_rate(high)}/s"
    return " · ".join([spec.label, rate, *(["retired"] if spec.retired else [])])


def unusable_reason(spec: ModelSpec) -> str | None:
    """Why the model cannot make a video as described (no lengths, sizes or prices), or None."""
    if not spec.seconds or not spec.sizes:
        return "its lengths or sizes are unknown; give seconds and sizes in MODELS_FILE"
    unpriced = [size for size in spec.sizes if per_second_micros(spec, size) is None]
    if unpriced:
        return (
            f"it has no price for {', '.join(unpriced)}, so requests for it are refused; "
            "give usd_per_second in MODELS_FILE or a price in PRICES_FILE"
        )
    return None


# Resolution names → the short side of the frame, in pixels ("the short side determines the resolution").
_NAMED_RESOLUTIONS = {"1k": 1024, "2k": 1440, "4k": 2160}
_RATIO = re.compile(r"^(\d+):(\d+)$")


def short_side(resolution: str) -> int | None:
    """``"720p"`` → 720, ``"4K"`` → 2160; None for a name it does not know."""
    name = resolution.strip().lower()
    if name in _NAMED_RESOLUTIONS:
        return _NAMED_RESOLUTIONS[name]
    match = re.fullmatch(r"(\d{3,4})p", name)
    return int(match.group(1)) if match else None


def size_for(aspect_ratio: str, resolution: str) -> str | None:
    """``("16:9", "720p")`` → ``"1280x720"``, ``("9:16", "480p")`` → ``"480x854"``; None if not understood.

    The resolution is the short side; the long side is rounded to an even number, as encoders want.
    """
    ratio, short = _RATIO.match(aspect_ratio.strip()), short_side(resolution)
    if ratio is None or short is None:
        return None
    wide, tall = int(ratio.group(1)), int(ratio.group(2))
    if not wide or not tall:
        return None
    long = round(short * max(wide, tall) / min(wide, tall) / 2) * 2
    return f"{long}x{short}" if wide > tall else f"{short}x{long}" if wide < tall else f"{short}x{short}"


# ---------------------------------------------------------------------------------------------------
# Model files


class _Invalid(ValueError):
    """One key's value is wrong; the message is the plain sentence after "model 'x': "."""


def _label(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid('label must be a text, like "Veo 3.1".')
    if len(value.strip()) > MAX_LABEL_CHARS:
        raise _Invalid(f"label must be at most {MAX_LABEL_CHARS} characters long.")
    return value.strip()


def _seconds(value: object) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(type(item) is int and 1 <= item <= MAX_SECONDS for item in value)
        or len(set(value)) != len(value)
    ):
        raise _Invalid(
            f"seconds must be a list of distinct whole seconds from 1 to {MAX_SECONDS}, like [4, 8] "
            f"(got {value!r})."
        )
    return tuple(value)


def _sizes(value: object) -> tuple[str, ...]:
    sizes = (
        [item.strip().lower() for item in value if isinstance(item, str)] if isinstance(value, list) else []
    )
    if (
        not isinstance(value, list)
        or not value
        or len(sizes) != len(value)
        or not all(SIZE_KEY.match(size) for size in sizes)
        or len(set(sizes)) != len(sizes)
    ):
        raise _Invalid(
            f'sizes must be a list of distinct sizes like ["1280x720", "720x1280"] (got {value!r}).'
        )
    return tuple(sizes)


def _flag(key: str) -> Callable[[object], bool]:
    def parse(value: object) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(f"{key} must be true or false (got {value!r}).")
        return value

    return parse


def _choice(key: str, kind: type[Audio] | type[Remix]) -> Callable[[object], StrEnum]:
    def parse(value: object) -> StrEnum:
        try:
            return kind(value.strip().lower() if isinstance(value, str) else value)
        except ValueError:
            allowed = " | ".join(f'"{member.value}"' for member in kind)
            raise _Invalid(f"{key} must be {allowed} (got {value!r}).") from None

    return parse


def _prompt_chars(value: object) -> int:
    if type(value) is not int or not 1 <= value <= MAX_PROMPT_CHARS:
        raise _Invalid(
            f"max_prompt_chars must be a whole number from 1 to {MAX_PROMPT_CHARS:,} (got {value!r})."
        )
    return value


def _wire(value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f'wire must be a table, like [models."<id>".wire] (got {value!r}).')
    return value


#: file key → (ModelSpec field, parser); `usd_per_second` and `recommended` are handled on their own.
_KEYS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "label": ("label", _label),
    "seconds": ("seconds", _seconds),
    "sizes": ("sizes", _sizes),
    "image": ("image", _flag("image")),
    "audio": ("audio", _choice("audio", Audio)),
    "remix": ("remix", _choice("remix", Remix)),
    "retired": ("retired", _flag("retired")),
    "max_prompt_chars": ("max_prompt_chars", _prompt_chars),
    "wire": ("wire", _wire),
}
_ALL_KEYS = sorted([*_KEYS, "usd_per_second", "recommended"])


def read_models_file(
    path: Path, builtin: Mapping[str, ModelSpec], *, setting: str = MODELS_SETTING
) -> tuple[dict[str, Entry], dict[str, ModelSpec]]:
    """A model file's entries by lower-case id, and the specs they make on top of `builtin`.

    Raises `PriceFileError` naming `setting`, with every problem of the file at once.
    """
    problems: list[str] = []
    entries = parse_models(read_table_file(path, setting=setting), problems)
    specs = {
        key: _check(builtin.get(key), entry, f"model {entry.id!r}", problems)
        for key, entry in entries.items()
    }
    if problems:
        raise PriceFileError(path, problems, setting=setting)
    return entries, {key: spec for key, spec in specs.items() if spec is not None}


def parse_models(data: object, problems: list[str]) -> dict[str, Entry]:
    """Entries from a parsed model file; every problem is appended to `problems` as one plain line."""
    if not isinstance(data, dict):
        problems.append('must hold one [models."<id>"] table per model (see the format).')
        return {}
    problems.extend(
        f'unknown top-level key {key!r}; each model goes in a [models."<id>"] table.'
        for key in data
        if key != "models"
    )
    models = data.get("models", {})
    if not isinstance(models, dict):
        problems.append('`models` must hold one [models."<id>"] table per model.')
        return {}
    entries: dict[str, Entry] = {}
    for name, value in models.items():
        model_id, where = name.strip(), f"model {name!r}"
        if not model_id:
            problems.append("a model has an empty id.")
        elif model_id.lower() in entries:
            problems.append(f"{where} is listed twice (model ids are compared ignoring case).")
        elif not isinstance(value, dict):
            problems.append(f'{where} must be a table of keys, like label = "Veo 3.1".')
        elif (entry := _parse_entry(model_id, value, where, problems)) is not None:
            entries[model_id.lower()] = entry
    return entries


def _parse_entry(model_id: str, raw: Mapping[str, object], where: str, problems: list[str]) -> Entry | None:
    fields: dict[str, Any] = {}
    recommended: bool | None = None
    failed = False
    for key, value in raw.items():
        try:
            if key in _KEYS:
                name, parse = _KEYS[key]
                fields[name] = parse(value)
            elif key == "recommended":
                recommended = _flag("recommended")(value)
            elif key == "usd_per_second":
                price = parse_model_price(value, f"{where}, usd_per_second", problems)
                if price is None:
                    failed = True
                else:
                    fields["micros_per_second"] = _price_table(price)
            else:
                close = difflib.get_close_matches(key, _ALL_KEYS, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"the keys are {', '.join(_ALL_KEYS)}."
                raise _Invalid(f"unknown key {key!r}; {hint}")
        except _Invalid as invalid:
            problems.append(f"{where}: {invalid}")
            failed = True
    return None if failed else Entry(model_id, fields, recommended)


def _price_table(price: ModelPrice) -> dict[str, int]:
    return {**price.sizes, **({"default": price.default} if price.default is not None else {})}


def _spec(base: ModelSpec | None, entry: Entry) -> ModelSpec:
    """`base` with the entry's keys applied (`wire` merged), or a new spec from the entry alone."""
    if base is None:
        return ModelSpec(**{"label": entry.id, "seconds": (), "sizes": (), **entry.fields, "id": entry.id})
    fields = dict(entry.fields)
    if "wire" in fields:
        fields["wire"] = {**base.wire, **fields["wire"]}
    return replace(base, **fields)


def _check(base: ModelSpec | None, entry: Entry, where: str, problems: list[str]) -> ModelSpec | None:
    """The spec `entry` makes on top of `base`, or None after recording why it cannot be used."""
    if base is None and not entry.complete:
        missing = [key for key in REQUIRED_KEYS if key not in entry.fields]
        keys = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
        problems.append(f"{where} needs {keys}: only a built-in model may be given in part.")
        return None
    spec = _spec(base, entry)
    before = len(problems)
    if spec.remix is Remix.FRAME and not spec.image:
        problems.append(f'{where}: remix = "frame" needs image = true (a remix starts from the first frame).')
    if "micros_per_second" in entry.fields:
        problems.extend(
            f"{where}, usd_per_second: {size!r} is not one of its sizes ({', '.join(spec.sizes)})."
            for size in spec.micros_per_second
            if size != "default" and size not in spec.sizes
        )
    return spec if len(problems) == before else None


# ---------------------------------------------------------------------------------------------------
# The catalogue


class Catalogue:
    """The models of one provider family: built-in, the provider's list, MODELS_FILE, PRICES_FILE."""

    def __init__(
        self,
        family: str,
        builtin: Mapping[str, ModelSpec],
        *,
        recommended: Sequence[str] = (),
        overrides: Mapping[str, Entry] | None = None,
        prices: Mapping[str, ModelPrice] | None = None,
    ) -> None:
        """Layers already checked (use :meth:`load`); all mappings are keyed by lower-case model id."""
        self.family = family
        self._builtin = dict(builtin)
        self._recommended = [key.lower() for key in recommended]
        self._overrides = dict(overrides or {})
        self._prices = {name.lower(): price for name, price in (prices or {}).items()}
        self._models, self._withdrawn = self._merged(None)

    @classmethod
    def load(
        cls,
        family: str,
        *,
        models_file: Path | None = None,
        prices_file: Path | None = None,
        data_dir: Path = DATA_DIR,
    ) -> Catalogue:
        """The family's built-in file, then `models_file` and `prices_file`; raises `PriceFileError`."""
        if family not in FAMILIES:
            raise ValueError(f"unknown provider family {family!r}; expected one of: {', '.join(FAMILIES)}")
        builtin_path = data_dir / f"{family}.toml"
        entries, builtin = (
            read_models_file(builtin_path, {}, setting=BUILTIN_SETTING)
            if builtin_path.is_file()
            else ({}, {})
        )
        overrides = read_models_file(models_file, builtin)[0] if models_file is not None else {}
        flags = {key: bool(entry.recommended) for key, entry in entries.items()}
        flags.update(
            {key: entry.recommended for key, entry in overrides.items() if entry.recommended is not None}
        )
        return cls(
            family,
            builtin,
            recommended=[key for key, flag in flags.items() if flag],
            overrides=overrides,
            prices=read_price_file(prices_file) if prices_file is not None else None,
        )

    def _merged(
        self, provider: Mapping[str, ModelSpec] | None
    ) -> tuple[dict[str, ModelSpec], frozenset[str]]:
        models = dict(self._builtin)
        withdrawn: frozenset[str] = frozenset()
        if provider is not None:
            for key, listed in provider.items():
                models[key] = _confirmed(models[key], listed) if key in models else listed
            asserted = {key for key, entry in self._overrides.items() if entry.complete}
            withdrawn = frozenset(key for key in models if key not in provider and key not in asserted)
        for key, entry in self._overrides.items():
            models[key] = _spec(models.get(key), entry)
        for key, price in self._prices.items():
            if key in models:
                models[key] = replace(models[key], micros_per_second=_price_table(price))
        return models, withdrawn

    def _key(self, model_id: str) -> str | None:
        """The catalogue key of `model_id`: itself, or the base of a dated snapshot; None if unknown."""
        key = model_id.strip().lower()
        if key in self._models:
            return key
        snapshot = SNAPSHOT.match(key)
        return snapshot.group("base") if snapshot and snapshot.group("base") in self._models else None

    def get(self, model_id: str) -> ModelSpec | None:
        """The model, withdrawn ones included (jobs made with them still need it); None if unknown."""
        key = self._key(model_id)
        if key is None:
            return None
        spec = self._models[key]
        if key == model_id.strip().lower():
            return spec
        snapshot_price = self._prices.get(model_id.strip().lower())
        prices = _price_table(snapshot_price) if snapshot_price else spec.micros_per_second
        return replace(spec, id=model_id.strip(), micros_per_second=prices)

    def _wanted(self, video_models: Sequence[str] | None) -> list[str]:
        if video_models is not None:
            return list(video_models)
        return [key for key in self._recommended if key in self._models and not self._models[key].retired]

    def offered(self, video_models: Sequence[str] | None = None) -> list[ModelSpec]:
        """The models a member may choose, in order: those of `VIDEO_MODELS`, or (None) the family's
        recommended set without retired models. Unknown, withdrawn and unusable models are left out."""
        offered: list[ModelSpec] = []
        seen: set[str] = set()
        for model_id in self._wanted(video_models):
            spec, key = self.get(model_id), self._key(model_id)
            if spec is None or key in self._withdrawn or not spec.seconds or not spec.sizes:
                continue
            if spec.id.lower() not in seen:
                seen.add(spec.id.lower())
                offered.append(spec)
        return offered

    def warnings(self, video_models: Sequence[str] | None = None) -> list[str]:
        """One plain line per problem an operator should hear about at start and after a refresh."""
        lines: list[str] = []
        for model_id in self._wanted(video_models):
            spec = self.get(model_id)
            if spec is None:
                lines.append(
                    f"VIDEO_MODELS offers {model_id}, which the {self.family} catalogue does not know; "
                    "describe it in MODELS_FILE"
                )
            elif self._key(model_id) in self._withdrawn:
                lines.append(f"{model_id} is no longer listed by {self.family}, so it is not offered")
            else:
                if spec.retired:
                    lines.append(
                        f"{model_id} ({spec.label}) is retired; it is offered only because VIDEO_MODELS "
                        "lists it, and the provider may refuse it"
                    )
                if (reason := unusable_reason(spec)) is not None:
                    lines.append(f"{model_id} cannot be used as it is: {reason}")
        lines.extend(
            f"PRICES_FILE prices {name}, which the {self.family} catalogue does not know; it is ignored"
            for name in self._prices
            if self._key(name) is None
        )
        if not self.offered(video_models):
            lines.append(
                f"no {self.family} model can be offered; set VIDEO_MODELS or describe models in MODELS_FILE"
            )
        return lines

    def check_request(
        self,
        model_id: str,
        size: str,
        seconds: int,
        *,
        image: bool = False,
        video_models: Sequence[str] | None = None,
    ) -> ModelSpec:
        """The offered model a member asked for, if it allows this size, length and image.

        Raises `RequestRefused` with a sentence the member can act on. (Prices: `estimate_micros`.)
        """
        offered = self.offered(video_models)
        spec = next((choice for choice in offered if choice.id.lower() == model_id.strip().lower()), None)
        if spec is None:
            choices = ", ".join(choice.id for choice in offered) or "none"
            raise RequestRefused(f"`{model_id}` is not offered here. Choose one of: {choices}.")
        if size.strip().lower() not in spec.sizes:
            sizes = ", ".join(size_label(allowed) for allowed in spec.sizes)
            raise RequestRefused(f"{spec.label} cannot make {size} videos. Sizes it can make: {sizes}.")
        if seconds not in spec.seconds:
            lengths = ", ".join(str(allowed) for allowed in sorted(spec.seconds))
            raise RequestRefused(f"{spec.label} makes videos of {lengths} seconds, not {seconds}.")
        if image and not spec.image:
            raise RequestRefused(
                f"{spec.label} cannot start from an image. Leave the image out or choose another model."
            )
        return spec

    def apply_provider_list(self, specs: Iterable[ModelSpec]) -> ProviderListChange:
        """Replace the provider layer with the provider's current list; returns what that changed.

        An empty list is taken as a fault, not as "no models": the last known list stays.
        """
        listed: dict[str, ModelSpec] = {}
        for spec in specs:
            listed.setdefault(spec.id.strip().lower(), spec)
        if not listed:
            log.warning("%s published an empty model list; keeping the last known catalogue", self.family)
            return ProviderListChange()
        models, withdrawn = self._merged(listed)
        was = {key for key in self._models if key not in self._withdrawn}
        now = [key for key in models if key not in withdrawn]
        change = ProviderListChange(
            added=tuple(models[key].id for key in now if key not in was),
            withdrawn=tuple(self._models[key].id for key in self._models if key in was and key in withdrawn),
        )
        self._models, self._withdrawn = models, withdrawn
        for model_id in change.withdrawn:
            log.info("%s no longer lists %s; it is withdrawn from the choices", self.family, model_id)
        if change.added:
            log.info("%s lists %d more model(s): %s", self.family, len(change.added), ", ".join(change.added))
        return change


def _confirmed(base: ModelSpec, listed: ModelSpec) -> ModelSpec:
    """A built-in model updated with what the provider's list says; our label, remix and limits stay."""
    audio = base.audio if (base.audio, listed.audio) == (Audio.ALWAYS, Audio.OPTIONAL) else listed.audio
    return replace(
        base,
        seconds=_default_first(base.seconds, listed.seconds),
        sizes=_default_first(base.sizes, listed.sizes),
        image=listed.image,
        audio=audio,
        remix=Remix.NONE if base.remix is Remix.FRAME and not listed.image else base.remix,
        micros_per_second=listed.micros_per_second or base.micros_per_second,
        wire={**base.wire, **listed.wire},
    )


def _default_first(ours: tuple[_T, ...], theirs: tuple[_T, ...]) -> tuple[_T, ...]:
    """The provider's values (ours when it gives none), led by our default where it still has it."""
    if not theirs:
        return ours
    if ours and ours[0] in theirs:
        return (ours[0], *(value for value in theirs if value != ours[0]))
    return theirs


# ---------------------------------------------------------------------------------------------------
# OpenRouter's published list (reference: providers.md §1.5)

# Per-second prices in pricing_skus: the documented "per-video-second[-1080p]" and the shapes seen live
# ("duration_seconds_720p", "image_to_video_duration_seconds_with_audio_1080p", "cents_per_second_output").
# Per-token and per-megapixel prices cannot be turned into a price per second, so they are not read.
_RESOLUTION_SUFFIX = r"(?:[-_](?P<res>\d{3,4}p|\dk))?"
_USD_PER_SECOND = re.compile(
    r"(?:(?:text_to_video|image_to_video|reference)_)?(?:per-video-second|duration_seconds)"
    r"(?:_(?:with|without)_audio)?" + _RESOLUTION_SUFFIX,
    re.IGNORECASE,
)
_CENTS_PER_SECOND = re.compile(
    r"cents_per_(?:second_output|video_output_second)" + _RESOLUTION_SUFFIX, re.IGNORECASE
)


def specs_from_openrouter_models(payload: object) -> list[ModelSpec]:
    """The models in OpenRouter's ``GET /videos/models`` answer (``{"data": [VideoModel, …]}``).

    Tolerant of missing and null fields: an entry without an id is skipped; unknown durations or sizes
    give an empty tuple (the catalogue then keeps its own, or leaves the model out). Sizes come from
    ``supported_resolutions`` × ``supported_aspect_ratios`` (one of them missing: 720p / 16:9 is assumed
    for the label), else from ``supported_sizes``. ``wire["size_params"]`` maps each size to the exact
    request fields that ask for it (``resolution`` and/or ``aspect_ratio``, or ``size``). Sound:
    ``generate_audio`` true → optional, else none. Image: ``first_frame`` in ``supported_frame_images``.
    Prices: the per-second SKUs of ``pricing_skus``; where several apply to a size (with or without
    sound, text or image input) the highest is taken, so an estimate never looks cheaper than the bill.
    """
    data = payload.get("data") if isinstance(payload, dict) else None
    specs: list[ModelSpec] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"].strip():
            continue
        model_id = item["id"].strip()
        size_params = _openrouter_sizes(item)
        name = item.get("name")
        label = name.strip() if isinstance(name, str) and name.strip() else model_id
        specs.append(
            ModelSpec(
                id=model_id,
                label=label[:MAX_LABEL_CHARS],
                seconds=tuple(
                    sorted({s for s in _list(item.get("supported_durations")) if type(s) is int and s > 0})
                ),
                sizes=tuple(size_params),
                image="first_frame" in _list(item.get("supported_frame_images")),
                audio=Audio.OPTIONAL if item.get("generate_audio") is True else Audio.NONE,
                micros_per_second=_openrouter_prices(item.get("pricing_skus"), size_params),
                wire={"size_params": size_params} if size_params else {},
            )
        )
    return specs


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _texts(value: object) -> list[str]:
    return [item for item in _list(value) if isinstance(item, str) and item.strip()]


def _openrouter_sizes(item: Mapping[str, object]) -> dict[str, dict[str, str]]:
    params: dict[str, dict[str, str]] = {}
    resolutions, ratios = (
        _texts(item.get("supported_resolutions")),
        _texts(item.get("supported_aspect_ratios")),
    )
    if resolutions or ratios:
        for resolution in resolutions or [None]:
            for ratio in ratios or [None]:
                size = size_for(ratio or "16:9", resolution or "720p")
                if size is not None and size not in params:
                    given = {"resolution": resolution, "aspect_ratio": ratio}
                    params[size] = {key: value for key, value in given.items() if value is not None}
        return params
    for size in _texts(item.get("supported_sizes")):
        if SIZE_KEY.match(size.strip().lower()):
            params.setdefault(size.strip().lower(), {"size": size})
    return params


def _openrouter_prices(skus: object, size_params: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    """Micro-dollars per second for each size that a per-second SKU prices (see the regexes above)."""
    rules: list[tuple[int | None, int]] = []  # (short side or None for every size, micros)
    for key, raw in skus.items() if isinstance(skus, dict) else ():
        if not isinstance(key, str) or not isinstance(raw, str | int | float) or isinstance(raw, bool):
            continue
        if (match := _USD_PER_SECOND.fullmatch(key)) is not None:
            scale = MICROS_PER_DOLLAR
        elif (match := _CENTS_PER_SECOND.fullmatch(key)) is not None:
            scale = MICROS_PER_DOLLAR // 100
        else:
            continue
        try:
            amount = Decimal(str(raw))
        except InvalidOperation:
            continue
        if amount.is_finite() and 0 <= amount * scale <= MAX_PRICE_USD * MICROS_PER_DOLLAR:
            resolution = match.group("res")
            rules.append((short_side(resolution) if resolution else None, math.ceil(amount * scale)))
    prices: dict[str, int] = {}
    for size, params in size_params.items():
        side = _size_short_side(size, params)
        tiered = [micros for rule_side, micros in rules if rule_side is not None and rule_side == side]
        flat = [micros for rule_side, micros in rules if rule_side is None]
        if tiered or flat:
            prices[size] = max(tiered or flat)
    return prices


def _size_short_side(size: str, params: Mapping[str, str]) -> int | None:
    """The resolution a size is billed at: the one its request names, or its short side if asked by size."""
    if "resolution" in params:
        return short_side(params["resolution"])
    return min(dimensions(size)) if "size" in params else None


# ---------------------------------------------------------------------------------------------------
# The last provider list, kept in SQLite (migrations/0004_catalogue.sql)


def _entry_json(spec: ModelSpec) -> dict[str, Any]:
    """A spec as a model-file entry, so the stored list is read back by the same checks as the files."""
    entry: dict[str, Any] = {
        "label": spec.label,
        "image": spec.image,
        "audio": spec.audio.value,
        "remix": spec.remix.value,
        "retired": spec.retired,
        "max_prompt_chars": spec.max_prompt_chars,
        "wire": dict(spec.wire),
    }
    if spec.seconds:
        entry["seconds"] = list(spec.seconds)
    if spec.sizes:
        entry["sizes"] = list(spec.sizes)
    if spec.micros_per_second:
        entry["usd_per_second"] = {
            size: str(Decimal(micros) / MICROS_PER_DOLLAR) for size, micros in spec.micros_per_second.items()
        }
    return entry


async def save_provider_models(
    db: Database, family: str, specs: Iterable[ModelSpec], *, fetched_at: int | None = None
) -> None:
    """Keep `family`'s latest list, so a provider that is down at the next start leaves it in place."""
    payload = json.dumps({"models": {spec.id: _entry_json(spec) for spec in specs}}, default=str)
    await db.execute(
        "INSERT INTO provider_models (family, payload_json, fetched_at) VALUES (?, ?, ?) "
        "ON CONFLICT (family) DO UPDATE SET "
        "payload_json = excluded.payload_json, fetched_at = excluded.fetched_at",
        (family, payload, int(time.time()) if fetched_at is None else fetched_at),
    )


async def load_provider_models(db: Database, family: str) -> SavedProviderList | None:
    """`family`'s last saved list, or None when there is none or it cannot be read (logged)."""
    row = await db.fetchone(
        "SELECT payload_json, fetched_at FROM provider_models WHERE family = ?", (family,)
    )
    if row is None:
        return None
    try:
        data = json.loads(row["payload_json"], parse_float=Decimal)
    except ValueError:
        data = None  # reported by parse_models like any other wrong shape
    problems: list[str] = []
    entries = parse_models(data, problems)
    if problems:
        log.warning("The saved %s model list cannot be read (%s); ignoring it", family, problems[0])
        return None
    return SavedProviderList([_spec(None, entry) for entry in entries.values()], row["fetched_at"])
