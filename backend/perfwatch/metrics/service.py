"""Read side of the metrics API: types, hosts, latest values, downsampled series, raw pages and
summaries. No HTTP here; routers call :class:`MetricsService` and return its models.

Errors: an unknown metric type raises :class:`UnknownMetricTypeError` (a ``NotFoundError``,
message listing the known types); bad ranges, steps, limits, cursors or field paths raise
``InvalidQueryError``. An unknown host is not an error: results are empty.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.cache import Cache
from perfwatch.config_store.repository import ConfigRepository
from perfwatch.contract.metrics import METRIC_TYPES, latest_key
from perfwatch.errors import InvalidQueryError, NotFoundError, ValidationFailedError
from perfwatch.kit.repository import MAX_PAGE_SIZE
from perfwatch.metrics.repository import SnapshotRepository, validate_fields
from perfwatch.metrics.schemas import (
    FieldSummary,
    HostInfo,
    HostList,
    LatestSnapshot,
    MetricTypeList,
    RawPage,
    RawSnapshot,
    Series,
    Source,
    Summary,
)

logger = logging.getLogger("perfwatch.metrics.service")

DEFAULT_MAX_POINTS = 1500  # the `api.max_points` default
MAX_POINTS_LIMIT = 10_000
CACHE_TIMEOUT_SECONDS = 0.5
MAX_HOST_LENGTH = 255
# Bucket widths in seconds; wider ranges use whole days.
NICE_STEPS = (1, 5, 10, 30, 60, 300, 900, 3600, 21_600, 86_400)


class UnknownMetricTypeError(NotFoundError):
    def __init__(self, metric_type: str, known: Sequence[str]) -> None:
        self.metric_type = metric_type
        self.known = list(known)
        super().__init__(f"unknown metric type {metric_type[:64]!r}; known: {', '.join(known)}")


@dataclass
class LatestLookupStats:
    """Latest-value lookups: served by the cache (hits), missing there (misses), cache errors
    or timeouts (errors, also served from the database). Process-wide by default."""

    hits: int = 0
    misses: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors}


LATEST_LOOKUP_STATS = LatestLookupStats()


def bucket_count(start: datetime, end: datetime, step_seconds: int) -> int:
    """Epoch-aligned buckets of ``step_seconds`` that ``[start, end)`` touches."""
    step_us = step_seconds * 1_000_000
    first = _epoch_us(start) // step_us
    last = (_epoch_us(end) - 1) // step_us
    return last - first + 1


def choose_step(start: datetime, end: datetime, step: timedelta | None, max_points: int) -> int:
    """Bucket width in seconds: at least ``step`` and ``span / max_points``, rounded up to a
    nice width (1s 5s 10s 30s 1m 5m 15m 1h 6h 1d, then whole days), widened further if the
    epoch-aligned buckets covering the range would still exceed ``max_points``."""
    if not 1 <= max_points <= MAX_POINTS_LIMIT:
        raise InvalidQueryError(f"max_points must be between 1 and {MAX_POINTS_LIMIT}")
    if start >= end:
        raise InvalidQueryError("start must be before end")
    requested = 1.0 if step is None else step.total_seconds()
    if requested <= 0:
        raise InvalidQueryError("step must be positive")
    span = (end - start).total_seconds()
    width = max(requested, span / max_points, 1.0)
    candidate = next((nice for nice in NICE_STEPS if nice >= width), None)
    if candidate is None:
        candidate = math.ceil(width / 86_400) * 86_400
    while bucket_count(start, end, candidate) > max_points:
        index = NICE_STEPS.index(candidate) if candidate in NICE_STEPS[:-1] else None
        candidate = NICE_STEPS[index + 1] if index is not None else candidate + 86_400
    return candidate


def check_host_name(host: str) -> str:
    if not host.strip() or len(host) > MAX_HOST_LENGTH:
        raise ValidationFailedError(f"host must be 1 to {MAX_HOST_LENGTH} characters")
    return host


async def read_latest(
    session: AsyncSession,
    cache: Cache,
    host: str | None,
    metric_type: str,
) -> tuple[str, LatestSnapshot | None, Source]:
    """``/metrics/latest`` as a use case of its own: ``(host, snapshot or None, source)``.

    The hot case (a named host, a sampler type, a cache hit) does not touch ``session``:
    a dashboard polls it every second, and a connection checkout and commit cost more than
    the answer. Anything else (no host given, another type, a miss) reads the database."""
    tried_cache = False
    if host is not None and metric_type in METRIC_TYPES:
        cached = await MetricsService(None, cache).cached_latest(check_host_name(host), metric_type)
        if cached is not None:
            return host, cached, "cache"
        tried_cache = True
    service = MetricsService(session, cache)
    await service.check_type(metric_type)
    resolved = await service.resolve_host(host)
    snapshot, source = await service.latest(resolved, metric_type, use_cache=not tried_cache)
    return resolved, snapshot, source


class MetricsService:
    """One per request (it holds the request's session); counters are shared via ``stats``."""

    def __init__(
        self,
        session: AsyncSession | None,
        cache: Cache | None,
        *,
        stats: LatestLookupStats | None = None,
        cache_timeout: float = CACHE_TIMEOUT_SECONDS,
    ) -> None:
        self._session = session
        self._repository: SnapshotRepository | None = None
        self.cache = cache
        self.stats = LATEST_LOOKUP_STATS if stats is None else stats
        self.cache_timeout = cache_timeout

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("this MetricsService was made without a session (cache only)")
        return self._session

    @property
    def repository(self) -> SnapshotRepository:
        if self._repository is None:
            self._repository = SnapshotRepository(self.session)
        return self._repository

    # ----- catalogue ----------------------------------------------------------------------
    async def types(self) -> MetricTypeList:
        stored = await self.repository.distinct_metric_types()
        extra = sorted(set(stored) - set(METRIC_TYPES))
        return MetricTypeList(metric_types=[*METRIC_TYPES, *extra])

    async def hosts(self) -> HostList:
        seen = await self.repository.hosts_last_seen()
        return HostList(
            hosts=[
                HostInfo(host=h.host, last_seen=h.last_seen, metric_types=h.metric_types)
                for h in seen
            ]
        )

    async def resolve_host(self, host: str | None) -> str:
        """``host`` when given; else the only host with stored snapshots. Nothing stored →
        ``NotFoundError``; several hosts → ``ValidationFailedError`` naming them."""
        if host is not None:
            return check_host_name(host)
        seen = await self.repository.hosts_last_seen()
        if not seen:
            raise NotFoundError("no snapshots are stored yet, for any host")
        if len(seen) > 1:
            names = ", ".join(item.host for item in seen[:20])
            more = f" and {len(seen) - 20} more" if len(seen) > 20 else ""
            raise ValidationFailedError(
                f"{len(seen)} hosts have data; choose one with host= ({names}{more})"
            )
        return seen[0].host

    async def max_points(self) -> int:
        """``api.max_points`` from the runtime configuration, kept within 1..MAX_POINTS_LIMIT."""
        try:
            value = await ConfigRepository(self.session).get_value(
                "api.max_points", int, DEFAULT_MAX_POINTS
            )
        except ValidationFailedError as exc:
            logger.warning("%s; using %d", exc.message, DEFAULT_MAX_POINTS)
            return DEFAULT_MAX_POINTS
        return min(max(value, 1), MAX_POINTS_LIMIT)

    async def check_type(self, metric_type: str) -> None:
        """Known (the sampler's types, or any type stored), else :class:`UnknownMetricTypeError`."""
        if metric_type in METRIC_TYPES:
            return
        stored = await self.repository.distinct_metric_types()
        if metric_type not in stored:
            known = [*METRIC_TYPES, *sorted(set(stored) - set(METRIC_TYPES))]
            raise UnknownMetricTypeError(metric_type, known)

    # ----- latest -------------------------------------------------------------------------
    async def latest(
        self, host: str, metric_type: str, *, use_cache: bool = True
    ) -> tuple[LatestSnapshot | None, Source]:
        """The newest snapshot: from the cache when it has one, else from the database (also
        when the cache fails or is slower than ``cache_timeout``). ``(None, "database")`` when
        the host has no snapshot of this type."""
        await self.check_type(metric_type)
        cached = await self.cached_latest(host, metric_type) if use_cache else None
        if cached is not None:
            return cached, "cache"
        snapshot = await self.repository.latest(host, metric_type)
        if snapshot is None:
            return None, "database"
        return (
            LatestSnapshot(
                host=snapshot.host,
                metric_type=snapshot.metric_type,
                captured_at=snapshot.captured_at,
                data=snapshot.metric_data,
                source="database",
            ),
            "database",
        )

    async def cached_latest(self, host: str, metric_type: str) -> LatestSnapshot | None:
        """The latest-value cache's snapshot, or None (absent, unreadable, or the cache away:
        counted in ``stats``). Needs no session."""
        if self.cache is None:
            self.stats.misses += 1
            return None
        try:
            async with asyncio.timeout(self.cache_timeout):
                raw = await self.cache.get(latest_key(host, metric_type))
        except Exception as exc:
            self.stats.errors += 1
            logger.debug("latest-value cache unavailable: %s", exc)
            return None
        if raw is None:
            self.stats.misses += 1
            return None
        try:
            message: dict[str, Any] = json.loads(raw)
            result = LatestSnapshot(
                host=message["host"],
                metric_type=message["metric_type"],
                captured_at=message["captured_at"],
                data=message["data"],
                source="cache",
            )
        except (ValueError, KeyError, TypeError) as exc:
            self.stats.errors += 1
            logger.warning(
                "unreadable latest value in the cache for %s/%s: %s", host, metric_type, exc
            )
            return None
        self.stats.hits += 1
        return result

    # ----- ranges -------------------------------------------------------------------------
    async def series(
        self,
        host: str,
        metric_type: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str],
        step: timedelta | None = None,
        max_points: int = DEFAULT_MAX_POINTS,
    ) -> Series:
        """Downsampled series: avg/min/max per field in epoch-aligned buckets of the chosen
        ``step_seconds`` (see :func:`choose_step`); never more than ``max_points`` buckets."""
        paths = validate_fields(fields)
        _check_range(start, end)
        await self.check_type(metric_type)
        width = choose_step(start, end, step, max_points)
        buckets = await self.repository.downsample(
            host=host,
            metric_type=metric_type,
            start=start,
            end=end,
            fields=paths,
            step_seconds=width,
        )
        return Series(
            host=host,
            metric_type=metric_type,
            start=start,
            end=end,
            step_seconds=width,
            fields=paths,
            buckets=buckets,
        )

    async def raw(
        self,
        host: str,
        metric_type: str,
        start: datetime,
        end: datetime,
        cursor: str | None = None,
        limit: int = 500,
    ) -> RawPage:
        """Stored snapshots oldest first, ``limit`` (1..1000) per keyset page."""
        _check_range(start, end)
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidQueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        await self.check_type(metric_type)
        page = await self.repository.range(
            metric_type=metric_type, host=host, start=start, end=end, limit=limit, cursor=cursor
        )
        return RawPage(
            host=host,
            metric_type=metric_type,
            start=start,
            end=end,
            items=[
                RawSnapshot(id=item.id, captured_at=item.captured_at, data=item.metric_data)
                for item in page.items
            ],
            next_cursor=page.next_cursor,
        )

    async def summary(
        self, host: str, metric_type: str, start: datetime, end: datetime, fields: Sequence[str]
    ) -> Summary:
        """count/min/avg/max/p95 per field over ``[start, end)``."""
        paths = validate_fields(fields)
        _check_range(start, end)
        await self.check_type(metric_type)
        result = await self.repository.summarize(
            host=host, metric_type=metric_type, start=start, end=end, fields=paths
        )
        return Summary(
            host=host,
            metric_type=metric_type,
            start=start,
            end=end,
            count=result.count,
            fields={
                path: FieldSummary(
                    count=item.count, min=item.min, avg=item.avg, max=item.max, p95=item.p95
                )
                for path, item in result.fields.items()
            },
        )


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidQueryError("start and end must be timezone-aware")
    if start >= end:
        raise InvalidQueryError("start must be before end")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
