"""PRICES_FILE: reading and checking the file (TOML and JSON), and its effect on the catalogue's prices."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import bot.pricing
from bot.catalogue import Catalogue, ModelSpec, estimate_micros, per_second_micros
from bot.pricing import ModelPrice, NoPriceError, PriceFileError, read_price_file


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def spec(catalogue: Catalogue, model: str) -> ModelSpec:
    found = catalogue.get(model)
    assert found is not None, model
    return found


# --- the built-in prices, as the catalogue has them ------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "seconds", "micros"),
    [
        ("sora-2", "1280x720", 4, 400_000),
        ("sora-2", "720x1280", 12, 1_200_000),
        ("sora-2", "1792x1024", 8, 800_000),  # sora-2 has one price for every size
        ("sora-2-pro", "1280x720", 4, 1_200_000),
        ("sora-2-pro", "720x1280", 8, 2_400_000),
        ("sora-2-pro", "1792x1024", 4, 2_000_000),
        ("sora-2-pro", "1024x1792", 12, 6_000_000),
    ],
)
def test_built_in_estimates(model: str, size: str, seconds: int, micros: int) -> None:
    assert estimate_micros(spec(Catalogue.load("openai"), model), size, seconds) == micros


def test_unknown_model_or_unpriced_size_has_no_price() -> None:
    catalogue = Catalogue.load("openai")
    assert catalogue.get("veo-3") is None
    with pytest.raises(NoPriceError) as caught:
        estimate_micros(spec(catalogue, "sora-2-pro"), "1920x1080", 4)  # pro is priced per size only
    assert (caught.value.model, caught.value.size) == ("sora-2-pro", "1920x1080")
    assert "sora-2-pro" in str(caught.value) and "PRICES_FILE" in str(caught.value)
    with pytest.raises(NoPriceError):
        estimate_micros(spec(catalogue, "muse-video-50s"), "1280x720", 50)  # built in without a price


def test_snapshots_and_case() -> None:
    catalogue = Catalogue.load("openai")
    assert per_second_micros(spec(catalogue, "sora-2-2025-10-06"), "1280x720") == 100_000
    assert per_second_micros(spec(catalogue, "sora-2-pro-2025-10-06"), "1792X1024") == 500_000
    assert per_second_micros(spec(catalogue, "SORA-2"), "1280x720") == 100_000
    assert catalogue.get("sora-2-2025-12-08") is not None
    assert catalogue.get("sora-3-2025-10-06") is None


def test_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="seconds"):
        estimate_micros(spec(Catalogue.load("openai"), "sora-2"), "1280x720", 0)


# --- reading the file --------------------------------------------------------------------------------


def test_toml_file_is_read_as_exact_micro_dollars(tmp_path: Path) -> None:
    path = write(
        tmp_path / "prices.toml",
        """
SORA-2 = 0.08
"sora-2-2025-10-06" = "0.125"

[sora-2-pro]
"1792X1024" = 0.6
default = 0.35

["openai/sora-2-t2v"]
default = 1
""",
    )
    assert read_price_file(path) == {
        "sora-2": ModelPrice(default=80_000),
        "sora-2-2025-10-06": ModelPrice(default=125_000),
        "sora-2-pro": ModelPrice(default=350_000, sizes={"1792x1024": 600_000}),
        "openai/sora-2-t2v": ModelPrice(default=1_000_000),
    }


def test_json_file_is_read_the_same_way(tmp_path: Path) -> None:
    path = write(tmp_path / "prices.JSON", '{"sora-2-pro": {"1280x720": 0.333333}, "Muse-Video-50s": 0}')
    assert read_price_file(path) == {
        "sora-2-pro": ModelPrice(sizes={"1280x720": 333_333}),
        "muse-video-50s": ModelPrice(default=0),
    }


def test_the_documented_example_is_a_valid_file(tmp_path: Path) -> None:
    doc = bot.pricing.__doc__ or ""
    example = re.search(r"\n\n((?: {4}.*\n|\n)+)", doc)
    assert example is not None
    path = write(tmp_path / "example.toml", textwrap.dedent(example.group(1)))
    assert read_price_file(path) == {
        "vendor/model-a": ModelPrice(default=80_000),
        "vendor/model-a-2025-10-06": ModelPrice(default=100_000),
        "vendor/model-b": ModelPrice(default=300_000, sizes={"1792x1024": 500_000, "1024x1792": 500_000}),
    }


# --- its effect on the catalogue ---------------------------------------------------------------------


def test_toml_file_replaces_the_prices_of_the_models_it_names(tmp_path: Path) -> None:
    path = write(
        tmp_path / "prices.toml",
        """
SORA-2 = 0.08
"sora-2-2025-10-06" = "0.125"

[sora-2-pro]
"1792X1024" = 0.6
default = 0.35
""",
    )
    catalogue = Catalogue.load("openai", prices_file=path)
    assert estimate_micros(spec(catalogue, "Sora-2"), "1280x720", 4) == 320_000  # names ignore case
    assert estimate_micros(spec(catalogue, "sora-2-2025-10-06"), "1280x720", 4) == 500_000  # its own entry
    assert estimate_micros(spec(catalogue, "sora-2-2026-01-01"), "1280x720", 4) == 320_000  # the base's
    # A model named in the file has its built-in prices replaced entirely.
    pro = spec(catalogue, "sora-2-pro")
    assert per_second_micros(pro, "1792x1024") == 600_000
    assert per_second_micros(pro, "1024x1792") == 350_000  # the built-in 0.50 is gone
    assert per_second_micros(pro, "1280x720") == 350_000
    assert per_second_micros(spec(catalogue, "muse-video"), "1280x720") == 30_000  # not named: kept


def test_json_file_replaces_named_models_and_keeps_the_others(tmp_path: Path) -> None:
    path = write(tmp_path / "prices.JSON", '{"sora-2-pro": {"1280x720": 0.333333}, "Muse-Video-50s": 0}')
    catalogue = Catalogue.load("openai", prices_file=path)
    pro = spec(catalogue, "sora-2-pro")
    assert per_second_micros(pro, "1280x720") == 333_333
    with pytest.raises(NoPriceError):
        estimate_micros(pro, "1792x1024", 4)  # no default in the file, and the built-in prices are gone
    assert per_second_micros(spec(catalogue, "sora-2"), "1280x720") == 100_000  # built-in kept
    assert estimate_micros(spec(catalogue, "muse-video-50s"), "1280x720", 50) == 0  # 0 is a price


def test_a_name_with_a_slash_prices_that_model(tmp_path: Path) -> None:
    path = write(tmp_path / "prices.toml", '["openai/sora-2-t2v"]\ndefault = 1\n')
    catalogue = Catalogue.load("aimlapi", prices_file=path)
    assert per_second_micros(spec(catalogue, "openai/sora-2-t2v"), "720x1280") == 1_000_000


# --- problems ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "fragments"),
    [
        ("p.toml", "sora-2 = ", ["is not valid TOML"]),
        ("p.json", '{"sora-2": 0.1,}', ["is not valid JSON", "line 1"]),
        ("p.json", "[0.1]", ["must be a table of models"]),
        ("p.json", '{"sora-2": NaN}', ["model 'sora-2'", "must be a number"]),
        ("p.toml", "sora-2 = -0.1", ["model 'sora-2'", "from 0 to 1000"]),
        ("p.toml", "sora-2 = 5000", ["from 0 to 1000"]),
        ("p.toml", "sora-2 = 0.0000001", ["at most six decimals"]),
        ("p.toml", 'sora-2 = "ten cents"', ["must be a number", "'ten cents'"]),
        ("p.toml", "sora-2 = true", ["must be a number", "True"]),
        ("p.toml", "sora-2 = [0.1]", ["must be a number"]),
        ("p.toml", "[sora-2]", ["model 'sora-2' has no prices"]),
        ("p.toml", '[sora-2]\n"720p" = 0.1', ["model 'sora-2': unknown key '720p'"]),
        ("p.toml", '[sora-2]\n"1280x720" = "x"', ["model 'sora-2', '1280x720'", "must be a number"]),
        ("p.toml", '[sora-2]\n"1280x720" = 0.1\n"1280X720" = 0.2', ["'1280X720' is listed twice"]),
        ("p.toml", "sora-2 = 0.1\nSORA-2 = 0.2", ["model 'SORA-2' is listed twice"]),
        ("p.yaml", "sora-2: 0.1", ["must be a .toml or .json file"]),
    ],
)
def test_invalid_files_are_rejected_clearly(
    tmp_path: Path, name: str, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(PriceFileError) as caught:
        read_price_file(path)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert message.startswith(f"PRICES_FILE {path}: ")
    for fragment in fragments:
        assert fragment in message
    with pytest.raises(PriceFileError) as loading:
        Catalogue.load("openai", prices_file=path)
    assert str(loading.value) == message


def test_every_problem_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "prices.toml", 'a = -1\nb = 0.2\n[c]\nfoo = 1\n"1280x720" = "?"\n')
    with pytest.raises(PriceFileError) as caught:
        Catalogue.load("openai", prices_file=path)
    assert caught.value.path == path and caught.value.setting == "PRICES_FILE"
    assert len(caught.value.problems) == 3
    assert [line.split(": ", 2)[1] for line in str(caught.value).splitlines()] == [
        "model 'a'",
        "model 'c'",
        "model 'c', '1280x720'",
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="cannot be read"):
        read_price_file(tmp_path / "nope.toml")
    with pytest.raises(PriceFileError, match=r"^PRICES_FILE .*nope\.json: cannot be read"):
        Catalogue.load("openai", prices_file=tmp_path / "nope.json")
