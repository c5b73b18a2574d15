"""Metrics read API (viewer or above): types, hosts, latest values, series, raw pages, summaries
and the live stream (Server-Sent Events). HTTP translation only; the rules are in
:class:`~perfwatch.metrics.service.MetricsService`."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from perfwatch.api.dependencies import CacheDep, EngineDep, SessionDep, SettingsDep
from perfwatch.api.errors import error_body, error_response, error_responses
from perfwatch.api.responses import model_response
from perfwatch.api.security import (
    AuthenticatorDep,
    Principal,
    ViewerUser,
    oauth2_scheme,
    principal_for,
    viewer_or_above,
)
from perfwatch.cache import Subscription
from perfwatch.contract.metrics import live_channel
from perfwatch.errors import ValidationFailedError
from perfwatch.kit.repository import MAX_PAGE_SIZE
from perfwatch.metrics.exposition import CONTENT_TYPE, scrape
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
# Live stream: a comment line this often keeps proxies and browsers from closing an idle
# stream; between messages the handler wakes every POLL_SECONDS to notice a gone client.
HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 1.0

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


# ----- live stream --------------------------------------------------------------------------------

_access_token_query = Query(
    alias="access_token",
    description="The access token, for clients that cannot set headers (browsers' "
    "EventSource). Prefer the Authorization header: URLs end up in logs.",
    max_length=4096,
)


async def stream_user(
    header_token: Annotated[str | None, Depends(oauth2_scheme)],
    session: SessionDep,
    cache: CacheDep,
    settings: SettingsDep,
    authenticate: AuthenticatorDep,
    access_token: Annotated[str | None, _access_token_query] = None,
) -> Principal:
    """The Bearer header, or ``?access_token=``, checked exactly like the header."""
    user = await principal_for(header_token or access_token, session, cache, settings, authenticate)
    return await viewer_or_above(user)


def sse_event(event: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


async def live_events(request: Request, subscription: Subscription) -> AsyncIterator[str]:
    """Snapshots from the subscription as ``snapshot`` events, ``: ping`` when idle; the
    subscription is closed when the client goes (or the server stops)."""
    try:
        yield ": connected\n\n"
        last_sent = time.monotonic()
        while not await request.is_disconnected():
            message = await subscription.get(timeout=POLL_SECONDS)
            if message is not None:
                yield sse_event("snapshot", message)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
                yield ": ping\n\n"
                last_sent = time.monotonic()
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await subscription.close()
            except Exception as exc:  # Redis gone: nothing left to free
                logger.debug("live subscription not closed cleanly: %s", exc)


_UNAVAILABLE: dict[str, Any] = {
    "description": "The live channel (the cache) is unavailable",
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/ErrorResponse"},
            "example": error_body(
                "service_unavailable", "the live channel is unavailable; retry later"
            ),
        }
    },
}

_SSE_EXAMPLE = (
    ": connected\n\n"
    'event: snapshot\ndata: {"host":"web-1","metric_type":"cpu",'
    '"captured_at":"2026-11-27T10:00:00+00:00","data":{"percent":1.96}}\n\n'
    ": ping\n\n"
)


@router.get(
    "/metrics/stream",
    summary="Live snapshots (Server-Sent Events)",
    description="Every snapshot of the host as it is sampled: `event: snapshot` with the "
    "snapshot (host, metric_type, captured_at, data) as JSON data; a `: ping` comment every "
    "15 s while idle. Authenticate with the Bearer header or `?access_token=` (EventSource "
    "cannot set headers).",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless event stream",
            "content": {"text/event-stream": {"example": _SSE_EXAMPLE}},
        },
        **error_responses(401, 403, 404, 422),
        503: _UNAVAILABLE,
    },
)
async def stream(
    request: Request,
    session: SessionDep,
    cache: CacheDep,
    _viewer: Annotated[Principal, Depends(stream_user)],
    host: HostQuery = None,
) -> Response:
    resolved = await MetricsService(session, cache).resolve_host(host)
    try:
        subscription = await cache.subscribe(live_channel(resolved))
    except Exception as exc:
        logger.warning("live channel unavailable: %s", exc)
        return error_response(
            503, "service_unavailable", "the live channel is unavailable; retry later"
        )
    return StreamingResponse(
        live_events(request, subscription),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# ----- ranges -------------------------------------------------------------------------------------


@router.get(
    "/metrics/{metric_type}",
    summary="Series (downsampled) or raw snapshots of a type",
    description="By default avg/min/max of each of `fields` per time bucket, at most "
    "`api.max_points` buckets (a nice step of at least `step`). With `raw=true`: the stored "
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


# ----- Prometheus ---------------------------------------------------------------------------------

_PROMETHEUS_EXAMPLE = (
    "# HELP perfwatch_cpu_percent Busy share of all CPUs\n"
    "# TYPE perfwatch_cpu_percent gauge\n"
    'perfwatch_cpu_percent{host="web-1"} 1.96\n'
)

# Outside /api/v1: GET /metrics, where scrapers look by default.
prometheus_router = APIRouter(tags=["metrics"])


async def scrape_auth(
    token: Annotated[str | None, Depends(oauth2_scheme)],
    session: SessionDep,
    cache: CacheDep,
    settings: SettingsDep,
    authenticate: AuthenticatorDep,
) -> None:
    """``METRICS_TOKEN`` as a static bearer token when set, else a viewer's access token."""
    expected = settings.metrics_token
    if expected and token and hmac.compare_digest(token.encode(), expected.encode()):
        return
    await viewer_or_above(await principal_for(token, session, cache, settings, authenticate))


@prometheus_router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Text exposition format 0.0.4: headline gauges of every host's latest snapshots "
    "(CPU, load, memory, swap, interface throughput, filesystem use) and this process's health "
    "(requests, latest-value cache, database pool, sampler). Send a viewer's access token or "
    "`METRICS_TOKEN` as `Authorization: Bearer`.",
    response_class=PlainTextResponse,
    dependencies=[Depends(scrape_auth)],
    responses={
        200: {
            "description": f"Content-Type: {CONTENT_TYPE}",
            "content": {"text/plain": {"example": _PROMETHEUS_EXAMPLE}},
        },
        **error_responses(401, 403),
    },
)
async def prometheus_metrics(
    request: Request, session: SessionDep, cache: CacheDep, engine: EngineDep
) -> Response:
    state = request.app.state
    sampler = getattr(state, "sampler", None)
    requests = getattr(state, "request_counts", None)
    body = await scrape(
        session,
        cache,
        requests=requests.counts if requests is not None else None,
        engine=engine,
        sampler_status=sampler.status() if sampler is not None else None,
    )
    return Response(body, media_type=CONTENT_TYPE)
