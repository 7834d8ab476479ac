"""`python -m bot check` as an operator runs it: a real process against the provider fakes.

No Discord, no spending: the fakes record every request, so "no POST" is checked on the wire.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import pytest

from tests.fakes.videos_fake import openai_error
from tests.harness import World

openrouter = pytest.mark.parametrize("family", ["openrouter"])


@dataclass
class Checked:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()


async def check(world: World, **env: str) -> Checked:
    """Run `python -m bot check` in an empty folder (no .env), with the world's settings and `env`.

    Asynchronously, so the fakes (on this event loop) answer it meanwhile."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        cwd=world.tmp,
        env=world.process_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return Checked(process.returncode, stdout.decode(), stderr.decode())


def assert_plain(result: Checked, *secrets: str) -> None:
    assert "Traceback" not in result.output, result.output
    for secret in secrets:
        assert secret not in result.output


def posts(world: World) -> int:
    return sum(1 for call in world.provider.calls if call.method == "POST")


async def test_a_provider_without_video_routes_is_named_plainly(world: World) -> None:
    # What the API answers once its Videos API is shut down: 404 on every video route.
    world.videos.fail_next("*", r".*", 404, body=openai_error("Not found.", code="not_found"), count=1000)
    result = await check(world)
    assert result.code == 1, result.output
    assert_plain(result, world.videos.api_key)
    [problem] = [line for line in result.lines if line.startswith("✗")]
    assert "no longer serves video generation" in problem and world.videos.base_url in problem
    assert world.videos.calls, "the check never asked the provider"
    assert posts(world) == 0, "the check must never submit anything"


async def test_usable_retired_and_unknown_models_each_get_a_line(world: World) -> None:
    result = await check(world, VIDEO_MODELS="minimax/h3,sora-2,acme/unknown-9")
    assert result.code == 0, result.output
    assert_plain(result, world.videos.api_key)
    lines = {line.split(":")[0].strip(): line for line in result.lines if line.startswith("  ")}
    assert lines["✓ minimax/h3"] == (
        "  ✓ minimax/h3: MiniMax H3 · $0.072/s · 6/4/5/7/8/9/10/11/12/13/14/15 s · "
        "1344x768 · landscape, 768x1344 · portrait, 768x768 · square, 1024x768 · landscape, "
        "768x1024 · portrait, 1536x672 · landscape"
    )
    assert "retired" in lines["✓ sora-2"]
    assert lines["✗ acme/unknown-9"] == "  ✗ acme/unknown-9: unknown model; describe it in MODELS_FILE"
    assert "✓ 2 model(s) ready" in result.lines
    assert posts(world) == 0


async def test_a_wrong_key_is_refused_plainly(world: World) -> None:
    wrong = "sk-wrong-key-0000000000000000"
    result = await check(world, OPENAI_API_KEY=wrong)
    assert result.code == 1, result.output
    assert_plain(result, wrong, world.videos.api_key)
    [problem] = [line for line in result.lines if line.startswith("✗")]
    assert "refused VIDEO_API_KEY" in problem
    assert posts(world) == 0


@openrouter
async def test_openrouter_models_come_from_its_published_list(world: World) -> None:
    fake = world.openrouter
    assert fake is not None
    result = await check(world)
    assert result.code == 0, result.output
    assert_plain(result, fake.api_key)
    assert fake.count("GET", "/videos/models") == 1
    assert "✓ the provider lists 3 video model(s)" in result.lines
    lines = {line.split(":")[0].strip(): line for line in result.lines if line.startswith("  ")}
    # Prices and lengths as the list publishes them (the built-in entry says $0.50–$0.75/s for Veo 3.1).
    assert lines["✓ google/veo-3.1"].startswith("  ✓ google/veo-3.1: Veo 3.1 · $0.40/s · 4/6/8 s · ")
    assert lines["✓ alibaba/wan-2.6"].startswith("  ✓ alibaba/wan-2.6: Wan 2.6 · $0.10–$0.15/s · 5/10/15 s")
    assert "✓ minimax/hailuo-2.3" in lines
    assert posts(world) == 0


@openrouter
async def test_openrouter_wrong_key_is_refused_plainly(world: World) -> None:
    fake = world.openrouter
    assert fake is not None
    wrong = "sk-or-v1-wrong-0000000000000000"
    result = await check(world, VIDEO_API_KEY=wrong)
    assert result.code == 1, result.output  # its model list is public: the key must be tried elsewhere
    assert_plain(result, wrong, fake.api_key)
    [problem] = [line for line in result.lines if line.startswith("✗")]
    assert "refused VIDEO_API_KEY" in problem
    assert posts(world) == 0


async def test_settings_errors_exit_2_without_the_key(world: World) -> None:
    result = await check(world, VIDEO_PROVIDER="sora", DISCORD_TOKEN="")
    assert result.code == 2, result.output
    assert_plain(result, world.videos.api_key, world.discord.token)
    assert result.stdout == ""
    assert sorted(line.split(" ")[0] for line in result.stderr.splitlines()) == [
        "DISCORD_TOKEN",
        "VIDEO_PROVIDER",
    ]
    assert world.videos.calls == [], "nothing is asked of a provider before the settings are right"
