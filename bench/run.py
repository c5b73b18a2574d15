"""PerfWatch benchmarks: ``make bench``.

Prints one line per figure, ``BENCH <name> <value> <unit>``, and writes bench/results.json.
Runs against PostgreSQL 16 (``BENCH_DATABASE_URL``, else the throwaway server of
scripts/pg16.sh) on a dedicated database that is recreated each run.

Parts: BENCH_ONLY=sampler, storage, retention, tiers, archive, restore, lifecycle or api runs
one part (default: all). The retention part (bench/storage_bench.py) measures raw encodings and
rollup-tier layouts for the storage lifecycle (issue 11); see that module for its sizes
(BENCH_RETENTION_HOURS, ...). The tiers part (bench/tier_bench.py) measures the CPU time of
rolling up one host's minute into the resolution tiers; the archive part (bench/archive_bench.py)
the archive files' bytes per value and write speed per zstd level (BENCH_ARCHIVE_HOURS,
BENCH_ARCHIVE_LEVELS). Neither needs a database: they run first, and alone start no server. The
restore part (bench/restore_bench.py) archives one busy host-day of cpu from PostgreSQL and
restores it (BENCH_RESTORE_HOURS, BENCH_RESTORE_BATCH). The lifecycle part
(bench/lifecycle_bench.py) uses a database of its own (perfwatch_bench_lifecycle): one host's
raw window, tiers and a warm server, for the storage, expiry, tier-job and chart figures of
issue 11 (BENCH_LIFECYCLE_RAW_DAYS, ...; about 2 minutes). The sampler part
(bench/sampler_bench.py) runs first of the database parts, because its replay benchmark
empties metric_snapshots. The api part (bench/api_bench.py) uses a database of its own
(perfwatch_bench_api) and Redis database 14, serves it with a uvicorn process and loads it
with wrk; see that module for its sizes (BENCH_API_DAYS, BENCH_API_SECONDS, ...).

Storage sizes: BENCH_DAYS (default 7) days of 1 s snapshots of one metric type;
BENCH_INSERT_ROWS (default 50000) rows for the bulk-insert comparison; BENCH_SAMPLES (default
300) timed repetitions per query.

Sampler sizes: BENCH_SAMPLER_CYCLES (default 300) cycles for the CPU figures;
BENCH_SAMPLER_SECONDS (default 60, after BENCH_SAMPLER_WARMUP 5 s) per real-time Sampler.run();
BENCH_RSS_CYCLES (default 10000) for the memory figure; BENCH_REPLAY_ROWS (default 100000) for
the spool replay; BENCH_REDIS_URL (default redis://127.0.0.1:6379/15, skipped if unreachable).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "backend"))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import api_bench  # noqa: E402
import archive_bench  # noqa: E402
import lifecycle_bench  # noqa: E402
import restore_bench  # noqa: E402
import sampler_bench  # noqa: E402
import storage_bench  # noqa: E402
import tier_bench  # noqa: E402

from perfwatch.bootstrap.seed import SeedPlan, generate_rows  # noqa: E402
from perfwatch.config import Settings  # noqa: E402
from perfwatch.contract.metrics import SnapshotRow  # noqa: E402
from perfwatch.db import migrations  # noqa: E402
from perfwatch.db.engine import build_engine  # noqa: E402
from perfwatch.db.partitions import ensure_snapshot_partitions  # noqa: E402
from perfwatch.db.session import make_sessionmaker  # noqa: E402
from perfwatch.metrics.ingest import SnapshotIngest  # noqa: E402
from perfwatch.metrics.repository import SnapshotRepository, decode_cursor  # noqa: E402

BENCH_DATABASE = "perfwatch_bench"
HOST = "bench-host"
METRIC_TYPE = "cpu"

results: list[dict[str, Any]] = []


def report(name: str, value: float, unit: str) -> None:
    print(f"BENCH {name} {value:.4g} {unit}", flush=True)
    results.append({"name": name, "value": value, "unit": unit})


def admin_url() -> str:
    explicit = os.environ.get("BENCH_DATABASE_URL")
    if explicit:
        return explicit
    script = REPO_ROOT / "scripts" / "pg16.sh"
    subprocess.run([str(script), "start"], check=True, stdout=subprocess.DEVNULL)
    return subprocess.run(
        [str(script), "url"], check=True, capture_output=True, text=True
    ).stdout.strip()


async def recreate(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        await connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
        version = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    print(f"# PostgreSQL {version}", flush=True)
    base, _, _ = url.rpartition("/")
    return f"{base}/{BENCH_DATABASE}"


async def timed(samples: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(max(5, samples // 20)):  # warm caches and prepared statements
        await call()
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report_latency(name: str, durations: list[float]) -> None:
    report(f"{name}_p50", statistics.median(durations), "ms")
    report(f"{name}_p95", percentile(durations, 0.95), "ms")


def rows_for(plan: SeedPlan) -> list[SnapshotRow]:
    return list(generate_rows(plan, METRIC_TYPE))


PARTS = ("sampler", "storage", "retention", "tiers", "archive", "restore", "lifecycle", "api")


async def main() -> None:
    only = os.environ.get("BENCH_ONLY", "all").strip() or "all"
    if only not in ("all", *PARTS):
        raise SystemExit(f"BENCH_ONLY must be one of all, {', '.join(PARTS)}; got {only!r}")
    parameters: dict[str, Any] = {"only": only}
    if only in ("all", "tiers"):
        parameters.update(await tier_bench.run(report))
    if only in ("all", "archive"):
        parameters.update(await archive_bench.run(report))
    if only not in ("tiers", "archive"):
        parameters.update(await on_database(only))
    write_results(parameters)


async def on_database(only: str) -> dict[str, Any]:
    """The parts that need PostgreSQL, on a freshly migrated database."""
    admin = admin_url()
    url = await recreate(admin)
    settings = Settings(database_url=url, slow_query_ms=0)
    await asyncio.to_thread(migrations.upgrade, "head", settings)
    parameters: dict[str, Any] = {}
    if only in ("all", "sampler"):
        parameters.update(await sampler_bench.run(url, report))
    if only in ("all", "storage"):
        parameters.update(await storage(url, settings))
    if only in ("all", "retention"):
        parameters.update(await storage_bench.run(url, report))
    if only in ("all", "restore"):
        parameters.update(await restore_bench.run(url, report))
    if only in ("all", "lifecycle"):
        parameters.update(await lifecycle_bench.run(admin, report))
    if only in ("all", "api"):
        parameters.update(await api_bench.run(admin, report))
    return parameters


def write_results(parameters: dict[str, Any]) -> None:
    out = REPO_ROOT / "bench" / "results.json"
    out.write_text(
        json.dumps(
            {
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                },
                "parameters": parameters,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"# wrote {out.relative_to(REPO_ROOT)}", flush=True)


async def storage(url: str, settings: Settings) -> dict[str, Any]:
    days = float(os.environ.get("BENCH_DAYS", "7"))
    insert_rows = int(os.environ.get("BENCH_INSERT_ROWS", "50000"))
    samples = int(os.environ.get("BENCH_SAMPLES", "300"))
    engine = build_engine(settings)
    sessions = make_sessionmaker(engine)
    end = datetime(2026, 1, 8, tzinfo=UTC)

    # ----- dataset: BENCH_DAYS of 1 s snapshots of one type --------------------------------
    plan = SeedPlan(HOST, end - timedelta(days=days), end, 1, (METRIC_TYPE,))
    async with sessions() as session:
        await ensure_snapshot_partitions(session, days_behind=int(days) + 2, today=end.date())
        await session.commit()
    started = time.perf_counter()
    batch: list[SnapshotRow] = []
    for row in generate_rows(plan, METRIC_TYPE):
        batch.append(row)
        if len(batch) == 10_000:
            async with sessions() as session:
                await SnapshotIngest(session).bulk_insert_ignore_conflicts(batch)
                await session.commit()
            batch = []
    if batch:
        async with sessions() as session:
            await SnapshotIngest(session).bulk_insert_ignore_conflicts(batch)
            await session.commit()
    maintenance = await asyncpg.connect(url.replace("+asyncpg", ""))
    await maintenance.execute("VACUUM ANALYZE metric_snapshots")
    await maintenance.close()
    report("dataset_rows", plan.points_per_type, "rows")
    print(f"# dataset loaded in {time.perf_counter() - started:.1f} s", flush=True)

    gc.collect()
    gc.freeze()  # as the app's lifespan does after start-up

    # ----- simple queries through the repository --------------------------------------------
    async with sessions() as session:
        repository = SnapshotRepository(session)
        ids = (
            (
                await session.execute(
                    text("SELECT id FROM metric_snapshots ORDER BY random() LIMIT 500")
                )
            )
            .scalars()
            .all()
        )
        cursor = iter(ids * (samples // len(ids) + 2))

        async def get_by_id() -> None:
            session.expunge_all()
            assert await repository.get(next(cursor)) is not None

        async def latest() -> None:
            session.expunge_all()
            assert await repository.latest(HOST, METRIC_TYPE) is not None

        hour_start = end - timedelta(hours=5)

        async def one_hour_page() -> None:
            session.expunge_all()
            page = await repository.range(
                metric_type=METRIC_TYPE,
                host=HOST,
                start=hour_start,
                end=hour_start + timedelta(hours=1),
                limit=1000,
            )
            assert len(page.items) == 1000

        async def one_hour_all() -> None:
            session.expunge_all()
            token, total = None, 0
            while True:
                page = await repository.range(
                    metric_type=METRIC_TYPE,
                    host=HOST,
                    start=hour_start,
                    end=hour_start + timedelta(hours=1),
                    limit=1000,
                    after=None if token is None else decode_cursor(token),
                )
                total += len(page.items)
                token = page.next_cursor
                if token is None:
                    break
            assert total == 3600

        report_latency("snapshot_get_by_id", await timed(samples, get_by_id))
        report_latency("snapshot_latest", await timed(samples, latest))
        report_latency("snapshot_range_1h_first_page_1000", await timed(samples, one_hour_page))
        report_latency(
            "snapshot_range_1h_all_3600", await timed(max(30, samples // 10), one_hour_all)
        )

    # The same 1000-row page fetched by bare asyncpg (JSON left as text): the floor any
    # Python client pays for transferring the rows, shown beside the repository's figure.
    bare = await asyncpg.connect(url.replace("+asyncpg", ""))

    async def one_hour_page_bare() -> None:
        rows = await bare.fetch(
            "SELECT id, host, captured_at, metric_type, metric_data FROM metric_snapshots "
            "WHERE metric_type = $1 AND host = $2 AND captured_at >= $3 AND captured_at < $4 "
            "ORDER BY captured_at, id LIMIT 1000",
            METRIC_TYPE,
            HOST,
            hour_start,
            hour_start + timedelta(hours=1),
        )
        assert len(rows) == 1000

    report_latency("asyncpg_range_1h_first_page_1000", await timed(samples, one_hour_page_bare))
    await bare.close()

    # ----- bulk insert: repository vs raw asyncpg COPY, same rows, same run ---------------------
    insert_end = datetime(2026, 3, 1, tzinfo=UTC)
    insert_plan = SeedPlan(
        "insert-host", insert_end - timedelta(seconds=insert_rows), insert_end, 1, (METRIC_TYPE,)
    )
    insert_rows_list = rows_for(insert_plan)
    async with sessions() as session:
        await ensure_snapshot_partitions(
            session, days_behind=2, days_ahead=0, today=insert_end.date()
        )
        await session.commit()
    raw = await asyncpg.connect(url.replace("+asyncpg", ""))

    async def clear() -> None:
        await raw.execute("DELETE FROM metric_snapshots WHERE host = 'insert-host'")
        await raw.execute("VACUUM metric_snapshots")

    async def via_repository() -> float:
        await clear()
        started = time.perf_counter()
        for offset in range(0, len(insert_rows_list), 5_000):
            async with sessions() as session:
                await SnapshotIngest(session).bulk_insert_ignore_conflicts(
                    insert_rows_list[offset : offset + 5_000]
                )
                await session.commit()
        return len(insert_rows_list) / (time.perf_counter() - started)

    async def via_copy() -> float:
        await clear()
        started = time.perf_counter()
        for offset in range(0, len(insert_rows_list), 5_000):
            records = [
                (
                    row.host,
                    row.captured_at,
                    row.metric_type,
                    json.dumps(row.metric_data, separators=(",", ":")),
                )
                for row in insert_rows_list[offset : offset + 5_000]
            ]
            await raw.copy_records_to_table(
                "metric_snapshots",
                records=records,
                columns=["host", "captured_at", "metric_type", "metric_data"],
            )
        return len(insert_rows_list) / (time.perf_counter() - started)

    repository_rates, copy_rates = [], []
    for _ in range(3):  # interleaved, so machine noise hits both sides alike
        repository_rates.append(await via_repository())
        copy_rates.append(await via_copy())
    await raw.close()
    repository_rate, copy_rate = statistics.median(repository_rates), statistics.median(copy_rates)
    report("bulk_insert_repository", repository_rate, "rows/s")
    report("bulk_insert_asyncpg_copy", copy_rate, "rows/s")
    report("bulk_insert_ratio_vs_copy", repository_rate / copy_rate, "x")
    await engine.dispose()
    return {"days": days, "insert_rows": insert_rows, "samples": samples}


if __name__ == "__main__":
    asyncio.run(main())
