"""The ``perfwatch`` command line, run as a real subprocess (and in-process through CliRunner for
the quick config round trips) against scratch databases of both dialects."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import typer
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from perfwatch import __version__
from perfwatch.auth.revocation import REVOKED_BEFORE_KEY
from perfwatch.auth.throttle import PAIR_LIMIT, LoginThrottle
from perfwatch.bootstrap.seed import SeedPlan, generate_rows
from perfwatch.cache.redis import RedisCache
from perfwatch.cli import app
from perfwatch.contract.documents import SCHEMAS
from perfwatch.contract.metrics import METRIC_TYPES
from perfwatch.db import migrations
from perfwatch.errors import TooManyRequestsError
from perfwatch.metrics.fields import DEFAULT_FIELDS
from perfwatch.users.passwords import verify_password
from tests.support.cli import assert_one_line_error, invoke
from tests.support.helpers import (
    closed_postgres_url,
    closed_redis_url,
    empty_database,
    fetch,
    in_thread,
    make_settings,
    migrate,
    perfwatch,
    run_async,
    subprocess_env,
)

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different long passphrase"


# ----- help and version --------------------------------------------------------------------------


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``command`` (typer's own click: groups have ``commands``)."""
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, (*path, name))
    return paths


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"perfwatch {__version__}\n"


def test_help_shows_no_type_on_flags() -> None:
    paths = command_paths(typer.main.get_command(app))
    assert ("db", "reset") in paths and ("serve",) in paths  # the walk reached the leaves
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "--help" in result.stdout
        assert "<bool>" not in result.stdout, (path, result.stdout)
        # Each command's summary in a group's listing is whole, not cut off with "...".
        listing = result.stdout.partition("Commands:")[2].splitlines()
        assert not [line for line in listing if line.endswith("...")], (path, result.stdout)


# ----- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "fragments"),
    [
        (
            {"DATABASE_URL": "localhost:5432/perfwatch"},
            ("DATABASE_URL", "postgresql://user:password@host"),
        ),
        (
            {"DATABASE_URL": "mysql://root@localhost/perfwatch"},
            ("DATABASE_URL", "unsupported scheme 'mysql'"),
        ),
        ({"DATABASE_URL": "postgresql:///perfwatch"}, ("DATABASE_URL", "needs a host")),
        ({"REDIS_URL": "localhost:6379"}, ("REDIS_URL", "redis://host:6379/0")),
        ({"ENVIRONMENT": "production"}, ("SECRET_KEY", "ENVIRONMENT=production")),
    ],
)
def test_bad_configuration_is_one_error_line(
    tmp_path: Path, variables: dict[str, str], fragments: tuple[str, ...]
) -> None:
    result = perfwatch(
        "check", env=subprocess_env(None, tmp_path / "data", **variables), cwd=tmp_path
    )
    assert_one_line_error(result, "invalid configuration", *fragments)
    assert result.stdout == ""


@pytest.mark.parametrize("command", [("db", "upgrade"), ("init",), ("user", "list")])
def test_every_command_reports_bad_configuration_the_same_way(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = subprocess_env("mysql://root@localhost/perfwatch", tmp_path / "data")
    assert_one_line_error(
        perfwatch(*command, env=env, cwd=tmp_path), "DATABASE_URL", "unsupported scheme"
    )


def test_unreachable_database_is_one_error_line(tmp_path: Path) -> None:
    url = closed_postgres_url()
    result = perfwatch("user", "list", env=subprocess_env(url, tmp_path / "data"), cwd=tmp_path)
    assert_one_line_error(result, "cannot reach the database")
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize("revision", [None, "0001"], ids=["empty", "behind"])
def test_init_and_seed_on_a_database_not_at_head_say_what_to_run(
    dialect: str, revision: str | None, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with empty_database(dialect, request, tmp_path) as url:
        if revision is not None:
            in_thread(migrations.upgrade, revision, make_settings(url))
        env = subprocess_env(url, tmp_path / "data")
        for command in ("init", "seed"):
            result = perfwatch(command, env=env, cwd=tmp_path)
            assert_one_line_error(result, "perfwatch db upgrade")
            assert result.stdout == ""
        if revision is not None:  # nothing was written before the refusal
            assert fetch(url, "SELECT count(*) FROM users") == [(0,)]
            assert fetch(url, "SELECT count(*) FROM metric_snapshots") == [(0,)]


def test_init_on_a_database_newer_than_the_code_says_so(tmp_path: Path) -> None:
    url = migrate(f"sqlite+aiosqlite:///{tmp_path / 'newer.db'}")
    fetch(url, "UPDATE alembic_version SET version_num = '9999'")
    result = perfwatch("init", env=subprocess_env(url, tmp_path / "data"), cwd=tmp_path)
    assert_one_line_error(result, "revision 9999, newer than this PerfWatch knows")
    assert fetch(url, "SELECT count(*) FROM users") == [(0,)]


def test_unmigrated_database_is_one_error_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    result = perfwatch("user", "list", env=subprocess_env(url, tmp_path / "data"), cwd=tmp_path)
    assert_one_line_error(result, "database error", "users")


# ----- users --------------------------------------------------------------------------------------


def users(url: str) -> dict[str, tuple[str, str | None, str | None, str]]:
    rows = fetch(url, "SELECT username, role, email, full_name, password_hash FROM users")
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def test_user_create_duplicate_and_list(fresh_db: str, tmp_path: Path) -> None:
    env = subprocess_env(fresh_db, tmp_path / "data", PERFWATCH_NEW_PASSWORD=PASSWORD)
    result = perfwatch(
        "user",
        "create",
        "alice",
        "--role",
        "member",
        "--email",
        "alice@example.com",
        "--full-name",
        "Alice Liddell",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "created user 'alice' (member)"
    role, email, full_name, password_hash = users(fresh_db)["alice"]
    assert (role, email, full_name) == ("member", "alice@example.com", "Alice Liddell")
    assert verify_password(PASSWORD, password_hash)
    assert not verify_password(NEW_PASSWORD, password_hash)

    duplicate = perfwatch("user", "create", "alice", env=env, cwd=tmp_path)
    assert_one_line_error(duplicate, "already exists")
    assert len(users(fresh_db)) == 1

    assert perfwatch("user", "create", "bob", env=env, cwd=tmp_path).returncode == 0
    listing = perfwatch("user", "list", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.strip().splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "ACTIVE", "LAST", "LOGIN"]
    assert lines[1].split() == ["alice", "member", "true", "never"]
    assert lines[2].split() == ["bob", "viewer", "true", "never"]
    assert lines[3] == "(2 user(s))"


def test_user_create_refuses_a_username_differing_only_in_case(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'case.db'}"
    migrate(url)
    env = subprocess_env(url, tmp_path / "data", PERFWATCH_NEW_PASSWORD=PASSWORD)
    assert perfwatch("user", "create", "alice", env=env, cwd=tmp_path).returncode == 0
    assert_one_line_error(
        perfwatch("user", "create", "Alice", env=env, cwd=tmp_path), "already exists"
    )
    assert set(users(url)) == {"alice"}


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 12 characters"), ("abababababababab", "too repetitive")],
)
def test_user_create_refuses_a_weak_password(tmp_path: Path, password: str, message: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'weak.db'}"
    migrate(url)
    env = subprocess_env(url, tmp_path / "data", PERFWATCH_NEW_PASSWORD=password)
    assert_one_line_error(perfwatch("user", "create", "carol", env=env, cwd=tmp_path), message)
    assert users(url) == {}


def test_user_create_prompts_for_the_password_twice(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'prompt.db'}"
    migrate(url)
    result = perfwatch(
        "user",
        "create",
        "dave",
        env=subprocess_env(url, tmp_path / "data"),
        cwd=tmp_path,
        input=f"{PASSWORD}\n{PASSWORD}\n",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert verify_password(PASSWORD, users(url)["dave"][3])


def test_user_set_password(fresh_db: str, tmp_path: Path) -> None:
    env = subprocess_env(fresh_db, tmp_path / "data", PERFWATCH_NEW_PASSWORD=PASSWORD)
    assert perfwatch("user", "create", "erin", env=env, cwd=tmp_path).returncode == 0
    old_hash = users(fresh_db)["erin"][3]

    result = perfwatch(
        "user",
        "set-password",
        "erin",
        env=dict(env, PERFWATCH_NEW_PASSWORD=NEW_PASSWORD),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    first, note = result.stdout.strip().splitlines()
    assert first == "password updated for 'erin'"
    # Embedded cache: the running server cannot be told, and the CLI says so.
    assert note.startswith("note: without REDIS_URL the running server cannot be told")
    new_hash = users(fresh_db)["erin"][3]
    assert new_hash != old_hash
    assert verify_password(NEW_PASSWORD, new_hash)
    assert not verify_password(PASSWORD, new_hash)

    weak = perfwatch(
        "user", "set-password", "erin", env=dict(env, PERFWATCH_NEW_PASSWORD="short"), cwd=tmp_path
    )
    assert_one_line_error(weak, "at least 12 characters")
    assert users(fresh_db)["erin"][3] == new_hash

    missing = perfwatch("user", "set-password", "nobody", env=env, cwd=tmp_path)
    assert_one_line_error(missing, "no user named 'nobody'")


def test_user_set_password_signs_the_user_out_through_redis(
    fresh_db: str, redis_url: str, tmp_path: Path
) -> None:
    env = subprocess_env(
        fresh_db, tmp_path / "data", PERFWATCH_NEW_PASSWORD=PASSWORD, REDIS_URL=redis_url
    )
    assert perfwatch("user", "create", "fay", env=env, cwd=tmp_path).returncode == 0
    user_id = fetch(fresh_db, "SELECT id FROM users WHERE username = 'fay'")[0][0]
    before = time.time()

    changed = dict(env, PERFWATCH_NEW_PASSWORD=NEW_PASSWORD)
    result = perfwatch("user", "set-password", "fay", env=changed, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "every token issued to this user before now is revoked" in result.stdout
    client = redis.Redis.from_url(redis_url)
    try:
        cutoff = client.get(REVOKED_BEFORE_KEY.format(user_id=uuid.UUID(str(user_id))))
    finally:
        client.close()
    # The record the API checks on every token: tokens issued up to the change are refused.
    assert cutoff is not None and before <= float(cutoff) <= time.time()
    assert verify_password(NEW_PASSWORD, users(fresh_db)["fay"][3])


def test_user_set_password_with_redis_away_changes_nothing_unless_told(
    fresh_db: str, tmp_path: Path
) -> None:
    env = subprocess_env(
        fresh_db, tmp_path / "data", PERFWATCH_NEW_PASSWORD=PASSWORD, REDIS_URL=closed_redis_url()
    )
    assert perfwatch("user", "create", "gus", env=env, cwd=tmp_path).returncode == 0
    old_hash = users(fresh_db)["gus"][3]
    changed = dict(env, PERFWATCH_NEW_PASSWORD=NEW_PASSWORD)

    refused = perfwatch("user", "set-password", "gus", env=changed, cwd=tmp_path)
    assert_one_line_error(refused, "cannot be revoked", "--keep-sessions")
    assert users(fresh_db)["gus"][3] == old_hash

    kept = perfwatch("user", "set-password", "gus", "--keep-sessions", env=changed, cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert verify_password(NEW_PASSWORD, users(fresh_db)["gus"][3])


async def _throttled(redis_url: str, username: str, address: str, failures: int) -> bool:
    """Record ``failures`` failed logins in Redis (as the server does); is the pair refused?"""
    cache = RedisCache(redis_url)
    try:
        throttle = LoginThrottle(cache)
        for _ in range(failures):
            await throttle.record_failure(username, address)
        try:
            await throttle.check(username, address)
        except TooManyRequestsError:
            return True
        return False
    finally:
        await cache.close()


def test_user_unlock_clears_login_throttling_in_redis(redis_url: str, tmp_path: Path) -> None:
    username, address = f"ida-{uuid.uuid4().hex[:8]}", f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    assert run_async(_throttled(redis_url, username, address, PAIR_LIMIT))
    # Needs only Redis: the database is never opened.
    env = subprocess_env(closed_postgres_url(), tmp_path / "data", REDIS_URL=redis_url)

    result = perfwatch("user", "unlock", username.upper(), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"login throttling cleared for {username.upper()!r} ({PAIR_LIMIT} recent failed login(s))"
    )
    assert not run_async(_throttled(redis_url, username, address, 0))


def test_user_unlock_without_redis_says_what_would_clear_it(tmp_path: Path) -> None:
    env = subprocess_env(closed_postgres_url(), tmp_path / "data")
    result = perfwatch("user", "unlock", "admin", env=env, cwd=tmp_path)
    assert_one_line_error(result, "REDIS_URL is not set", "in-process cache", "restarting")

    away = dict(env, REDIS_URL=closed_redis_url())
    assert_one_line_error(perfwatch("user", "unlock", "admin", env=away, cwd=tmp_path), "Redis")


# ----- config (in-process) ------------------------------------------------------------------------


def config_values(url: str) -> dict[str, object]:
    rows = fetch(url, 'SELECT "key", value, updated_by FROM config_entries')
    values = {}
    for key, value, updated_by in rows:
        assert updated_by == "cli"
        values[key] = json.loads(value) if isinstance(value, str) else value
    return values


def test_config_set_and_get(fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "data"
    cases = [
        (["k", "5"], "k = 5", 5),
        (["s", '"hello"'], 's = "hello"', "hello"),
        (["l", '[1, "a", {"b": null}]'], 'l = [1, "a", {"b": null}]', [1, "a", {"b": None}]),
        (["w", "bare words"], 'w = "bare words"', "bare words"),
        (["f", "false"], "f = false", False),
    ]
    for args, printed, stored in cases:
        result = invoke(["config", "set", *args], fresh_db, data_dir)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == printed
        got = invoke(["config", "get", args[0]], fresh_db, data_dir)
        assert got.exit_code == 0, got.output
        assert got.stdout.strip() == printed
        assert config_values(fresh_db)[args[0]] == stored

    overwritten = invoke(["config", "set", "k", "6"], fresh_db, data_dir)
    assert overwritten.exit_code == 0
    assert config_values(fresh_db)["k"] == 6

    listing = invoke(["config", "get"], fresh_db, data_dir)
    assert listing.exit_code == 0
    assert [line.split(" = ")[0] for line in listing.stdout.strip().splitlines()] == [
        "f",
        "k",
        "l",
        "s",
        "w",
    ]


def test_config_get_missing_key(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'config.db'}"
    migrate(url)
    result = perfwatch(
        "config", "get", "missing", env=subprocess_env(url, tmp_path / "data"), cwd=tmp_path
    )
    assert_one_line_error(result, "no config entry 'missing'")
    assert result.stdout == ""


# ----- seed ---------------------------------------------------------------------------------------

_SEEDING = re.compile(r"^seeding .*$", re.MULTILINE)
_INSERTED = re.compile(r"inserted (\d[\d,]*) new snapshots \((\d[\d,]*) already present\)")


def test_seed_inserts_every_metric_type_once(fresh_db: str, tmp_path: Path) -> None:
    env = subprocess_env(fresh_db, tmp_path / "data")
    args = ("seed", "--days", "0.05", "--interval", "60", "--host", "seed-test")
    first = perfwatch(*args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    inserted = _INSERTED.search(first.stdout)
    assert inserted is not None, first.stdout
    per_type = int(0.05 * 86_400 // 60)
    assert int(inserted[1].replace(",", "")) == per_type * len(METRIC_TYPES)
    counts = dict(
        fetch(fresh_db, "SELECT metric_type, count(*) FROM metric_snapshots GROUP BY metric_type")
    )
    assert counts == dict.fromkeys(METRIC_TYPES, per_type)
    assert fetch(fresh_db, "SELECT DISTINCT host FROM metric_snapshots") == [("seed-test",)]

    second = perfwatch(*args, env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    again = _INSERTED.search(second.stdout)
    assert again is not None, second.stdout
    same_window = _SEEDING.search(first.stdout)[0] == _SEEDING.search(second.stdout)[0]  # type: ignore[index]
    if same_window:  # the grid ends at the current hour: a run in the next hour adds its new points
        assert int(again[1]) == 0
        assert int(again[2].replace(",", "")) == per_type * len(METRIC_TYPES)
    total = fetch(fresh_db, "SELECT count(*) FROM metric_snapshots")[0][0]
    assert total == per_type * len(METRIC_TYPES) + int(again[1].replace(",", ""))


def test_seeded_documents_follow_the_metric_schemas_and_hold_the_default_fields() -> None:
    # Demo history must look like the sampler's: charts and the default fields read it.
    end = datetime(2026, 12, 2, tzinfo=UTC)
    plan = SeedPlan("demo", end - timedelta(days=2), end, 6 * 3600, tuple(METRIC_TYPES))
    for metric_type in METRIC_TYPES:
        rows = list(generate_rows(plan, metric_type))
        assert len(rows) == 8
        for row in rows:
            Draft202012Validator(SCHEMAS[metric_type]).validate(row.metric_data)
            for path in DEFAULT_FIELDS[metric_type]:
                value: Any = row.metric_data
                for segment in path.split("."):
                    value = value[int(segment)] if isinstance(value, list) else value[segment]
                assert isinstance(value, int | float), (metric_type, path, value)


def test_seed_without_a_terminal_prints_numbers(tmp_path: Path) -> None:
    url = migrate(f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}")
    env = subprocess_env(url, tmp_path / "data")
    result = perfwatch(
        "seed", "--days", "0.01", "--host", "no-tty", env=env, cwd=tmp_path
    )  # stdout is a pipe here, as in a container log
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    total = int(0.01 * 86_400 // 60) * len(METRIC_TYPES)
    # Every line carries numbers: no progress label left without its bar.
    assert all(re.search(r"\d", line) for line in lines), lines
    assert lines[-2] == f"{total:,} of {total:,} snapshots written (100%)"
    assert lines[-1] == f"inserted {total:,} new snapshots (0 already present)"


# ----- check --------------------------------------------------------------------------------------


def test_check_with_postgres_and_redis(postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    env = subprocess_env(postgres_url, tmp_path / "data", REDIS_URL=redis_url)
    result = perfwatch("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("ok    database postgresql+asyncpg://")
    assert lines[1] == "ok    cache redis"


def test_check_with_the_embedded_defaults(tmp_path: Path) -> None:
    result = perfwatch("check", env=subprocess_env(None, tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines() == [
        f"ok    database sqlite+aiosqlite:///{tmp_path / 'data' / 'perfwatch.db'}",
        "ok    cache memory",
    ]


def test_check_names_the_cache_when_redis_is_down(postgres_url: str, tmp_path: Path) -> None:
    env = subprocess_env(postgres_url, tmp_path / "data", REDIS_URL=closed_redis_url())
    result = perfwatch("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("ok    database")
    assert lines[1].startswith("FAIL  cache redis: ")


def test_check_names_the_database_when_it_is_down(redis_url: str, tmp_path: Path) -> None:
    url = closed_postgres_url()
    result = perfwatch(
        "check", env=subprocess_env(url, tmp_path / "data", REDIS_URL=redis_url), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("FAIL  database postgresql+asyncpg://perfwatch:***@127.0.0.1:")
    assert "unreachable" in lines[0]
    assert lines[1] == "ok    cache redis"
    assert "s3cret" not in result.stdout + result.stderr
