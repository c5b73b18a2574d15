"""The maintenance jobs the server and ``perfwatch sampler`` run, wired in this one place:
what each job's step is, how often it runs, and which archive writer retention uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from perfwatch.config import Settings
from perfwatch.db.session import Database, unit_of_work
from perfwatch.metrics.tiers.job import roll_up_tiers
from perfwatch.retention.archive import remove_stale_temp_files
from perfwatch.retention.archiving import Archiver, ArchiveResult
from perfwatch.retention.day_archiver import DayArchiver
from perfwatch.retention.job import run_retention
from perfwatch.retention.runner import Job, MaintenanceRunner, Step
from perfwatch.retention.state import RETENTION_JOB, TIERS_JOB

TIERS_EVERY = timedelta(minutes=1)
RETENTION_EVERY = timedelta(hours=1)
# The tier job's minutes per transaction: a catch-up (after an upgrade, an outage, a seed)
# holds SQLite's one write lock for about 0.3 s per hour of one host's data, so an hour per
# transaction keeps the sampler's writes flowing; and at most a day per run, so the other
# jobs get their turn.
TIER_MINUTES_PER_TRANSACTION = 60
TIER_TRANSACTIONS_PER_RUN = 24
# On shutdown a job under way may finish this long (a drop, a delete batch) before it is
# cancelled; a cancelled drop or batch rolls back whole.
STOP_GRACE_SECONDS = 10.0


class FileArchiver:
    """The archive writer of ``action=archive`` policies: every host's day of a type to a
    verified file in ``archive_dir`` (``retention/day_archiver.py``), reading in a transaction
    of its own."""

    def __init__(self, archive_dir: Path) -> None:
        self.archive_dir = archive_dir
        self._writer = DayArchiver(archive_dir)

    async def archive(self, database: Database, metric_type: str, day: date) -> ArchiveResult:
        async with unit_of_work(database.sessionmaker) as session:
            written = await self._writer.archive(session, metric_type, day)
        return ArchiveResult(written.rows, len(written.files), written.size_bytes)


def archiver_for(settings: Settings) -> FileArchiver:
    return FileArchiver(settings.archive_dir)


def retention_step(archiver: Archiver | None, archive_dir: Path | None = None) -> Step:
    async def step(database: Database, now: datetime) -> Mapping[str, Any]:
        if archive_dir is not None:  # what a killed archive write left behind
            await asyncio.to_thread(remove_stale_temp_files, archive_dir)
        return (await run_retention(database, now, archiver)).details()

    return step


async def tiers_step(database: Database, now: datetime) -> Mapping[str, Any]:
    """Roll up what settled since the last run, an hour of minutes per transaction."""
    totals = {"minutes_rolled": 0, "pending_minutes": 0, "minute_rows": 0, "hour_rows": 0}
    for _ in range(TIER_TRANSACTIONS_PER_RUN):
        async with unit_of_work(database.sessionmaker) as session:
            report = await roll_up_tiers(session, now=now, max_minutes=TIER_MINUTES_PER_TRANSACTION)
        totals["minutes_rolled"] += report.minutes_rolled
        totals["pending_minutes"] += report.pending_minutes
        totals["minute_rows"] += report.minute_rows_written
        totals["hour_rows"] += report.hour_rows_written
        if report.caught_up:
            break
    return {**totals, "watermark": report.watermark.isoformat(), "caught_up": report.caught_up}


def maintenance_jobs(settings: Settings) -> list[Job]:
    """Every minute the tier roll-up; every hour (and at start) partitions ahead, expiry and
    the disk cap."""
    return [
        # Tiers first: retention expires raw data only once it is rolled up.
        Job(TIERS_JOB, TIERS_EVERY, tiers_step),
        Job(
            RETENTION_JOB,
            RETENTION_EVERY,
            retention_step(archiver_for(settings), settings.archive_dir),
        ),
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
