"""Realistic demo history: snapshots of every metric type on a regular time grid.

The grid ends at the start of the current UTC hour, so running the seed again within the hour
produces the same rows (ignored as duplicates) and a later run only adds the newest ones.
"""

from __future__ import annotations

import math
import random
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.contract.metrics import METRIC_TYPES, SnapshotRow
from perfwatch.db.partitions import ensure_snapshot_partitions
from perfwatch.db.session import unit_of_work
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.metrics.rollups import RollupRepository

SCHEMA_VERSION = 1
MAX_SEED_DAYS = 30
BATCH_SIZE = 5_000
CORES = 4
PROCESS_NAMES = (
    "postgres",
    "redis-server",
    "uvicorn",
    "nginx",
    "sshd",
    "systemd",
    "cron",
    "python3",
)


@dataclass(frozen=True)
class SeedPlan:
    host: str
    start: datetime
    end: datetime
    interval_seconds: int
    metric_types: tuple[str, ...]

    @property
    def points_per_type(self) -> int:
        return int((self.end - self.start).total_seconds() // self.interval_seconds)

    @property
    def total_rows(self) -> int:
        return self.points_per_type * len(self.metric_types)


def plan_seed(
    *,
    days: float = 1.0,
    interval_seconds: int = 60,
    host: str | None = None,
    metric_types: Sequence[str] = METRIC_TYPES,
    now: datetime | None = None,
) -> SeedPlan:
    if not 0 < days <= MAX_SEED_DAYS:
        raise ValueError(f"days must be more than 0 and at most {MAX_SEED_DAYS}")
    if not 1 <= interval_seconds <= 86_400:
        raise ValueError("interval must be between 1 and 86400 seconds")
    unknown = set(metric_types) - set(METRIC_TYPES)
    if unknown:
        raise ValueError(
            f"unknown metric type(s) {sorted(unknown)}; known: {', '.join(METRIC_TYPES)}"
        )
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return SeedPlan(
        host=host or f"{socket.gethostname()}-demo",
        start=end - timedelta(days=days),
        end=end,
        interval_seconds=interval_seconds,
        metric_types=tuple(metric_types),
    )


def _wave(t: float, period: float, low: float, high: float, noise: random.Random) -> float:
    """A daily-looking load curve with noise, clamped to [low, high]."""
    value = (
        low + (high - low) * (0.5 + 0.4 * math.sin(2 * math.pi * t / period)) + noise.gauss(0, 3)
    )
    return round(min(max(value, low), high), 2)


def _cpu(t: float, r: random.Random) -> dict[str, Any]:
    per_core = [_wave(t + i * 600, 86_400, 0, 100, r) for i in range(CORES)]
    total = round(sum(per_core) / CORES, 2)
    return {
        "schema_version": SCHEMA_VERSION,
        "percent": total,
        "per_cpu_percent": per_core,
        "times_percent": {
            "user": round(total * 0.7, 2),
            "system": round(total * 0.2, 2),
            "iowait": round(total * 0.05, 2),
            "steal": 0.0,
            "idle": round(100 - total, 2),
        },
        "load_average": [round(total / 25, 2), round(total / 27, 2), round(total / 30, 2)],
        "ctx_switches_per_s": round(2_000 + total * 80 + r.random() * 100, 1),
        "interrupts_per_s": round(1_000 + total * 30 + r.random() * 50, 1),
        "frequency_mhz": 2_400.0,
        "count": CORES,
    }


def _memory(t: float, r: random.Random) -> dict[str, Any]:
    total = 16 * 1024**3
    percent = _wave(t, 43_200, 20, 90, r)
    used = int(total * percent / 100)
    return {
        "schema_version": SCHEMA_VERSION,
        "virtual": {
            "total": total,
            "available": total - used,
            "used": used,
            "percent": percent,
            "buffers": 200 * 1024**2,
            "cached": 2 * 1024**3,
        },
        "swap": {"total": 2 * 1024**3, "used": 0, "free": 2 * 1024**3, "percent": 0.0},
    }


def _disk(t: float, r: random.Random) -> dict[str, Any]:
    total = 500 * 1024**3
    used = int(total * (0.4 + t / 86_400 / 1_000))
    read_bps = max(0.0, _wave(t, 3_600, 0, 100, r) * 1024**2 / 10)
    return {
        "schema_version": SCHEMA_VERSION,
        "usage": [
            {
                "mountpoint": "/",
                "device": "/dev/vda1",
                "fstype": "ext4",
                "total": total,
                "used": used,
                "free": total - used,
                "percent": round(used / total * 100, 2),
            }
        ],
        "io": [
            {
                "device": "vda",
                "read_bytes_per_s": round(read_bps, 1),
                "write_bytes_per_s": round(read_bps * 1.5, 1),
                "read_iops": round(read_bps / 4096, 1),
                "write_iops": round(read_bps * 1.5 / 4096, 1),
                "busy_percent": round(min(read_bps / 2e6, 100), 2),
            }
        ],
    }


def _network(t: float, r: random.Random) -> dict[str, Any]:
    rx = _wave(t, 7_200, 0, 100, r) * 12_500
    return {
        "schema_version": SCHEMA_VERSION,
        "interfaces": [
            {
                "name": "eth0",
                "bytes_recv_per_s": round(rx, 1),
                "bytes_sent_per_s": round(rx / 3, 1),
                "packets_recv_per_s": round(rx / 900, 1),
                "packets_sent_per_s": round(rx / 2_700, 1),
                "errin_per_s": 0.0,
                "errout_per_s": 0.0,
                "dropin_per_s": 0.0,
                "dropout_per_s": 0.0,
            }
        ],
        "connections": {
            "ESTABLISHED": 40 + r.randint(0, 20),
            "LISTEN": 12,
            "TIME_WAIT": r.randint(0, 30),
        },
    }


def _processes(t: float, r: random.Random) -> dict[str, Any]:
    top = [
        {
            "pid": 100 + i * 37,
            "name": name,
            "user": "root" if i % 3 else "postgres",
            "cpu_percent": round(r.random() * 30, 2),
            "rss": r.randint(10, 800) * 1024**2,
            "num_threads": r.randint(1, 40),
        }
        for i, name in enumerate(PROCESS_NAMES)
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "counts": {
            "total": 180 + r.randint(0, 20),
            "running": r.randint(1, 4),
            "sleeping": 175,
            "zombie": 0,
        },
        "top_cpu": sorted(top, key=lambda p: -p["cpu_percent"]),
        "top_memory": sorted(top, key=lambda p: -p["rss"]),
    }


def _system(t: float, r: random.Random) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "hostname": "demo",
        "os": "Linux",
        "kernel": "6.1.0-demo",
        "boot_time": 1_700_000_000,
        "uptime_seconds": int(t - 1_700_000_000),
        "users": [{"name": "admin", "terminal": "pts/0", "host": "10.0.0.2"}],
    }


def _sensors(t: float, r: random.Random) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "temperatures": {
            "coretemp": [
                {
                    "label": "Package id 0",
                    "current": _wave(t, 86_400, 35, 85, r),
                    "high": 90.0,
                    "critical": 100.0,
                }
            ]
        },
        "fans": {},
        "battery": None,
    }


GENERATORS: dict[str, Callable[[float, random.Random], dict[str, Any]]] = {
    "cpu": _cpu,
    "memory": _memory,
    "disk": _disk,
    "network": _network,
    "processes": _processes,
    "system": _system,
    "sensors": _sensors,
}


def generate_rows(plan: SeedPlan, metric_type: str) -> Iterator[SnapshotRow]:
    generate = GENERATORS[metric_type]
    for index in range(plan.points_per_type):
        captured_at = plan.start + timedelta(seconds=index * plan.interval_seconds)
        timestamp = captured_at.timestamp()
        # Seeded per point, so the same plan always produces the same documents.
        noise = random.Random(f"{plan.host}:{metric_type}:{timestamp}")
        yield SnapshotRow(plan.host, captured_at, metric_type, generate(timestamp, noise))


def _batches(rows: Iterator[SnapshotRow], size: int) -> Iterator[list[SnapshotRow]]:
    batch: list[SnapshotRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def seed_history(
    plan: SeedPlan,
    sessionmaker: async_sessionmaker[AsyncSession],
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Store ``plan``'s rows in batches (one transaction each); return how many were new."""
    days_back = (plan.end.date() - plan.start.date()).days + 1
    async with unit_of_work(sessionmaker) as session:
        await ensure_snapshot_partitions(session, days_behind=days_back)
    inserted = 0
    for metric_type in plan.metric_types:
        for batch in _batches(generate_rows(plan, metric_type), batch_size):
            async with unit_of_work(sessionmaker) as session:
                stored = await SnapshotIngest(session).bulk_insert_ignore_conflicts(batch)
                if stored:  # history may land in minutes a series has rolled up already
                    await RollupRepository(session).forget_late(
                        (row.host, row.captured_at, row.metric_type) for row in batch
                    )
                inserted += stored
            if on_progress is not None:
                on_progress(len(batch))
    return inserted
