"""The API with Redis stopped (a real redis-server this test starts and stops): reading goes on,
readiness names Redis, and what cannot be done safely without the cache answers 503."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from perfwatch.config import Settings
from perfwatch.contract.metrics import SnapshotRow
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.models import UserRole
from tests.support.api import (
    add_user,
    app_session,
    assert_error,
    bearer,
    client_of,
    login,
    running_app,
)
from tests.support.helpers import make_settings
from tests.support.services import RedisServer, start_private_redis


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = start_private_redis()
    yield server
    server.stop()


@pytest.mark.parametrize("dialect", ["postgres"])
async def test_with_redis_stopped_reads_go_on_and_unsafe_writes_answer_503(
    fresh_db: str, redis: RedisServer
) -> None:
    settings: Settings = make_settings(fresh_db, redis_url=redis.url)
    async with running_app(settings) as app, client_of(app) as client:
        account = await add_user(UserRole.VIEWER, password="correct horse battery staple")
        async with app_session() as session:
            await SnapshotIngest(session).bulk_insert_ignore_conflicts(
                [SnapshotRow("db-host", datetime.now(UTC), "cpu", {"percent": 12.5})]
            )
        tokens = (await login(client, account.username, account.password)).json()
        headers = bearer(tokens["access_token"])

        await asyncio.to_thread(redis.stop)
        try:
            ready = await client.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["failed"] == ["redis"]

            # Reading needs no cache: the access token is accepted, latest comes from the DB.
            latest = await client.get("/api/v1/metrics/latest?type=cpu", headers=headers)
            assert latest.status_code == 200, latest.text
            assert latest.headers["x-cache"] == "miss"
            assert latest.json()["data"]["percent"] == 12.5

            # Logging in still works (not throttled while the counters are unreachable).
            again = await login(client, account.username, account.password)
            assert again.status_code == 200, again.text

            # One-time refresh tokens and revocations cannot be enforced: 503, nothing changed.
            refreshed = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
            assert_error(refreshed, 503, "cache_unavailable")
            changed = await client.post(
                "/api/v1/auth/password",
                headers=headers,
                json={
                    "current_password": account.password,
                    "new_password": "a brand new passphrase 42",
                },
            )
            assert_error(changed, 503, "cache_unavailable")
            assert (await login(client, account.username, account.password)).status_code == 200
        finally:
            await asyncio.to_thread(redis.start)

        # Redis is back (empty): the refresh token that was refused is still good, once.
        await asyncio.sleep(1.1)  # the cache client's retry pause
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        assert (await client.get("/health/ready")).status_code == 200
