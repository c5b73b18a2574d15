"""Sampler benchmarks (issue: metrics sampler), run by ``make bench`` (bench/run.py).

Each measurement runs in a fresh subprocess (``python bench/sampler_bench.py <mode> <url>``), so
import-time work and the garbage of earlier benchmarks are not counted; the subprocess prints
one ``RESULT {json}`` line that the parent turns into ``BENCH`` figures.

Modes:

- ``cpu``: CPU time (``time.process_time``: user + kernel, all threads of this process) per
  ``collect()`` of every collector, and per full cycle through the real pipeline the Sampler
  runs (``Sampler._sample``: collectors in a worker thread, SnapshotRow, SnapshotWriter.add_encoded,
  SnapshotPublisher.publish) plus a flush to PostgreSQL every 5 cycles (= every 5 s at 1 s).
  The collectors' clocks are replaced by a simulated one advancing 1 s per cycle, so the parts
  refreshed every N seconds (network connection table, filesystem usage, process details) run
  as often as they would at 1 s intervals; real time still passes (20 ms sleep between cycles)
  so the counters behind the rates move.
- ``realtime``: the real ``Sampler.run()`` for BENCH_SAMPLER_SECONDS, intervals set through
  config_entries; CPU time of this process (getrusage) / wall time.
- ``rss``: BENCH_RSS_CYCLES back-to-back cycles of the full pipeline; RSS after 100 and at the end.
- ``replay``: SnapshotWriter's spool replay into PostgreSQL vs raw asyncpg COPY, same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "backend"))

from perfwatch.cache.memory import MemoryCache  # noqa: E402
from perfwatch.cache.redis import RedisCache  # noqa: E402
from perfwatch.config import Settings  # noqa: E402
from perfwatch.config_store.service import ConfigService  # noqa: E402
from perfwatch.contract.metrics import EncodedSnapshot, SnapshotRow, encode_snapshot  # noqa: E402
from perfwatch.contract.runtime_config import DEFAULTS  # noqa: E402
from perfwatch.db.engine import build_engine  # noqa: E402
from perfwatch.db.partitions import ensure_snapshot_partitions  # noqa: E402
from perfwatch.db.session import make_sessionmaker  # noqa: E402
from perfwatch.sampler.collectors import build_collectors  # noqa: E402
from perfwatch.sampler.collectors.base import Collector  # noqa: E402
from perfwatch.sampler.publisher import SnapshotPublisher  # noqa: E402
from perfwatch.sampler.runner import Sampler  # noqa: E402
from perfwatch.sampler.spool import Spool  # noqa: E402
from perfwatch.sampler.writer import REPLAY_CHUNK_ROWS, SnapshotWriter  # noqa: E402

HOST = "bench-sampler"
REPLAY_DAY = datetime(2026, 2, 1, tzinfo=UTC)
FLUSH_EVERY_CYCLES = 5  # sampler.batch.max_seconds (5 s) at one cycle per second
SLEEP_BETWEEN_CYCLES = 0.02
INTERVAL_KEYS = [
    "sampler.interval.cpu",
    "sampler.interval.memory",
    "sampler.interval.network",
    "sampler.interval.disk_io",
    "sampler.interval.disk_usage",
    "sampler.interval.processes",
    "sampler.interval.system",
    "sampler.interval.sensors",
]

Report = Callable[[str, float, str], None]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


# ----- parent side: run the workers, report the figures ------------------------------------------


def run_worker(mode: str, url: str, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), mode, url, *args],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return result
        print(line, flush=True)
    raise RuntimeError(f"worker {mode} printed no RESULT line")


async def prepare(url: str) -> None:
    """Partitions for today and the replay's day (the migrations have run)."""
    engine = build_engine(Settings(database_url=url))
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        await ensure_snapshot_partitions(session, days_behind=1, days_ahead=1)
        await ensure_snapshot_partitions(
            session, days_behind=0, days_ahead=0, today=REPLAY_DAY.date()
        )
        await session.commit()
    await engine.dispose()


async def run(url: str, report: Report) -> dict[str, Any]:
    """All sampler figures; returns the parameters used (for results.json)."""
    cycles = env_int("BENCH_SAMPLER_CYCLES", 300)
    seconds = env_float("BENCH_SAMPLER_SECONDS", 60)
    warmup = env_float("BENCH_SAMPLER_WARMUP", 5)
    rss_cycles = env_int("BENCH_RSS_CYCLES", 10_000)
    replay_rows = env_int("BENCH_REPLAY_ROWS", 100_000)
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    await prepare(url)
    processes = len(psutil.pids())
    print(f"# sampler: {os.cpu_count()} CPUs, {processes} processes", flush=True)
    report("sampler_host_processes", processes, "processes")

    # 1. CPU per sample and per cycle ------------------------------------------------------------
    cpu = await asyncio.to_thread(run_worker, "cpu", url, str(cycles), redis_url)
    per_type: dict[str, float] = cpu["per_type_ms"]
    for name, value in per_type.items():
        report(f"sampler_cpu_per_sample_{name}", value, "ms")
    report("sampler_cpu_per_cycle_all", cpu["cycle_all_ms"], "ms")
    report("sampler_cpu_per_cycle_no_processes", cpu["cycle_no_processes_ms"], "ms")
    if cpu.get("cycle_all_redis_ms") is not None:
        report("sampler_cpu_per_cycle_all_redis", cpu["cycle_all_redis_ms"], "ms")
    else:
        print(f"# redis not reachable at {redis_url}: no Redis figure", flush=True)
    report("sampler_cpu_config_refresh", cpu["config_refresh_ms"], "ms")
    overhead = (cpu["cycle_all_ms"] - sum(per_type.values())) / len(per_type)
    report("sampler_cpu_per_snapshot_overhead", overhead, "ms")

    # 2a. % of one core, computed: ms of CPU per second / 1000 ms * 100 --------------------------
    refresh = cpu["config_refresh_ms"]  # once a second, whatever the intervals
    default_ms = refresh + sum(
        (cost + overhead) / float(DEFAULTS[cpu["interval_keys"][name]])
        for name, cost in per_type.items()
    )
    report("sampler_core_percent_default", default_ms / 10, "%")
    report("sampler_core_percent_all_1s", (cpu["cycle_all_ms"] + refresh) / 10, "%")
    report(
        "sampler_core_percent_all_1s_no_processes",
        (cpu["cycle_no_processes_ms"] + refresh) / 10,
        "%",
    )

    # 2b. % of one core, measured on the real Sampler.run() --------------------------------------
    # The last one is the production shape: default intervals, the latest values in Redis.
    for label in ("all_1s", "all_1s_no_processes", "default_redis"):
        measured = await asyncio.to_thread(
            run_worker, "realtime", url, str(seconds), str(warmup), label, redis_url
        )
        print(
            f"# realtime {label}: {measured['cycles']} cycles, {measured['rows']} rows written "
            f"in {measured['wall_s']:.1f} s, {measured['cpu_s']:.3f} s CPU",
            flush=True,
        )
        report(f"sampler_core_percent_{label}_measured", measured["percent"], "%")

    # 3. memory stays flat -----------------------------------------------------------------------
    rss = await asyncio.to_thread(run_worker, "rss", url, str(rss_cycles))
    report("sampler_rss_after_100", rss["after_100_mib"], "MiB")
    report(f"sampler_rss_after_{rss_cycles}", rss["after_last_mib"], "MiB")
    report("sampler_rss_growth", rss["growth_percent"], "%")

    # 4. spool replay vs raw COPY ----------------------------------------------------------------
    replay = await asyncio.to_thread(run_worker, "replay", url, str(replay_rows))
    report("replay_rows_per_s", replay["replay_rows_per_s"], "rows/s")
    report("asyncpg_copy_rows_per_s", replay["copy_rows_per_s"], "rows/s")
    report("replay_vs_copy_ratio", replay["replay_rows_per_s"] / replay["copy_rows_per_s"], "x")
    print(
        f"# replay runs (rows/s): {replay['replay_runs']}; copy runs: {replay['copy_runs']}",
        flush=True,
    )
    return {
        "sampler_cycles": cycles,
        "sampler_seconds": seconds,
        "sampler_warmup_seconds": warmup,
        "rss_cycles": rss_cycles,
        "replay_rows": replay_rows,
        "host_processes": processes,
    }


# ----- worker side ---------------------------------------------------------------------------


class SimulatedClock:
    """A monotonic clock the benchmark advances by one second per cycle."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += seconds


def simulate_clock(collectors: dict[str, Collector]) -> SimulatedClock:
    clock = SimulatedClock()
    for collector in collectors.values():
        if hasattr(collector, "_clock"):
            collector._clock = clock
    return clock


def make_sessions(url: str, **settings: Any) -> tuple[Any, Any]:
    engine = build_engine(Settings(database_url=url, **settings))
    return engine, make_sessionmaker(engine)


def result(values: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(values), flush=True)


async def worker_cpu(url: str, cycles: int, redis_url: str) -> None:
    engine, sessions = make_sessions(url)
    with tempfile.TemporaryDirectory() as tmp:
        collectors = build_collectors()
        clock = simulate_clock(collectors)
        sampler = Sampler(
            sessionmaker=sessions,
            cache=MemoryCache(),
            spool_path=Path(tmp) / "spool.db",
            host=HOST,
            collectors=collectors,
        )
        await sampler.refresh_config()
        for collector in collectors.values():  # priming: first rates, caches, psutil state
            collector.collect()
        clock.advance()

        # Per collector, called directly.
        spent = dict.fromkeys(collectors, 0.0)
        for _ in range(cycles):
            for name, collector in collectors.items():
                started = time.process_time()
                collector.collect()
                spent[name] += time.process_time() - started
            clock.advance()
            await asyncio.sleep(SLEEP_BETWEEN_CYCLES)
        per_type = {name: total / cycles * 1000 for name, total in spent.items()}

        async def full_cycles(due: list[Collector]) -> float:
            total = 0.0
            for _ in range(3):  # warm the pipeline (statement cache, executor thread)
                await sampler._sample(due)
                await sampler.writer.flush()
            for cycle in range(1, cycles + 1):
                started = time.process_time()
                await sampler._sample(due)
                if cycle % FLUSH_EVERY_CYCLES == 0:
                    await sampler.writer.flush()
                total += time.process_time() - started
                clock.advance()
                await asyncio.sleep(SLEEP_BETWEEN_CYCLES)
            await sampler.writer.flush()
            return total / cycles * 1000

        everything = list(collectors.values())
        without = [c for name, c in collectors.items() if name != "processes"]
        cycle_all = await full_cycles(everything)
        cycle_no_processes = await full_cycles(without)

        cycle_all_redis = None
        redis = RedisCache(redis_url)
        try:
            async with asyncio.timeout(2):
                await redis.ping()
        except Exception:
            pass
        else:
            memory_publisher = sampler.publisher
            sampler.publisher = SnapshotPublisher(redis)
            cycle_all_redis = await full_cycles(everything)
            sampler.publisher = memory_publisher
        with contextlib.suppress(Exception):
            await redis.close()

        refresh_total = 0.0
        for _ in range(5):
            await sampler.refresh_config()
        refresh_calls = max(20, cycles // 5)
        for _ in range(refresh_calls):
            started = time.process_time()
            await sampler.refresh_config()
            refresh_total += time.process_time() - started
            await asyncio.sleep(SLEEP_BETWEEN_CYCLES)
        await sampler.config_watcher.close()
        await sampler.writer.close()
    await engine.dispose()
    result(
        {
            "per_type_ms": per_type,
            "cycle_all_ms": cycle_all,
            "cycle_no_processes_ms": cycle_no_processes,
            "cycle_all_redis_ms": cycle_all_redis,
            "config_refresh_ms": refresh_total / refresh_calls * 1000,
            "interval_keys": {name: c.interval_key for name, c in collectors.items()},
        }
    )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def worker_realtime(
    url: str, seconds: float, warmup: float, profile: str, redis_url: str
) -> None:
    engine, sessions = make_sessions(url)
    async with sessions() as session:
        service = ConfigService(session)
        for key in INTERVAL_KEYS:
            value = DEFAULTS[key] if profile == "default_redis" else 1
            await service.set_entry(key, value, updated_by="bench")
        await session.commit()
    cache: MemoryCache | RedisCache = MemoryCache()
    if profile == "default_redis":
        cache = RedisCache(redis_url)
        try:
            async with asyncio.timeout(2):
                await cache.ping()
        except Exception:
            print(f"# redis not reachable at {redis_url}: in-process cache instead", flush=True)
            cache = MemoryCache()
    with tempfile.TemporaryDirectory() as tmp:
        collectors = build_collectors()
        if profile == "all_1s_no_processes":
            del collectors["processes"]
        sampler = Sampler(
            sessionmaker=sessions,
            cache=cache,
            spool_path=Path(tmp) / "spool.db",
            host=HOST,
            collectors=collectors,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(sampler.run(stop))
        await asyncio.sleep(warmup)
        cycles, written = sampler.cycles, sampler.writer.stats.written
        cpu_started, wall_started = cpu_seconds(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu_spent, wall = cpu_seconds() - cpu_started, time.perf_counter() - wall_started
        cycles, written = sampler.cycles - cycles, sampler.writer.stats.written - written
        stop.set()
        await task
    await cache.close()
    await engine.dispose()
    result(
        {
            "percent": cpu_spent / wall * 100,
            "cpu_s": cpu_spent,
            "wall_s": wall,
            "cycles": cycles,
            "rows": written,
            "collector_errors": sampler.collector_errors,
        }
    )


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


async def worker_rss(url: str, cycles: int) -> None:
    engine, sessions = make_sessions(url)
    with tempfile.TemporaryDirectory() as tmp:
        collectors = build_collectors()
        sampler = Sampler(
            sessionmaker=sessions,
            cache=MemoryCache(),
            spool_path=Path(tmp) / "spool.db",
            host=HOST,
            collectors=collectors,
        )
        due = list(collectors.values())
        max_rows = sampler.writer.max_rows
        unflushed = 0
        after_100 = 0.0
        for cycle in range(1, cycles + 1):
            await sampler._sample(due)
            unflushed += len(due)
            if unflushed >= max_rows:
                await sampler.writer.flush()
                unflushed = 0
            if cycle == 100:
                after_100 = rss_mib()
        await sampler.writer.flush()
        after_last = rss_mib()
        stats = sampler.writer.stats
        await sampler.writer.close()
    await engine.dispose()
    print(
        f"# rss: {cycles} cycles, {stats.written} rows written, {stats.spooled} spooled",
        flush=True,
    )
    result(
        {
            "after_100_mib": after_100,
            "after_last_mib": after_last,
            "growth_percent": (after_last - after_100) / after_100 * 100,
        }
    )


async def realistic_documents(cycles: int = 30) -> dict[str, list[dict[str, Any]]]:
    collectors = build_collectors()
    clock = simulate_clock(collectors)
    for collector in collectors.values():
        collector.collect()
    documents: dict[str, list[dict[str, Any]]] = {name: [] for name in collectors}
    for _ in range(cycles):
        clock.advance()
        await asyncio.sleep(SLEEP_BETWEEN_CYCLES)
        for name, collector in collectors.items():
            documents[name].append(collector.collect())
    return documents


def fresh_copy(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)


async def worker_replay(url: str, rows: int) -> None:
    engine, sessions = make_sessions(url, slow_query_ms=0)  # no log line per chunk
    documents = await realistic_documents()
    types = sorted(documents)
    raw = await asyncpg.connect(url.replace("+asyncpg", ""))
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.db"
        spool = Spool(source, max_rows=rows)
        batch: list[EncodedSnapshot] = []
        for index in range(rows):
            kind = types[index % len(types)]
            cycle = index // len(types)
            pool = documents[kind]
            at = REPLAY_DAY + timedelta(seconds=cycle)
            batch.append(encode_snapshot(SnapshotRow(HOST, at, kind, pool[cycle % len(pool)])))
            if len(batch) == 10_000:
                spool.append_encoded(batch)
                batch = []
        spool.append_encoded(batch)
        peeked = spool.peek(rows)
        assert peeked is not None and len(peeked.records) == rows
        records = peeked.records  # (host, datetime, type, JSON text): what COPY is given
        spool.close()  # checkpoints the WAL into the file

        async def truncate() -> None:
            await raw.execute("TRUNCATE metric_snapshots")

        async def via_replay() -> float:
            await truncate()
            target = Path(tmp) / "replay.db"
            await asyncio.to_thread(fresh_copy, source, target)
            writer = SnapshotWriter(sessions, Spool(target, max_rows=rows))
            started = time.perf_counter()
            await writer.flush()
            elapsed = time.perf_counter() - started
            assert writer.stats.replayed == rows, writer.stats
            await asyncio.to_thread(writer.spool.close)
            return rows / elapsed

        async def via_copy() -> float:
            await truncate()
            started = time.perf_counter()
            for offset in range(0, rows, REPLAY_CHUNK_ROWS):
                await raw.copy_records_to_table(
                    "metric_snapshots",
                    records=records[offset : offset + REPLAY_CHUNK_ROWS],
                    columns=["host", "captured_at", "metric_type", "metric_data"],
                )
            elapsed = time.perf_counter() - started
            assert await raw.fetchval("SELECT count(*) FROM metric_snapshots") == rows
            return rows / elapsed

        await via_replay()  # warm both once
        await via_copy()
        replay_runs, copy_runs = [], []
        for run_index in range(3):  # alternate the order
            if run_index % 2 == 0:
                replay_runs.append(await via_replay())
                copy_runs.append(await via_copy())
            else:
                copy_runs.append(await via_copy())
                replay_runs.append(await via_replay())
        await truncate()
    await raw.close()
    await engine.dispose()
    result(
        {
            "replay_rows_per_s": statistics.median(replay_runs),
            "copy_rows_per_s": statistics.median(copy_runs),
            "replay_runs": [round(value) for value in replay_runs],
            "copy_runs": [round(value) for value in copy_runs],
        }
    )


def main(argv: list[str]) -> None:
    mode, url, *args = argv
    if mode == "cpu":
        asyncio.run(worker_cpu(url, int(args[0]), args[1]))
    elif mode == "realtime":
        asyncio.run(worker_realtime(url, float(args[0]), float(args[1]), args[2], args[3]))
    elif mode == "rss":
        asyncio.run(worker_rss(url, int(args[0])))
    elif mode == "replay":
        asyncio.run(worker_replay(url, int(args[0])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
