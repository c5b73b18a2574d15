from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from perfwatch.cache import check_cache
from perfwatch.db.session import Database, check_database
from perfwatch.retention.status import WARN_PERCENT, capped_usage

router = APIRouter(prefix="/health", tags=["health"])
logger = logging.getLogger("perfwatch.health")

PROBE_TIMEOUT_SECONDS = 2.0


@router.get("/live", summary="The process is up (no dependencies checked)")
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def storage_warnings(database: Database, timeout: float) -> list[dict[str, Any]]:
    """A warning when the database is above WARN_PERCENT of ``storage.max_bytes``.

    Measured on every probe (one config read, and only with a cap the size: ``pg_database_size``
    took 5-13 ms on 1,600 relations, SQLite's page count under 1 ms) rather than read from what
    the retention job last stored: that is up to an hour old and absent until the job has run.
    Never fails the probe: a database that does not answer is the database check's to report.
    """
    try:
        async with asyncio.timeout(timeout), database.sessionmaker() as session:
            usage = await capped_usage(session)
    except Exception as exc:  # any failure: no warning, the database check names the problem
        logger.debug("storage check skipped: %s", exc)
        return []
    if usage is None or usage.warning is None:
        return []
    return [
        {
            "check": "storage",
            "message": usage.warning,
            "bytes": usage.bytes,
            "max_bytes": usage.max_bytes,
            "percent_used": usage.percent_used,
        }
    ]


@router.get(
    "/ready",
    summary="Database and cache answer",
    description="200 when the database and the cache answer, 503 naming the failed ones. "
    f"`warnings` lists what needs attention without making the server unready: the database "
    f"above {WARN_PERCENT:g} % of `storage.max_bytes` (its size, the cap, the percent).",
    responses={503: {"description": "A dependency failed; the body names it"}},
)
async def ready(request: Request) -> JSONResponse:
    cache = request.app.state.cache
    database: Database = request.app.state.database
    # Concurrently: a hung database and a hung cache cost one timeout, not two.
    database_problem, cache_problem, warnings = await asyncio.gather(
        check_database(database.engine, timeout=PROBE_TIMEOUT_SECONDS),
        check_cache(cache, timeout=PROBE_TIMEOUT_SECONDS),
        storage_warnings(database, PROBE_TIMEOUT_SECONDS),
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
        "warnings": warnings,
    }
    sampler = getattr(request.app.state, "sampler", None)
    if sampler is not None:
        # Informational: a sampler spooling through an outage does not make the API unready.
        body["sampler"] = sampler.status()
    return JSONResponse(body, status_code=200 if healthy else 503)
