"""``GET /metrics``: the Prometheus scrape, outside ``/api/v1`` where scrapers look by default."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse

from perfwatch.api.dependencies import CacheDep, EngineDep, SessionDep, SettingsDep
from perfwatch.api.errors import error_responses
from perfwatch.api.security import AuthenticatorDep, oauth2_scheme, principal_for, viewer_or_above
from perfwatch.metrics.exposition import CONTENT_TYPE, SampleSource, scrape

_PROMETHEUS_EXAMPLE = (
    "# HELP perfwatch_cpu_percent Busy share of all CPUs\n"
    "# TYPE perfwatch_cpu_percent gauge\n"
    'perfwatch_cpu_percent{host="web-1"} 1.96\n'
)

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
    "(requests, latest-value cache, database pool, sampler), and the storage status "
    "(`perfwatch_storage_*`, `perfwatch_database_bytes`, `perfwatch_maintenance_*`, "
    "`perfwatch_archive_*`: the numbers of `GET /api/v1/retention`, refreshed at most every "
    "30 s). Send a viewer's access token or `METRICS_TOKEN` as `Authorization: Bearer`.",
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
    # Samples of domains metrics may not import (the storage status), wired in by the app.
    sources: list[SampleSource] = getattr(state, "scrape_sources", [])
    extra = [sample for source in sources for sample in await source(session)]
    body = await scrape(
        session,
        cache,
        requests=requests.counts if requests is not None else None,
        engine=engine,
        sampler_status=sampler.status() if sampler is not None else None,
        extra=extra,
    )
    return Response(body, media_type=CONTENT_TYPE)
