"""Every setting of the bot, read from the environment and `.env` (see `.env.example`)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    AnyWebsocketUrl,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.videos import DIALECTS

SIZE_PATTERN = re.compile(r"^\d{2,5}x\d{2,5}$")
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


def _split_shard_ids(value: object) -> object:
    """`0,1` as [0, 1]; anything but whole numbers is refused in one plain sentence."""
    items = _split_csv(value)
    if isinstance(items, list):
        if not all(isinstance(item, int) or str(item).isdigit() for item in items):
            raise ValueError("must be shard numbers separated by commas, like 0,1")
        return [int(item) for item in items] or None
    return items


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


#: Where each provider family lives unless VIDEO_API_BASE_URL says otherwise.
DEFAULT_BASE_URLS = {
    "openrouter": "https://openrouter.ai/api/v1",
    "fal": "https://queue.fal.run",
    "openai": "https://api.openai.com/v1",
    "aimlapi": "https://api.aimlapi.com",
}
OptionalPath = Annotated[Path | None, BeforeValidator(_blank_to_none)]
OptionalUrl = Annotated[AnyHttpUrl | None, BeforeValidator(_blank_to_none)]
OptionalInt = Annotated[int | None, BeforeValidator(_blank_to_none)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_to_none)]
#: What DATABASE_URL may start with (asyncpg's spellings of PostgreSQL).
DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


class Settings(BaseSettings):
    """The operator's configuration. Names match DESIGN.md's settings table.

    What depends on the model catalogue (is DEFAULT_MODEL offered, does it allow DEFAULT_SIZE) is checked
    at start against the loaded catalogue (`bot.offer.Offer.problems`), not here.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    discord_token: SecretStr
    video_provider: str = "openrouter"
    video_api_key: SecretStr = Field(validation_alias=AliasChoices("video_api_key", "openai_api_key"))
    video_api_base_url: OptionalUrl = Field(
        default=None, validation_alias=AliasChoices("video_api_base_url", "openai_base_url")
    )
    video_models: Annotated[list[str] | None, NoDecode, BeforeValidator(_split_csv)] = None
    models_file: OptionalPath = None
    prices_file: OptionalPath = None
    discord_api_base_url: AnyHttpUrl = AnyHttpUrl("https://discord.com/api/v10")
    discord_gateway_url: AnyWebsocketUrl = AnyWebsocketUrl("wss://gateway.discord.gg/")
    discord_guild_id: OptionalInt = None
    database_path: Path = Path("data/soracord.sqlite3")
    database_url: OptionalSecret = None  # a secret: it usually holds the password
    shard_count: OptionalInt = Field(default=None, ge=1, le=100_000)
    shard_ids: Annotated[list[int] | None, NoDecode, BeforeValidator(_split_shard_ids)] = None
    job_lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    poll_interval_seconds: float = Field(default=5.0, gt=0, le=600)
    default_model: OptionalText = None
    default_size: OptionalText = None
    default_seconds: OptionalInt = None
    quota_guild_daily_usd: Usd = Decimal("5.00")
    quota_guild_monthly_usd: Annotated[Decimal | None, BeforeValidator(_blank_to_none)] = None
    quota_member_daily_usd: Usd = Decimal("1.00")
    max_concurrent_jobs_per_guild: int = Field(default=3, ge=0, le=1000)
    max_queued_jobs_per_guild: int = Field(default=10, ge=0, le=1000)
    provider_max_requests_per_second: float = Field(default=10.0, gt=0, le=100_000)
    discord_max_requests_per_second: float = Field(default=40.0, gt=0, le=100_000)
    max_download_mb: int = Field(default=512, ge=1, le=100_000)
    log_level: str = "INFO"
    work_dir: Path = Path("data/work")

    @field_validator("discord_token", "video_api_key", mode="before")
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
    def _some_models(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(value) > 25:
            raise ValueError("can offer at most 25 models (Discord's choice limit)")
        return value or None

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip().startswith(DATABASE_URL_SCHEMES):
            raise ValueError("must be a PostgreSQL URL like postgresql://user:password@host:5432/soracord")
        return value

    @field_validator("shard_ids")
    @classmethod
    def _shard_ids_within_count(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if not value:
            return None
        count = info.data.get("shard_count")
        if count is None:
            if "shard_count" in info.data:  # SHARD_COUNT is valid but unset (a wrong one says so itself)
                raise ValueError("needs SHARD_COUNT (the total number of shards of all processes)")
            return value
        if len(set(value)) != len(value):
            raise ValueError("names a shard twice")
        outside = [shard for shard in value if not 0 <= shard < count]
        if outside:
            raise ValueError(f"must be between 0 and {count - 1} (SHARD_COUNT is {count}), not {outside[0]}")
        return sorted(value)

    @field_validator("default_size")
    @classmethod
    def _size_shape(cls, value: str | None) -> str | None:
        if value is not None and not SIZE_PATTERN.match(value.strip().lower()):
            raise ValueError("must look like 1280x720")
        return value.strip().lower() if value else None

    @field_validator("default_seconds")
    @classmethod
    def _seconds_positive(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 600:
            raise ValueError("must be a whole number of seconds from 1 to 600")
        return value

    @field_validator("log_level")
    @classmethod
    def _level_known(cls, value: str) -> str:
        value = value.strip().upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value

    @property
    def api_base(self) -> str:
        """The provider's API base: VIDEO_API_BASE_URL, or the family's own."""
        if self.video_api_base_url is not None:
            return str(self.video_api_base_url).rstrip("/")
        return DEFAULT_BASE_URLS[self.video_provider]


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
