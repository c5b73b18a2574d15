"""The maintenance jobs the server and ``perfwatch sampler`` run, wired in this one place:
what each job's step is, how often it runs, and which archive writer retention uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from perfwatch.config import Settings
from perfwatch.db.session import Database
from perfwatch.retention.archiving import Archiver
from perfwatch.retention.job import run_retention
from perfwatch.retention.runner import Job, MaintenanceRunner, Step
from perfwatch.retention.state import RETENTION_JOB

RETENTION_EVERY = timedelta(hours=1)
# On shutdown a job under way may finish this long (a drop, a delete batch) before it is
# cancelled; a cancelled drop or batch rolls back whole.
STOP_GRACE_SECONDS = 10.0


def archiver_for(settings: Settings) -> Archiver | None:
    """The archive writer for ``action=archive`` policies.

    MERGE(issue 11): return the archive writer (the "Archives" branch) built from ``settings``.
    Until then there is none, and raw days whose policy archives are kept, never dropped."""
    del settings
    return None


def retention_step(archiver: Archiver | None) -> Step:
    async def step(database: Database, now: datetime) -> Mapping[str, Any]:
        return (await run_retention(database, now, archiver)).details()

    return step


def maintenance_jobs(settings: Settings) -> list[Job]:
    """Every minute the tier roll-up; every hour (and at start) partitions ahead, expiry and
    the disk cap."""
    return [
        # MERGE(issue 11): the tier job (metrics/tiers/job.py) goes first, every minute:
        #   Job(TIERS_JOB, timedelta(minutes=1), tiers_step), with
        #   async def tiers_step(database, now):
        #       async with unit_of_work(database.sessionmaker) as session:
        #           result = await roll_up_tiers(session, now=now)
        #       return <result as a JSON-able dict>
        Job(RETENTION_JOB, RETENTION_EVERY, retention_step(archiver_for(settings))),
    ]


class BackgroundMaintenance:
    """The runner as a task beside the server or the sampler."""

    def __init__(self, runner: MaintenanceRunner) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(runner.run(self._stop), name="maintenance")

    async def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        self._stop.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._task, grace_seconds)


def start_maintenance(database: Database, settings: Settings) -> BackgroundMaintenance | None:
    """Run the maintenance jobs in the background, unless ``RUN_MAINTENANCE`` is off."""
    if not settings.run_maintenance:
        return None
    return BackgroundMaintenance(MaintenanceRunner(database, maintenance_jobs(settings)))
