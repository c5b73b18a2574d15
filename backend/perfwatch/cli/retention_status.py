"""``perfwatch retention status``: what ``GET /api/v1/retention`` answers, as tables or JSON.

:func:`register` adds the command to the ``retention`` group wherever that group is made."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import typer

from perfwatch.cli.common import require_schema_at_head, run, settings
from perfwatch.db.session import Database, unit_of_work
from perfwatch.retention.status import StorageStatus, gather_storage_status, human_bytes
from perfwatch.retention.status_schemas import StorageStatusOut


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}Z"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), *(line(row) for row in rows)]


def render_text(status: StorageStatus) -> str:
    database = status.database
    cap = (
        "no cap (storage.max_bytes 0)"
        if database.max_bytes <= 0
        else f"{database.percent_used:g} % of storage.max_bytes {human_bytes(database.max_bytes)}"
    )
    lines = [f"Database ({database.dialect}): {human_bytes(database.bytes)}, {cap}"]
    if database.warning:
        lines.append(f"WARNING: {database.warning}")
    estimated = any(entry.rows_estimated or entry.bytes_estimated for entry in status.series)
    lines += ["", "History" + (" (~: estimates, see docs/retention.md)" if estimated else "")]
    rows = []
    for entry in status.series:
        policy = entry.policy
        rows.append(
            [
                entry.metric_type,
                entry.tier,
                _when(entry.oldest),
                _when(entry.newest),
                ("~" if entry.rows_estimated else "") + f"{entry.rows:,}",
                ("~" if entry.bytes_estimated else "") + human_bytes(entry.bytes),
                "kept for good"
                if policy is None
                else f"{policy.keep_days} d, {policy.action.value} ({policy.source})",
            ]
        )
    header = ["TYPE", "TIER", "OLDEST", "NEWEST", "ROWS", "BYTES", "POLICY"]
    lines += _table(header, rows, right={4, 5})
    lines += ["", "Jobs"]
    job_rows = [
        [
            job.name,
            "running" if job.running else ("never run" if job.last_started_at is None else "idle"),
            _when(job.last_started_at),
            _when(job.last_finished_at),
            _when(job.next_run_at),
            job.last_error.splitlines()[0][:80] if job.last_error else "-",
        ]
        for job in status.jobs
    ]
    header = ["JOB", "STATE", "LAST STARTED", "LAST FINISHED", "NEXT RUN", "LAST ERROR"]
    lines += _table(header, job_rows, right=set())
    archive = status.archive
    lines.append("")
    if archive.exists:
        unreadable = f", {archive.unreadable} unreadable manifests" if archive.unreadable else ""
        lines.append(
            f"Archive {archive.directory}: {archive.files:,} files, "
            f"{human_bytes(archive.bytes)}, {archive.rows:,} rows{unreadable}"
        )
    else:
        lines.append(f"Archive {archive.directory}: none yet (the directory does not exist)")
    return "\n".join(lines)


def retention_status(
    as_json: bool = typer.Option(False, "--json", help="The API's JSON, for machines."),
) -> None:
    """Show the storage status.

    Per metric type and tier: oldest and newest row, rows, bytes, the policy in force; the
    maintenance jobs' runs and errors; the database size against storage.max_bytes; the
    archive files."""
    archive_dir = settings().archive_dir

    async def work(database: Database) -> StorageStatus:
        await require_schema_at_head(database)
        async with unit_of_work(database.sessionmaker) as session:
            return await gather_storage_status(session, archive_dir)

    status = run(work)
    if as_json:
        typer.echo(json.dumps(StorageStatusOut.of(status).model_dump(mode="json"), indent=2))
    else:
        typer.echo(render_text(status))


def register(group: typer.Typer) -> None:
    """Add ``status`` to the ``retention`` command group."""
    group.command("status")(retention_status)
