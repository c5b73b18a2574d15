"""Application settings: one pydantic-settings object, read through a cached accessor.

Tests override settings by calling ``get_settings.cache_clear()`` after changing the
environment, or by passing ``Settings(...)`` explicitly to the factories that accept one.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# Values shipped in examples and docs: they must never be accepted outside development.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "changethis", "secret", "dev-secret-key", "please-change-me"}
)
MIN_SECRET_LENGTH = 32
# Read from PERFWATCH_DATA_DIR when SECRET_KEY is empty.
SECRET_KEY_FILE = "secret_key"

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SettingsError(RuntimeError):
    """Configuration that cannot work; the message says which variable to fix."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("perfwatch", appauthor=False))


def normalise_database_url(raw: str) -> str:
    """Return ``raw`` rewritten for the async driver, or raise ``ValueError`` saying why not."""
    raw = raw.strip()
    if "://" not in raw:
        raise ValueError(
            "expected a URL such as postgresql://user:password@host:5432/dbname "
            "or sqlite+aiosqlite:///path/to/file.db"
        )
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:  # ValueError: e.g. a non-numeric port
        raise ValueError(f"cannot parse it as a database URL ({exc})") from exc
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported scheme {url.drivername!r}; use postgresql:// (asyncpg) or sqlite+aiosqlite://"
        )
    url = url.set(drivername=driver)
    if driver.startswith("postgresql") and not url.host and not url.query.get("host"):
        raise ValueError(
            "a PostgreSQL URL needs a host, e.g. postgresql://user@localhost/perfwatch"
        )
    if driver.startswith("sqlite") and not url.database:
        raise ValueError("a SQLite URL needs a file path, e.g. sqlite+aiosqlite:///./perfwatch.db")
    return url.render_as_string(hide_password=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    environment: Environment = Environment.DEVELOPMENT
    secret_key: str = "dev-secret-key"
    log_level: str = "INFO"

    database_url: str | None = None
    redis_url: str | None = None
    perfwatch_data_dir: Path = Field(default_factory=default_data_dir)
    # Where `action=archive` writes raw days before they are dropped (docs/retention.md);
    # unset: <data dir>/archive. A volume of its own under compose.
    perfwatch_archive_dir: Path | None = None

    db_pool_size: Annotated[int, Field(ge=1, le=1000)] = 20
    db_max_overflow: Annotated[int, Field(ge=0, le=1000)] = 10
    db_pool_timeout: Annotated[float, Field(gt=0)] = 30.0
    db_pool_recycle: Annotated[int, Field(ge=-1)] = 3600
    db_echo: bool = False
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 30_000
    db_connect_timeout: Annotated[float, Field(gt=0)] = 10.0
    slow_query_ms: Annotated[float, Field(ge=0)] = 200.0

    # `perfwatch serve` runs the sampler in-process unless this is false (API-only replicas).
    run_sampler: bool = True
    # The server and `perfwatch sampler` run the maintenance jobs (tier roll-up, retention,
    # disk cap) unless this is false; a lock keeps it to one runner at a time either way.
    run_maintenance: bool = True
    # Snapshots kept on disk while the database is away (oldest dropped beyond this). A day at
    # the default intervals is ~373,000; this holds about 32 hours (docs/metrics.md).
    sampler_spool_max_rows: Annotated[int, Field(ge=1000)] = 500_000

    # HTTP API. Access tokens are short-lived; refresh tokens rotate on every use.
    # Fractions are allowed (tests use a one-second lifetime).
    access_token_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 15
    refresh_token_days: Annotated[float, Field(gt=0, le=365)] = 7
    # A verified access token's account is remembered in-process this long (0: never), so a
    # polling dashboard costs no database read per request; see perfwatch.users.principals.
    auth_cache_seconds: Annotated[float, Field(ge=0, le=60)] = 5
    # Request bodies larger than this are refused with 413 (declared or streamed).
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    # Comma-separated browser origins allowed by CORS, e.g. "https://perfwatch.example.com".
    # Empty (the default) sends no CORS headers: browsers on other origins are refused.
    cors_origins: str = ""
    # GET /metrics (Prometheus) needs a viewer token, or this static bearer token when set
    # (scrapers cannot log in). Empty: viewer tokens only.
    metrics_token: str | None = None

    admin_username: str = "admin"
    admin_password: str | None = None
    admin_email: str | None = None

    @field_validator(
        "database_url",
        "redis_url",
        "admin_password",
        "admin_email",
        "metrics_token",
        "perfwatch_archive_dir",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("perfwatch_data_dir", mode="before")
    @classmethod
    def _blank_data_dir_is_default(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return default_data_dir()
        # "~" is not expanded in .env files; SQLite would otherwise open a literal "~" path.
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        return None if value is None else normalise_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://host:6379/0, rediss://… or unix:///path")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _refuse_weak_secrets_outside_development(self) -> Settings:
        if not self.secret_key:
            # Containers keep a generated key in their data volume (docker/backend/entrypoint.sh).
            key_file = self.perfwatch_data_dir / SECRET_KEY_FILE
            if key_file.is_file():
                self.secret_key = key_file.read_text(encoding="utf-8").strip()
        if self.environment is Environment.DEVELOPMENT:
            return self
        if self.secret_key in PLACEHOLDER_SECRETS or len(self.secret_key) < MIN_SECRET_LENGTH:
            raise ValueError(
                "SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters "
                f"when ENVIRONMENT={self.environment.value} "
                '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        return self

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("use at least 16 random characters (e.g. openssl rand -hex 24)")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, value: str) -> str:
        for origin in (item.strip() for item in value.split(",")):
            if origin and origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(
                    f"{origin!r} is not an origin; expected e.g. https://perfwatch.example.com"
                )
        return value

    @property
    def cors_origin_list(self) -> list[str]:
        return [
            origin.strip().rstrip("/") for origin in self.cors_origins.split(",") if origin.strip()
        ]

    @property
    def is_embedded(self) -> bool:
        """True when no DATABASE_URL is set and PerfWatch runs on its embedded SQLite file."""
        return self.database_url is None

    @property
    def sqlite_path(self) -> Path:
        return self.perfwatch_data_dir / "perfwatch.db"

    @property
    def archive_dir(self) -> Path:
        return self.perfwatch_archive_dir or self.perfwatch_data_dir / "archive"

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def database_dialect(self) -> str:
        return make_url(self.effective_database_url).get_backend_name()

    def safe_database_url(self) -> str:
        """The database URL with the password masked, for logs and error messages."""
        url: URL = make_url(self.effective_database_url)
        return url.render_as_string(hide_password=True)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one readable ``SettingsError``.

    ``PERFWATCH_ENV_FILE`` names the dotenv file to read (default ``.env`` in the working
    directory); set it empty to read none, as the test suite does.
    """
    env_file = os.environ.get("PERFWATCH_ENV_FILE", ".env") or None
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{field.upper()}: {message}")
        # One line, so the CLI's error stays a single line and logs keep it together.
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
