"""Every setting of the bot, read from the environment and `.env` (see `.env.example`)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

from pydantic import (
    AnyHttpUrl,
    AnyWebsocketUrl,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.videos import DIALECTS

SIZE_PATTERN = re.compile(r"^\d{2,5}x\d{2,5}$")
ALLOWED_SECONDS = (4, 8, 12)
MAX_BUDGET_USD = Decimal("100000")


def _blank_to_none(value: object) -> object:
    """An empty `NAME=` line in `.env` means "unset", not an empty string."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def usd_to_micros(value: Decimal) -> int:
    """Dollars (at most two decimals) to integer micro-dollars."""
    return int(value * 1_000_000)


def parse_usd(value: object) -> Decimal:
    """A non-negative dollar amount with at most two decimals, below a sane maximum."""
    try:
        amount = Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation:
        raise ValueError("must be a dollar amount like 5 or 2.50") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be a dollar amount of 0 or more")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("must have at most two decimals (cents)")
    if amount > MAX_BUDGET_USD:
        raise ValueError(f"must be at most {MAX_BUDGET_USD}")
    return amount


Usd = Annotated[Decimal, BeforeValidator(parse_usd)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]


class Settings(BaseSettings):
    """The operator's configuration. Names match DESIGN.md's settings table."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    discord_token: SecretStr
    openai_api_key: SecretStr
    openai_base_url: AnyHttpUrl = AnyHttpUrl("https://api.openai.com/v1")
    video_provider: str = "openai"
    video_models: Annotated[list[str], NoDecode, BeforeValidator(_split_csv)] = ["sora-2", "sora-2-pro"]
    prices_file: Annotated[Path | None, BeforeValidator(_blank_to_none)] = None
    discord_api_base_url: AnyHttpUrl = AnyHttpUrl("https://discord.com/api/v10")
    discord_gateway_url: AnyWebsocketUrl = AnyWebsocketUrl("wss://gateway.discord.gg/")
    discord_guild_id: Annotated[int | None, BeforeValidator(_blank_to_none)] = None
    database_path: Path = Path("data/soracord.sqlite3")
    poll_interval_seconds: float = Field(default=5.0, gt=0, le=600)
    default_model: str = "sora-2"
    default_size: str = "1280x720"
    default_seconds: int = 4
    quota_guild_daily_usd: Usd = Decimal("5.00")
    quota_guild_monthly_usd: Annotated[Decimal | None, BeforeValidator(_blank_to_none)] = None
    quota_member_daily_usd: Usd = Decimal("1.00")
    max_concurrent_jobs_per_guild: int = Field(default=3, ge=0, le=1000)
    log_level: str = "INFO"
    work_dir: Path = Path("data/work")

    @field_validator("discord_token", "openai_api_key", mode="before")
    @classmethod
    def _not_blank(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty; paste the value after the = sign")
        return value

    @field_validator("quota_guild_monthly_usd", mode="after")
    @classmethod
    def _monthly_is_usd(cls, value: Decimal | None) -> Decimal | None:
        return None if value is None else parse_usd(value)

    @field_validator("video_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in DIALECTS:
            raise ValueError(f"must be one of: {', '.join(sorted(DIALECTS))}")
        return value

    @field_validator("video_models")
    @classmethod
    def _some_models(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one model, e.g. sora-2,sora-2-pro")
        if len(value) > 25:
            raise ValueError("can offer at most 25 models (Discord's choice limit)")
        return value

    @field_validator("default_size")
    @classmethod
    def _size_shape(cls, value: str) -> str:
        if not SIZE_PATTERN.match(value):
            raise ValueError("must look like 1280x720")
        return value

    @field_validator("default_seconds")
    @classmethod
    def _seconds_allowed(cls, value: int) -> int:
        if value not in ALLOWED_SECONDS:
            raise ValueError("must be 4, 8 or 12")
        return value

    @field_validator("log_level")
    @classmethod
    def _level_known(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value

    @model_validator(mode="after")
    def _default_model_offered(self) -> Settings:
        if self.default_model not in self.video_models:
            raise ValueError(
                f"DEFAULT_MODEL {self.default_model!r} must be one of VIDEO_MODELS "
                f"({','.join(self.video_models)})"
            )
        return self

    @property
    def api_base(self) -> str:
        return str(self.openai_base_url).rstrip("/")


def describe_errors(error: ValidationError) -> list[str]:
    """One plain line per problem, naming the environment variable; never the value itself."""
    lines = []
    for problem in error.errors():
        name = "_".join(str(part) for part in problem["loc"]).upper() if problem["loc"] else ""
        if problem["type"] == "missing":
            lines.append(f"{name} is not set: add {name}=... to .env or the environment (see .env.example).")
            continue
        message = problem["msg"].removeprefix("Value error, ")
        if name:
            lines.append(f"{name} is invalid: {message}. Fix it in .env or the environment.")
        else:
            lines.append(f"{message}.")
    return lines
