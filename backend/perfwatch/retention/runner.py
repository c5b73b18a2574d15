"""The maintenance runner: one loop, in the server and in ``perfwatch sampler``, running the
maintenance jobs on their schedules — at most one runner at a time across processes
(``lock.py``): a process that does not get the lock skips the round.

Every ``tick_seconds`` (60) the holder of the lock runs the jobs that are due: each job once at
the process's start, then when its ``next_run_at`` in ``maintenance_state`` has come (shared by
every process, so two processes do not both run an hourly job). Each job's run is recorded
there: started, finished, error, next run, details. A failing job is logged and retried on the
next round; a round that cannot reach the database is logged and retried too, so the loop
survives the database being away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from perfwatch.db.session import Database, unit_of_work
from perfwatch.db.types import utcnow
from perfwatch.retention.lock import maintenance_lock
from perfwatch.retention.state import MaintenanceStateRepository, error_text

logger = logging.getLogger("perfwatch.maintenance")

TICK_SECONDS = 60.0

# A job's work: given the database and the time of the run, do it, and say what was done
# (stored as maintenance_state.details).
Step = Callable[[Database, datetime], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # its maintenance_state row
    every: timedelta
    step: Step


async def record_run(
    database: Database,
    job: Job,
    clock: Callable[[], datetime],
    retry_after: timedelta,
    *,
    schedule: bool = True,
) -> Mapping[str, Any]:
    """Run ``job`` once, recording it in ``maintenance_state``, and return its details. A
    failure is recorded (``last_error``, next run after ``retry_after``) and raised again.
    Without ``schedule`` (a run by hand) ``next_run_at`` is left as it was."""
    started = clock()
    async with unit_of_work(database.sessionmaker) as session:
        await MaintenanceStateRepository(session).record(job.name, last_started_at=started)
    try:
        details = await job.step(database, started)
    except Exception as exc:
        failed = clock()
        values: dict[str, Any] = {"last_finished_at": failed, "last_error": error_text(exc)}
        if schedule:
            values["next_run_at"] = failed + retry_after
        async with unit_of_work(database.sessionmaker) as session:
            await MaintenanceStateRepository(session).record(job.name, **values)
        raise
    values = {"last_finished_at": clock(), "last_error": None, "details": dict(details)}
    if schedule:
        values["next_run_at"] = started + job.every
    async with unit_of_work(database.sessionmaker) as session:
        await MaintenanceStateRepository(session).record(job.name, **values)
    return details


class MaintenanceRunner:
    def __init__(
        self,
        database: Database,
        jobs: Sequence[Job],
        *,
        clock: Callable[[], datetime] = utcnow,
        tick_seconds: float = TICK_SECONDS,
    ) -> None:
        self.database = database
        self.jobs = tuple(jobs)
        self.clock = clock
        self.tick_seconds = tick_seconds
        # Jobs this process has run successfully: each runs at the start, and after a failure.
        self._started: set[str] = set()
        self._failing = False

    async def run_round(self) -> list[str] | None:
        """Run the due jobs if this process gets the lock; their names, or None when another
        runner holds it."""
        async with maintenance_lock(self.database.engine) as held:
            if not held:
                logger.debug("another process holds the maintenance lock; skipping this round")
                return None
            due = await self._due(self.clock())
            for job in due:
                try:
                    await record_run(
                        self.database, job, self.clock, timedelta(seconds=self.tick_seconds)
                    )
                except Exception:  # logged; the job is due again next round
                    logger.warning(
                        "maintenance job %s failed; retrying in %.0f s",
                        job.name,
                        self.tick_seconds,
                        exc_info=True,
                    )
                    continue
                self._started.add(job.name)
            return [job.name for job in due]

    async def _due(self, now: datetime) -> list[Job]:
        async with unit_of_work(self.database.sessionmaker) as session:
            state = await MaintenanceStateRepository(session).for_names(j.name for j in self.jobs)
        due = []
        for job in self.jobs:
            row = state.get(job.name)
            next_run = row.next_run_at if row is not None else None
            if job.name not in self._started or next_run is None or next_run <= now:
                due.append(job)
        return due

    async def run(self, stop: asyncio.Event) -> None:
        """Round after round until ``stop`` is set (a job under way finishes first)."""
        while not stop.is_set():
            try:
                await self.run_round()
            except Exception:  # the database is away, or the lock cannot be taken: next round
                logger.warning(
                    "maintenance round failed; retrying in %.0f s",
                    self.tick_seconds,
                    exc_info=not self._failing,  # the traceback once, not every minute
                )
                self._failing = True
            else:
                self._failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_seconds)
