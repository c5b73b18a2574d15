"""``GET /api/v1/metrics/stream``: every snapshot of a host as it is sampled, as Server-Sent
Events from the host's live channel in the cache."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from perfwatch.api.dependencies import CacheDep, SessionDep, SettingsDep
from perfwatch.api.errors import error_body, error_response, error_responses
from perfwatch.api.security import (
    AuthenticatorDep,
    Principal,
    oauth2_scheme,
    principal_for,
    viewer_or_above,
)
from perfwatch.cache import Subscription
from perfwatch.contract.metrics import live_channel
from perfwatch.metrics.router import HostQuery
from perfwatch.metrics.service import MetricsService

logger = logging.getLogger("perfwatch.metrics.live")

# Its own router, included before the metrics router: `/metrics/stream` must be matched before
# `/metrics/{metric_type}`.
router = APIRouter(tags=["metrics"])

# A comment line this often keeps proxies and browsers from closing an idle stream; between
# messages the handler wakes every POLL_SECONDS to notice a gone client.
HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 1.0

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
