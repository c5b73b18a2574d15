"""``GET /metrics``: Prometheus text exposition (format 0.0.4), written by hand (no dependency).

Three parts: headline gauges of every host from its latest snapshots (cache first, database
fallback), the process's own health: HTTP requests by method/route template/status (counted
by ``api/request_counts.py``), latest-value cache lookups, the database pool (PostgreSQL)
and the sampler's counters when this process samples; and samples other domains hand in
(:class:`Sample`, e.g. the storage status the app wires in), which metrics does not import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from perfwatch.cache import Cache
from perfwatch.db.pool import PoolWaitStats
from perfwatch.metrics.service import LATEST_LOOKUP_STATS, LatestLookupStats, MetricsService

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEADLINE_TYPES = ("cpu", "memory", "network", "disk")
MAX_HOSTS = 200  # a scrape must stay cheap; hosts beyond this are left out (by name order)
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")

Labels = Mapping[str, str]
# HTTP responses by (method, route template, status).
RequestCountsByKey = Mapping[tuple[str, str, str], int]


class Sample(Protocol):
    """One sample of a family another domain exposes (read-only attributes)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def help(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


# Samples read with the scrape's session (the app puts one on app.state: see scrape.py).
SampleSource = Callable[[AsyncSession], Awaitable[Sequence[Sample]]]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def metric_name(text: str) -> str:
    name = _NAME_UNSAFE.sub("_", text)
    return name if not name[:1].isdigit() else f"_{name}"


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Families in insertion order; each ``# HELP``/``# TYPE`` once, then its samples."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[tuple[Labels, float]]]] = {}

    def add(self, name: str, kind: str, help_text: str, value: Any, **labels: str) -> None:
        number = _number(value)
        if number is None:
            return
        family = self._families.setdefault(name, (kind, help_text, []))
        family[2].append((labels, number))

    def render(self) -> str:
        lines = []
        for name, (kind, help_text, samples) in self._families.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                rendered = ",".join(f'{key}="{escape_label(v)}"' for key, v in labels.items())
                lines.append(
                    f"{name}{{{rendered}}} {format_value(value)}"
                    if rendered
                    else f"{name} {format_value(value)}"
                )
        return "\n".join(lines) + "\n"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _get(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


def add_headlines(out: Exposition, host: str, metric_type: str, data: Mapping[str, Any]) -> None:
    """The headline gauges of one latest snapshot (docs/metrics.md has the documents)."""
    if metric_type == "cpu":
        out.add(
            "perfwatch_cpu_percent",
            "gauge",
            "Busy share of all CPUs",
            data.get("percent"),
            host=host,
        )
        for period in ("1m", "5m", "15m"):
            out.add(
                "perfwatch_load_average",
                "gauge",
                "Run-queue load average",
                _get(data, "load_average", period),
                host=host,
                period=period,
            )
    elif metric_type == "memory":
        out.add(
            "perfwatch_memory_percent",
            "gauge",
            "Used share of physical memory",
            _get(data, "virtual", "percent"),
            host=host,
        )
        out.add(
            "perfwatch_swap_percent",
            "gauge",
            "Used share of swap",
            _get(data, "swap", "percent"),
            host=host,
        )
    elif metric_type == "network":
        interfaces = data.get("interfaces")
        if isinstance(interfaces, Mapping):
            for name, entry in sorted(interfaces.items()):
                for direction in ("sent", "recv"):
                    out.add(
                        "perfwatch_network_bytes_per_second",
                        "gauge",
                        "Interface throughput in bytes per second",
                        _get(entry, f"bytes_{direction}_per_s"),
                        host=host,
                        interface=str(name),
                        direction=direction,
                    )
    elif metric_type == "disk":
        usage = data.get("usage")
        if isinstance(usage, list):
            for entry in usage:
                if isinstance(entry, Mapping):
                    out.add(
                        "perfwatch_filesystem_used_percent",
                        "gauge",
                        "Used share of the filesystem",
                        entry.get("percent"),
                        host=host,
                        mountpoint=str(entry.get("mountpoint", "")),
                        device=str(entry.get("device", "")),
                    )


async def scrape(
    session: AsyncSession,
    cache: Cache | None,
    *,
    requests: RequestCountsByKey | None = None,
    engine: AsyncEngine | None = None,
    sampler_status: Mapping[str, Any] | None = None,
    lookup_stats: LatestLookupStats = LATEST_LOOKUP_STATS,
    now: datetime | None = None,
    extra: Iterable[Sample] = (),
) -> str:
    out = Exposition()
    # Own counter for the scrape's lookups: the exported cache counters describe API traffic.
    service = MetricsService(session, cache, stats=LatestLookupStats())
    moment = now or datetime.now(UTC)
    hosts = (await service.hosts()).hosts[:MAX_HOSTS]
    for info in hosts:
        for metric_type in HEADLINE_TYPES:
            if metric_type not in info.metric_types:
                continue
            snapshot = await service.latest_decoded(info.host, metric_type)
            if snapshot is None:
                continue
            out.add(
                "perfwatch_snapshot_age_seconds",
                "gauge",
                "Seconds since the latest snapshot was captured",
                max((moment - snapshot.captured_at).total_seconds(), 0.0),
                host=info.host,
                metric_type=metric_type,
            )
            add_headlines(out, info.host, metric_type, snapshot.data)
    add_process_health(out, requests, engine, sampler_status, lookup_stats)
    for sample in extra:
        out.add(sample.name, sample.kind, sample.help, sample.value, **sample.labels)
    return out.render()


def add_process_health(
    out: Exposition,
    requests: RequestCountsByKey | None,
    engine: AsyncEngine | None,
    sampler_status: Mapping[str, Any] | None,
    lookup_stats: LatestLookupStats,
) -> None:
    if requests is not None:
        for (method, route, status), count in sorted(requests.items()):
            out.add(
                "perfwatch_http_requests_total",
                "counter",
                "HTTP responses by method, route template and status",
                count,
                method=method,
                route=route,
                status=status,
            )
    for result, count in lookup_stats.as_dict().items():
        out.add(
            "perfwatch_latest_lookups_total",
            "counter",
            "Latest-value lookups of the API: cache hits, misses and cache errors",
            count,
            result=result.removesuffix("s"),
        )
    if engine is not None and engine.dialect.name == "postgresql":
        pool: Any = engine.pool
        if hasattr(pool, "checkedout"):
            out.add("perfwatch_db_pool_size", "gauge", "Connections the pool keeps", pool.size())
            out.add(
                "perfwatch_db_pool_checked_out", "gauge", "Connections in use", pool.checkedout()
            )
            out.add(
                "perfwatch_db_pool_overflow",
                "gauge",
                "Connections beyond the pool size",
                max(pool.overflow(), 0),
            )
        waits = getattr(pool, "wait_stats", None)
        if isinstance(waits, PoolWaitStats):
            out.add(
                "perfwatch_db_pool_checkouts_total",
                "counter",
                "Connections taken from the pool",
                waits.checkouts,
            )
            out.add(
                "perfwatch_db_pool_wait_seconds_total",
                "counter",
                "Time spent getting a connection from the pool (waiting, or opening one)",
                waits.wait_seconds,
            )
            out.add(
                "perfwatch_db_pool_wait_seconds_max",
                "gauge",
                "Longest single wait for a pool connection since start",
                waits.max_wait_seconds,
            )
    if sampler_status is not None:
        add_sampler(out, sampler_status)


def add_sampler(out: Exposition, status: Mapping[str, Any]) -> None:
    out.add("perfwatch_sampler_cycles_total", "counter", "Sampling cycles", status.get("cycles"))
    out.add(
        "perfwatch_sampler_collector_errors_total",
        "counter",
        "Collector failures",
        status.get("collector_errors"),
    )
    out.add(
        "perfwatch_sampler_spool_rows",
        "gauge",
        "Snapshots waiting in the spool",
        status.get("spool_rows"),
    )
    out.add(
        "perfwatch_sampler_spool_dropped_total",
        "counter",
        "Snapshots dropped from the full spool",
        status.get("spool_dropped"),
    )
    for part in ("writer", "cache"):
        values = status.get(part)
        if isinstance(values, Mapping):
            _add_counters(out, f"perfwatch_sampler_{part}", values.items())


def _add_counters(out: Exposition, prefix: str, items: Iterable[tuple[str, Any]]) -> None:
    for key, value in items:
        if isinstance(value, bool):
            out.add(f"{prefix}_{metric_name(key)}", "gauge", f"1 when {key}, else 0", value)
        else:
            out.add(f"{prefix}_{metric_name(key)}_total", "counter", f"Sampler {key}", value)
