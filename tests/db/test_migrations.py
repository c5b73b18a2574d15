"""Migrations on both dialects through the real ``alembic`` and ``perfwatch db`` commands.

Every test that changes the schema works on a scratch database of its own.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from perfwatch.contract.metrics import METRIC_TYPES
from perfwatch.db import migrations
from perfwatch.db.migrations import render_frozen_type
from perfwatch.db.partitions import OTHER_TYPES, SNAPSHOTS
from perfwatch.models import Base
from tests.support.helpers import (
    BIN_DIR,
    empty_database,
    fetch,
    migrate,
    migrate_down,
    perfwatch,
    pg_connection,
    pg_fetch,
    run_async,
    run_concurrently,
    scratch_postgres,
    sqlite_fetch,
    subprocess_env,
)
from tests.support.services import REPO_ROOT, PostgresServer

BACKEND_DIR = REPO_ROOT / "backend"
APP_TABLES = frozenset(
    {
        "users",
        "config_entries",
        "archive_policies",
        "metric_snapshots",
        "metric_tier_1m",
        "metric_tier_1h",
        "metric_tier_pending",
        "maintenance_state",
    }
)
# Tables of head that the revision before it does not have.
NEW_AT_HEAD = frozenset(
    {"metric_tier_1m", "metric_tier_1h", "metric_tier_pending", "maintenance_state"}
)
PARTITION_FUNCTION = "perfwatch_ensure_partitions"
SCRIPTS = ScriptDirectory.from_config(migrations.alembic_config())
HEAD = SCRIPTS.get_current_head()
REVISIONS = len(list(SCRIPTS.walk_revisions()))
# Alembic's log line for the step that reaches the head ("Running upgrade 0001 -> 0002, …").
TO_HEAD = f" -> {HEAD}, "


def table_names(url: str) -> set[str]:
    if make_url(url).get_backend_name() == "postgresql":
        rows = fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    else:
        rows = fetch(
            url, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    return {row[0] for row in rows}


def alembic_versions(url: str) -> list[str]:
    if "alembic_version" not in table_names(url):
        return []
    return [row[0] for row in fetch(url, "SELECT version_num FROM alembic_version")]


def run_shell(
    command: str, env: dict[str, str], cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


# ----- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def empty_url(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(dialect, request, tmp_path) as url:
        yield url


@pytest.fixture
def empty_pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    with scratch_postgres(postgres_server) as url:
        yield url


def assert_schema_at_head(url: str) -> None:
    assert table_names(url) >= APP_TABLES
    assert alembic_versions(url) == [HEAD]


def assert_schema_gone(url: str) -> None:
    remaining = table_names(url)
    assert not remaining & APP_TABLES
    assert remaining <= {"alembic_version"}
    assert alembic_versions(url) == []
    if make_url(url).get_backend_name() == "postgresql":
        relations = fetch(
            url,
            "SELECT relname FROM pg_class WHERE relname LIKE 'metric_snapshots%' "
            "OR relname LIKE 'metric_rollups%' OR relname LIKE 'metric_tier%' "
            "OR relname LIKE 'maintenance_state%' "
            "OR relname LIKE 'users%' OR relname LIKE 'config_entries%' "
            "OR relname LIKE 'archive_policies%'",
        )
        assert relations == []
        assert (
            fetch(url, "SELECT proname FROM pg_proc WHERE proname = $1", PARTITION_FUNCTION) == []
        )


# ----- alembic command ----------------------------------------------------------------------------


def test_alembic_upgrade_downgrade_upgrade(empty_url: str, tmp_path: Path) -> None:
    env = subprocess_env(empty_url, tmp_path / "data")
    result = run_shell(
        "cd backend && alembic upgrade head && alembic downgrade base && alembic upgrade head", env
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(TO_HEAD) == 2
    assert f"Running downgrade {HEAD} -> " in result.stderr
    assert_schema_at_head(empty_url)


def test_downgrade_base_removes_every_app_object(empty_url: str, tmp_path: Path) -> None:
    env = subprocess_env(empty_url, tmp_path / "data")
    assert run_shell("cd backend && alembic upgrade head", env).returncode == 0
    assert_schema_at_head(empty_url)
    if make_url(empty_url).get_backend_name() == "postgresql":
        partitions = {
            row[0] for row in fetch(empty_url, "SELECT inhrelid::regclass::text FROM pg_inherits")
        }
        assert SNAPSHOTS.default_partition in partitions
        assert any(name.startswith(f"{SNAPSHOTS.name}_p") for name in partitions)
        assert any(name.endswith("_cpu") for name in partitions)  # (day, type) leaves

    result = run_shell("cd backend && alembic downgrade base", env)
    assert result.returncode == 0, result.stderr
    assert_schema_gone(empty_url)

    result = run_shell("cd backend && alembic upgrade head && alembic upgrade head", env)
    assert result.returncode == 0, result.stderr
    # The second upgrade has nothing to do.
    assert result.stderr.count("Running upgrade") == REVISIONS
    assert_schema_at_head(empty_url)


def test_alembic_check_reports_no_drift(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue(f"{dialect}_url")  # the run's migrated test database
    result = run_shell("cd backend && alembic check", subprocess_env(url, tmp_path / "data"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_alembic_check_detects_drift(empty_url: str, tmp_path: Path) -> None:
    env = subprocess_env(empty_url, tmp_path / "data")
    assert run_shell("cd backend && alembic upgrade head", env).returncode == 0
    drift = "ALTER TABLE maintenance_state ADD COLUMN surplus_by_hand integer"
    if make_url(empty_url).get_backend_name() == "postgresql":
        run_async(pg_fetch(empty_url, drift))
    else:
        sqlite_fetch(empty_url, drift)
    result = run_shell("cd backend && alembic check", env)
    assert result.returncode != 0
    assert "surplus_by_hand" in result.stdout + result.stderr


# ----- revisions are frozen -----------------------------------------------------------------------


def perfwatch_references(source: str) -> list[str]:
    """Imports of perfwatch, and names that reach into it, in a module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "perfwatch"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "perfwatch":
            found.append(node.module or "")
        elif isinstance(node, ast.Name) and node.id == "perfwatch":
            found.append(node.id)
    return found


def test_revisions_never_import_application_code() -> None:
    # Editing perfwatch (a column type, the partition function's SQL) must never change what an
    # old revision creates: each revision carries frozen copies of what it needs.
    revisions = sorted((BACKEND_DIR / "alembic" / "versions").glob("*.py"))
    assert len(revisions) == REVISIONS
    for path in revisions:
        assert perfwatch_references(path.read_text(encoding="utf-8")) == [], path.name
    template = (BACKEND_DIR / "alembic" / "script.py.mako").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(import|from)\s+perfwatch\b", template, re.MULTILINE)


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_autogenerate_writes_application_types_as_plain_sqlalchemy() -> None:
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"target_metadata": Base.metadata, "render_item": render_frozen_type},
            )
            upgrade = produce_migrations(context, Base.metadata).upgrade_ops
            assert upgrade is not None
            code = render_python_code(upgrade, render_item=render_frozen_type)
    finally:
        engine.dispose()
    assert "op.create_table('metric_snapshots'" in code
    assert "perfwatch." not in code
    assert "sa.DateTime(timezone=True)" in code
    assert "with_variant(postgresql.JSONB" in code
    compile(f"def upgrade():\n{code}", "revision", "exec")


# ----- schema details -----------------------------------------------------------------------------

EXPECTED_CONSTRAINTS = {
    "pk_users",
    "uq_users_username",
    "uq_users_email",
    "ck_users_user_role",
    "pk_config_entries",
    "pk_archive_policies",
    "uq_archive_policies_metric_type",
    "ck_archive_policies_archive_action",
    "ck_archive_policies_retention_days_positive",
    "ck_archive_policies_tiers_ordered",
    "pk_metric_snapshots",
    "uq_metric_snapshots_host_metric_type_captured_at",
    "pk_metric_tier_1m",
    "ck_metric_tier_1m_snapshots_positive",
    "pk_metric_tier_1h",
    "ck_metric_tier_1h_snapshots_positive",
    "pk_metric_tier_pending",
    "pk_maintenance_state",
}
EXPECTED_INDEXES = {
    # Case-insensitive uniqueness (expression indexes on lower()).
    "uq_users_lower_username",
    "uq_users_lower_email",
}


async def test_postgres_schema(postgres_url: str) -> None:
    columns = {
        (row["table_name"], row["column_name"]): row["data_type"]
        for row in await pg_fetch(
            postgres_url,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'",
        )
    }
    assert columns["metric_snapshots", "metric_data"] == "jsonb"
    assert columns["config_entries", "value"] == "jsonb"
    assert columns["metric_snapshots", "captured_at"] == "timestamp with time zone"
    assert columns["metric_snapshots", "id"] == "bigint"
    assert columns["users", "id"] == "uuid"
    assert columns["metric_tier_1m", "bucket"] == "timestamp with time zone"
    assert columns["metric_tier_1h", "stats"] == "jsonb"

    constraints = {
        row["conname"]
        for row in await pg_fetch(
            postgres_url,
            "SELECT conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE t.relname = ANY($1::text[])",
            sorted(APP_TABLES),
        )
    }
    assert constraints >= EXPECTED_CONSTRAINTS
    indexes = {
        row["indexname"]
        for row in await pg_fetch(
            postgres_url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
        )
    }
    assert indexes >= EXPECTED_INDEXES

    primary_key = await pg_fetch(
        postgres_url,
        "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
        "WHERE c.conname = 'pk_metric_snapshots'",
    )
    assert {row["attname"] for row in primary_key} == {"id", "captured_at", "metric_type"}
    tier_key = await pg_fetch(
        postgres_url,
        "SELECT a.attname FROM pg_constraint c "
        "CROSS JOIN generate_subscripts(c.conkey, 1) AS k(i) JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[k.i] "
        "WHERE c.conname = 'pk_metric_tier_1m' ORDER BY k.i",
    )
    assert [row["attname"] for row in tier_key] == ["host", "metric_type", "bucket"]
    kinds = await pg_fetch(
        postgres_url,
        "SELECT relname, pg_get_partkeydef(oid) AS key FROM pg_class "
        "WHERE relname IN ('metric_snapshots', 'metric_tier_1m', 'metric_tier_1h')",
    )
    assert {row["relname"]: row["key"] for row in kinds} == {
        "metric_snapshots": "RANGE (captured_at)",
        "metric_tier_1m": "RANGE (bucket)",
        "metric_tier_1h": "RANGE (bucket)",
    }
    assert await pg_fetch(
        postgres_url, "SELECT 1 FROM pg_proc WHERE proname = $1", PARTITION_FUNCTION
    )


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_sqlite_schema(sqlite_url: str) -> None:
    engine = create_engine(make_url(sqlite_url).set(drivername="sqlite"))
    try:
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) >= APP_TABLES
        names: set[str] = set()
        for table in APP_TABLES:
            names.add(inspector.get_pk_constraint(table)["name"] or "")
            names |= {c["name"] or "" for c in inspector.get_unique_constraints(table)}
            names |= {c["name"] or "" for c in inspector.get_check_constraints(table)}
        # Expression indexes are not reflected by SQLAlchemy on SQLite: read them directly.
        names |= {
            row[0]
            for row in sqlite_fetch(
                sqlite_url, "SELECT name FROM sqlite_master WHERE type = 'index'"
            )
        }
        assert names >= EXPECTED_CONSTRAINTS | EXPECTED_INDEXES
        column_types = {
            c["name"]: str(c["type"]) for c in inspector.get_columns("metric_snapshots")
        }
        assert column_types["metric_data"] == "JSON"
    finally:
        engine.dispose()


# ----- 0003 carries the history and the policies over --------------------------------------------

BEFORE_TIERS = "0002"
# Archive policies as 0002 stored them: (type, retention, downsample after, interval, action).
OLD_POLICIES = (
    ("*", 30, 7, 60, "delete"),  # the defaults of `perfwatch init` before 0003
    ("processes", 7, 1, 300, "archive"),
    ("cpu", 14, 2, 300, "archive"),  # set by hand
    ("disk", 10, None, None, "delete"),  # set by hand, never downsampled
    ("memory", 30, 7, 60, "delete"),  # the "*" values, but not the "*" policy
)
# What 0003 makes of them: (raw_days, minute_days, retention_days, action).
TIER_POLICIES = {
    "*": (2, 30, 730, "delete"),
    "processes": (2, 30, 365, "archive"),
    "cpu": (2, 14, 14, "archive"),
    "disk": (10, 10, 10, "delete"),
    "memory": (7, 30, 30, "delete"),
}
LEGACY_TYPES = ("cpu", "memory", "processes", "gpu")  # gpu: no sampler has it


def history_days() -> list[date]:
    """Days with rows: two inside 0002's partitions, one before them (its DEFAULT partition)
    and one far in the past (DEFAULT too)."""
    today = datetime.now(UTC).date()
    return [today, today - timedelta(days=1), today - timedelta(days=3), date(2001, 9, 9)]


def legacy_rows() -> list[tuple[str, datetime, str, str]]:
    rows = []
    for n, day in enumerate(history_days()):
        moments = (
            datetime.combine(day, datetime.min.time(), UTC),
            datetime.combine(day, datetime.max.time(), UTC),  # 23:59:59.999999
            datetime(day.year, day.month, day.day, 12, 34, 56, 789, tzinfo=UTC),
        )
        for moment in moments:
            for kind in LEGACY_TYPES:
                for host in ("alpha", "beta"):
                    document = {
                        "n": n,
                        "percent": 12.5 + n,
                        "per_core": [1, 2.25, None],
                        "nested": {"é": "ü ✓", "big": 12345678901234567, "ok": True},
                    }
                    rows.append((host, moment, kind, json.dumps(document, ensure_ascii=False)))
    return rows


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def execute(url: str, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """``statement`` once per row, ``$n`` placeholders (rewritten to ``?`` on SQLite)."""
    if is_postgres(url):

        async def run() -> None:
            async with pg_connection(url) as connection:
                await connection.executemany(statement, rows)

        run_async(run())
        return
    path = make_url(url).database
    assert path
    with sqlite3.connect(path) as connection:
        connection.executemany(re.sub(r"\$\d+(::\w+)?", "?", statement), rows)


def write_legacy_history(url: str) -> int:
    """Rows and policies at 0002; returns the id a row got and lost (deleted) after them."""
    execute(
        url,
        "INSERT INTO metric_snapshots (host, captured_at, metric_type, metric_data) "
        "VALUES ($1, $2, $3, $4::jsonb)",
        [
            (host, moment if is_postgres(url) else f"{moment:%Y-%m-%d %H:%M:%S.%f}", kind, document)
            for host, moment, kind, document in legacy_rows()
        ],
    )
    policy_id = uuid.uuid4 if is_postgres(url) else lambda: uuid.uuid4().hex
    execute(
        url,
        "INSERT INTO archive_policies (id, metric_type, retention_days, downsample_after_days, "
        "downsample_interval, action) VALUES ($1, $2, $3, $4, $5, $6)",
        [(policy_id(), *policy) for policy in OLD_POLICIES],
    )
    # A row stored and deleted: its id was handed out, the identity must not give it again.
    execute(
        url,
        "INSERT INTO metric_snapshots (host, captured_at, metric_type, metric_data) "
        "VALUES ($1, $2, $3, $4::jsonb)",
        [
            (
                "gone",
                datetime.now(UTC) if is_postgres(url) else "2001-01-01 00:00:00.000000",
                "cpu",
                "{}",
            )
        ],
    )
    (lost,) = fetch(url, "SELECT max(id) FROM metric_snapshots")[0]
    execute(url, "DELETE FROM metric_snapshots WHERE host = $1", [("gone",)])
    return int(lost)


def stored_history(url: str) -> dict[int, tuple[str, Any, str, Any]]:
    """id -> (host, captured_at, type, document) of every snapshot."""
    rows = fetch(
        url, "SELECT id, host, captured_at, metric_type, metric_data FROM metric_snapshots"
    )
    return {row[0]: (row[1], row[2], row[3], json.loads(row[4])) for row in rows}


def holders(url: str) -> dict[int, str]:
    """id -> the table that holds the snapshot (PostgreSQL)."""
    return dict(fetch(url, "SELECT id, tableoid::regclass::text FROM metric_snapshots"))


def policies(url: str) -> dict[str, tuple[Any, ...]]:
    columns = (
        "raw_days, minute_days, retention_days, action"
        if alembic_versions(url) == [HEAD]
        else "retention_days, downsample_after_days, downsample_interval, action"
    )
    rows = fetch(url, f"SELECT metric_type, {columns} FROM archive_policies")
    return {row[0]: tuple(row[1:]) for row in rows}


def day_of(moment: Any) -> date:
    return moment.astimezone(UTC).date()


def assert_no_renamed_leftovers(url: str) -> None:
    """Nothing of the table the revision replaced keeps a name, or pushes a new one aside
    (``…_pkey1``, ``…_id_seq1``)."""
    assert fetch(url, "SELECT pg_get_serial_sequence('metric_snapshots', 'id')") == [
        ("public.metric_snapshots_id_seq",)
    ]
    leftovers = fetch(
        url,
        "SELECT relname FROM pg_class WHERE relname ~ '^metric_snapshots.*(key|idx|seq)\\d+$' "
        "OR relname ~ '^metric_snapshots_(legacy|new)'",
    )
    assert leftovers == []


def test_upgrade_to_tiers_keeps_the_history_and_maps_the_policies(empty_url: str) -> None:
    postgres = is_postgres(empty_url)
    migrate(empty_url, BEFORE_TIERS)
    lost_id = write_legacy_history(empty_url)
    before = stored_history(empty_url)
    assert len(before) == len(legacy_rows())
    if postgres:  # two of the days were in 0002's DEFAULT partition
        assert set(holders(empty_url).values()) >= {"metric_snapshots_default"}

    migrate(empty_url)

    assert stored_history(empty_url) == before, "every row kept, with its id"
    assert policies(empty_url) == TIER_POLICIES
    if postgres:
        for snapshot_id, table in holders(empty_url).items():
            _host, moment, kind, _document = before[snapshot_id]
            suffix = kind if kind in METRIC_TYPES else OTHER_TYPES
            assert table == f"{SNAPSHOTS.period_name(day_of(moment))}_{suffix}", snapshot_id
        assert_no_renamed_leftovers(empty_url)
    # The identity goes on after every id handed out before.
    execute(
        empty_url,
        "INSERT INTO metric_snapshots (host, captured_at, metric_type, metric_data) "
        "VALUES ($1, $2, $3, $4::jsonb)",
        [
            (
                "new",
                datetime.now(UTC) if postgres else "2001-01-02 00:00:00.000000",
                "cpu",
                '{"v": 1}',
            )
        ],
    )
    after = stored_history(empty_url)
    (new_id,) = set(after) - set(before)
    assert new_id > max(before)
    if postgres:  # SQLite's rowid reuses the id of a deleted newest row, before and after
        assert new_id > lost_id
        assert holders(empty_url)[new_id].endswith("_cpu")

    migrate_down(empty_url, BEFORE_TIERS)

    assert alembic_versions(empty_url) == [BEFORE_TIERS]
    assert stored_history(empty_url) == after
    if postgres:
        for snapshot_id, table in holders(empty_url).items():
            assert table == SNAPSHOTS.period_name(day_of(after[snapshot_id][1])), snapshot_id
        # Days are plain tables again, no longer split by type.
        kinds = fetch(
            empty_url,
            "SELECT DISTINCT c.relkind::text FROM pg_inherits i JOIN pg_class c "
            "ON c.oid = i.inhrelid WHERE i.inhparent = 'metric_snapshots'::regclass",
        )
        assert kinds == [("r",)]
        assert_no_renamed_leftovers(empty_url)
    # The defaults go back to the old defaults; the others as near as the old columns say.
    assert policies(empty_url) == {
        "*": (30, 7, 60, "delete"),
        "processes": (7, 1, 300, "archive"),
        "cpu": (14, 2, 60, "archive"),
        "disk": (10, None, None, "delete"),
        "memory": (30, 7, 60, "delete"),
    }

    migrate(empty_url)  # and up again: the same policies as the first time

    assert policies(empty_url) == TIER_POLICIES
    assert stored_history(empty_url) == after


# ----- perfwatch db -------------------------------------------------------------------------------


def test_perfwatch_db_commands(empty_url: str, tmp_path: Path) -> None:
    env = subprocess_env(empty_url, tmp_path / "data")
    # From a directory without alembic.ini: the one beside the package is found.
    result = perfwatch("db", "history", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"-> {HEAD} (head)" in result.stdout
    assert "<base> -> 0001" in result.stdout

    result = perfwatch("db", "current", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert HEAD not in result.stdout

    result = perfwatch("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_schema_at_head(empty_url)
    result = perfwatch("db", "current", env=env, cwd=tmp_path)
    assert result.stdout.strip() == f"{HEAD} (head)"

    result = perfwatch("db", "downgrade", env=env, cwd=tmp_path)  # one step back from head
    assert result.returncode == 0, result.stderr
    assert table_names(empty_url) & APP_TABLES == APP_TABLES - NEW_AT_HEAD
    previous = SCRIPTS.get_revision(HEAD).down_revision
    assert perfwatch("db", "current", env=env, cwd=tmp_path).stdout.strip() == previous

    result = perfwatch("db", "downgrade", "base", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_schema_gone(empty_url)
    assert perfwatch("db", "current", env=env, cwd=tmp_path).stdout.strip() == ""

    result = perfwatch("db", "upgrade", "head", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_schema_at_head(empty_url)


def test_perfwatch_db_upgrade_reports_an_unreachable_database(tmp_path: Path) -> None:
    env = subprocess_env("postgresql://postgres@127.0.0.1:1/perfwatch", tmp_path / "data")
    result = perfwatch("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: migration failed")
    assert len(result.stderr.strip().splitlines()) == 1


def insert_marker(url: str) -> None:
    insert = """INSERT INTO config_entries ("key", value) VALUES ('reset.marker', '1')"""
    if make_url(url).get_backend_name() == "postgresql":
        run_async(pg_fetch(url, insert))
    else:
        sqlite_fetch(url, insert)
    assert fetch(url, "SELECT count(*) FROM config_entries") == [(1,)]


def test_db_reset_is_refused_in_production(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'reset.db'}"
    migrate(url)
    insert_marker(url)
    env = subprocess_env(url, tmp_path / "data", ENVIRONMENT="production", SECRET_KEY="p" * 48)
    result = perfwatch("db", "reset", "--yes", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: db reset is refused when ENVIRONMENT=production"
    assert_schema_at_head(url)
    assert fetch(url, "SELECT count(*) FROM config_entries") == [(1,)]


def test_db_reset_with_yes_empties_the_database_in_development(
    empty_url: str, tmp_path: Path
) -> None:
    migrate(empty_url)
    insert_marker(empty_url)
    result = perfwatch(
        "db", "reset", "--yes", env=subprocess_env(empty_url, tmp_path / "data"), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "database reset to an empty schema at head" in result.stdout
    assert_schema_at_head(empty_url)
    assert fetch(empty_url, "SELECT count(*) FROM config_entries") == [(0,)]


def test_db_reset_without_yes_asks_and_a_no_keeps_the_data(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'reset.db'}"
    migrate(url)
    insert_marker(url)
    result = perfwatch(
        "db",
        "reset",
        env=subprocess_env(url, tmp_path / "data"),
        cwd=tmp_path,
        input="n\n",
        timeout=60,
    )
    assert result.returncode == 1
    assert "Erase ALL data" in result.stdout
    assert fetch(url, "SELECT count(*) FROM config_entries") == [(1,)]


# ----- several replicas at once (PostgreSQL advisory lock) ----------------------------------------


def test_concurrent_upgrades_on_an_empty_database_migrate_once(
    empty_pg_url: str, tmp_path: Path
) -> None:
    env = subprocess_env(empty_pg_url, tmp_path / "data")
    results = run_concurrently(
        [str(BIN_DIR / "alembic"), "upgrade", "head"], 3, env=env, cwd=BACKEND_DIR
    )
    for result in results:
        assert result.returncode == 0, result.stderr
    runs = sum(result.stderr.count(TO_HEAD) for result in results)
    assert runs == 1
    assert_schema_at_head(empty_pg_url)


def _migration_lock_key() -> int:
    """MIGRATION_LOCK_KEY as env.py defines it (env.py cannot be imported outside Alembic)."""
    tree = ast.parse((BACKEND_DIR / "alembic" / "env.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "MIGRATION_LOCK_KEY"
            for target in node.targets
        ):
            return int(
                eval(compile(ast.Expression(node.value), "env.py", "eval"))
            )  # a constant expression
    raise AssertionError("MIGRATION_LOCK_KEY not found in alembic/env.py")


def test_upgrade_waits_for_the_migration_lock(empty_pg_url: str, tmp_path: Path) -> None:
    env = subprocess_env(empty_pg_url, tmp_path / "data")
    key = _migration_lock_key()
    waiting_query = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"

    async def scenario() -> None:
        async with pg_connection(empty_pg_url) as holder:
            process: asyncio.subprocess.Process | None = None
            try:
                await holder.execute("SELECT pg_advisory_lock($1)", key)
                process = await asyncio.create_subprocess_exec(
                    str(BIN_DIR / "alembic"),
                    "upgrade",
                    "head",
                    cwd=BACKEND_DIR,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                deadline = time.monotonic() + 60
                while not await pg_fetch(empty_pg_url, waiting_query):
                    assert process.returncode is None, "alembic ended without waiting for the lock"
                    assert time.monotonic() < deadline, (
                        "alembic never waited for the migration lock"
                    )
                    await asyncio.sleep(0.1)
                # It keeps waiting: nothing is migrated while the lock is held.
                await asyncio.sleep(1)
                assert process.returncode is None
                tables = {
                    row[0]
                    for row in await pg_fetch(empty_pg_url, "SELECT tablename FROM pg_tables")
                }
                assert "alembic_version" not in tables

                await holder.execute("SELECT pg_advisory_unlock($1)", key)
                _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
                assert process.returncode == 0, stderr.decode()
            finally:
                if process is not None and process.returncode is None:
                    process.kill()
                    await process.wait()

    run_async(scenario())
    assert_schema_at_head(empty_pg_url)
