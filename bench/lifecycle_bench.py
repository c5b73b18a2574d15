"""The storage lifecycle as built (issue 11, ``BENCH_ONLY=lifecycle``): what one host at the default
intervals costs on disk in each resolution and in steady state under the default policies, what
expiring a (type, day) costs, what the tier job costs a minute, and how fast charts read.

Database ``perfwatch_bench_lifecycle`` (recreated and migrated), one host. Documents: the
retention part's generator (``storage_bench.busy`` over BENCH_RETENTION_POOL cycles of this
machine's real collectors) at the default intervals (cpu, memory, disk, network 1 s, processes
5 s, sensors 10 s, system 60 s), ending at the start of this hour (``T``).

Seeding 30 days of raw (11 M rows, ~9 GB) would take most of an hour on 2 cores, so the data
is built as the default policy keeps it, with the real code where it matters:

- raw: the window the default policy keeps, BENCH_LIFECYCLE_RAW_DAYS (default 2) days before
  ``T``, generated and COPYed into the real (day, type) partitions, then ``VACUUM ANALYZE``;
- tiers: the real tier job (``roll_up_tiers``) over the first raw day (its cost is reported),
  then that day's 1-minute and 1-hour rows copied by SQL, shifted by whole days, to cover
  BENCH_LIFECYCLE_TIER_DAYS (default 30) days of 1-minute and BENCH_LIFECYCLE_HOUR_DAYS
  (default 365) days of 1-hour rows before ``T``; the job's watermark is set to ``T``.

Figures (see docs/benchmarks.md, "Storage lifecycle"):

- ``storage_*``: ``pg_total_relation_size`` of each resolution's (period, type) leaves, per day
  and per value. Per value of raw: the numbers in the stored documents. The tiers two ways:
  ``storage_bytes_per_value_<tier>`` is per *source* value (tier bytes per day / raw values per
  day: what the tier costs for each number sampled), ``storage_bytes_per_statistic_<tier>`` per
  stored statistic (5 per field and bucket: count, sum, min, max, last). Projections: a day of
  each resolution, and the steady state under the default policies of
  ``bootstrap/defaults.py`` (per type: raw_days * raw + minute_days * 1 m + retention_days *
  1 h), and the same with ``*`` keeping 7 days of raw; ``storage_projected_bytes_peak``: the
  most kept just before an expiry (whole periods: one more day of raw, one more month of each
  tier).
- ``retention_drop_ms``: median of BENCH_LIFECYCLE_DROPS (default 5) ``DROP TABLE`` of one
  (cpu, day) leaf holding a full day (86,400 rows; extra days before the raw window, copied from
  its first day, vacuumed and checkpointed as an old day would be), each in its own
  transaction, nothing else running; ``retention_dead_tuples_after_drop``: ``n_dead_tup`` of
  every remaining raw leaf.
- ``tier_maintenance_core_percent``: the steady state of the tier job: for each of
  BENCH_LIFECYCLE_MAINTENANCE_MINUTES (default 60, a whole hour of the 1-hour row's growth)
  minutes, the minute's snapshots are inserted, then ``roll_up_tiers`` runs once for it (as the
  runner does every minute) and commits. CPU = this process's time plus the PostgreSQL
  backend's (``/proc/<pg_backend_pid()>/stat`` utime + stime of the session's connection), as
  a share of one core over the minutes' wall time (60 s each).
- ``series_<range>_*``: the real server (uvicorn, one worker, as the api part starts it, the
  in-process cache), a viewer logged in with ``POST /auth/login``; ``GET /metrics/cpu`` with the
  default fields over 24 h, 30 days and 1 year ending at the data's end (two minutes after the
  last minute the job rolled up, as at any moment): the first request of each on the fresh
  server (``_first_ms``; ``_first_penalty_ms`` = first - p50), then
  BENCH_LIFECYCLE_SERIES_REQUESTS (default 200) sequential requests on one keep-alive
  connection (``_p50_ms``, ``_p95_ms``; ``_server_cpu_ms``: the server process's CPU per
  request). The answer's ``source`` and ``resolution_seconds`` are printed and returned.
- ``tier_job_day_*``: the job's first run over the first raw day (1,440 minutes at once).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import api_bench
import asyncpg
import httpx
import psutil
import sampler_bench
import storage_bench
from sqlalchemy import text

from perfwatch.bootstrap.defaults import DEFAULT_POLICIES, PolicyDefault
from perfwatch.config import Settings
from perfwatch.contract.metrics import ALL_METRIC_TYPES, EncodedSnapshot
from perfwatch.db import migrations
from perfwatch.db.engine import build_engine
from perfwatch.db.partitions import (
    PARTITIONED_TABLES,
    SNAPSHOTS,
    TIER_HOUR,
    TIER_MINUTE,
    PartitionedTable,
    ensure_partitions_between,
    list_partitions,
)
from perfwatch.db.session import SessionFactory, make_sessionmaker, unit_of_work
from perfwatch.metrics.buckets import HOUR, floor_time
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.metrics.tiers.job import roll_up_tiers
from perfwatch.metrics.tiers.pending import SETTLE_SECONDS
from perfwatch.metrics.tiers.repository import TierRepository
from perfwatch.models import UserRole
from perfwatch.users.service import UserService

DATABASE = "perfwatch_bench_lifecycle"
HOST = "lifecycle-host"
PASSWORD = "bench-lifecycle-password-0123456789"
DAY = timedelta(days=1)
COPY_CHUNK = 20_000
TARGET_STEADY_BYTES = 1.5e9
STATISTICS = 5  # per field and bucket: count, sum, min, max, last
MB = 1e6
# The series ranges: name, span.
RANGES = (("24h", timedelta(hours=24)), ("30d", timedelta(days=30)), ("1y", timedelta(days=365)))
TARGETS_P95_MS = {"24h": 10.0, "30d": 30.0, "1y": 50.0}
TARGET_FIRST_MS = 50.0

Pool = dict[str, list[dict[str, Any]]]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


class Documents:
    """The host's snapshots at the default intervals from ``origin`` on: snapshot ``i`` of a
    type is at ``origin + i * interval``, made from pool document ``i mod pool size`` with a
    busy host's numbers. Counts the numbers it writes, per type."""

    def __init__(self, pool: Pool, origin: datetime) -> None:
        self.pool = pool
        self.origin = origin
        self.intervals = storage_bench.interval_seconds()
        self.rng = random.Random(11)
        # busy() keeps every document's shape: its numbers are the pool document's.
        self.numbers = {
            kind: [sum(1 for _ in storage_bench.numeric_leaves(d)) for d in documents]
            for kind, documents in pool.items()
        }
        self.values: dict[str, int] = defaultdict(int)

    def between(self, start: datetime, end: datetime) -> Iterator[EncodedSnapshot]:
        """Every type's snapshots in ``[start, end)`` (whole intervals from the origin), type
        by type."""
        for kind, every in sorted(self.intervals.items()):
            first = -(-int((start - self.origin).total_seconds()) // every)
            last = -(-int((end - self.origin).total_seconds()) // every)
            documents = self.pool[kind]
            for index in range(first, last):
                at = self.origin + timedelta(seconds=index * every)
                slot = index % len(documents)
                document = storage_bench.busy(documents[slot], "", at, self.rng)
                self.values[kind] += self.numbers[kind][slot]
                yield EncodedSnapshot(HOST, at, kind, storage_bench.compact(document))


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def take(rows: Iterator[EncodedSnapshot], size: int) -> list[EncodedSnapshot]:
    return [row for _, row in zip(range(size), rows, strict=False)]


async def copy_rows(url: str, rows: Iterator[EncodedSnapshot]) -> int:
    """COPY ``rows`` into ``metric_snapshots`` (routed to the partitions), the next chunk
    generated in a thread while the last one is copied."""
    connection = await asyncpg.connect(url)
    copied = 0
    try:
        chunk = await asyncio.to_thread(take, rows, COPY_CHUNK)
        while chunk:
            copying = asyncio.create_task(
                connection.copy_records_to_table(
                    "metric_snapshots",
                    records=chunk,
                    columns=["host", "captured_at", "metric_type", "metric_data"],
                )
            )
            following = await asyncio.to_thread(take, rows, COPY_CHUNK)
            await copying
            copied += len(chunk)
            chunk = following
    finally:
        await connection.close()
    return copied


def backend_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a local PostgreSQL backend, or None if it is not on this machine."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            return None
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def leaf_sizes(
    sessions: SessionFactory, admin: asyncpg.Connection, table: PartitionedTable
) -> dict[str, int]:
    """Bytes of ``table``'s (period, type) leaves, per type ("other" for the ``_other``s)."""
    async with sessions() as session:
        leaves = await list_partitions(session, table)
    rows = await admin.fetch(
        "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY($1)",
        [leaf.name for leaf in leaves],
    )
    size = dict(rows)
    sizes: dict[str, int] = defaultdict(int)
    for leaf in leaves:
        sizes[leaf.metric_type or "other"] += size[leaf.name]
    return sizes


def policy_for(kind: str, policies: tuple[PolicyDefault, ...]) -> PolicyDefault:
    own = {policy.metric_type: policy for policy in policies}
    return own.get(kind, own[ALL_METRIC_TYPES])


def steady_state(
    per_day: dict[str, dict[str, float]],
    policies: tuple[PolicyDefault, ...],
    elapsed: int | None = None,
) -> float:
    """Bytes kept under ``policies``: per type raw_days * raw + minute_days * 1 m +
    retention_days * 1 h (whole days; expiry by whole periods keeps up to one more), or what
    is kept ``elapsed`` days after sampling began, while windows are still filling."""
    total = 0.0
    for kind in per_day["raw"]:
        policy = policy_for(kind, policies)
        windows = (
            ("raw", policy.raw_days),
            ("1m", policy.minute_days),
            ("1h", policy.retention_days),
        )
        for name, days in windows:
            kept = days if elapsed is None else min(days, elapsed)
            total += kept * per_day[name].get(kind, 0.0)
    return total


async def run(admin_url: str, report: storage_bench.Report) -> dict[str, Any]:
    raw_days = env_int("BENCH_LIFECYCLE_RAW_DAYS", 2)
    tier_days = env_int("BENCH_LIFECYCLE_TIER_DAYS", 30)
    hour_days = env_int("BENCH_LIFECYCLE_HOUR_DAYS", 365)
    drops = env_int("BENCH_LIFECYCLE_DROPS", 5)
    maintenance_minutes = env_int("BENCH_LIFECYCLE_MAINTENANCE_MINUTES", 60)
    requests = env_int("BENCH_LIFECYCLE_SERIES_REQUESTS", 200)
    pool_size = env_int("BENCH_RETENTION_POOL", 300)
    if not 1 <= raw_days <= tier_days <= hour_days:
        raise SystemExit("need 1 <= BENCH_LIFECYCLE_RAW_DAYS <= _TIER_DAYS <= _HOUR_DAYS")

    url = await api_bench.recreate(admin_url, DATABASE)
    plain_url = url.replace("+asyncpg", "")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        secret_key=api_bench.SECRET_KEY,
        run_sampler=False,
        slow_query_ms=0,
    )
    await asyncio.to_thread(migrations.upgrade, "head", settings)
    engine = build_engine(settings)
    sessions = make_sessionmaker(engine)
    admin = await asyncpg.connect(plain_url)
    end = floor_time(datetime.now(UTC), HOUR)  # T: raw and tiers end here
    first_raw = end - raw_days * DAY
    documents = Documents(await sampler_bench.realistic_documents(pool_size), first_raw)
    try:
        # ----- partitions: the drop days, raw, the maintenance minutes; tier months -----
        spans = {
            SNAPSHOTS: (first_raw - (drops + 1) * DAY, end + DAY),
            TIER_MINUTE: (end - tier_days * DAY, end + DAY),
            TIER_HOUR: (end - hour_days * DAY, end + DAY),
        }
        async with unit_of_work(sessions) as session:
            for table in PARTITIONED_TABLES:
                low, high = spans[table]
                await ensure_partitions_between(session, table, low.date(), high.date())

        # ----- raw: the policy's window, COPYed -----
        started = time.perf_counter()
        copied = await copy_rows(plain_url, documents.between(first_raw, end))
        await admin.execute("VACUUM ANALYZE metric_snapshots")
        raw_values = dict(documents.values)
        print(
            f"# lifecycle: {copied:,} raw rows ({raw_days} days from {first_raw:%Y-%m-%d %H:%M}"
            f" to {end:%Y-%m-%d %H:%M} UTC), {sum(raw_values.values()):,} values, loaded and"
            f" vacuumed in {time.perf_counter() - started:.0f} s",
            flush=True,
        )

        # ----- tiers: the real job over the first raw day, then that day copied -----
        pid_before, cpu_before = await job_cpu_start(sessions)
        started, wall = time.process_time(), time.perf_counter()
        async with unit_of_work(sessions) as session:
            day_job = await roll_up_tiers(
                session, now=first_raw + DAY + timedelta(seconds=SETTLE_SECONDS), max_minutes=1440
            )
        python_s, wall_s = time.process_time() - started, time.perf_counter() - wall
        backend_s = cpu_since(pid_before, cpu_before)
        assert day_job.minutes_rolled == 1440 and day_job.caught_up, day_job
        report("tier_job_day_wall_s", wall_s, "s")
        report("tier_job_day_cpu_s", python_s + (backend_s or 0.0), "s")
        print(
            f"# tier job, one host-day: {day_job.minute_rows_written} minute rows,"
            f" {day_job.hour_rows_written} hour rows; Python {python_s:.1f} s CPU, PostgreSQL"
            f" backend {backend_s if backend_s is not None else float('nan'):.1f} s CPU",
            flush=True,
        )
        started = time.perf_counter()
        for tier, days in (("1m", tier_days), ("1h", hour_days)):
            # Shift the day by k whole days, k covering [T - days, T) around the first raw day.
            await admin.execute(
                f"INSERT INTO metric_tier_{tier} (host, metric_type, bucket, snapshots, stats)"
                " SELECT t.host, t.metric_type, t.bucket + make_interval(days => k),"
                f" t.snapshots, t.stats FROM metric_tier_{tier} t,"
                " generate_series($1::int, $2::int) AS k"
                " WHERE k <> 0 AND t.bucket >= $3 AND t.bucket < $4",
                raw_days - days,
                raw_days - 1,
                first_raw,
                first_raw + DAY,
            )
        async with unit_of_work(sessions) as session:
            await TierRepository(session).set_watermark(end)
        await admin.execute("VACUUM ANALYZE metric_tier_1m")
        await admin.execute("VACUUM ANALYZE metric_tier_1h")
        print(f"# tiers copied and vacuumed in {time.perf_counter() - started:.0f} s", flush=True)

        # ----- sizes -----
        per_day = await measure_storage(
            sessions, admin, report, raw_values, raw_days, tier_days, hour_days
        )
        per_day_first = first_raw, first_raw + DAY
        await field_buckets(admin, report, per_day, raw_values, raw_days, per_day_first)

        # ----- retention: DROP TABLE of one (cpu, day) leaf -----
        await measure_drops(admin, sessions, report, first_raw, drops)

        # ----- the tier job in steady state, a minute at a time -----
        rolled = await measure_maintenance(sessions, report, documents, end, maintenance_minutes)
        # Now is two minutes later: the minutes the job has not rolled up yet, as at any time.
        data_end = rolled + timedelta(minutes=2)
        async with unit_of_work(sessions) as session:
            tail = list(documents.between(rolled, data_end))
            await SnapshotIngest(session, clock=fixed_clock(data_end)).bulk_insert_encoded(tail)

        # ----- series from a warm server -----
        async with unit_of_work(sessions) as session:
            await UserService(session).create_user(
                username="bench-lifecycle",
                password=PASSWORD,
                role=UserRole.VIEWER,
                check_strength=False,
            )
        answers = await measure_series(settings, report, data_end, requests)
    finally:
        await admin.close()
        await engine.dispose()
    return {
        "lifecycle_raw_days": raw_days,
        "lifecycle_tier_days": tier_days,
        "lifecycle_hour_days": hour_days,
        "lifecycle_drops": drops,
        "lifecycle_maintenance_minutes": maintenance_minutes,
        "lifecycle_series_requests": requests,
        "lifecycle_raw_rows": copied,
        "lifecycle_series_answers": answers,
    }


async def job_cpu_start(sessions: SessionFactory) -> tuple[int, float | None]:
    """The backend pid of the pooled connection the next session gets, and its CPU so far."""
    async with sessions() as session:
        pid = int(await session.scalar(text("SELECT pg_backend_pid()")))
    return pid, backend_cpu_seconds(pid)


def cpu_since(pid: int, before: float | None) -> float | None:
    after = backend_cpu_seconds(pid)
    return None if before is None or after is None else after - before


async def measure_storage(
    sessions: SessionFactory,
    admin: asyncpg.Connection,
    report: storage_bench.Report,
    raw_values: dict[str, int],
    raw_days: int,
    tier_days: int,
    hour_days: int,
) -> dict[str, dict[str, float]]:
    """Bytes per day of each resolution, per type; reports the storage figures."""
    days = {"raw": raw_days, "1m": tier_days, "1h": hour_days}
    tables = {"raw": SNAPSHOTS, "1m": TIER_MINUTE, "1h": TIER_HOUR}
    per_day: dict[str, dict[str, float]] = {}
    for name, table in tables.items():
        sizes = await leaf_sizes(sessions, admin, table)
        per_day[name] = {kind: size / days[name] for kind, size in sizes.items()}
        listed = ", ".join(
            f"{kind} {size / MB:.2f}" for kind, size in sorted(per_day[name].items()) if size
        )
        print(f"# {name} MB per day by type: {listed}", flush=True)
    values_per_day = sum(raw_values.values()) / raw_days
    totals = {name: sum(kinds.values()) for name, kinds in per_day.items()}
    print(f"# {values_per_day:,.0f} values a day (as the retention part's figure)", flush=True)
    report("storage_bytes_per_value_raw", totals["raw"] / values_per_day, "B")
    report("storage_bytes_per_value_1m", totals["1m"] / values_per_day, "B")
    report("storage_bytes_per_value_1h", totals["1h"] / values_per_day, "B")
    for name in ("raw", "1m", "1h"):
        report(f"storage_{name}_mb_per_host_day", totals[name] / MB, "MB")
    report("storage_projected_bytes_per_host_day", sum(totals.values()), "B")
    steady = steady_state(per_day, DEFAULT_POLICIES)
    report("storage_projected_bytes_steady_state", steady, "B")
    print(f"# steady state {steady / 1e9:.3f} GB, target <= 1.5 GB", flush=True)
    # Expiry drops whole periods, once a period has wholly left its window: just before a drop
    # a day of raw and a month of each tier more are kept (docs/retention.md).
    peak = tuple(
        PolicyDefault(
            p.metric_type, p.raw_days + 1, p.minute_days + 31, p.retention_days + 31, p.action
        )
        for p in DEFAULT_POLICIES
    )
    report("storage_projected_bytes_peak", steady_state(per_day, peak), "B")
    raw7 = tuple(
        PolicyDefault(p.metric_type, 7, p.minute_days, p.retention_days, p.action)
        if p.metric_type == ALL_METRIC_TYPES
        else p
        for p in DEFAULT_POLICIES
    )
    report("storage_projected_bytes_steady_state_raw7", steady_state(per_day, raw7), "B")
    # The types the '*' policy governs: how many days of their raw would fit.
    star = policy_for(ALL_METRIC_TYPES, DEFAULT_POLICIES)
    raw_star_day = sum(
        size for kind, size in per_day["raw"].items() if policy_for(kind, DEFAULT_POLICIES) is star
    )
    fits = star.raw_days + (TARGET_STEADY_BYTES - steady) / raw_star_day
    print(f"# days of raw ('*') that fit in 1.5 GB with the other windows as they are: {fits:.1f}")
    for elapsed in (1, 7, 30, 365, 730):
        kept = steady_state(per_day, DEFAULT_POLICIES, elapsed=elapsed)
        print(f"# disk use after {elapsed} days at the default policies: {kept / 1e9:.3f} GB")
    return per_day


async def field_buckets(
    admin: asyncpg.Connection,
    report: storage_bench.Report,
    per_day: dict[str, dict[str, float]],
    raw_values: dict[str, int],
    raw_days: int,
    day: tuple[datetime, datetime],
) -> None:
    """Bytes per stored statistic: the tier bytes of a day over its field-buckets * 5 (counted
    on the day the job computed; the other days are copies of it)."""
    for tier in ("1m", "1h"):
        buckets, fields = await admin.fetchrow(
            "SELECT count(*), sum((SELECT count(*) FROM jsonb_object_keys(stats)))"
            f" FROM metric_tier_{tier} WHERE bucket >= $1 AND bucket < $2",
            *day,
        )
        size = sum(per_day[tier].values())
        report(f"storage_bytes_per_statistic_{tier}", size / (int(fields) * STATISTICS), "B")
        print(
            f"# {tier}: {buckets} rows and {fields} field-buckets a day,"
            f" {size / buckets:.0f} B a row",
            flush=True,
        )
    processes = raw_values.get("processes", 0) / raw_days
    print(f"# raw values a day: {processes:,.0f} of them in processes documents", flush=True)


async def measure_drops(
    admin: asyncpg.Connection,
    sessions: SessionFactory,
    report: storage_bench.Report,
    first_raw: datetime,
    drops: int,
) -> None:
    """Fill ``drops`` whole days before the raw window with a day of cpu each, then drop their
    (cpu, day) leaves one by one, as retention expires them."""
    days = [floor_time(first_raw, 86_400) - k * DAY for k in range(drops, 0, -1)]
    for day in days:
        await admin.execute(
            "INSERT INTO metric_snapshots (host, captured_at, metric_type, metric_data)"
            " SELECT host, captured_at - $3::interval, metric_type, metric_data"
            " FROM metric_snapshots WHERE metric_type = 'cpu'"
            " AND captured_at >= $1 AND captured_at < $2",
            first_raw,
            first_raw + DAY,
            first_raw - day,
        )
    async with sessions() as session:
        leaves = {
            leaf.period: leaf.name
            for leaf in await list_partitions(session, SNAPSHOTS)
            if leaf.metric_type == "cpu"
        }
    names = [leaves[day.date()] for day in days]
    for name in names:  # as autovacuum leaves a day of the past
        await admin.execute(f"VACUUM ANALYZE {name}")
        rows = await admin.fetchval(f"SELECT count(*) FROM {name}")
        assert rows == 86_400, (name, rows)
    size = await admin.fetchval("SELECT pg_total_relation_size($1::regclass)", names[0])
    await admin.execute("CHECKPOINT")
    durations = []
    for name in names:
        started = time.perf_counter()
        await admin.execute(f"DROP TABLE {name}")  # autocommit: its own transaction
        durations.append((time.perf_counter() - started) * 1000)
    print(
        f"# drops of a (cpu, day) leaf of 86,400 rows, {size / MB:.1f} MB:"
        f" {', '.join(f'{d:.1f}' for d in durations)} ms",
        flush=True,
    )
    report("retention_drop_ms", statistics.median(durations), "ms")
    report("retention_drop_max_ms", max(durations), "ms")
    await asyncio.sleep(1)  # backends publish their table statistics within a second
    async with sessions() as session:
        remaining = [leaf.name for leaf in await list_partitions(session, SNAPSHOTS)]
    dead = await admin.fetchval(
        "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables"
        " WHERE relname = ANY($1::text[])",
        remaining,
    )
    report("retention_dead_tuples_after_drop", int(dead), "tuples")


async def measure_maintenance(
    sessions: SessionFactory,
    report: storage_bench.Report,
    documents: Documents,
    end: datetime,
    minutes: int,
) -> datetime:
    """The tier job once a minute, each run rolling up the minute inserted before it; the first
    two runs warm the connection's prepared statements and are not counted. Returns the end of
    the minutes inserted."""
    python_s = backend_s = wall_s = 0.0
    backend_seen = True
    warm = 2
    for index in range(warm + minutes):
        low = end + timedelta(minutes=index)
        high = low + timedelta(minutes=1)
        async with unit_of_work(sessions) as session:
            rows = list(documents.between(low, high))
            ingest = SnapshotIngest(session, clock=fixed_clock(high))  # on time: no marks
            assert await ingest.bulk_insert_encoded(rows) == len(rows)
        async with sessions() as session:
            pid = int(await session.scalar(text("SELECT pg_backend_pid()")))
            backend_before = backend_cpu_seconds(pid)
            started, wall = time.process_time(), time.perf_counter()
            outcome = await roll_up_tiers(session, now=high + timedelta(seconds=SETTLE_SECONDS))
            await session.commit()
            python_run = time.process_time() - started
            wall_run = time.perf_counter() - wall
        backend_after = backend_cpu_seconds(pid)
        assert outcome.minutes_rolled == 1 and outcome.pending_minutes == 0, outcome
        if index < warm:
            continue
        python_s += python_run
        wall_s += wall_run
        if backend_before is None or backend_after is None:
            backend_seen = False
        else:
            backend_s += backend_after - backend_before
    print(
        f"# tier job, {minutes} runs of one minute each: Python {python_s * 1000 / minutes:.1f} ms,"
        f" backend {backend_s * 1000 / minutes:.1f} ms, wall {wall_s * 1000 / minutes:.1f} ms"
        f" per run ({outcome.minute_rows_written} minute and {outcome.hour_rows_written} hour"
        " rows each)",
        flush=True,
    )
    if not backend_seen:
        print("# the PostgreSQL backend is not on this machine: its CPU is not counted")
    report("tier_maintenance_python_ms_per_minute", python_s * 1000 / minutes, "ms")
    report("tier_maintenance_backend_ms_per_minute", backend_s * 1000 / minutes, "ms")
    report("tier_maintenance_core_percent", 100 * (python_s + backend_s) / (minutes * 60.0), "%")
    return end + timedelta(minutes=warm + minutes)


async def measure_series(
    settings: Settings, report: storage_bench.Report, data_end: datetime, requests: int
) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="perfwatch-lifecycle-bench-") as tmp:
        server = api_bench.Server(settings, Path(tmp))
        try:
            await asyncio.to_thread(server.wait_ready)
            answers = await asyncio.to_thread(time_series, server, report, data_end, requests)
        finally:
            await asyncio.to_thread(server.stop)
    return answers


def time_series(
    server: api_bench.Server, report: storage_bench.Report, data_end: datetime, requests: int
) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    process = psutil.Process(server.process.pid)
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        login = client.post(
            "/api/v1/auth/login", json={"username": "bench-lifecycle", "password": PASSWORD}
        )
        login.raise_for_status()
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        for name, span in RANGES:
            params = {
                "from": (data_end - span).isoformat().replace("+00:00", "Z"),
                "to": data_end.isoformat().replace("+00:00", "Z"),
                "host": HOST,
            }

            def call(params: dict[str, str] = params) -> tuple[float, httpx.Response]:
                started = time.perf_counter()
                answer = client.get("/api/v1/metrics/cpu", params=params)
                return (time.perf_counter() - started) * 1000, answer

            first_ms, answer = call()
            answer.raise_for_status()
            body = answer.json()
            answers[name] = {
                "source": body["source"],
                "resolution_seconds": body["resolution_seconds"],
                "step_seconds": body["step_seconds"],
                "buckets": len(body["buckets"]),
                "fields": body["fields"],
                "bytes": len(answer.content),
            }
            cpu_before = sum(process.cpu_times()[:2])
            durations = []
            for _ in range(requests):
                elapsed, answer = call()
                assert answer.status_code == 200, answer.text
                durations.append(elapsed)
            server_ms = (sum(process.cpu_times()[:2]) - cpu_before) * 1000 / requests
            p95 = percentile(durations, 0.95)
            report(f"series_{name}_first_ms", first_ms, "ms")
            report(f"series_{name}_first_penalty_ms", first_ms - statistics.median(durations), "ms")
            report(f"series_{name}_p50_ms", statistics.median(durations), "ms")
            report(f"series_{name}_p95_ms", p95, "ms")
            report(f"series_{name}_server_cpu_ms", server_ms, "ms")
            print(
                f"# series {name}: {json.dumps(answers[name])}; target p95 <="
                f" {TARGETS_P95_MS[name]:g} ms, first <= {TARGET_FIRST_MS:g} ms",
                flush=True,
            )
    return answers


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
