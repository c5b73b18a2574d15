"""``perfwatch archive``: the archive files of raw snapshots (docs/retention.md, "Archives")."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from perfwatch.cli.common import require_schema_at_head, run, settings
from perfwatch.db.session import Database
from perfwatch.retention.archive import (
    ArchiveVerificationError,
    Manifest,
    archive_path,
    list_archives,
)
from perfwatch.retention.archive.lines import format_time
from perfwatch.retention.archive.paths import MANIFEST_SUFFIX, data_path
from perfwatch.retention.restore import restore_file

archive_app = typer.Typer(help="Archived days of raw snapshots.", no_args_is_help=True)


@archive_app.command("list")
def archive_list(
    as_json: bool = typer.Option(False, "--json", help="One JSON array of the archived days."),
) -> None:
    """List the archived days from their manifests.

    Host, type, day, rows, bytes and the first and last capture time of each."""
    directory = settings().archive_dir
    manifests = list_archives(directory)
    if as_json:
        entries = [_entry(directory, manifest) for manifest in manifests]
        typer.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    lines = [f"{'HOST':<24} {'TYPE':<10} {'DAY':<10} {'ROWS':>8} {'BYTES':>12}  FIRST → LAST (UTC)"]
    for manifest in manifests:
        lines.append(
            f"{manifest.host:<24} {manifest.metric_type:<10} {manifest.day.isoformat():<10} "
            f"{manifest.rows:>8} {manifest.size_bytes:>12}  "
            f"{format_time(manifest.first)} → {format_time(manifest.last)}"
        )
    total = sum(manifest.size_bytes for manifest in manifests)
    lines.append(f"({len(manifests)} archived day(s), {total} bytes in {directory})")
    typer.echo("\n".join(lines))


def _entry(directory: Path, manifest: Manifest) -> dict[str, object]:
    return {
        "host": manifest.host,
        "metric_type": manifest.metric_type,
        "day": manifest.day.isoformat(),
        "rows": manifest.rows,
        "bytes": manifest.size_bytes,
        "first": format_time(manifest.first),
        "last": format_time(manifest.last),
        "path": str(archive_path(directory, manifest.host, manifest.metric_type, manifest.day)),
    }


@archive_app.command("restore")
def archive_restore(
    files: list[Path] = typer.Argument(
        ...,
        metavar="FILE",
        help="Archive files (<day>.jsonl.zst, or their <day>.manifest.json).",
    ),
) -> None:
    """Restore archived days into the database.

    Each file is verified, then its rows inserted (rows already stored are kept): restoring
    twice changes nothing. A file that does not verify is refused with one error line, the
    others are still restored, and the exit status is 1."""
    # A shell glob over a day's directory names both files of a day: restore each day once.
    paths = list(dict.fromkeys(_data_file(path) for path in files))

    async def work(database: Database) -> int:
        await require_schema_at_head(database)
        refused = 0
        for path in paths:
            try:
                result = await restore_file(database.sessionmaker, path)
            except ArchiveVerificationError as error:
                typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
                refused += 1
                continue
            typer.echo(
                f"restored {path}: {result.rows_in_file} rows, {result.inserted} inserted, "
                f"{result.already_present} already present"
            )
        return refused

    if run(work):
        raise typer.Exit(1)


def _data_file(path: Path) -> Path:
    return data_path(path) if path.name.endswith(MANIFEST_SUFFIX) else path
