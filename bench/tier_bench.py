"""Resolution-tier rollup cost for issue 11 (``BENCH_ONLY=tiers``; no database): the CPU time
the tier job spends on one host's minute, and the bytes of the buckets it stores.

Documents: one minute of one host at the default intervals (cpu, memory, disk and network 60
each, processes 12, sensors 6, system 1), from this machine's real collectors made to look like
a busy host's (``storage_bench.busy``), encoded as the ingest stores them (a machine without
sensors gives empty sensors documents: 6 of 259, no fields). Timed, as the job does
it per host and minute apart from its SQL: ``json.loads`` of every stored text, flatten and
accumulate into one ``BucketStats`` per type, encode each bucket. Also timed: one hour of such
minutes decoded and merged into the 1-hour buckets (once an hour). CPU time
(``time.process_time``) per minute, median of BENCH_TIER_ROUNDS (default 7) rounds of
BENCH_TIER_MINUTES (default 100) minutes each. The budget is 0.2 % of a core (120 ms a minute).

Sizes: the encoded 1-minute bucket of each type in bytes of JSON, as stored (whole floats as
ints) and as ``json.dumps`` writes it, for these busy documents and for the quiet ones as
collected (mostly zero rates).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "backend"))

import sampler_bench  # noqa: E402
import storage_bench  # noqa: E402

from perfwatch.metrics.fields import NOT_SERIES_ANY_TYPE  # noqa: E402
from perfwatch.metrics.tiers.flatten import numeric_leaves  # noqa: E402
from perfwatch.metrics.tiers.stats import BucketStats  # noqa: E402

Report = Callable[[str, float, str], None]
# One minute of one host: (type, stored JSON text), oldest first.
Minute = list[tuple[str, str]]

START = datetime(2026, 6, 1, tzinfo=UTC)
BUDGET_MS = 120.0  # 0.2 % of one core, per host and minute


def one_minute(pool: dict[str, list[dict[str, Any]]], make_busy: bool) -> Minute:
    rng = random.Random(11)
    rows: list[tuple[int, str, str]] = []
    for kind, every in storage_bench.interval_seconds().items():
        for index in range(60 // every):
            at = START + timedelta(seconds=index * every)
            document = pool[kind][index % len(pool[kind])]
            if make_busy:
                document = storage_bench.busy(document, "", at, rng)
            rows.append((index * every, kind, storage_bench.compact(document)))
    rows.sort(key=lambda row: row[0])
    return [(kind, text) for _, kind, text in rows]


def roll_up(minute: Minute) -> dict[str, str]:
    """The tier job's Python work for one host and minute: the stored text of each type."""
    buckets: dict[str, BucketStats] = {}
    for kind, text in minute:
        bucket = buckets.get(kind)
        if bucket is None:
            bucket = buckets[kind] = BucketStats()
        bucket.add(kind, json.loads(text))
    return {kind: bucket.encode() for kind, bucket in buckets.items()}


def roll_up_hour(minutes: dict[str, list[tuple[int, str]]]) -> dict[str, str]:
    """One hour of stored 1-minute buckets (snapshots, stats) per type merged into its 1-hour
    bucket."""
    hours: dict[str, str] = {}
    for kind, stored in minutes.items():
        hour = BucketStats()
        for snapshots, text in stored:
            hour.merge(BucketStats.decode(snapshots, text))
        hours[kind] = hour.encode()
    return hours


def cpu_ms(call: Callable[[], Any], repeats: int, rounds: int) -> float:
    """Median over ``rounds`` of the CPU milliseconds per call, ``repeats`` calls a round."""
    call()  # warm: the key cache, the allocator
    per_call = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(repeats):
            call()
        per_call.append((time.process_time() - started) * 1000 / repeats)
    return statistics.median(per_call)


def sizes(minute: Minute) -> dict[str, tuple[int, int, int]]:
    """Per type: fields, bytes stored, bytes as plain ``json.dumps``."""
    buckets: dict[str, BucketStats] = {}
    for kind, text in minute:
        buckets.setdefault(kind, BucketStats()).add(kind, json.loads(text))
    return {
        kind: (
            len(bucket.fields),
            len(bucket.encode()),
            len(json.dumps(bucket.fields, separators=(",", ":"))),
        )
        for kind, bucket in buckets.items()
    }


async def run(report: Report) -> dict[str, Any]:
    minutes_per_round = int(os.environ.get("BENCH_TIER_MINUTES", "100"))
    rounds = int(os.environ.get("BENCH_TIER_ROUNDS", "7"))
    pool = await sampler_bench.realistic_documents(60)
    busy = one_minute(pool, make_busy=True)
    quiet = one_minute(pool, make_busy=False)
    counts = {kind: sum(1 for k, _ in busy if k == kind) for kind in pool}
    print(f"# documents per host-minute: {len(busy)} {counts}", flush=True)
    print(f"# JSON text per host-minute: {sum(len(text) for _, text in busy)} B", flush=True)

    minute_ms = cpu_ms(lambda: roll_up(busy), minutes_per_round, rounds)
    report("tier_rollup_cpu_ms_per_host_minute", minute_ms, "ms")
    report("tier_rollup_core_percent_per_host", minute_ms / 60_000 * 100, "%")
    print(f"# budget {BUDGET_MS:.0f} ms a minute: {minute_ms / BUDGET_MS * 100:.1f} % used")
    parse_ms = cpu_ms(lambda: [json.loads(text) for _, text in busy], minutes_per_round, rounds)
    report("tier_rollup_parse_cpu_ms_per_host_minute", parse_ms, "ms")

    stored = roll_up(busy)
    hour = {kind: [(counts[kind], text)] * 60 for kind, text in stored.items()}
    hour_ms = cpu_ms(lambda: roll_up_hour(hour), max(1, minutes_per_round // 10), rounds)
    report("tier_rollup_1h_cpu_ms_per_host_hour", hour_ms, "ms")

    for label, minute in (("busy", busy), ("quiet", quiet)):
        measured = sizes(minute)
        for kind, (fields, size, plain) in sorted(measured.items()):
            if label == "busy":
                report(f"tier_bucket_1m_bytes_{kind}", size, "B")
            print(f"# {label} {kind}: {fields} fields, {size} B stored, {plain} B plain json")
        stored_total = sum(size for _, size, _ in measured.values())
        plain_total = sum(plain for _, _, plain in measured.values())
        report(f"tier_bucket_1m_bytes_per_host_minute_{label}", stored_total, "B")
        saved = (1 - stored_total / plain_total) * 100
        print(f"# {label}: whole floats as ints save {saved:.1f} %", flush=True)

    # What the processes' top-N lists would have cost (fields.NOT_SERIES leaves them out).
    processes = [json.loads(text) for kind, text in busy if kind == "processes"]
    kept = {p for d in processes for p in numeric_leaves("processes", d)}
    every = {p for d in processes for p in numeric_leaves("", d)}
    every -= NOT_SERIES_ANY_TYPE
    print(f"# processes: {len(kept)} fields kept, {len(every)} with the top-N lists", flush=True)
    return {"tier_minutes_per_round": minutes_per_round, "tier_rounds": rounds}


if __name__ == "__main__":
    import asyncio

    def print_report(name: str, value: float, unit: str) -> None:
        print(f"BENCH {name} {value:.4g} {unit}", flush=True)

    asyncio.run(run(print_report))
