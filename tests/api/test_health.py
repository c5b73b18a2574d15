"""Liveness and readiness through the real app (lifespan included) over ASGI."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx

from perfwatch.app import create_app
from perfwatch.config import Settings
from perfwatch.health.router import PROBE_TIMEOUT_SECONDS
from tests.support.helpers import closed_postgres_url, closed_redis_url, make_settings
from tests.support.services import RedisServer, unavailable


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://perfwatch.test"
        ) as client:
            yield client


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a hung dependency."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


async def timed_get(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.get(path)
    return response, time.monotonic() - started


def assert_ready(body: dict[str, Any], cache_name: str) -> None:
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert body["checks"] == {
        "database": {"status": "ok", "detail": None},
        cache_name: {"status": "ok", "detail": None},
    }


async def test_live_needs_no_dependencies() -> None:
    settings = make_settings(closed_postgres_url(), redis_url=closed_redis_url())
    async with client_for(settings) as client:
        response, elapsed = await timed_get(client, "/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert elapsed < 1


async def test_ready_with_postgres_and_redis(postgres_url: str, redis_url: str) -> None:
    async with client_for(make_settings(postgres_url, redis_url=redis_url)) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert_ready(response.json(), "redis")


async def test_ready_with_sqlite_and_the_in_process_cache(sqlite_url: str) -> None:
    async with client_for(make_settings(sqlite_url)) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert_ready(response.json(), "memory")


async def test_ready_names_redis_while_it_is_down(
    postgres_url: str, redis_server: RedisServer, redis_url: str
) -> None:
    if not redis_server.argv:
        unavailable(
            "this test stops and restarts a Redis started by the run (TEST_REDIS_URL is set)"
        )
    async with client_for(make_settings(postgres_url, redis_url=redis_url)) as client:
        assert (await client.get("/health/ready")).status_code == 200
        redis_server.stop()
        try:
            response, elapsed = await timed_get(client, "/health/ready")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "fail"
            assert body["failed"] == ["redis"]
            assert body["checks"]["database"] == {"status": "ok", "detail": None}
            assert body["checks"]["redis"]["status"] == "fail"
            assert "redis" in body["checks"]["redis"]["detail"]
            assert elapsed < PROBE_TIMEOUT_SECONDS + 1
        finally:
            redis_server.start()
        response = await client.get("/health/ready")
        assert response.status_code == 200, response.text
        assert_ready(response.json(), "redis")


async def test_ready_names_the_database_when_its_port_is_closed() -> None:
    async with client_for(make_settings(closed_postgres_url())) as client:
        response, elapsed = await timed_get(client, "/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert body["checks"]["database"]["status"] == "fail"
    assert "database unreachable" in body["checks"]["database"]["detail"]
    assert "s3cret" not in response.text
    assert body["checks"]["memory"] == {"status": "ok", "detail": None}
    assert elapsed < PROBE_TIMEOUT_SECONDS


async def test_ready_is_bounded_by_the_probe_timeout_when_everything_hangs() -> None:
    with silent_server() as database_port, silent_server() as redis_port:
        settings = make_settings(
            f"postgresql://perfwatch@127.0.0.1:{database_port}/perfwatch",
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
        )
        async with client_for(settings) as client:
            response, elapsed = await timed_get(client, "/health/ready")
    assert response.status_code == 503
    assert sorted(response.json()["failed"]) == ["database", "redis"]
    # Both probes wait for the same deadline, not one after the other.
    assert elapsed < PROBE_TIMEOUT_SECONDS + 1, elapsed
