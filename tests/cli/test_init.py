"""``initialise()`` and ``perfwatch init``: idempotent, password handling, concurrent runs."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from perfwatch.bootstrap.defaults import DEFAULT_POLICIES
from perfwatch.bootstrap.init import InitReport, initialise
from perfwatch.config import Settings
from perfwatch.contract.runtime_config import CATALOGUE as DEFAULT_CONFIG
from perfwatch.db.engine import build_engine
from perfwatch.db.session import make_sessionmaker, unit_of_work
from perfwatch.errors import ValidationFailedError
from perfwatch.models import ArchivePolicy, ConfigEntry, User, UserRole
from perfwatch.users.passwords import check_password_strength, verify_password
from tests.support.helpers import (
    BIN_DIR,
    fetch,
    make_settings,
    migrate,
    perfwatch,
    run_concurrently,
    subprocess_env,
)

STRONG_SECRET = "k" * 48
ADMIN_PASSWORD = "a sufficiently long admin passphrase"
_GENERATED = re.compile(r"Generated password for '([^']+)' \(shown once, store it now\): (\S+)")


def init_settings(url: str, **overrides: Any) -> Settings:
    return make_settings(url, secret_key=STRONG_SECRET, **overrides)


@pytest.fixture
async def init_engine(fresh_db: str) -> AsyncIterator[AsyncEngine]:
    engine = build_engine(init_settings(fresh_db))
    yield engine
    await engine.dispose()


async def run_initialise(engine: AsyncEngine, settings: Settings) -> InitReport:
    async with unit_of_work(make_sessionmaker(engine)) as session:
        return await initialise(session, settings)


async def database_state(engine: AsyncEngine) -> dict[str, Any]:
    async with make_sessionmaker(engine)() as session:
        users = (await session.execute(select(User).order_by(User.username))).scalars().all()
        config = (await session.execute(select(ConfigEntry))).scalars().all()
        policies = (await session.execute(select(ArchivePolicy))).scalars().all()
    return {
        "users": [(u.id, u.username, u.role, u.password_hash, u.is_active) for u in users],
        "config": {
            entry.key: (entry.value, entry.description, entry.updated_by) for entry in config
        },
        "policies": {
            p.metric_type: (
                p.id,
                p.raw_days,
                p.minute_days,
                p.retention_days,
                p.action,
            )
            for p in policies
        },
    }


def expected_defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    config = {d.key: (d.default, d.description, "init") for d in DEFAULT_CONFIG}
    policies = {
        d.metric_type: (d.raw_days, d.minute_days, d.retention_days, d.action)
        for d in DEFAULT_POLICIES
    }
    return config, policies


# ----- initialise() -------------------------------------------------------------------------------


async def test_initialise_twice_gives_the_same_state(
    init_engine: AsyncEngine, fresh_db: str
) -> None:
    settings = init_settings(fresh_db, admin_password=ADMIN_PASSWORD)
    first = await run_initialise(init_engine, settings)
    after_first = await database_state(init_engine)

    expected_config, expected_policies = expected_defaults()
    [(_, username, role, password_hash, is_active)] = after_first["users"]
    assert (username, role, is_active) == ("admin", UserRole.ADMIN, True)
    assert verify_password(ADMIN_PASSWORD, password_hash)
    assert after_first["config"] == expected_config
    assert {k: v[1:] for k, v in after_first["policies"].items()} == expected_policies
    assert len(first.created) == 1 + len(DEFAULT_CONFIG) + len(DEFAULT_POLICIES)
    assert first.skipped == []
    assert first.generated_admin_password is None

    second = await run_initialise(init_engine, settings)
    assert second.created == []
    assert len(second.skipped) == len(first.created)
    assert all(item.endswith("(exists)") for item in second.skipped)
    assert second.generated_admin_password is None
    assert await database_state(init_engine) == after_first


async def test_initialise_keeps_changed_values(init_engine: AsyncEngine, fresh_db: str) -> None:
    settings = init_settings(fresh_db, admin_password=ADMIN_PASSWORD)
    await run_initialise(init_engine, settings)
    key = DEFAULT_CONFIG[0].key
    async with unit_of_work(make_sessionmaker(init_engine)) as session:
        entry = await session.get(ConfigEntry, key)
        assert entry is not None
        entry.value = 12345
    report = await run_initialise(init_engine, settings)
    assert f"config {key} (exists)" in report.skipped
    assert (await database_state(init_engine))["config"][key][0] == 12345


async def test_admin_password_from_settings_is_used(session: AsyncSession) -> None:
    username = f"admin-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        environment="test",
        secret_key=STRONG_SECRET,
        admin_username=username,
        admin_password=ADMIN_PASSWORD,
        admin_email=f"{username}@example.com",
    )
    report = await initialise(session, settings)
    assert f"admin user {username!r}" in report.created
    assert report.generated_admin_password is None
    admin = (await session.execute(select(User).where(User.username == username))).scalar_one()
    assert admin.role is UserRole.ADMIN
    assert admin.email == f"{username}@example.com"
    assert verify_password(ADMIN_PASSWORD, admin.password_hash)
    assert not verify_password(ADMIN_PASSWORD + "x", admin.password_hash)


async def test_missing_admin_password_is_generated(session: AsyncSession) -> None:
    username = f"admin-{uuid.uuid4().hex[:8]}"
    settings = Settings(environment="test", secret_key=STRONG_SECRET, admin_username=username)
    report = await initialise(session, settings)
    password = report.generated_admin_password
    assert password is not None
    check_password_strength(password)  # a generated password passes our own rules
    admin = (await session.execute(select(User).where(User.username == username))).scalar_one()
    assert verify_password(password, admin.password_hash)
    again = await initialise(session, settings)
    assert again.generated_admin_password is None
    assert f"admin user {username!r} (exists)" in again.skipped


async def test_weak_admin_password_is_refused_in_production(session: AsyncSession) -> None:
    username = f"admin-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        environment="production",
        secret_key=STRONG_SECRET,
        admin_username=username,
        admin_password="short",
    )
    with pytest.raises(ValidationFailedError, match="ADMIN_PASSWORD refused in production"):
        await initialise(session, settings)
    found = await session.execute(select(User).where(User.username == username))
    assert found.scalar_one_or_none() is None


@pytest.mark.parametrize("environment", ["development", "test"])
async def test_weak_admin_password_is_allowed_outside_production(
    session: AsyncSession, environment: str
) -> None:
    username = f"admin-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        environment=environment,
        secret_key=STRONG_SECRET,
        admin_username=username,
        admin_password="short",
    )
    report = await initialise(session, settings)
    assert f"admin user {username!r}" in report.created
    admin = (await session.execute(select(User).where(User.username == username))).scalar_one()
    assert verify_password("short", admin.password_hash)


async def test_concurrent_initialise_on_separate_connections(
    init_engine: AsyncEngine, fresh_db: str
) -> None:
    settings = init_settings(fresh_db)  # no ADMIN_PASSWORD: the winner generates one
    reports = await asyncio.gather(*(run_initialise(init_engine, settings) for _ in range(4)))
    generated = [
        report.generated_admin_password for report in reports if report.generated_admin_password
    ]
    assert len(generated) == 1
    assert sum("admin user 'admin'" in report.created for report in reports) == 1
    for default in DEFAULT_CONFIG:
        assert sum(f"config {default.key}" in report.created for report in reports) == 1
    state = await database_state(init_engine)
    [(_, username, role, password_hash, _)] = state["users"]
    assert (username, role) == ("admin", UserRole.ADMIN)
    assert verify_password(generated[0], password_hash)
    expected_config, expected_policies = expected_defaults()
    assert state["config"] == expected_config
    assert {k: v[1:] for k, v in state["policies"].items()} == expected_policies


# ----- perfwatch init -----------------------------------------------------------------------------


def test_cli_init_prints_a_generated_password_once(fresh_db: str, tmp_path: Path) -> None:
    env = subprocess_env(fresh_db, tmp_path / "data")
    first = perfwatch("init", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    printed = _GENERATED.findall(first.stdout)
    assert len(printed) == 1
    username, password = printed[0]
    assert username == "admin"
    assert "created  admin user 'admin'" in first.stdout
    [(password_hash,)] = fetch(fresh_db, "SELECT password_hash FROM users WHERE username = 'admin'")
    assert verify_password(password, password_hash)
    assert password not in first.stderr

    second = perfwatch("init", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "password" not in second.stdout.lower()
    lines = second.stdout.strip().splitlines()
    assert lines and all(line.startswith("skipped  ") for line in lines)
    assert fetch(fresh_db, "SELECT count(*) FROM users") == [(1,)]


def test_cli_init_uses_admin_password(tmp_path: Path) -> None:
    url = migrate(f"sqlite+aiosqlite:///{tmp_path / 'init.db'}")
    env = subprocess_env(
        url, tmp_path / "data", ADMIN_USERNAME="root", ADMIN_PASSWORD=ADMIN_PASSWORD
    )
    result = perfwatch("init", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Generated password" not in result.stdout
    assert ADMIN_PASSWORD not in result.stdout + result.stderr
    [(role, password_hash)] = fetch(
        url, "SELECT role, password_hash FROM users WHERE username = 'root'"
    )
    assert role == "admin"
    assert verify_password(ADMIN_PASSWORD, password_hash)


def test_cli_init_refuses_a_weak_admin_password_in_production(tmp_path: Path) -> None:
    url = migrate(f"sqlite+aiosqlite:///{tmp_path / 'init.db'}")
    env = subprocess_env(
        url,
        tmp_path / "data",
        ENVIRONMENT="production",
        SECRET_KEY=STRONG_SECRET,
        ADMIN_PASSWORD="short",
    )
    result = perfwatch("init", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: ADMIN_PASSWORD refused in production: password must be at least 12 characters long"
    )
    # Nothing half-done: the unit of work rolled everything back.
    assert fetch(url, "SELECT count(*) FROM users") == [(0,)]
    assert fetch(url, "SELECT count(*) FROM config_entries") == [(0,)]

    development = perfwatch("init", env=dict(env, ENVIRONMENT="development"), cwd=tmp_path)
    assert development.returncode == 0, development.stderr
    [(password_hash,)] = fetch(url, "SELECT password_hash FROM users")
    assert verify_password("short", password_hash)


def test_concurrent_cli_init(fresh_db: str, tmp_path: Path) -> None:
    env = subprocess_env(fresh_db, tmp_path / "data")
    results = run_concurrently([str(BIN_DIR / "perfwatch"), "init"], 3, env=env, cwd=tmp_path)
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "error" not in result.stderr.lower()
    generated = [match for result in results for match in _GENERATED.findall(result.stdout)]
    assert len(generated) == 1
    assert sum("created  admin user 'admin'" in result.stdout for result in results) == 1

    rows = fetch(fresh_db, "SELECT username, role, password_hash FROM users")
    assert [(username, role) for username, role, _ in rows] == [("admin", "admin")]
    assert verify_password(generated[0][1], rows[0][2])
    assert fetch(fresh_db, "SELECT count(*) FROM config_entries") == [(len(DEFAULT_CONFIG),)]
    assert fetch(fresh_db, "SELECT count(*) FROM archive_policies") == [(len(DEFAULT_POLICIES),)]
