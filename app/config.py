"""Service settings: the only reader of the environment (``STORIES_*`` variables)."""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from clustering.assign import AssignParams

DEFAULT_DATABASE_URL = "sqlite:///./data/stories.db"
ENV_PREFIX = "STORIES_"
# Docker and Compose mount secrets here; a file named after a variable
# (``stories_api_key`` or ``STORIES_API_KEY``) supplies it when the variable is unset.
SECRETS_DIR = Path("/run/secrets")


def _cores() -> int:
    """The cores this process may run on: one prepare worker each."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    """Configuration of one service process."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", secrets_dir=SECRETS_DIR)

    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the database.")
    api_key: SecretStr | None = Field(None, description="Bearer token required for writes when set.")
    read_api_key: SecretStr | None = Field(
        None, description="Bearer token required for reads when set (the write key reads too)."
    )
    allow_anonymous_writes: bool = Field(
        False, description="Serve writes without a key on a non-loopback address (explicit opt-in)."
    )
    host: str = Field("127.0.0.1", description="Address `stories serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `stories serve` binds.")
    max_body_bytes: int = Field(5_000_000, ge=1024, description="Largest accepted request body.")
    max_batch: int = Field(500, ge=1, le=10_000, description="Most articles in one batch request.")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="Log level of the service."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="Log lines as JSON, or human-readable; auto: readable in a terminal, JSON otherwise."
    )
    shutdown_timeout: float = Field(
        20.0, ge=0, le=3600, description="Seconds `stories serve` lets in-flight requests finish after SIGTERM."
    )
    index_horizon_days: float = Field(
        180.0,
        le=36_500,
        description=(
            "Stories whose newest article is older than the newest stored article by more than this many days "
            "leave the in-memory indexes (they stay readable; nothing joins them any more)."
        ),
    )
    index_snapshot: str = Field(
        "auto",
        description=(
            "File a writer keeps its in-memory index in between runs: written at shutdown, loaded at start instead "
            "of replaying the window's articles, and only when the database confirms it (otherwise the start "
            "rebuilds from the database). auto: beside a SQLite database file (`stories.db.index`), none on "
            "PostgreSQL; off: none; else a path, one per replica."
        ),
    )
    workers: int = Field(
        default_factory=lambda: _cores(),
        ge=0,
        le=256,
        description=(
            "Processes that prepare articles (extract, embed, vectorise, fingerprint) outside the write lock; "
            "default: one per core. 0 prepares in the request's own thread."
        ),
    )
    role: Literal["all", "reader"] = Field(
        "all",
        description=(
            "all: serve reads and writes; reader: serve reads only (listings, stories, threads, articles, the "
            "change feed, corrections, the web page), holding no index: it starts at once and takes little "
            "memory, so reads scale with reader processes while one writer fleet takes the writes. Writes and "
            "matches get 503 on a reader."
        ),
    )
    migrate_on_start: bool = Field(
        True, description="Migrate the schema before serving; when false, refuse to start unless it is at head."
    )

    @field_validator("index_horizon_days")
    @classmethod
    def _covers_window(cls, value: float) -> float:
        window = AssignParams().window_days
        if value < window:
            raise ValueError(
                f"must be at least the {window:g}-day assignment window, or articles could not join stories "
                "the decision would still consider"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments win over the environment, the environment over secret files. A
        # missing secrets directory is the normal case outside a container, not a warning.
        secrets_dir = getattr(file_secret_settings, "secrets_dir", None)
        if secrets_dir is None or not Path(secrets_dir).is_dir():
            return init_settings, env_settings, dotenv_settings
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("log_level", "log_format", "role", "index_snapshot", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("api_key", "read_api_key")
    @classmethod
    def _usable_key(cls, value: SecretStr | None, info) -> SecretStr | None:
        # An empty key would match an empty bearer token: writes open to anyone while
        # the exposure check believes the server is protected.
        if value is not None:
            key = value.get_secret_value()
            if not key:
                raise ValueError(f"STORIES_{info.field_name.upper()} must not be empty: unset it or set a real key")
            if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
                raise ValueError(
                    f"STORIES_{info.field_name.upper()} must be printable ASCII without spaces: it travels in an "
                    "HTTP header"
                )
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("STORIES_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a file-backed SQLite URL, else None."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split("///", 1)[-1]
        return None if path in ("", ":memory:") else Path(path)

    def snapshot_path(self) -> Path | None:
        """Where the index is kept between runs (``index_snapshot``), or None."""
        if self.index_snapshot == "off":
            return None
        if self.index_snapshot != "auto":
            return Path(self.index_snapshot)
        database = self.sqlite_path()
        return None if database is None else database.with_name(database.name + ".index")

    def check_exposure(self) -> None:
        """Refuse to serve anonymous writes on a non-loopback address unless told to."""
        if self.api_key is not None or self.allow_anonymous_writes:
            return
        try:
            loopback = ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        if not loopback:
            raise SystemExit(
                f"refusing to serve on {self.host} without STORIES_API_KEY: set a key, or set "
                "STORIES_ALLOW_ANONYMOUS_WRITES=true if anonymous writes are intended"
            )


class ConfigurationError(SystemExit):
    """Invalid configuration, with a message naming each offending variable."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and secret files); exit with a readable message when invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigurationError(describe_invalid(err)) from None


def describe_invalid(err: ValidationError) -> str:
    """One line per invalid variable, named as the operator sets it; secret values are not echoed."""
    lines = ["invalid configuration:"]
    for error in err.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = ENV_PREFIX + field.upper() if field else "settings"
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        shown = "" if _confidential(field) or "input" not in error else f" (got {error['input']!r})"
        lines.append(f"  {name}: {message}{shown}")
    return "\n".join(lines)


def _confidential(field: str) -> bool:
    """Keys, and database URLs that may carry a password, never appear in messages."""
    info = Settings.model_fields.get(field)
    return field == "database_url" or (info is not None and "SecretStr" in str(info.annotation))
