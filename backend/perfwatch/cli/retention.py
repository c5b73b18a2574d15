"""``perfwatch retention``: apply the archive policies and the disk cap by hand."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import typer

from perfwatch.cli.common import require_schema_at_head, run, settings
from perfwatch.db.session import Database
from perfwatch.db.types import utcnow
from perfwatch.errors import PerfWatchError
from perfwatch.retention.job import RetentionReport, preview_retention, run_retention
from perfwatch.retention.jobs import RETENTION_EVERY, TIERS_EVERY, archiver_for, tiers_step
from perfwatch.retention.lock import maintenance_lock
from perfwatch.retention.runner import Job, record_run
from perfwatch.retention.state import RETENTION_JOB, TIERS_JOB

retention_app = typer.Typer(
    help="Expire history: archive policies, disk cap.",
    no_args_is_help=True,
)


@retention_app.command("run")
def retention_run(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would be archived and dropped; change nothing."
    ),
    wait: float = typer.Option(
        60,
        min=0,
        max=3600,
        help="Seconds to wait for the maintenance lock while the server or `perfwatch "
        "sampler` runs a round.",
    ),
) -> None:
    """Expire what is past its policy now, then apply the disk cap.

    Prints one line per (resolution, type, period): raw days, 1-minute and 1-hour tier months.
    First rolls the tiers up to date (late rows included: nothing is expired before it is
    rolled up). If the server or `perfwatch sampler` is running the maintenance jobs, waits up
    to --wait seconds for them to finish, else says so and exits 1."""
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

        deadline = time.monotonic() + wait
        while True:
            async with maintenance_lock(database.engine) as held:
                if held:
                    for job in (
                        Job(TIERS_JOB, TIERS_EVERY, tiers_until_caught_up),
                        Job(RETENTION_JOB, RETENTION_EVERY, step),
                    ):
                        await record_run(database, job, utcnow, timedelta(0), schedule=False)
                    break
            if time.monotonic() >= deadline:
                raise PerfWatchError(
                    "another process is running the maintenance jobs (the server or "
                    f"`perfwatch sampler`) and did not finish within {wait:g} s; try again"
                )
            await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
        return reports[0].result_lines()

    for line in run(work):
        typer.echo(line)


async def tiers_until_caught_up(database: Database, now: datetime) -> Mapping[str, Any]:
    """The tier job's runs until it has rolled up every settled and late minute."""
    while True:
        report = await tiers_step(database, now)
        if report["caught_up"]:
            return report
