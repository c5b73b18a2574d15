"""Archiving raw days from the database and restoring them (``retention/day_archiver.py``,
``retention/restore.py``, ``perfwatch archive``), on both dialects: archive → drop → restore
gives the very rows back, marks their minutes for the tiers, and restoring twice changes
nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import zstandard
from sqlalchemy import Text, cast, delete, func, select

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.db.engine import build_engine
from perfwatch.db.partitions import SNAPSHOTS, ensure_partitions_between
from perfwatch.db.session import Database, make_sessionmaker, unit_of_work
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.models import MetricSnapshot, MetricTierPending
from perfwatch.retention import day_archiver
from perfwatch.retention.archive import (
    ArchiveVerificationError,
    Manifest,
    archive_path,
    list_archives,
    read_rows,
    verify,
)
from perfwatch.retention.archive.paths import manifest_path
from perfwatch.retention.day_archiver import DayArchive, DayArchiver
from perfwatch.retention.restore import restore_file
from tests.support.cli import invoke
from tests.support.helpers import make_settings

DAY = datetime.now(UTC).date() - timedelta(days=10)
START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
HOSTS = ("web-1", "db-1", 'rack/3 "ünï"')
TYPES = ("cpu", "processes", "gpu")  # gpu: a type without a partition of its own (_other)
ROWS = 40
# Texts the database keeps as written (PostgreSQL's jsonb keeps 1.10 and every digit).
DOCUMENTS = (
    '{"percent": 1.10, "per_core": [0.50, 100.00], "big": 123456789012345678901234567890}',
    '{"name": "café ☕ 日本", "quote": "say \\"hi\\"", "n": 1e-7, "empty": {}, "list": []}',
    '{"percent": 42, "nested": {"data": {"data": 2.50}}, "flag": true, "none": null}',
)

Row = tuple[str, str, datetime, str]


def day_times() -> list[datetime]:
    """The day's capture times: its first and last microsecond and points between."""
    step = timedelta(days=1) / (ROWS - 1)
    times = [START + index * step for index in range(ROWS - 1)]
    return [*times, START + timedelta(days=1) - timedelta(microseconds=1)]


def snapshots(host: str, metric_type: str, times: Iterable[datetime]) -> list[EncodedSnapshot]:
    return [
        EncodedSnapshot(host, at, metric_type, DOCUMENTS[index % len(DOCUMENTS)])
        for index, at in enumerate(times)
    ]


@pytest.fixture
async def database(fresh_db: str) -> AsyncIterator[Database]:
    engine = build_engine(make_settings(fresh_db))
    database = Database(engine, make_sessionmaker(engine))
    async with unit_of_work(database.sessionmaker) as session:
        # The day before and after too: their rows must be left alone.
        await ensure_partitions_between(
            session, SNAPSHOTS, DAY - timedelta(days=1), DAY + timedelta(days=1)
        )
        rows = []
        for host in HOSTS:
            for metric_type in TYPES:
                rows += snapshots(host, metric_type, day_times())
                neighbours = [START - timedelta(microseconds=1), START + timedelta(days=1)]
                rows += snapshots(host, metric_type, neighbours)
        await SnapshotIngest(session).bulk_insert_encoded(rows)
    yield database
    await engine.dispose()


async def stored(database: Database, day: date | None = DAY) -> list[Row]:
    """(host, type, captured_at, document text as the database returns it), of ``day`` or all."""
    query = select(
        MetricSnapshot.host,
        MetricSnapshot.metric_type,
        MetricSnapshot.captured_at,
        cast(MetricSnapshot.metric_data, Text),
    ).order_by(MetricSnapshot.host, MetricSnapshot.metric_type, MetricSnapshot.captured_at)
    if day is not None:
        query = query.where(
            MetricSnapshot.captured_at >= START,
            MetricSnapshot.captured_at < START + timedelta(days=1),
        )
    async with database.sessionmaker() as session:
        return [tuple(row) for row in await session.execute(query)]  # type: ignore[misc]


async def drop_day(database: Database) -> None:
    """What retention does to an archived day (there by DROP TABLE on PostgreSQL), and the
    tier marks of the seeding, so that a restore's marks are seen alone."""
    async with unit_of_work(database.sessionmaker) as session:
        await session.execute(
            delete(MetricSnapshot).where(
                MetricSnapshot.captured_at >= START,
                MetricSnapshot.captured_at < START + timedelta(days=1),
            )
        )
        await session.execute(delete(MetricTierPending))


async def pending(database: Database) -> set[tuple[str, str, datetime]]:
    async with database.sessionmaker() as session:
        result = await session.execute(
            select(MetricTierPending.host, MetricTierPending.metric_type, MetricTierPending.minute)
        )
        return {(host, kind, minute) for host, kind, minute in result}


async def archive_day(
    database: Database, directory: Path, metric_type: str, page_rows: int = 7
) -> DayArchive:
    async with unit_of_work(database.sessionmaker) as session:
        return await DayArchiver(directory, page_rows=page_rows).archive(session, metric_type, DAY)


async def archive_all(database: Database, directory: Path) -> dict[str, DayArchive]:
    return {kind: await archive_day(database, directory, kind) for kind in TYPES}


def plain_lines(path: Path) -> list[bytes]:
    """The file's lines as a standard zstd reader gives them (the ``zstd`` tool when present)."""
    if shutil.which("zstd"):
        raw = subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    else:
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    return raw.splitlines()


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


# ----- archive → drop → restore -------------------------------------------------------------


async def test_an_archived_day_is_restored_identical_and_marks_its_minutes(
    database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "archive"
    before = await stored(database)
    everything = await stored(database, None)
    assert len(before) == len(HOSTS) * len(TYPES) * ROWS

    archived = await archive_all(database, directory)
    for kind, day_archive in archived.items():
        assert day_archive.rows == len(HOSTS) * ROWS
        assert sorted(manifest.host for manifest in day_archive.files) == sorted(HOSTS)
        assert day_archive.size_bytes == sum(f.size_bytes for f in day_archive.files) > 0
        for manifest in day_archive.files:
            path = archive_path(directory, manifest.host, kind, DAY)
            assert verify(path) == manifest
            assert (manifest.rows, manifest.day) == (ROWS, DAY)
            mine = [row for row in before if row[:2] == (manifest.host, kind)]
            assert (manifest.first, manifest.last) == (mine[0][2], mine[-1][2])
            # Standard tools read it: each line is JSON whose "data" is the stored text.
            lines = plain_lines(path)
            assert len(lines) == ROWS
            for line, (host, _, at, text) in zip(lines, mine, strict=True):
                entry = json.loads(line)
                assert (entry["host"], entry["metric_type"]) == (host, kind)
                assert entry["captured_at"] == at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                assert line.endswith(b',"data":' + text.encode() + b"}")
    assert sorted(list_archives(directory), key=str) == sorted(
        (f for a in archived.values() for f in a.files), key=str
    )

    await drop_day(database)
    assert await stored(database) == []
    for manifest in list_archives(directory):
        path = archive_path(directory, manifest.host, manifest.metric_type, DAY)
        result = await restore_file(database.sessionmaker, path, batch_rows=13)
        assert (result.rows_in_file, result.inserted, result.already_present) == (ROWS, ROWS, 0)
        assert result.manifest == manifest
    assert await stored(database) == before  # same rows, same text byte for byte
    assert await stored(database, None) == everything
    assert await pending(database) == {(host, kind, minute(at)) for host, kind, at, _ in before}

    for manifest in list_archives(directory):
        path = archive_path(directory, manifest.host, manifest.metric_type, DAY)
        again = await restore_file(database.sessionmaker, path)
        assert (again.rows_in_file, again.inserted, again.already_present) == (ROWS, 0, ROWS)
    assert await stored(database, None) == everything


async def test_archiving_a_restored_day_again_merges_without_duplicates(
    database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "archive"
    first = await archive_day(database, directory, "cpu")
    digests = {manifest.host: manifest.sha256 for manifest in first.files}
    await drop_day(database)
    for manifest in first.files:
        await restore_file(
            database.sessionmaker, archive_path(directory, manifest.host, "cpu", DAY)
        )
    late = EncodedSnapshot("web-1", START + timedelta(hours=5, microseconds=3), "cpu", "{}")
    async with unit_of_work(database.sessionmaker) as session:
        assert await SnapshotIngest(session).bulk_insert_encoded([late]) == 1

    second = await archive_day(database, directory, "cpu", page_rows=1000)
    assert second.rows == len(HOSTS) * ROWS + 1
    by_host = {manifest.host: manifest for manifest in second.files}
    assert by_host["web-1"].rows == ROWS + 1
    for host in HOSTS:
        times = [row.captured_at for row in read_rows(archive_path(directory, host, "cpu", DAY))]
        assert times == sorted(set(times))
        in_db = [at for h, kind, at, _ in await stored(database) if (h, kind) == (host, "cpu")]
        assert times == in_db
        if host != "web-1":  # the same rows again: the very same file
            assert by_host[host].sha256 == digests[host]


async def test_the_plan_says_what_would_be_archived_and_writes_nothing(
    database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "archive"
    archiver = DayArchiver(directory)
    async with database.sessionmaker() as session:
        planned = await archiver.plan(session, "processes", DAY)
    assert sorted(file.host for file in planned) == sorted(HOSTS)
    for file in planned:
        assert (file.metric_type, file.day, file.rows) == ("processes", DAY, ROWS)
        assert (file.first, file.last) == (day_times()[0], day_times()[-1])
        assert file.path == archive_path(directory, file.host, "processes", DAY)
        assert not file.exists
    assert not directory.exists()

    await archive_day(database, directory, "processes")
    async with database.sessionmaker() as session:
        assert all(file.exists for file in await archiver.plan(session, "processes", DAY))
        assert await archiver.plan(session, "memory", DAY) == []


async def test_a_day_without_rows_gives_no_files(database: Database, tmp_path: Path) -> None:
    assert await archive_day(database, tmp_path / "archive", "memory") == DayArchive([], 0)
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize("fault", ["missing_row", "other_document"])
async def test_a_file_without_every_row_read_is_refused(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """A writer that loses or changes a row still writes a file that verifies against its own
    manifest: the archiver's check of the rows it read is what catches it."""
    real_write_day = day_archiver.write_day

    def faulty(
        directory: Path, host: str, kind: str, day: date, rows: Iterable[EncodedSnapshot]
    ) -> Manifest:
        def altered() -> Iterator[EncodedSnapshot]:
            for index, row in enumerate(rows):
                if index == 20 and fault == "missing_row":
                    continue
                yield row._replace(document="{}") if index == 20 else row

        return real_write_day(directory, host, kind, day, altered())

    monkeypatch.setattr(day_archiver, "write_day", faulty)
    message = "is not in the archive" if fault == "missing_row" else "documents differ"
    with pytest.raises(ArchiveVerificationError, match=message):
        await archive_day(database, tmp_path / "archive", "cpu")


# ----- refusals --------------------------------------------------------------------------------


async def test_a_damaged_file_is_refused_and_nothing_inserted(
    database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "archive"
    archived = await archive_day(database, directory, "cpu")
    await drop_day(database)
    paths = [archive_path(directory, host, "cpu", DAY) for host in HOSTS]
    corrupt(paths[0])
    paths[1].write_bytes(paths[1].read_bytes()[:-20])  # truncated
    manifest_path(paths[2]).unlink()
    problems = ["doesn't match checksum", "truncated", "no manifest"]
    for path, problem in zip(paths, problems, strict=True):
        with pytest.raises(ArchiveVerificationError, match=problem) as refused:
            await restore_file(database.sessionmaker, path)
        assert str(path) in str(refused.value)
    with pytest.raises(ArchiveVerificationError, match="no such archive file"):
        await restore_file(database.sessionmaker, directory / "nowhere" / "2020-01-01.jsonl.zst")
    assert await stored(database) == []
    assert await pending(database) == set()
    assert archived.rows == len(HOSTS) * ROWS


# ----- the command line ------------------------------------------------------------------------


async def test_cli_lists_and_restores_archives(
    fresh_db: str, database: Database, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    directory = data_dir / "archive"  # the default archive directory of PERFWATCH_DATA_DIR
    empty = invoke(["archive", "list", "--json"], fresh_db, data_dir)
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.stdout) == []

    await archive_day(database, directory, "cpu")
    await archive_day(database, directory, "gpu")
    before = await stored(database)
    listed = invoke(["archive", "list", "--json"], fresh_db, data_dir)
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)
    assert [(e["host"], e["metric_type"]) for e in entries] == sorted(
        (host, kind) for host in HOSTS for kind in ("cpu", "gpu")
    )
    for entry in entries:
        path = Path(entry["path"])
        manifest = verify(path)
        assert entry == {
            "host": manifest.host,
            "metric_type": manifest.metric_type,
            "day": DAY.isoformat(),
            "rows": ROWS,
            "bytes": manifest.size_bytes,
            "first": day_times()[0].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "last": day_times()[-1].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "path": str(archive_path(directory, manifest.host, manifest.metric_type, DAY)),
        }
    text = invoke(["archive", "list"], fresh_db, data_dir)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].split()[:5] == ["HOST", "TYPE", "DAY", "ROWS", "BYTES"]
    assert len(lines) == 1 + len(entries) + 1
    assert lines[1].split()[:4] == ["db-1", "cpu", DAY.isoformat(), str(ROWS)]
    total = sum(entry["bytes"] for entry in entries)
    assert lines[-1] == f"({len(entries)} archived day(s), {total} bytes in {directory})"

    await drop_day(database)
    cpu = [Path(e["path"]) for e in entries if e["metric_type"] == "cpu"]
    gpu = [Path(e["path"]) for e in entries if e["metric_type"] == "gpu"]
    corrupt(gpu[0])
    # A day named by its data file and its manifest is restored once.
    args = [str(cpu[0]), str(manifest_path(cpu[0])), *map(str, cpu[1:]), *map(str, gpu)]
    restored = invoke(["archive", "restore", *args], fresh_db, data_dir)
    assert restored.exit_code == 1, restored.output
    (error,) = restored.stderr.splitlines()  # one line for the damaged file
    assert error.startswith(f"error: {gpu[0]}: ")
    assert "checksum" in error
    assert restored.stdout.splitlines() == [
        f"restored {path}: {ROWS} rows, {ROWS} inserted, 0 already present"
        for path in [*cpu, *gpu[1:]]
    ]
    refused_host = manifest_field(gpu[0], "host")
    expected = [
        row for row in before if row[1] in ("cpu", "gpu") and row[:2] != (refused_host, "gpu")
    ]
    assert await stored(database) == expected

    again = invoke(["archive", "restore", *map(str, cpu)], fresh_db, data_dir)
    assert again.exit_code == 0, again.output
    assert again.stderr == ""
    assert again.stdout.splitlines() == [
        f"restored {path}: {ROWS} rows, 0 inserted, {ROWS} already present" for path in cpu
    ]
    async with database.sessionmaker() as session:
        assert (
            await session.scalar(select(func.count()).select_from(MetricSnapshot))
            == len(expected) + len(HOSTS) * len(TYPES) * 2
        )


def manifest_field(path: Path, name: str) -> str:
    return str(json.loads(manifest_path(path).read_text())[name])
