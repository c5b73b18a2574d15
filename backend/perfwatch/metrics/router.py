"""Metrics read API (viewer or above): types, hosts, latest values, series, raw pages and
summaries. HTTP translation only; the rules are in ``MetricsService``. The live stream is
``metrics/live.py``, the Prometheus scrape ``metrics/scrape.py``."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from perfwatch.api.dependencies import CacheDep, SessionDep
from perfwatch.api.errors import error_response, error_responses
from perfwatch.api.responses import model_response
from perfwatch.api.security import (
    ViewerUser,
)
from perfwatch.errors import ValidationFailedError
from perfwatch.kit.repository import MAX_PAGE_SIZE
from perfwatch.metrics.schemas import (
    HostList,
    LatestSnapshot,
    MetricTypeList,
    RawPage,
    Series,
    Summary,
)
from perfwatch.metrics.service import MetricsService, read_latest
from perfwatch.metrics.timeparse import DEFAULT_MAX_SPAN, parse_duration, parse_range

logger = logging.getLogger("perfwatch.metrics.router")

router = APIRouter(tags=["metrics"])

# Longest from/to range a query may cover (series, raw pages and summaries alike).
MAX_SPAN = DEFAULT_MAX_SPAN
TIME_HELP = "ISO 8601 with an offset (2026-11-27T10:00:00Z), 'now', or relative: -15m, -24h, -7d"
HOST_HELP = (
    "Host name. Left out: this server's own host (PERFWATCH_HOSTNAME, else the host's name, as "
    "its sampler writes it) when it has data, else the only host with data; several hosts and "
    "none of them this server's → 422 naming them"
)

FromQuery = Annotated[
    str | None,
    Query(alias="from", description=f"Start (inclusive; default: 1 h before to). {TIME_HELP}"),
]
ToQuery = Annotated[str | None, Query(description=f"End (exclusive; default now). {TIME_HELP}")]
HostQuery = Annotated[str | None, Query(description=HOST_HELP, max_length=255)]
FieldsQuery = Annotated[
    str | None,
    Query(
        description="Comma-separated numeric field paths of the type's documents, e.g. "
        "'percent,load_average.1m' (cpu) or 'io.sda.read_bytes_per_s' (disk); default: the "
        "type's default fields (docs/metrics.md). An unknown field is a 422 listing the valid "
        "ones",
        max_length=2000,
        examples=["percent,load_average.1m"],
    ),
]


def _fields(fields: str | None) -> list[str]:
    return [name.strip() for name in (fields or "").split(",") if name.strip()]


@router.get(
    "/metrics/types",
    summary="List metric types",
    description="The sampler's types first, then any other type stored.",
    response_model=MetricTypeList,
    responses=error_responses(401, 403),
)
async def list_types(session: SessionDep, _viewer: ViewerUser) -> MetricTypeList:
    return await MetricsService(session, None).types()


@router.get(
    "/hosts",
    summary="List hosts",
    description="Every host with stored snapshots and the time of its newest one, overall and "
    "per metric type.",
    response_model=HostList,
    responses=error_responses(401, 403),
)
async def list_hosts(session: SessionDep, _viewer: ViewerUser) -> HostList:
    return await MetricsService(session, None).hosts()


@router.get(
    "/metrics/latest",
    summary="Latest snapshot of a type",
    description="From the latest-value cache when it holds one (`X-Cache: hit`), else from the "
    "database (`X-Cache: miss`, also when the cache is down). 404 when nothing is stored.",
    response_model=LatestSnapshot,
    responses={
        200: {
            "headers": {
                "X-Cache": {
                    "description": "hit (from the cache) or miss (from the database)",
                    "schema": {"type": "string", "enum": ["hit", "miss"]},
                }
            }
        },
        **error_responses(401, 403, 404, 422),
    },
)
async def latest(
    session: SessionDep,
    cache: CacheDep,
    _viewer: ViewerUser,
    metric_type: Annotated[
        str, Query(alias="type", description="Metric type, e.g. cpu", max_length=64)
    ],
    host: HostQuery = None,
) -> Response:
    resolved, snapshot = await read_latest(session, cache, host, metric_type)
    if snapshot is None:
        return _not_found(resolved, metric_type)
    if isinstance(snapshot, str):  # the cached text, served as it is
        return Response(snapshot, media_type="application/json", headers={"X-Cache": "hit"})
    return model_response(snapshot, headers={"X-Cache": "miss"})


def _not_found(host: str, metric_type: str) -> Response:
    return error_response(
        404,
        "not_found",
        f"no {metric_type} snapshot stored for host {host[:64]!r}",
        headers={"X-Cache": "miss"},
    )


# ----- ranges -------------------------------------------------------------------------------------


@router.get(
    "/metrics/{metric_type}",
    summary="Series (downsampled) or raw snapshots of a type",
    description="By default avg/min/max of each of `fields` per time bucket, at most "
    "`api.max_points` buckets (a nice step of at least `step`), read from the snapshots or a "
    "resolution tier as `source` and `resolution_seconds` say. With `raw=true`: the stored "
    "snapshots oldest first, in keyset pages (`cursor` from `next_cursor`, `limit` per page); "
    "`fields` and `step` are then ignored.",
    response_model=Series | RawPage,
    responses=error_responses(401, 403, 404, 422),
)
async def series(
    session: SessionDep,
    _viewer: ViewerUser,
    metric_type: str,
    start: FromQuery = None,
    to: ToQuery = None,
    host: HostQuery = None,
    step: Annotated[
        str | None, Query(description="Least bucket width: 30s, 5m, 1h, 1d or seconds")
    ] = None,
    fields: FieldsQuery = None,
    raw: Annotated[bool, Query(description="Stored snapshots instead of buckets")] = False,
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous raw page", max_length=200)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Raw page size")] = 500,
) -> Any:
    begin, end = parse_range(start, to, max_span=MAX_SPAN)
    service = MetricsService(session, None)
    if raw:
        return model_response(
            await service.raw(host, metric_type, begin, end, cursor=cursor, limit=limit)
        )
    if cursor is not None:
        raise ValidationFailedError("cursor applies to raw pages only; add raw=true")
    least = None if step is None else parse_duration(step)
    return model_response(
        await service.series(host, metric_type, begin, end, _fields(fields), step=least)
    )


@router.get(
    "/metrics/{metric_type}/summary",
    summary="Summary of a type over a range",
    description="count, min, avg, max and p95 of each of `fields` over [from, to).",
    response_model=Summary,
    responses=error_responses(401, 403, 404, 422),
)
async def summary(
    session: SessionDep,
    _viewer: ViewerUser,
    metric_type: str,
    start: FromQuery = None,
    to: ToQuery = None,
    host: HostQuery = None,
    fields: FieldsQuery = None,
) -> Response:
    begin, end = parse_range(start, to, max_span=MAX_SPAN)
    service = MetricsService(session, None)
    return model_response(await service.summary(host, metric_type, begin, end, _fields(fields)))
