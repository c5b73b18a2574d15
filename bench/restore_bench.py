"""Archiving from and restoring into PostgreSQL for issue 11 (``BENCH_ONLY=restore``): one busy
host-day of cpu (86,400 rows at 1 s, the documents of bench/archive_bench.py) is stored, archived
with ``DayArchiver`` (pages read, compressed, verified, every row checked in the file), dropped,
and restored with ``restore_file`` (verify, then batched idempotent inserts that mark the day's
minutes for the tiers); then restored once more, when every row is already there.

Figures: ``archive_day_rows_per_s`` (database → verified file), ``archive_restore_rows_per_s``
(file → database, verification included), ``archive_restore_again_rows_per_s`` (the idempotent
second restore). Sizes: BENCH_RESTORE_HOURS (default 24) hours of cpu, BENCH_RESTORE_BATCH
(default: restore.py's RESTORE_BATCH_ROWS) rows per insert, BENCH_RETENTION_POOL collected cycles.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date, datetime
from datetime import time as day_time
from pathlib import Path
from typing import Any

import archive_bench
import sampler_bench
import storage_bench
from sqlalchemy import text

from perfwatch.config import Settings
from perfwatch.db.engine import build_engine
from perfwatch.db.partitions import PARTITIONED_TABLES, SNAPSHOTS, ensure_partitions_between
from perfwatch.db.session import make_sessionmaker, unit_of_work
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.retention.archive import archive_path
from perfwatch.retention.day_archiver import DayArchiver
from perfwatch.retention.restore import RESTORE_BATCH_ROWS, restore_file

KIND = "cpu"
# A day of its own in the bench database (the retention part writes from storage_bench.START).
DAY = date(2025, 6, 1)


async def run(url: str, report: storage_bench.Report) -> dict[str, Any]:
    hours = float(os.environ.get("BENCH_RESTORE_HOURS", "24"))
    batch = int(os.environ.get("BENCH_RESTORE_BATCH", str(RESTORE_BATCH_ROWS)))
    pool_size = int(os.environ.get("BENCH_RETENTION_POOL", "300"))
    pool = await sampler_bench.realistic_documents(pool_size)
    shift = storage_bench.START - datetime.combine(DAY, day_time(), storage_bench.START.tzinfo)
    rows = [
        row._replace(captured_at=row.captured_at - shift)
        for row in archive_bench.day_rows(KIND, 1, hours, pool[KIND], compact=False)
    ]
    day = DAY
    engine = build_engine(Settings(database_url=url, slow_query_ms=0))
    sessions = make_sessionmaker(engine)
    try:
        async with unit_of_work(sessions) as session:
            for table in PARTITIONED_TABLES:
                await ensure_partitions_between(session, table, day, day)
        async with unit_of_work(sessions) as session:
            copied = await SnapshotIngest(session).copy_encoded_if_absent(rows)
        assert copied == len(rows), copied
        leaf = f"{SNAPSHOTS.period_name(day)}_{KIND}"
        async with engine.begin() as connection:  # as autovacuum leaves a day-old partition
            await connection.execute(text(f"ANALYZE {leaf}"))
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            started = time.perf_counter()
            async with unit_of_work(sessions) as session:
                archived = await DayArchiver(directory).archive(session, KIND, day)
            archive_seconds = time.perf_counter() - started
            assert archived.rows == len(rows), archived.rows
            report("archive_day_rows_per_s", len(rows) / archive_seconds, "rows/s")

            async with unit_of_work(sessions) as session:  # the drop, and the seeding's marks
                await session.execute(text(f"TRUNCATE {leaf}"))
                await session.execute(text("TRUNCATE metric_tier_pending"))
            path = archive_path(directory, archive_bench.HOST, KIND, day)
            started = time.perf_counter()
            restored = await restore_file(sessions, path, batch_rows=batch)
            restore_seconds = time.perf_counter() - started
            assert restored.inserted == len(rows), restored
            report("archive_restore_rows_per_s", len(rows) / restore_seconds, "rows/s")
            async with sessions() as session:
                minutes = await session.scalar(text("SELECT count(*) FROM metric_tier_pending"))
            print(
                f"# {len(rows)} rows of {KIND}: archived in {archive_seconds:.1f} s"
                f" ({archived.size_bytes / 1e6:.1f} MB), restored in {restore_seconds:.1f} s,"
                f" {minutes} minutes marked for the tiers",
                flush=True,
            )

            started = time.perf_counter()
            again = await restore_file(sessions, path, batch_rows=batch)
            again_seconds = time.perf_counter() - started
            assert again.inserted == 0, again
            report("archive_restore_again_rows_per_s", len(rows) / again_seconds, "rows/s")
    finally:
        await engine.dispose()
    return {"restore_hours": hours, "restore_batch_rows": batch}
