"""Service settings: the only reader of the environment (``STORIES_*`` variables)."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./data/stories.db"


class Settings(BaseSettings):
    """Configuration of one service process."""

    model_config = SettingsConfigDict(env_prefix="STORIES_", extra="ignore", secrets_dir=None)

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
    log_level: str = Field("info", description="Log level of the service.")

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
