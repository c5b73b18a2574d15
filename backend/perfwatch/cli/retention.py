"""``perfwatch retention``: apply the archive policies and the disk cap by hand."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import typer

from perfwatch.cli.common import require_schema_at_head, run, settings
from perfwatch.db.session import Database
from perfwatch.db.types import utcnow
from perfwatch.errors import PerfWatchError
from perfwatch.retention.job import RetentionReport, preview_retention, run_retention
from perfwatch.retention.jobs import RETENTION_EVERY, archiver_for
from perfwatch.retention.lock import maintenance_lock
from perfwatch.retention.runner import Job, record_run
from perfwatch.retention.state import RETENTION_JOB

retention_app = typer.Typer(
    help="Expire history: archive policies, disk cap.",
    no_args_is_help=True,
)


@retention_app.command("run")
def retention_run(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would be archived and dropped; change nothing."
    ),
) -> None:
    """Expire what is past its policy's window now, then apply the disk cap.

    Prints one line per (resolution, type, period): raw days, 1-minute and 1-hour tier months.
    Waits for nothing: if the server or `perfwatch sampler` is running the maintenance jobs
    right now, says so and exits 1."""
    current = settings()

    async def work(database: Database) -> list[str]:
        await require_schema_at_head(database)
        if dry_run:
            return (await preview_retention(database, utcnow())).preview_lines()
        reports: list[RetentionReport] = []

        async def step(database: Database, now: datetime) -> Mapping[str, Any]:
            report = await run_retention(database, now, archiver_for(current), count_rows=True)
            reports.append(report)
            return report.details()

        async with maintenance_lock(database.engine) as held:
            if not held:
                raise PerfWatchError(
                    "another process is running the maintenance jobs (the server or "
                    "`perfwatch sampler`); try again in a minute"
                )
            job = Job(RETENTION_JOB, RETENTION_EVERY, step)
            await record_run(database, job, utcnow, timedelta(0), schedule=False)
        return reports[0].result_lines()

    for line in run(work):
        typer.echo(line)
