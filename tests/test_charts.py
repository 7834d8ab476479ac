"""The daily spend chart: a real PNG of the expected size, with something drawn on it."""

from __future__ import annotations

import datetime
import io

import pytest
from PIL import Image

from bot.charts import BACKGROUND, BAR, BAR_TODAY, HEIGHT, WIDTH, render_daily_spend_png

START = datetime.date(2026, 3, 1)


def decode(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def colour_count(image: Image.Image, *colours: str) -> int:
    wanted = {Image.new("RGB", (1, 1), colour).getpixel((0, 0)) for colour in colours}
    return sum(count for count, pixel in image.getcolors(WIDTH * HEIGHT) or [] if pixel in wanted)


@pytest.mark.parametrize("length", [1, 7, 30, 90])
def test_chart_has_bars(length: int) -> None:
    days = [(START + datetime.timedelta(days=n), (n % 5) * 350_000) for n in range(length)]
    days[0] = (START, 1_234_567)
    image = decode(render_daily_spend_png(days, title="Spend per day — Café ☕"))
    assert image.size == (WIDTH, HEIGHT)
    assert colour_count(image, BAR, BAR_TODAY) > 50  # bars in blurple
    assert colour_count(image, BACKGROUND) < WIDTH * HEIGHT  # and not just background


def test_taller_bars_for_bigger_days() -> None:
    small = decode(render_daily_spend_png([(START, 100_000), (START, 1_000_000)], title="t"))
    big = decode(render_daily_spend_png([(START, 1_000_000), (START, 1_000_000)], title="t"))
    assert colour_count(big, BAR) > colour_count(small, BAR)
    assert colour_count(big, BAR_TODAY) == colour_count(small, BAR_TODAY)  # today, the same both times


@pytest.mark.parametrize("days", [[], [(START, 0), (START + datetime.timedelta(days=1), 0)]])
def test_empty_chart_still_renders(days: list[tuple[datetime.date, int]]) -> None:
    image = decode(render_daily_spend_png(days, title="Nothing yet"))
    assert image.size == (WIDTH, HEIGHT)
    assert colour_count(image, BAR, BAR_TODAY) == 0
    assert len(image.getcolors(WIDTH * HEIGHT) or []) > 2  # title, grid and labels drawn
