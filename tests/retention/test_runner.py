"""The maintenance runner: at most one at a time across processes, jobs at the start and then
on their schedule (shared through ``maintenance_state``), failures recorded and retried, the
database away survived; and its wiring in the server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from perfwatch.app import create_app
from perfwatch.db.session import Database
from perfwatch.models import MaintenanceState
from perfwatch.retention.lock import maintenance_lock
from perfwatch.retention.runner import Job, MaintenanceRunner
from tests.support.helpers import closed_postgres_url, make_settings, perfwatch, subprocess_env
from tests.support.retention import NOW, opened

HOUR = timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def database(fresh_db: str) -> AsyncIterator[Database]:
    async with opened(fresh_db) as opened_database:
        yield opened_database


async def states(database: Database) -> dict[str, MaintenanceState]:
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(MaintenanceState))).scalars()
        return {row.name: row for row in rows}


def counting(calls: list[datetime]) -> Any:
    async def step(database: Database, now: datetime) -> Mapping[str, Any]:
        calls.append(now)
        return {"runs": len(calls)}

    return step


async def test_two_runners_never_run_at_once(database: Database, fresh_db: str) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(database: Database, now: datetime) -> Mapping[str, Any]:
        entered.set()
        await release.wait()
        return {}

    clock = Clock()
    first = MaintenanceRunner(database, [Job("retention", HOUR, slow)], clock=clock)
    async with opened(fresh_db) as other_process:  # an engine of its own, like a process
        second = MaintenanceRunner(other_process, [Job("retention", HOUR, slow)], clock=clock)
        running = asyncio.create_task(first.run_round())
        await entered.wait()
        assert await second.run_round() is None  # the lock is taken: skipped, not queued
        release.set()
        assert await running == ["retention"]
        # The holder is done: the second runs its start-up round, then waits for next_run_at,
        # which the first recorded for every process.
        assert await second.run_round() == ["retention"]
        assert await second.run_round() == []
        clock.now += HOUR
        assert await second.run_round() == ["retention"]


async def test_another_process_is_refused_while_the_lock_is_held(
    database: Database, fresh_db: str, tmp_path: Path
) -> None:
    env = subprocess_env(fresh_db, tmp_path / "data")
    async with maintenance_lock(database.engine) as held:
        assert held
        refused = await asyncio.to_thread(perfwatch, "retention", "run", env=env, cwd=tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "another process is running the maintenance jobs" in refused.stderr
    assert (await states(database)) == {}  # it did nothing, not even record a start
    ran = await asyncio.to_thread(perfwatch, "retention", "run", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "retention" in await states(database)


async def test_jobs_run_at_start_then_on_schedule_and_are_recorded(database: Database) -> None:
    clock = Clock()
    minutely: list[datetime] = []
    hourly: list[datetime] = []
    runner = MaintenanceRunner(
        database,
        [
            Job("tiers", timedelta(minutes=1), counting(minutely)),
            Job("retention", HOUR, counting(hourly)),
        ],
        clock=clock,
    )
    assert await runner.run_round() == ["tiers", "retention"]
    for _ in range(3):
        clock.now += timedelta(minutes=1)
        assert await runner.run_round() == ["tiers"]
    clock.now = NOW + HOUR
    assert await runner.run_round() == ["tiers", "retention"]
    assert hourly == [NOW, NOW + HOUR]
    state = (await states(database))["retention"]
    assert state.last_started_at == NOW + HOUR and state.last_finished_at == NOW + HOUR
    assert state.next_run_at == NOW + 2 * HOUR
    assert state.last_error is None and state.details == {"runs": 2}


async def test_a_failing_job_is_recorded_and_retried_next_round(database: Database) -> None:
    clock = Clock()
    outcomes: list[Exception | None] = [RuntimeError("disk on fire"), None]
    other: list[datetime] = []

    async def flaky(database: Database, now: datetime) -> Mapping[str, Any]:
        failure = outcomes.pop(0)
        if failure:
            raise failure
        return {"ok": True}

    runner = MaintenanceRunner(
        database,
        [Job("retention", HOUR, flaky), Job("tiers", HOUR, counting(other))],
        clock=clock,
    )
    assert await runner.run_round() == ["retention", "tiers"]  # the failure stops nothing else
    failed = (await states(database))["retention"]
    assert failed.last_error == "RuntimeError: disk on fire"
    assert failed.next_run_at == NOW + timedelta(seconds=runner.tick_seconds)

    clock.now += timedelta(minutes=1)
    assert await runner.run_round() == ["retention"]
    recovered = (await states(database))["retention"]
    assert recovered.last_error is None and recovered.details == {"ok": True}
    assert recovered.next_run_at == clock.now + HOUR


@pytest.mark.parametrize("dialect", ["postgres"])
async def test_the_loop_survives_the_database_being_away(
    dialect: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[datetime] = []
    async with opened(closed_postgres_url(), db_connect_timeout=1) as away:
        runner = MaintenanceRunner(
            away, [Job("retention", HOUR, counting(calls))], tick_seconds=0.05
        )
        stop = asyncio.Event()
        with caplog.at_level(logging.WARNING, logger="perfwatch.maintenance"):
            loop = asyncio.create_task(runner.run(stop))
            await asyncio.sleep(0.5)
            assert not loop.done()
            stop.set()
            await asyncio.wait_for(loop, 5)
    failures = [r for r in caplog.records if "maintenance round failed" in r.getMessage()]
    assert len(failures) >= 2 and calls == []
    assert failures[0].exc_info and not failures[1].exc_info  # one traceback, then one line


async def test_the_server_runs_the_maintenance_jobs(fresh_db: str) -> None:
    app = create_app(make_settings(fresh_db, run_maintenance=True))
    async with app.router.lifespan_context(app):
        database: Database = app.state.database
        for _ in range(200):
            state = (await states(database)).get("retention")
            if state is not None and state.last_finished_at is not None:
                break
            await asyncio.sleep(0.05)
    assert state is not None and state.last_error is None, state and state.last_error
    assert state.details is not None and "expired" in state.details
