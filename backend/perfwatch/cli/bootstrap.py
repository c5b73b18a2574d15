"""``perfwatch init`` and ``perfwatch seed``: first data and demo history."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from perfwatch.bootstrap.init import InitReport, initialise
from perfwatch.bootstrap.seed import MAX_SEED_DAYS, plan_seed, seed_history
from perfwatch.cli.common import require_schema_at_head, run, settings
from perfwatch.config import get_settings
from perfwatch.db.session import Database, unit_of_work


def _print_report(report: InitReport) -> None:
    for item in report.created:
        typer.echo(f"created  {item}")
    for item in report.skipped:
        typer.echo(f"skipped  {item}")
    if report.generated_admin_password:
        current = get_settings()
        typer.secho(
            f"\nGenerated password for {current.admin_username!r} (shown once, store it now): "
            f"{report.generated_admin_password}\n",
            fg=typer.colors.YELLOW,
        )


def init() -> None:
    """Create the admin user, default config and archive policies.

    Each only if missing: running it again changes nothing."""
    current = settings()

    async def work(database: Database) -> InitReport:
        await require_schema_at_head(database)
        async with unit_of_work(database.sessionmaker) as session:
            return await initialise(session, current)

    _print_report(run(work))


def _progress_lines(total: int) -> Callable[[int], None]:
    """Progress for a log or a pipe, where a bar cannot redraw (click would print only its label):
    one line each time another tenth of the rows is written."""
    written = 0
    tenths_shown = 0

    def update(count: int) -> None:
        nonlocal written, tenths_shown
        written += count
        tenths = written * 10 // total
        if tenths > tenths_shown:
            tenths_shown = tenths
            typer.echo(f"{written:,} of {total:,} snapshots written ({written * 100 // total}%)")

    return update


def seed(
    days: float = typer.Option(
        1.0, min=0.001, max=MAX_SEED_DAYS, help="Days of history to generate."
    ),
    interval: int = typer.Option(60, min=1, max=86_400, help="Seconds between points."),
    host: str | None = typer.Option(None, help="Host name to record (default: <hostname>-demo)."),
) -> None:
    """Generate demo history for every metric type (idempotent)."""
    plan = plan_seed(days=days, interval_seconds=interval, host=host)

    async def work(database: Database) -> int:
        await require_schema_at_head(database)
        typer.echo(
            f"seeding {plan.total_rows:,} snapshots for {plan.host} "
            f"({plan.start:%Y-%m-%d %H:%M} → {plan.end:%Y-%m-%d %H:%M} UTC, every {interval} s)"
        )
        if sys.stdout.isatty():
            with typer.progressbar(length=plan.total_rows, label="snapshots") as bar:
                return await seed_history(plan, database.sessionmaker, on_progress=bar.update)
        return await seed_history(
            plan, database.sessionmaker, on_progress=_progress_lines(plan.total_rows)
        )

    inserted = run(work)
    typer.echo(
        f"inserted {inserted:,} new snapshots ({plan.total_rows - inserted:,} already present)"
    )
