"""Price table: built-in prices, PRICES_FILE overrides (TOML and JSON), validation, snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.pricing import BUILTIN_PRICES, NoPriceError, PriceFileError, load_prices


@pytest.mark.parametrize(
    ("model", "size", "seconds", "micros"),
    [
        ("sora-2", "1280x720", 4, 400_000),
        ("sora-2", "720x1280", 12, 1_200_000),
        ("sora-2", "1792x1024", 8, 800_000),  # sora-2 costs the same at any size
        ("sora-2-pro", "1280x720", 4, 1_200_000),
        ("sora-2-pro", "720x1280", 8, 2_400_000),
        ("sora-2-pro", "1792x1024", 4, 2_000_000),
        ("sora-2-pro", "1024x1792", 12, 6_000_000),
    ],
)
def test_builtin_estimates(model: str, size: str, seconds: int, micros: int) -> None:
    assert BUILTIN_PRICES.estimate(model, size, seconds) == micros
    assert load_prices(None).estimate(model, size, seconds) == micros


def test_unknown_model_or_size_has_no_price() -> None:
    with pytest.raises(NoPriceError) as caught:
        BUILTIN_PRICES.estimate("veo-3", "1280x720", 4)
    assert (caught.value.model, caught.value.size) == ("veo-3", "1280x720")
    assert "veo-3" in str(caught.value) and "PRICES_FILE" in str(caught.value)
    with pytest.raises(NoPriceError):
        BUILTIN_PRICES.estimate("sora-2-pro", "1920x1080", 4)  # pro is priced per size only
    assert not BUILTIN_PRICES.has_model("veo-3")
    assert BUILTIN_PRICES.has_model("sora-2-pro")


def test_snapshots_and_case() -> None:
    assert BUILTIN_PRICES.per_second("sora-2-2025-10-06", "1280x720") == 100_000
    assert BUILTIN_PRICES.per_second("sora-2-pro-2025-10-06", "1792X1024") == 500_000
    assert BUILTIN_PRICES.per_second("SORA-2", "1280x720") == 100_000
    assert BUILTIN_PRICES.has_model("sora-2-2025-12-08")
    with pytest.raises(NoPriceError):
        BUILTIN_PRICES.per_second("sora-3-2025-10-06", "1280x720")


def test_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="seconds"):
        BUILTIN_PRICES.estimate("sora-2", "1280x720", 0)


def test_toml_file_overrides(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        """
sora-2 = 0.08
"sora-2-2025-10-06" = "0.125"

[sora-2-pro]
"1792x1024" = 0.6
default = 0.35

["openai/sora-2-t2v"]
default = 1
""",
        encoding="utf-8",
    )
    table = load_prices(path)
    assert table.estimate("sora-2", "1280x720", 4) == 320_000
    assert table.estimate("sora-2-2025-10-06", "1280x720", 4) == 500_000  # a listed snapshot wins
    assert table.estimate("sora-2-2026-01-01", "1280x720", 4) == 320_000
    # A model named in the file replaces its built-in entry entirely.
    assert table.per_second("sora-2-pro", "1792x1024") == 600_000
    assert table.per_second("sora-2-pro", "1024x1792") == 350_000
    assert table.per_second("openai/sora-2-t2v", "720x1280") == 1_000_000


def test_json_file_overrides_and_keeps_unlisted_models(tmp_path: Path) -> None:
    path = tmp_path / "prices.JSON"
    path.write_text('{"sora-2-pro": {"1280x720": 0.333333}, "cheap": 0}', encoding="utf-8")
    table = load_prices(path)
    assert table.per_second("sora-2-pro", "1280x720") == 333_333
    with pytest.raises(NoPriceError):
        table.per_second("sora-2-pro", "1792x1024")  # no default in the override
    assert table.per_second("sora-2", "1280x720") == 100_000  # built-in kept
    assert table.estimate("cheap", "1280x720", 12) == 0  # an explicit 0 is a price


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
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PriceFileError) as caught:
        load_prices(path)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert message.startswith(f"PRICES_FILE {path}: ")
    for fragment in fragments:
        assert fragment in message


def test_every_problem_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('a = -1\nb = 0.2\n[c]\nfoo = 1\n"1280x720" = "?"\n', encoding="utf-8")
    with pytest.raises(PriceFileError) as caught:
        load_prices(path)
    assert caught.value.path == path
    assert len(caught.value.problems) == 3
    assert [line.split(": ", 2)[1] for line in str(caught.value).splitlines()] == [
        "model 'a'",
        "model 'c'",
        "model 'c', '1280x720'",
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="cannot be read"):
        load_prices(tmp_path / "nope.toml")
