"""Read side of the metrics API: types, hosts, latest values, downsampled series, raw pages and
summaries. No HTTP here; routers call :class:`MetricsService` and return its models.

Errors: an unknown metric type raises :class:`UnknownMetricTypeError` (a ``NotFoundError``,
message listing the known types); bad ranges, steps, limits, cursors or field paths raise
``ValidationFailedError``. An unknown host is not an error: results are empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.cache import Cache
from perfwatch.config_store.repository import ConfigRepository
from perfwatch.contract import runtime_config
from perfwatch.contract.metrics import METRIC_TYPES, latest_key
from perfwatch.errors import NotFoundError, ValidationFailedError
from perfwatch.kit.hostname import resolve_host_name
from perfwatch.kit.repository import MAX_PAGE_SIZE
from perfwatch.metrics.fields import resolve_fields
from perfwatch.metrics.repository import SnapshotRepository, decode_cursor
from perfwatch.metrics.schemas import (
    FieldSummary,
    HostInfo,
    HostList,
    LatestSnapshot,
    MetricTypeList,
    RawPage,
    RawSnapshot,
    Series,
    Summary,
)
from perfwatch.metrics.tiers.plan import RESOLUTION
from perfwatch.metrics.tiers.series import plan_for, read_buckets

logger = logging.getLogger("perfwatch.metrics.service")

MAX_POINTS_KEY = "api.max_points"
CACHE_TIMEOUT_SECONDS = 0.5
MAX_HOST_LENGTH = 255


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


def check_host_name(host: str) -> str:
    if not host.strip() or len(host) > MAX_HOST_LENGTH:
        raise ValidationFailedError(f"host must be 1 to {MAX_HOST_LENGTH} characters")
    return host


async def read_latest(
    session: AsyncSession,
    cache: Cache,
    host: str | None,
    metric_type: str,
) -> tuple[str, LatestSnapshot | str | None]:
    """``/metrics/latest`` as a use case of its own: ``(host, snapshot)``, the snapshot being the
    cached JSON text as it is (``"source": "cache"`` spliced in), a model read from the
    database, or None when nothing is stored.

    The hot case (a named host, a sampler type, a cache hit) does not touch ``session``:
    a dashboard polls it every second, and a connection checkout and commit cost more than
    the answer. Anything else (no host given, another type, a miss) reads the database."""
    tried_cache = False
    if host is not None and metric_type in METRIC_TYPES:
        cached = await MetricsService(None, cache).cached_latest(check_host_name(host), metric_type)
        if cached is not None:
            return host, cached
        tried_cache = True
    service = MetricsService(session, cache)
    await service.check_type(metric_type)
    resolved = await service.resolve_host(host)
    return resolved, await service.latest(resolved, metric_type, use_cache=not tried_cache)


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
        extra = await self.repository.distinct_metric_types(excluding=METRIC_TYPES)
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
        """``host`` when given; else this server's own host (``kit.hostname``, the name its
        sampler writes under) when it has data, else the only host with data. Nothing stored
        → ``NotFoundError``; several hosts, none of them this server's → ``ValidationFailedError``
        naming them."""
        if host is not None:
            return check_host_name(host)
        seen = await self.repository.hosts_last_seen()
        if not seen:
            raise NotFoundError("no snapshots are stored yet, for any host")
        own = resolve_host_name()
        if any(item.host == own for item in seen):
            return own
        if len(seen) > 1:
            names = ", ".join(item.host for item in seen[:20])
            more = f" and {len(seen) - 20} more" if len(seen) > 20 else ""
            raise ValidationFailedError(
                f"{len(seen)} hosts have data and none is this server's ({own[:64]}); "
                f"choose one with host= ({names}{more})"
            )
        return seen[0].host

    async def max_points(self) -> int:
        """``api.max_points`` as stored, or the catalogue's default when it is absent or breaks
        the key's rule (a row written by hand must not break every series)."""
        entry = await ConfigRepository(self.session).get(MAX_POINTS_KEY)
        stored = {} if entry is None else {MAX_POINTS_KEY: entry.value}
        return int(runtime_config.read_number(stored, MAX_POINTS_KEY))

    async def check_type(self, metric_type: str) -> None:
        """Known (the sampler's types, or any type stored), else :class:`UnknownMetricTypeError`."""
        if metric_type in METRIC_TYPES:
            return
        extra = await self.repository.distinct_metric_types(excluding=METRIC_TYPES)
        if metric_type not in extra:
            raise UnknownMetricTypeError(metric_type, [*METRIC_TYPES, *extra])

    # ----- latest -------------------------------------------------------------------------
    async def latest(
        self, host: str, metric_type: str, *, use_cache: bool = True
    ) -> LatestSnapshot | str | None:
        """The newest snapshot: the cached JSON text when the cache has one, else a model read
        from the database (also when the cache fails or is slower than ``cache_timeout``);
        None when the host has no snapshot of this type."""
        cached = await self.cached_latest(host, metric_type) if use_cache else None
        if cached is not None:
            return cached
        snapshot = await self.repository.latest(host, metric_type)
        if snapshot is None:
            return None
        return LatestSnapshot(
            host=snapshot.host,
            metric_type=snapshot.metric_type,
            captured_at=snapshot.captured_at,
            data=snapshot.metric_data,
            source="database",
        )

    async def latest_decoded(self, host: str, metric_type: str) -> LatestSnapshot | None:
        """:meth:`latest` as a model, for readers of its values (the Prometheus scrape)."""
        snapshot = await self.latest(host, metric_type)
        if isinstance(snapshot, str):
            return LatestSnapshot.model_validate_json(snapshot)
        return snapshot

    async def cached_latest(self, host: str, metric_type: str) -> str | None:
        """The latest-value cache's snapshot as JSON text with ``"source":"cache"`` added, or
        None (absent, unreadable, or the cache away: counted in ``stats``). Needs no session.

        Not decoded: the cache holds ``contract.metrics.cache_message`` text, an object
        beginning with ``{"host":``; that shape is all that is checked before it is served."""
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
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not (text.startswith('{"host":') and text.endswith("}")):
            self.stats.errors += 1
            logger.warning("unreadable latest value in the cache for %s/%s", host, metric_type)
            return None
        self.stats.hits += 1
        return f'{text[:-1]},"source":"cache"}}'

    # ----- ranges -------------------------------------------------------------------------
    async def range_query(
        self,
        host: str | None,
        metric_type: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] | None,
    ) -> RangeQuery:
        """The one check of a range query: type, host (or its default), range, and fields
        (or the type's defaults; ``None`` for raw pages, which read whole documents)."""
        _check_range(start, end)
        await self.check_type(metric_type)
        resolved = await self.resolve_host(host)
        paths = [] if fields is None else resolve_fields(metric_type, fields)
        return RangeQuery(resolved, metric_type, start, end, paths)

    async def series(
        self,
        host: str | None,
        metric_type: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] = (),
        step: timedelta | None = None,
        max_points: int | None = None,
    ) -> Series:
        """Downsampled series: avg/min/max per field in epoch-aligned buckets of the chosen
        ``step_seconds`` (see :func:`choose_step`); never more than ``max_points`` buckets
        (default: ``api.max_points``). Built from the coarsest stored data that still gives
        buckets of that width, raw snapshots or a resolution tier (``metrics/tiers/plan.py``),
        which the answer names."""
        query = await self.range_query(host, metric_type, start, end, fields)
        points = await self.max_points() if max_points is None else max_points
        plan = await plan_for(self.session, query.host, metric_type, start, end, step, points)
        buckets = await read_buckets(self.session, query.host, metric_type, query.fields, plan)
        return Series(
            host=query.host,
            metric_type=metric_type,
            start=start,
            end=end,
            step_seconds=plan.step_seconds,
            resolution_seconds=RESOLUTION[plan.source],
            source=plan.source,
            fields=query.fields,
            buckets=buckets,
        )

    async def raw(
        self,
        host: str | None,
        metric_type: str,
        start: datetime,
        end: datetime,
        cursor: str | None = None,
        limit: int = 500,
    ) -> RawPage:
        """Stored snapshots oldest first, ``limit`` (1..1000) per keyset page."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationFailedError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        after = None if cursor is None else decode_cursor(cursor)
        query = await self.range_query(host, metric_type, start, end, None)
        page = await self.repository.range(
            metric_type=metric_type, host=query.host, start=start, end=end, limit=limit, after=after
        )
        return RawPage(
            host=query.host,
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
        self,
        host: str | None,
        metric_type: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] = (),
    ) -> Summary:
        """count/min/avg/max/p95 per field over ``[start, end)``."""
        query = await self.range_query(host, metric_type, start, end, fields)
        result = await self.repository.summarize(
            host=query.host, metric_type=metric_type, start=start, end=end, fields=query.fields
        )
        return Summary(
            host=query.host,
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


@dataclass(frozen=True, slots=True)
class RangeQuery:
    """A range query after its one check: a stored host's name, a known type, an aware
    ``start < end``, and the fields to read."""

    host: str
    metric_type: str
    start: datetime
    end: datetime
    fields: list[str]


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailedError("from and to must be timezone-aware")
    if start >= end:
        raise ValidationFailedError("from must be before to")
