"""``perfwatch retention run [--dry-run]`` as a user runs it: a subprocess on a real database,
the real clock (the stored history is months old)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from perfwatch.db.types import utcnow
from perfwatch.models import ArchiveAction, MetricTierMinute
from perfwatch.retention.lock import maintenance_lock
from tests.support.cli import assert_one_line_error
from tests.support.helpers import fetch, perfwatch, subprocess_env
from tests.support.retention import (
    add_policy,
    day,
    make_partitions,
    opened,
    set_rolled_up,
    store_raw,
    store_tier,
)


async def months_old_history(url: str) -> None:
    async with opened(url) as database:
        await add_policy(database, "*", 3, 30, 60)
        await add_policy(database, "processes", 2, 30, 60, ArchiveAction.ARCHIVE)
        await make_partitions(database, day(-1), day(0))
        for metric_type in ("cpu", "processes"):
            await store_raw(database, metric_type, day(-1), 5, partition=False)
        await store_tier(database, MetricTierMinute, "cpu", datetime(2026, 6, 1, 5, tzinfo=UTC))
        await set_rolled_up(database, utcnow())


def snapshot_counts(url: str) -> list[tuple[object, ...]]:
    return fetch(
        url, "SELECT metric_type, count(*) FROM metric_snapshots GROUP BY metric_type ORDER BY 1"
    )


async def test_dry_run_prints_what_would_go_and_changes_nothing(
    fresh_db: str, tmp_path: Path
) -> None:
    await months_old_history(fresh_db)
    env = subprocess_env(fresh_db, tmp_path / "data")
    before = (snapshot_counts(fresh_db), fetch(fresh_db, "SELECT count(*) FROM maintenance_state"))

    dry = await asyncio.to_thread(perfwatch, "retention", "run", "--dry-run", env=env, cwd=tmp_path)

    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    cpu = next(line for line in lines if line.startswith(f"raw cpu {day(-1)}"))
    assert "drop" in cpu or "delete" in cpu
    assert "5 rows" in cpu
    processes = next(line for line in lines if line.startswith(f"raw processes {day(-1)}"))
    assert "archive+" in processes
    assert any(line.startswith("1m cpu 2026-06") for line in lines)
    assert lines[-1] == "disk cap: off (storage.max_bytes = 0)"
    assert (
        snapshot_counts(fresh_db),
        fetch(fresh_db, "SELECT count(*) FROM maintenance_state"),
    ) == before

    ran = await asyncio.to_thread(perfwatch, "retention", "run", env=env, cwd=tmp_path)

    assert ran.returncode == 0, ran.stderr
    assert any(
        line.startswith(f"raw cpu {day(-1)}") and "5 rows" in line
        for line in ran.stdout.splitlines()
    )
    archived = next(
        line for line in ran.stdout.splitlines() if line.startswith(f"raw processes {day(-1)}")
    )
    assert "archived 5 rows" in archived, archived
    assert snapshot_counts(fresh_db) == []
    archive = tmp_path / "data" / "archive" / "web-1" / "processes"
    assert sorted(path.name for path in archive.iterdir()) == [
        f"{day(-1)}.jsonl.zst",
        f"{day(-1)}.manifest.json",
    ]
    again = await asyncio.to_thread(
        perfwatch, "retention", "run", "--dry-run", env=env, cwd=tmp_path
    )
    assert [line for line in again.stdout.splitlines() if line.startswith("raw cpu")] == []


async def test_a_run_waits_for_the_lock_then_says_who_holds_it(
    fresh_db: str, tmp_path: Path
) -> None:
    await months_old_history(fresh_db)
    env = subprocess_env(fresh_db, tmp_path / "data")
    async with opened(fresh_db) as database, maintenance_lock(database.engine) as held:
        assert held
        ran = await asyncio.to_thread(
            perfwatch, "retention", "run", "--wait", "1", env=env, cwd=tmp_path
        )
    assert ran.returncode == 1
    assert_one_line_error(ran, "another process is running the maintenance jobs")
    assert snapshot_counts(fresh_db) == [("cpu", 5), ("processes", 5)]
