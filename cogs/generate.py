"""`/video generate`: a prompt and an optional image in, a clip with sound out."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.validation import MAX_PROMPT_CHARS, allowed_sizes
from cogs.intake import VideoRequest, bot_of, take_request
from cogs.video_group import add_to_video_group, remove_from_video_group


@app_commands.command(
    name="generate", description="Make a short video with sound from a prompt (and an image)"
)
@app_commands.describe(
    prompt="What should happen in the video?",
    image="Optional first frame: a JPEG, PNG or WebP (it is cropped to the video's size)",
    model="Which model to use",
    size="Width x height in pixels",
    seconds="Length of the video",
)
async def generate(
    interaction: discord.Interaction,
    prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
    image: discord.Attachment | None = None,
    model: str | None = None,
    size: str | None = None,
    seconds: Literal[4, 8, 12] | None = None,
) -> None:
    settings = bot_of(interaction).settings
    await take_request(
        interaction,
        VideoRequest(
            prompt=prompt,
            model=model or settings.default_model,
            size=size or settings.default_size,
            seconds=seconds or settings.default_seconds,
            image=image,
        ),
    )


@generate.autocomplete("model")
async def model_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    models = bot_of(interaction).settings.video_models
    return [app_commands.Choice(name=m, value=m) for m in models if current.lower() in m.lower()][:25]


@generate.autocomplete("size")
async def size_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Only the sizes the chosen (or default) model allows."""
    model = getattr(interaction.namespace, "model", None) or bot_of(interaction).settings.default_model
    return [app_commands.Choice(name=s, value=s) for s in allowed_sizes(model) if current in s]


async def setup(bot: commands.Bot) -> None:
    add_to_video_group(bot.tree, generate)


async def teardown(bot: commands.Bot) -> None:
    remove_from_video_group(bot.tree, "generate")
