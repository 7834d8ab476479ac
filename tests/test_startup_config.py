"""`python -m bot` with missing or malformed settings: exit 2, one plain line per problem, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = (
    "DISCORD_TOKEN",
    "OPENAI_API_KEY",
    "POLL_INTERVAL_SECONDS",
    "DEFAULT_SECONDS",
    "QUOTA_GUILD_DAILY_USD",
)


def run_bot(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the bot in an empty folder (no .env) with only `env` as its settings."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "OPENAI_", "VIDEO_", "QUOTA_", "DEFAULT_"))
    }
    clean |= {"PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_settings_exit_2_with_one_line_each(tmp_path: Path) -> None:
    result = run_bot(tmp_path, {})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "DISCORD_TOKEN is not set: add DISCORD_TOKEN=... to .env or the environment (see .env.example).",
        "VIDEO_API_KEY is not set: add VIDEO_API_KEY=... to .env or the environment (see .env.example).",
    ]
    assert "Traceback" not in result.stderr


def test_malformed_settings_named_without_their_values(tmp_path: Path) -> None:
    secret = "sk-very-secret-value-123"
    result = run_bot(
        tmp_path,
        {
            "DISCORD_TOKEN": "",
            "OPENAI_API_KEY": secret,
            "POLL_INTERVAL_SECONDS": "soon",
            "DEFAULT_SECONDS": "0",
            "QUOTA_GUILD_DAILY_USD": "1.234",
            "VIDEO_PROVIDER": "nonsense",
        },
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 5, lines
    for name in (
        "DISCORD_TOKEN",
        "POLL_INTERVAL_SECONDS",
        "DEFAULT_SECONDS",
        "QUOTA_GUILD_DAILY_USD",
        "VIDEO_PROVIDER",
    ):
        assert sum(line.startswith(name + " ") for line in lines) == 1, (name, lines)
    assert "from 1 to 600" in result.stderr
    assert "at most two decimals" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=\nOPENAI_API_KEY=key\n")
    result = run_bot(tmp_path, {})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "DISCORD_TOKEN is invalid: is empty; paste the value after the = sign. "
        "Fix it in .env or the environment."
    ]
    (tmp_path / ".env").write_text(
        "DISCORD_TOKEN=t\nOPENAI_API_KEY=key\nVIDEO_PROVIDER=openai\n"
        "VIDEO_MODELS=sora-2,sora-2-pro\nDEFAULT_MODEL=sora-3\n"
    )
    result = run_bot(tmp_path, {})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "DEFAULT_MODEL sora-3 is not offered; choose one of: sora-2, sora-2-pro."
    ]


def test_invite_prints_scopes_and_permissions(tmp_path: Path) -> None:
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"  # id 123456789012345678
    result = run_bot(tmp_path, {"DISCORD_TOKEN": token, "OPENAI_API_KEY": "k"}, "invite")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert "client_id=123456789012345678" in url
    assert "scope=bot+applications.commands" in url
    # View Channel 1024 + Send Messages 2048 + Embed Links 16384 + Attach Files 32768 + Read History 65536
    assert "permissions=117760" in url


def test_invite_with_a_malformed_token_says_so(tmp_path: Path) -> None:
    result = run_bot(tmp_path, {"DISCORD_TOKEN": "not-a-token", "OPENAI_API_KEY": "k"}, "invite")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "DISCORD_TOKEN does not look like a bot token; "
        "copy it again from the Developer Portal (Bot -> Reset Token)."
    ]


def test_a_bad_price_file_stops_the_bot_naming_the_entry(tmp_path: Path) -> None:
    (tmp_path / "prices.toml").write_text('sora-2 = "cheap"\n')
    result = run_bot(
        tmp_path, {"DISCORD_TOKEN": "t", "OPENAI_API_KEY": "k", "PRICES_FILE": str(tmp_path / "prices.toml")}
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("PRICES_FILE ") and "sora-2" in line and "Traceback" not in result.stderr
