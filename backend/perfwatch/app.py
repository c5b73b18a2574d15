"""FastAPI application factory: the routers under ``/api/v1``, and a lifespan that opens the
database and the cache, puts them on ``app.state`` (where the request dependencies find them)
and runs the sampler and the maintenance runner (retention/runner.py) beside the server."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from perfwatch import __version__
from perfwatch.api.docs import install_docs
from perfwatch.api.errors import install_error_handlers
from perfwatch.api.middleware import install_middleware, security_headers
from perfwatch.api.request_counts import RequestCountMiddleware, RequestCounts
from perfwatch.auth.authenticator import authenticate_token
from perfwatch.auth.router import router as auth_router
from perfwatch.cache import build_cache
from perfwatch.config import Settings, get_settings
from perfwatch.config_store.router import router as config_router
from perfwatch.db.session import Database
from perfwatch.health.router import router as health_router
from perfwatch.metrics.live import router as live_router
from perfwatch.metrics.router import router as metrics_router
from perfwatch.metrics.scrape import prometheus_router
from perfwatch.retention.jobs import start_maintenance
from perfwatch.retention.router import router as archive_policies_router
from perfwatch.retention.status_gauges import StorageGauges
from perfwatch.retention.status_router import router as retention_status_router
from perfwatch.sampler.factory import build_sampler
from perfwatch.users.principals import principal_cache
from perfwatch.users.router import router as users_router

API_PREFIX = "/api/v1"

logger = logging.getLogger("perfwatch.app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database.connect(settings)
        app.state.database = database
        principal_cache.configure(settings.auth_cache_seconds)
        app.state.cache = build_cache(settings)
        maintenance = start_maintenance(database, settings)
        sampler_stop = asyncio.Event()
        sampler_task = None
        if settings.run_sampler:
            sampler = build_sampler(settings, database.sessionmaker, app.state.cache)
            app.state.sampler = sampler
            sampler_task = asyncio.create_task(sampler.run(sampler_stop), name="sampler")
        # Start-up objects (modules, engine, app) live for the whole process: keeping them out
        # of the collector's view makes full collections cheap, which is what keeps the p95 of
        # large result sets near their median (docs/benchmarks.md).
        gc.freeze()
        try:
            yield
        finally:
            sampler_stop.set()
            if sampler_task is not None:
                await sampler_task  # flushes the batch; what cannot be written is spooled
            if maintenance is not None:
                await maintenance.stop()
            await app.state.cache.close()
            await database.close()

    app = FastAPI(
        title="PerfWatch",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_docs, not from a CDN
        redoc_url=None,
        description="Self-hosted performance monitor. Log in with `POST /api/v1/auth/login` "
        "and send `Authorization: Bearer <access_token>`. Every error has the shape "
        '`{"error": {"code", "message", "details"}}`.',
    )
    app.state.settings = settings
    app.state.authenticator = authenticate_token
    app.include_router(health_router)
    # Routes are tried in order: the metrics reads, polled by every dashboard, come first.
    for router in (
        live_router,
        metrics_router,
        auth_router,
        users_router,
        config_router,
        archive_policies_router,
        retention_status_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(prometheus_router)
    # /metrics (the metrics domain) serves these without importing their domains.
    app.state.scrape_sources = [StorageGauges(settings.archive_dir)]
    install_docs(app)
    # Errors: one JSON shape (api/errors.py). The 500 handler runs outside the middleware
    # stack, so it adds the security headers itself.
    install_error_handlers(app, extra_headers=security_headers)
    install_middleware(app, settings)
    # Outermost: counts every response, the 413s and CORS refusals of the middleware too.
    app.state.request_counts = RequestCounts()
    app.add_middleware(RequestCountMiddleware, counts=app.state.request_counts)
    return app
