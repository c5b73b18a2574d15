from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from perfwatch.cache import check_cache
from perfwatch.db.session import check_database

router = APIRouter(prefix="/health", tags=["health"])

PROBE_TIMEOUT_SECONDS = 2.0


@router.get("/live", summary="The process is up (no dependencies checked)")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Database and cache answer",
    responses={503: {"description": "A dependency failed; the body names it"}},
)
async def ready(request: Request) -> JSONResponse:
    cache = request.app.state.cache
    engine = request.app.state.database.engine
    # Concurrently: a hung database and a hung cache cost one timeout, not two.
    database_problem, cache_problem = await asyncio.gather(
        check_database(engine, timeout=PROBE_TIMEOUT_SECONDS),
        check_cache(cache, timeout=PROBE_TIMEOUT_SECONDS),
    )
    checks: dict[str, Any] = {
        "database": {
            "status": "ok" if database_problem is None else "fail",
            "detail": database_problem,
        },
        cache.name: {"status": "ok" if cache_problem is None else "fail", "detail": cache_problem},
    }
    healthy = database_problem is None and cache_problem is None
    failed = [name for name, check in checks.items() if check["status"] == "fail"]
    body: dict[str, Any] = {
        "status": "ok" if healthy else "fail",
        "failed": failed,
        "checks": checks,
    }
    sampler = getattr(request.app.state, "sampler", None)
    if sampler is not None:
        # Informational: a sampler spooling through an outage does not make the API unready.
        body["sampler"] = sampler.status()
    return JSONResponse(body, status_code=200 if healthy else 503)
