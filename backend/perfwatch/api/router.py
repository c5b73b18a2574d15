"""``api_router``: every domain router under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from perfwatch.auth.router import router as auth_router
from perfwatch.config_store.router import router as config_router
from perfwatch.metrics.router import router as metrics_router
from perfwatch.retention.router import router as archive_policies_router
from perfwatch.users.router import router as users_router

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
# Routes are tried in order: the metrics reads, polled by every dashboard, come first.
api_router.include_router(metrics_router)
api_router.include_router(auth_router)
api_router.include_router(users_router)
api_router.include_router(config_router)
api_router.include_router(archive_policies_router)
