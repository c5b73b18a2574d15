"""FastAPI application factory. The lifespan opens and closes the engine and the cache."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from perfwatch import __version__
from perfwatch.api.errors import install_error_handlers
from perfwatch.api.middleware import install_middleware, security_headers
from perfwatch.api.router import api_router
from perfwatch.auth.principals import principal_cache
from perfwatch.cache import build_cache
from perfwatch.config import Settings, get_settings
from perfwatch.db.partitions import run_partition_maintenance
from perfwatch.db.session import close_database, get_sessionmaker, init_database
from perfwatch.health.router import router as health_router
from perfwatch.metrics.exposition import RequestCountMiddleware, RequestCounts
from perfwatch.metrics.router import prometheus_router
from perfwatch.sampler.factory import build_sampler

logger = logging.getLogger("perfwatch.app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await init_database(settings)
        principal_cache.configure(settings.auth_cache_seconds)
        app.state.cache = build_cache(settings)
        maintenance = asyncio.create_task(
            run_partition_maintenance(engine), name="partition-maintenance"
        )
        sampler_stop = asyncio.Event()
        sampler_task = None
        if settings.run_sampler:
            sampler = build_sampler(settings, get_sessionmaker(), app.state.cache)
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
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            await app.state.cache.close()
            await close_database()

    app = FastAPI(
        title="PerfWatch",
        version=__version__,
        lifespan=lifespan,
        description="Self-hosted performance monitor. Log in with `POST /api/v1/auth/login` "
        "and send `Authorization: Bearer <access_token>`. Every error has the shape "
        '`{"error": {"code", "message", "details"}}`.',
    )
    app.state.settings = settings
    app.include_router(health_router)
    app.include_router(api_router)
    app.include_router(prometheus_router)
    # Errors: one JSON shape (api/errors.py). The 500 handler runs outside the middleware
    # stack, so it adds the security headers itself.
    install_error_handlers(app, extra_headers=security_headers)
    install_middleware(app, settings)
    # Outermost: counts every response, the 413s and CORS refusals of the middleware too.
    app.state.request_counts = RequestCounts()
    app.add_middleware(RequestCountMiddleware, counts=app.state.request_counts)
    return app
