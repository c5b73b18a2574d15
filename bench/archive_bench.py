"""Archive file measurements for issue 11 (``BENCH_ONLY=archive``, no database): bytes per
numeric value and write speed of ``perfwatch.retention.archive`` files (JSONL + zstd) at several
zstd levels, on one simulated host-day of cpu, memory, disk, network and processes.

Documents: those of bench/storage_bench.py (the real collectors on this machine, replayed with
a busy host's numbers) at the default intervals: BENCH_ARCHIVE_HOURS (default 24) hours,
BENCH_RETENTION_POOL (default 300) collected cycles, levels BENCH_ARCHIVE_LEVELS (default
3,9,19). Each document is archived in the text PostgreSQL returns for a jsonb value (keys in
jsonb's order, ``", "`` and ``": "`` separators): that is what the retention job reads from the
production database; ``archive_bytes_per_value_compact`` is the same day in the sampler's compact
text (the SQLite store). A write is ``write_day`` whole: encoding, value count, compression,
fsync, manifest, and the verifying re-read.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import sampler_bench
import storage_bench

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.retention.archive import write_day
from perfwatch.retention.archive.writer import LEVEL

HOST = "archive-host"
TYPES = ("cpu", "memory", "disk", "network", "processes")


def jsonb_order(document: Any) -> Any:
    """``document`` with its keys in jsonb's storage order (shorter first, then bytewise)."""
    if isinstance(document, dict):
        ordered = sorted(document, key=lambda key: (len(key.encode()), key.encode()))
        return {key: jsonb_order(document[key]) for key in ordered}
    if isinstance(document, list):
        return [jsonb_order(value) for value in document]
    return document


def jsonb_text(document: Any) -> str:
    return json.dumps(jsonb_order(document), ensure_ascii=False)


def day_rows(
    kind: str, every: int, hours: float, pool: list[Any], compact: bool
) -> list[EncodedSnapshot]:
    rng = random.Random(11)
    rows = []
    for index in range(int(hours * 3600) // every):
        at = storage_bench.START + timedelta(seconds=index * every)
        document = storage_bench.busy(pool[index % len(pool)], "", at, rng)
        text = storage_bench.compact(document) if compact else jsonb_text(document)
        rows.append(EncodedSnapshot(HOST, at, kind, text))
    return rows


def measure(rows: list[EncodedSnapshot], level: int, directory: Path) -> tuple[int, int, float]:
    """(compressed bytes, values, seconds) of archiving ``rows`` (one type, one day)."""
    started = time.perf_counter()
    manifest = write_day(
        directory, HOST, rows[0].metric_type, storage_bench.START.date(), rows, level=level
    )
    elapsed = time.perf_counter() - started
    return manifest.size_bytes, manifest.values, elapsed


async def run(report: storage_bench.Report) -> dict[str, Any]:
    hours = float(os.environ.get("BENCH_ARCHIVE_HOURS", "24"))
    pool_size = int(os.environ.get("BENCH_RETENTION_POOL", "300"))
    levels = [int(v) for v in os.environ.get("BENCH_ARCHIVE_LEVELS", "3,9,19").split(",")]
    scale = 24 / hours
    intervals = storage_bench.interval_seconds()
    pool = await sampler_bench.realistic_documents(pool_size)
    sizes: dict[int, int] = dict.fromkeys(levels, 0)
    seconds: dict[int, float] = dict.fromkeys(levels, 0.0)
    values = rows_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for kind in TYPES:
            rows = day_rows(kind, intervals[kind], hours, pool[kind], compact=False)
            rows_total += len(rows)
            text_bytes = sum(len(row.document) for row in rows)
            print(
                f"# {kind}: {len(rows)} rows every {intervals[kind]} s,"
                f" {text_bytes / len(rows):.0f} B of jsonb text each",
                flush=True,
            )
            for level in levels:
                size, count, elapsed = measure(rows, level, Path(tmp) / f"l{level}")
                sizes[level] += size
                seconds[level] += elapsed
                report(f"archive_bytes_per_value_{kind}_l{level}", size / count, "B")
                print(
                    f"# {kind} level {level}: {size * scale / 1e6:.2f} MB a day,"
                    f" ratio {text_bytes / size:.1f}, {elapsed * scale:.1f} s",
                    flush=True,
                )
            values += count
            del rows
        for level in levels:
            report(f"archive_bytes_per_value_l{level}", sizes[level] / values, "B")
            report(f"archive_mb_per_host_day_l{level}", sizes[level] * scale / 1e6, "MB")
            report(f"archive_write_s_per_host_day_l{level}", seconds[level] * scale, "s")
        if LEVEL in sizes:
            report("archive_bytes_per_value", sizes[LEVEL] / values, "B")
            report("archive_write_rows_per_s", rows_total / seconds[LEVEL], "rows/s")
            compact_size = 0
            for kind in TYPES:
                rows = day_rows(kind, intervals[kind], hours, pool[kind], compact=True)
                compact_size += measure(rows, LEVEL, Path(tmp) / "compact")[0]
                del rows
            report("archive_bytes_per_value_compact", compact_size / values, "B")
    return {"archive_hours": hours, "archive_levels": levels, "archive_level": LEVEL}
