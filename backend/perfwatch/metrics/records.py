"""What the read path returns, as named types: buckets and summaries of a series, totals per
bucket (what buckets are merged from), hosts seen. Plain dataclasses and tuples, not pydantic
models: a day is 1,440 buckets per field, and pydantic writes these dataclasses out directly.

Every number leaves rounded by :func:`rounded` (series and summaries alike)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from perfwatch.metrics.buckets import from_epoch
from perfwatch.models import MetricSnapshot

# Decimal places kept: enough for any reading the sampler takes (percentages, rates, bytes),
# few enough to drop binary floating-point noise (56.04200000000001 → 56.042). Whole numbers
# (byte counts) stay exact at any size.
DECIMALS = 6


def rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), DECIMALS)


@dataclass(frozen=True, slots=True)
class FieldStats:
    avg: float | None
    min: float | None
    max: float | None


NO_STATS = FieldStats(None, None, None)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time bucket ``[start, start + step)``: ``count`` snapshots, stats per field (None
    where no snapshot of the bucket had a number at that path)."""

    start: datetime
    count: int
    fields: dict[str, FieldStats]


@dataclass(frozen=True, slots=True)
class FieldSummary:
    count: int  # snapshots with a number at this path
    min: float | None
    avg: float | None
    max: float | None
    p95: float | None  # continuous percentile (interpolated), as percentile_cont(0.95)


@dataclass(frozen=True, slots=True)
class RangeSummary:
    count: int  # snapshots in the range
    fields: dict[str, FieldSummary]


@dataclass(frozen=True, slots=True)
class HostSeen:
    host: str
    last_seen: datetime
    metric_types: dict[str, datetime]  # type → its newest snapshot's time


@dataclass(frozen=True, slots=True)
class SnapshotPage:
    items: list[MetricSnapshot]  # oldest first
    next_cursor: str | None


class FieldTotals(NamedTuple):
    """One field over one bucket: how many numbers were found, their sum, min and max (sum,
    min and max are None when there were none)."""

    numbers: int
    total: float | None
    low: float | None
    high: float | None


class MinuteTotals(NamedTuple):
    """One bucket (a minute, or any width) of one host and type: the snapshots in it, and the
    totals of each requested field in the order requested."""

    snapshots: int
    fields: tuple[FieldTotals, ...]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> MinuteTotals:
        """``(snapshots, count0, sum0, min0, max0, count1, …)``, the column order of every
        query that produces totals (snapshots or tier rows grouped by bucket)."""
        return cls(
            int(row[0]),
            tuple(FieldTotals(*row[at : at + 4]) for at in range(1, len(row), 4)),
        )


# Totals by their bucket's start in seconds since the Unix epoch, oldest first.
Totals = list[tuple[int, MinuteTotals]]


def buckets_from_totals(
    totals: Iterable[tuple[int, MinuteTotals]], paths: Sequence[str], step_seconds: int
) -> list[Bucket]:
    """Totals (oldest first; of minutes, hours or buckets of the step, from several sources)
    merged into epoch-aligned buckets of ``step_seconds``, a multiple of their widths: counts
    and sums add up, min/max combine, the average is sum / count."""
    buckets: list[Bucket] = []
    start: int | None = None
    snapshots = 0
    fields: Sequence[Sequence[Any]] = ()  # the bucket's first row's, as they are
    # Per field [numbers, total, low, high], made only when a second row joins the bucket
    # (rare: a bucket that spans two sources), then merged in place.
    merged: list[list[Any]] | None = None
    for moment, row in totals:
        bucket = moment - moment % step_seconds
        if bucket != start:
            if start is not None:
                buckets.append(
                    _bucket(start, snapshots, fields if merged is None else merged, paths)
                )
            start, snapshots, fields, merged = bucket, row.snapshots, row.fields, None
            continue
        if merged is None:
            merged = [list(field) for field in fields]
        snapshots += row.snapshots
        for mine, (numbers, total, low, high) in zip(merged, row.fields, strict=True):
            if not numbers:
                continue
            if not mine[0]:
                mine[:] = numbers, total, low, high
                continue
            mine[0] += numbers
            mine[1] += total
            if low < mine[2]:
                mine[2] = low
            if high > mine[3]:
                mine[3] = high
    if start is not None:
        buckets.append(_bucket(start, snapshots, fields if merged is None else merged, paths))
    return buckets


def _bucket(
    start: int, snapshots: int, fields: Sequence[Sequence[Any]], paths: Sequence[str]
) -> Bucket:
    # FieldTotals.stats inlined: this runs once per bucket and field, 2,880 times for a day
    # of two fields at 1 min, and the call per field was a third of it.
    stats: dict[str, FieldStats] = {}
    for path, (numbers, total, low, high) in zip(paths, fields, strict=True):
        if numbers:
            stats[path] = FieldStats(
                round(total / numbers, DECIMALS),
                round(float(low), DECIMALS),
                round(float(high), DECIMALS),
            )
        else:
            stats[path] = NO_STATS
    return Bucket(start=from_epoch(start), count=snapshots, fields=stats)
