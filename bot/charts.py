"""A small PNG bar chart of spend per day, drawn with Pillow for Discord's dark theme.

Synchronous and CPU-bound: call it in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import datetime
import io
import unicodedata

from PIL import Image, ImageDraw, ImageFont

from bot.money import MICROS_PER_CENT, MICROS_PER_DOLLAR, format_usd

WIDTH, HEIGHT = 800, 360
MARGIN = 20
TICKS = 4  # horizontal grid lines above zero, at most
MAX_BAR_WIDTH = 48

BACKGROUND = "#2b2d31"  # Discord's dark embed background
GRID = "#3f4147"
TEXT = "#dbdee1"
MUTED = "#949ba4"
BAR = "#5865f2"  # blurple
BAR_TODAY = "#8c96f7"  # the last day, lighter

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def render_daily_spend_png(days: list[tuple[datetime.date, int]], *, title: str) -> bytes:
    """Spend per day (micro-dollars, oldest first) as a WIDTH × HEIGHT PNG with dollar axis labels."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title_font, label_font = ImageFont.load_default(size=20), ImageFont.load_default(size=13)

    total = f"Total {format_usd(sum(amount for _, amount in days))}"
    total_width = int(draw.textlength(total, font=title_font))
    draw.text((WIDTH - MARGIN - total_width, MARGIN), total, fill=MUTED, font=title_font)
    title = _fit(draw, _drawable(title, title_font), title_font, WIDTH - 3 * MARGIN - total_width)
    draw.text((MARGIN, MARGIN), title, fill=TEXT, font=title_font)

    # An empty chart still gets a sensible $1.00 scale.
    peak = max((amount for _, amount in days), default=0) or MICROS_PER_DOLLAR
    step = _step(peak)
    lines = -(-peak // step)
    top_value = lines * step
    labels = [format_usd(step * line) for line in range(lines + 1)]
    label_width = max(int(draw.textlength(label, font=label_font)) for label in labels)

    left, right = MARGIN + label_width + 10, WIDTH - MARGIN
    top, bottom = MARGIN + 44, HEIGHT - MARGIN - 24
    for line, label in enumerate(labels):
        y = bottom - (bottom - top) * line // lines
        draw.line((left, y, right, y), fill=GRID, width=1)
        draw.text((left - 8, y), label, fill=MUTED, font=label_font, anchor="rm")

    if not any(amount for _, amount in days):
        middle = ((left + right) // 2, (top + bottom) // 2)
        draw.text(middle, "No spending in this period", fill=MUTED, font=label_font, anchor="mm")
    if not days:
        return _png(image)

    plot_width = right - left
    bar_width = max(1, min(MAX_BAR_WIDTH, plot_width * 7 // (10 * len(days))))
    date_width = int(draw.textlength("Sep 30", font=label_font)) + 12
    every = max(1, -(-date_width * len(days) // plot_width))
    for index, (day, amount) in enumerate(days):
        center = left + plot_width * (2 * index + 1) // (2 * len(days))
        if amount:
            height = max(1, amount * (bottom - top) // top_value)
            radius = min(3, bar_width // 2, height // 2)
            draw.rounded_rectangle(
                (center - bar_width // 2, bottom - height, center - bar_width // 2 + bar_width - 1, bottom),
                radius=radius,
                fill=BAR_TODAY if index == len(days) - 1 else BAR,
            )
        if (len(days) - 1 - index) % every == 0:  # count from today, so today always has its label
            draw.text((center, bottom + 6), f"{day:%b} {day.day}", fill=MUTED, font=label_font, anchor="mt")
    return _png(image)


def _step(highest: int) -> int:
    """A round grid step (1, 2 or 5 × a power of ten cents) giving at most TICKS lines up to `highest`."""
    step = MICROS_PER_CENT
    while True:
        for factor in (1, 2, 5):
            if step * factor * TICKS >= highest:
                return step * factor
        step *= 10


def _drawable(text: str, font: Font) -> str:
    """`text` without what the font cannot draw (Pillow's default font is ASCII only): letters lose
    their accents, other characters (emoji, dashes, other scripts) are left out rather than shown as boxes.
    """
    missing = bytes(font.getmask("\U0010ffff"))
    kept = "".join(
        char
        for char in unicodedata.normalize("NFKD", text)
        if char.isspace() or (not unicodedata.combining(char) and bytes(font.getmask(char)) != missing)
    )
    return " ".join(kept.split())


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    """`text`, cut short with an ellipsis if it is wider than `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
