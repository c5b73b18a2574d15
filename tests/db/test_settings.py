"""Settings: URL normalisation, the embedded default, validation messages, secrets, caching."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from perfwatch.config import (
    MIN_SECRET_LENGTH,
    Environment,
    Settings,
    SettingsError,
    get_settings,
    load_settings,
    normalise_database_url,
)
from perfwatch.db.engine import build_engine
from perfwatch.db.session import check_database

STRONG_SECRET = "s" * MIN_SECRET_LENGTH


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No settings from the caller's environment or a .env file; data dir inside tmp_path."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # a developer's .env must not leak in
    data_dir = tmp_path / "data"
    monkeypatch.setenv("PERFWATCH_DATA_DIR", str(data_dir))
    return data_dir


# ----- DATABASE_URL -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "postgres://pw:secret@db.example:5432/perfwatch",
            "postgresql+asyncpg://pw:secret@db.example:5432/perfwatch",
        ),
        ("postgresql://pw@localhost/perfwatch", "postgresql+asyncpg://pw@localhost/perfwatch"),
        (
            "postgresql+asyncpg://pw@localhost/perfwatch",
            "postgresql+asyncpg://pw@localhost/perfwatch",
        ),
        ("  postgresql://pw@localhost/perfwatch  ", "postgresql+asyncpg://pw@localhost/perfwatch"),
        (
            "postgresql://pw@/perfwatch?host=/var/run/postgresql",
            "postgresql+asyncpg://pw@/perfwatch?host=%2Fvar%2Frun%2Fpostgresql",
        ),
        (
            "sqlite+aiosqlite:////var/lib/perfwatch/pw.db",
            "sqlite+aiosqlite:////var/lib/perfwatch/pw.db",
        ),
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
    ],
)
def test_database_url_is_normalised_for_the_async_driver(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", raw)
    settings = load_settings()
    assert settings.database_url == expected
    assert settings.effective_database_url == expected
    assert not settings.is_embedded


def test_database_url_keeps_an_escaped_password_intact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://pw:p%40ss%2Fword@db:5432/perfwatch")
    settings = load_settings()
    assert make_url(settings.effective_database_url).password == "p@ss/word"
    assert "p%40ss" not in settings.safe_database_url()
    assert "***" in settings.safe_database_url()


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        ("localhost:5432/perfwatch", "expected a URL such as postgresql://"),
        ("mysql://root@localhost/perfwatch", "unsupported scheme 'mysql'"),
        ("postgresql:///perfwatch", "needs a host"),
        ("postgres://", "needs a host"),
        ("sqlite+aiosqlite://", "needs a file path"),
        ("postgresql://pw@localhost:notaport/perfwatch", "cannot parse"),
    ],
)
def test_malformed_database_url_names_the_variable_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, raw: str, hint: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", raw)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "DATABASE_URL" in message
    assert hint in message
    assert "\n" not in message  # one line: the CLI prints it as a single error line


@pytest.mark.parametrize("raw", ["mysql://u@h/db", "nonsense", "postgresql:///db"])
def test_normalise_database_url_raises_value_error(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_database_url(raw)


def test_unset_database_url_means_embedded_sqlite_in_the_data_dir(_clean_environment: Path) -> None:
    settings = load_settings()
    assert settings.is_embedded
    assert settings.database_url is None
    assert settings.perfwatch_data_dir == _clean_environment
    assert settings.sqlite_path == _clean_environment / "perfwatch.db"
    assert (
        settings.effective_database_url
        == f"sqlite+aiosqlite:///{_clean_environment / 'perfwatch.db'}"
    )
    assert settings.database_dialect == "sqlite"


def test_blank_database_url_is_treated_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "   ")
    monkeypatch.setenv("REDIS_URL", "")
    settings = load_settings()
    assert settings.is_embedded
    assert settings.redis_url is None


async def test_embedded_database_file_is_created_inside_the_data_dir(
    _clean_environment: Path,
) -> None:
    nested = _clean_environment / "not" / "yet" / "there"
    settings = Settings(perfwatch_data_dir=nested)
    assert not nested.exists()
    engine = build_engine(settings)
    try:
        assert await check_database(engine, timeout=5) is None
    finally:
        await engine.dispose()
    assert (nested / "perfwatch.db").is_file()


async def test_data_dir_with_tilde_is_expanded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # .env files are not expanded by a shell, so "~/..." reaches the settings literally.
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PERFWATCH_DATA_DIR", "~/perfwatch-data")
    settings = load_settings()
    assert settings.perfwatch_data_dir == home / "perfwatch-data"
    engine = build_engine(settings)
    try:
        assert await check_database(engine, timeout=5) is None
    finally:
        await engine.dispose()
    assert (home / "perfwatch-data" / "perfwatch.db").is_file()


def test_blank_data_dir_falls_back_to_the_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFWATCH_DATA_DIR", " ")
    settings = load_settings()
    assert settings.perfwatch_data_dir.name == "perfwatch"
    assert settings.perfwatch_data_dir.is_absolute()


# ----- REDIS_URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["redis://localhost:6379/0", "rediss://:pw@cache.example:6380/1", "unix:///run/redis.sock"],
)
def test_valid_redis_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    assert load_settings().redis_url == url


@pytest.mark.parametrize(
    "url", ["localhost:6379", "http://localhost:6379", "memcached://localhost"]
)
def test_invalid_redis_url_is_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "REDIS_URL" in str(caught.value)
    assert "redis://host:6379/0" in str(caught.value)


# ----- pool -------------------------------------------------------------------------------------


def test_pool_defaults() -> None:
    settings = load_settings()
    assert settings.db_pool_size == 20
    assert settings.db_max_overflow == 10
    assert settings.db_pool_timeout == 30
    assert settings.db_pool_recycle == 3600


async def test_postgres_engine_uses_the_pool_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://pw@localhost/perfwatch")
    monkeypatch.setenv("DB_POOL_SIZE", "7")
    monkeypatch.setenv("DB_POOL_TIMEOUT", "4.5")
    settings = load_settings()
    engine = build_engine(settings)  # building does not connect
    try:
        pool = engine.sync_engine.pool
        assert pool.size() == 7  # type: ignore[attr-defined]
        assert pool.timeout() == 4.5  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("name", "value"), [("DB_POOL_SIZE", "0"), ("DB_MAX_OVERFLOW", "-1"), ("DB_POOL_TIMEOUT", "0")]
)
def test_out_of_range_pool_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


# ----- environment, secrets, log level ---------------------------------------------------------


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize(
    "secret", [None, "", "changeme", "dev-secret-key", "x" * (MIN_SECRET_LENGTH - 1)]
)
def test_weak_secret_key_is_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch, environment: str, secret: str | None
) -> None:
    monkeypatch.setenv("ENVIRONMENT", environment)
    if secret is not None:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "SECRET_KEY" in message
    assert f"ENVIRONMENT={environment}" in message
    assert "\n" not in message


@pytest.mark.parametrize("environment", ["production", "test"])
def test_strong_secret_key_is_accepted_outside_development(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    settings = load_settings()
    assert settings.environment is Environment(environment)
    assert settings.secret_key == STRONG_SECRET


@pytest.mark.parametrize("secret", [None, "", "changeme", "short"])
def test_development_accepts_placeholder_secrets(
    monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    if secret is not None:
        monkeypatch.setenv("SECRET_KEY", secret)
    settings = load_settings()
    assert settings.environment is Environment.DEVELOPMENT


def test_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")
    with pytest.raises(SettingsError, match="ENVIRONMENT"):
        load_settings()


def test_log_level_is_normalised_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(SettingsError, match="LOG_LEVEL"):
        load_settings()


def test_several_problems_are_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://u@h/db")
    monkeypatch.setenv("REDIS_URL", "localhost")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "DATABASE_URL" in str(caught.value)
    assert "REDIS_URL" in str(caught.value)


# ----- sources and caching -----------------------------------------------------------------------


def test_perfwatch_env_file_empty_reads_no_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("ADMIN_USERNAME=from-dotenv\n", encoding="utf-8")
    monkeypatch.setenv("PERFWATCH_ENV_FILE", "")
    assert load_settings().admin_username == "admin"
    monkeypatch.setenv("PERFWATCH_ENV_FILE", "other.env")
    Path("other.env").write_text("ADMIN_USERNAME=from-other\n", encoding="utf-8")
    assert load_settings().admin_username == "from-other"


def test_dotenv_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("ADMIN_USERNAME=from-dotenv\nDB_POOL_SIZE=3\n", encoding="utf-8")
    monkeypatch.delenv("PERFWATCH_ENV_FILE")  # the suite disables dotenv files; restore the default
    monkeypatch.setenv("DB_POOL_SIZE", "9")
    settings = load_settings()
    assert settings.admin_username == "from-dotenv"
    assert settings.db_pool_size == 9


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://pw@first-host/perfwatch")
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("DATABASE_URL", "postgresql://pw@second-host/perfwatch")
    assert make_url(get_settings().effective_database_url).host == "first-host"
    get_settings.cache_clear()
    reread = get_settings()
    assert reread is not first
    assert make_url(reread.effective_database_url).host == "second-host"


def test_get_settings_raises_settings_error_for_bad_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://u@h/db")
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        get_settings()
