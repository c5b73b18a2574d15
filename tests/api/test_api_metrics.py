"""The metrics API over HTTP on both databases (PostgreSQL with Redis, SQLite with the in-process
cache): latest values with X-Cache, series/raw/summary on real rows, validation errors, the live
stream (Server-Sent Events) and the Prometheus exposition."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from perfwatch.cache.memory import MemoryCache
from perfwatch.cache.redis import RedisCache
from perfwatch.config import Settings
from perfwatch.config_store.service import ConfigService
from perfwatch.contract.metrics import SnapshotRow, encode_snapshot, latest_key, live_channel
from perfwatch.metrics import live as metrics_live
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.metrics.service import LATEST_LOOKUP_STATS
from perfwatch.models import UserRole
from perfwatch.sampler.publisher import SnapshotPublisher
from tests.support.api import (
    BASE_URL,
    access_token,
    add_user,
    app_session,
    assert_error,
    bearer,
    client_of,
    running_app,
    statements_executed,
    unique_name,
)
from tests.support.helpers import closed_redis_url
from tests.support.prometheus import parse_exposition

HOST = "web-1"
NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(minutes=10)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def store(rows: list[SnapshotRow]) -> None:
    async with app_session() as session:
        await SnapshotIngest(session).bulk_insert_ignore_conflicts(rows)


def cpu(host: str, seconds: float, percent: float) -> SnapshotRow:
    document = {"schema_version": 1, "percent": percent, "load_average": {"1m": percent / 100}}
    return SnapshotRow(host, at(seconds), "cpu", document)


async def ramp(host: str = HOST, seconds: int = 120) -> None:
    """cpu percent = i at T0 + i s."""
    await store([cpu(host, i, float(i)) for i in range(seconds)])


async def viewer_headers(settings: Settings) -> dict[str, str]:
    account = await add_user(UserRole.VIEWER)
    return bearer(access_token(settings, account.user))


# ----- catalogue and latest ---------------------------------------------------------------------


async def test_types_hosts_and_latest_hit_and_miss(api_settings: Settings) -> None:
    host = unique_name("web")  # the Redis server is shared by the whole run
    async with running_app(api_settings) as app, client_of(app) as client:
        headers = await viewer_headers(api_settings)
        # Nothing stored: latest has no host to default to.
        error = assert_error(
            await client.get("/api/v1/metrics/latest?type=cpu", headers=headers), 404
        )
        assert "no snapshots" in error["message"]

        await ramp(host)
        types = (await client.get("/api/v1/metrics/types", headers=headers)).json()
        assert types["metric_types"][:2] == ["cpu", "memory"]
        hosts = (await client.get("/api/v1/hosts", headers=headers)).json()["hosts"]
        assert [h["host"] for h in hosts] == [host] and set(hosts[0]["metric_types"]) == {"cpu"}

        # One host with data: host may be left out. Not in the cache yet → database, miss.
        response = await client.get("/api/v1/metrics/latest?type=cpu", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["x-cache"] == "miss"
        body = response.json()
        assert body["source"] == "database" and body["data"]["percent"] == 119.0
        assert body["host"] == host

        # The sampler's publisher fills the cache → hit.
        await SnapshotPublisher(app.state.cache).publish_many(
            [(encode_snapshot(cpu(host, 200, 42.0)), 30)]
        )
        response = await client.get(f"/api/v1/metrics/latest?type=cpu&host={host}", headers=headers)
        assert response.headers["x-cache"] == "hit", response.text
        assert response.json()["source"] == "cache" and response.json()["data"]["percent"] == 42.0
        # The hot path: a cache hit for a user verified moments ago uses no database connection.
        with statements_executed(app) as statements:
            for _ in range(3):
                response = await client.get(
                    f"/api/v1/metrics/latest?type=cpu&host={host}", headers=headers
                )
                assert response.headers["x-cache"] == "hit", response.text
        assert statements == []

        # Stored type, nothing for it; unknown type; unknown host.
        error = assert_error(
            await client.get("/api/v1/metrics/latest?type=memory", headers=headers), 404
        )
        assert "memory" in error["message"]
        error = assert_error(
            await client.get("/api/v1/metrics/latest?type=bogus", headers=headers), 404
        )
        assert "known: cpu, memory" in error["message"]
        response = await client.get("/api/v1/metrics/latest?type=cpu&host=nope", headers=headers)
        assert_error(response, 404)
        assert response.headers["x-cache"] == "miss"

        # Two hosts: host is required.
        await ramp("db-1", 3)
        error = assert_error(
            await client.get("/api/v1/metrics/latest?type=cpu", headers=headers), 422
        )
        assert "host=" in error["message"] and "db-1" in error["message"]
        assert_error(await client.get("/api/v1/metrics/latest", headers=headers), 422)


async def test_latest_serves_the_cached_document_as_it_is(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        headers = await viewer_headers(api_settings)
        host = unique_name("web")
        await SnapshotPublisher(app.state.cache).publish_many(
            [(encode_snapshot(cpu(host, 200, 42.0)), 30)]
        )
        cached = await app.state.cache.get(latest_key(host, "cpu"))
        response = await client.get(f"/api/v1/metrics/latest?type=cpu&host={host}", headers=headers)
        assert response.headers["x-cache"] == "hit"
        # Not decoded and encoded again (which would also rewrite +00:00 as Z).
        assert response.text == cached[:-1] + ',"source":"cache"}'
        assert response.headers["content-type"] == "application/json"
        assert response.json()["source"] == "cache"


class RedisDownForMetrics:
    """The app's cache with every key but the auth ones on a Redis that is not running: the
    latest values and the live channel hit a real closed port (real redis-py errors), while the
    test's token keeps its normal revocation check. (A whole stopped Redis, auth included, is
    tests/test_api_redis_outage.py.)"""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.down = RedisCache(closed_redis_url())
        self.name = "redis"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.down, name)

    async def get(self, key: str) -> str | None:
        cache = self.real if key.startswith("perfwatch:auth:") else self.down
        return await cache.get(key)  # type: ignore[no-any-return]


async def test_latest_is_served_from_the_database_while_redis_is_down(
    api_settings: Settings,
) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        headers = await viewer_headers(api_settings)
        host = unique_name("web")
        await ramp(host, seconds=5)
        await SnapshotPublisher(app.state.cache).publish_many(
            [(encode_snapshot(cpu(host, 100, 99.0)), 30)]
        )
        real = app.state.cache
        app.state.cache = RedisDownForMetrics(real)
        try:
            before = LATEST_LOOKUP_STATS.errors
            response = await client.get(
                f"/api/v1/metrics/latest?type=cpu&host={host}", headers=headers
            )
            assert response.status_code == 200, response.text
            assert response.headers["x-cache"] == "miss"
            body = response.json()
            assert body["source"] == "database" and body["data"]["percent"] == 4
            assert LATEST_LOOKUP_STATS.errors == before + 1
            # The live channel is unavailable: a clean 503, not a 500.
            response = await client.get(f"/api/v1/metrics/stream?host={host}", headers=headers)
            assert_error(response, 503, "service_unavailable")
        finally:
            await app.state.cache.down.close()
            app.state.cache = real


# ----- ranges -----------------------------------------------------------------------------------


async def test_series_raw_and_summary_on_real_rows(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        headers = await viewer_headers(api_settings)
        await ramp()
        window = {"from": iso(T0), "to": iso(at(120)), "host": HOST}

        response = await client.get(
            "/api/v1/metrics/cpu",
            headers=headers,
            params={**window, "fields": "percent,load_average.1m", "step": "1m"},
        )
        assert response.status_code == 200, response.text
        series = response.json()
        assert series["step_seconds"] >= 60 and series["fields"] == ["percent", "load_average.1m"]
        assert sum(bucket["count"] for bucket in series["buckets"]) == 120
        assert series["buckets"][0]["fields"]["percent"]["min"] == 0.0

        # api.max_points from the configuration caps the buckets (10 is its smallest value).
        async with app_session() as session:
            await ConfigService(session).set_entry("api.max_points", 10, updated_by="test")
        series = (
            await client.get(
                "/api/v1/metrics/cpu", headers=headers, params={**window, "fields": "percent"}
            )
        ).json()
        assert len(series["buckets"]) <= 10 and series["step_seconds"] >= 12

        # Raw keyset pages.
        seen: list[float] = []
        cursor = None
        while True:
            params = {**window, "raw": "true", "limit": "50"}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/api/v1/metrics/cpu", headers=headers, params=params)).json()
            seen += [item["data"]["percent"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [float(i) for i in range(120)]

        response = await client.get(
            "/api/v1/metrics/cpu/summary", headers=headers, params={**window, "fields": "percent"}
        )
        assert response.status_code == 200, response.text
        summary = response.json()
        assert summary["count"] == 120
        stats = summary["fields"]["percent"]
        assert (stats["min"], stats["max"], stats["avg"]) == (0.0, 119.0, 59.5)
        assert stats["p95"] == pytest.approx(113.05)

        # Relative times work; the host defaults to the only one.
        response = await client.get(
            "/api/v1/metrics/cpu/summary",
            headers=headers,
            params={"from": "-1h", "fields": "percent"},
        )
        assert response.status_code == 200 and response.json()["count"] == 120


@pytest.mark.parametrize(
    ("path", "params", "status", "needle"),
    [
        ("/api/v1/metrics/cpu", {"from": "yesterday", "fields": "percent"}, 422, "from="),
        ("/api/v1/metrics/cpu", {"from": "2024-01-01T00:00:00", "fields": "x"}, 422, "time zone"),
        ("/api/v1/metrics/cpu", {"from": "now", "to": "-1h", "fields": "x"}, 422, "before"),
        ("/api/v1/metrics/cpu", {"from": "-1000d", "fields": "percent"}, 422, "maximum"),
        ("/api/v1/metrics/cpu", {"fields": "percent,nope"}, 422, "nope"),
        ("/api/v1/metrics/cpu", {"fields": "percent;drop"}, 422, ""),
        ("/api/v1/metrics/cpu", {"fields": "percent", "step": "fast"}, 422, "step"),
        ("/api/v1/metrics/cpu", {"fields": "percent", "step": "0s"}, 422, "step"),
        ("/api/v1/metrics/cpu", {"raw": "true", "cursor": "!!!"}, 422, "cursor"),
        ("/api/v1/metrics/cpu", {"fields": "percent", "cursor": "abc"}, 422, "raw=true"),
        ("/api/v1/metrics/cpu", {"raw": "true", "limit": "0"}, 422, ""),
        ("/api/v1/metrics/cpu", {"raw": "maybe"}, 422, ""),
        ("/api/v1/metrics/nope", {"fields": "percent"}, 404, "known"),
        ("/api/v1/metrics/cpu/summary", {"fields": "virtual.percent"}, 422, "fields=percent"),
        ("/api/v1/metrics/cpu/summary", {"fields": "percent", "to": "soon"}, 422, "to="),
        ("/api/v1/metrics/latest", {"type": "cpu", "host": ""}, 422, "host"),
    ],
)
async def test_bad_queries_are_4xx_with_a_message(
    api_settings: Settings, path: str, params: dict[str, str], status: int, needle: str
) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        headers = await viewer_headers(api_settings)
        await ramp(seconds=3)
        error = assert_error(await client.get(path, headers=headers, params=params), status)
        assert needle in error["message"], error


async def test_range_queries_default_their_fields_and_refuse_unknown_ones(
    api_settings: Settings,
) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        headers = await viewer_headers(api_settings)
        await ramp(seconds=3)
        processes = {"schema_version": 1, "total": 300, "threads_total": 900}
        await store([SnapshotRow(HOST, at(1), "processes", processes)])
        window = {"from": iso(T0), "to": iso(at(120)), "host": HOST}

        # No fields: each type has its defaults, for series and summaries alike.
        response = await client.get("/api/v1/metrics/cpu", headers=headers, params=window)
        assert response.status_code == 200, response.text
        assert response.json()["fields"] == ["percent", "load_average.1m"]
        response = await client.get(
            "/api/v1/metrics/processes/summary", headers=headers, params=window
        )
        assert response.status_code == 200, response.text
        stats = response.json()["fields"]
        assert list(stats) == ["total", "threads_total"] and stats["total"]["max"] == 300

        # A misspelled field is refused with the valid ones, never answered with nulls.
        error = assert_error(
            await client.get(
                "/api/v1/metrics/cpu", headers=headers, params={**window, "fields": "percnt"}
            ),
            422,
            "validation_failed",
        )
        assert "percnt" in error["message"] and "fields=percent" in error["message"]
        listed = " ".join(detail["message"] for detail in error["details"])
        assert "load_average.1m" in listed and "per_core.<n>" in listed
        # The example in the message is one of that type's fields.
        error = assert_error(
            await client.get(
                "/api/v1/metrics/processes/summary",
                headers=headers,
                params={**window, "fields": "percent"},
            ),
            422,
        )
        assert "fields=total" in error["message"] and "percent," not in error["message"]
        listed = " ".join(detail["message"] for detail in error["details"])
        assert "by_status.<status>" in listed and "top_cpu.<n>.cpu_percent" in listed
        error = assert_error(
            await client.get(
                "/api/v1/metrics/memory", headers=headers, params={**window, "fields": "a;b"}
            ),
            422,
        )
        assert "fields=virtual.percent,swap.percent" in error["message"]
        # Strings are not numeric fields; dynamic keys and indexes are.
        assert_error(
            await client.get(
                "/api/v1/metrics/system", headers=headers, params={**window, "fields": "os"}
            ),
            422,
        )
        for path, fields in [
            ("/api/v1/metrics/disk", "io.sda.read_bytes_per_s,usage.0.percent"),
            ("/api/v1/metrics/cpu", "per_core.3,times_percent.steal"),
        ]:
            response = await client.get(path, headers=headers, params={**window, "fields": fields})
            assert response.status_code == 200, response.text


async def test_hostless_queries_default_to_this_servers_host(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = unique_name("own")
    monkeypatch.setenv("PERFWATCH_HOSTNAME", own)
    async with running_app(api_settings) as app, client_of(app) as client:
        headers = await viewer_headers(api_settings)
        # `perfwatch seed` writes a second host beside the server's own.
        await ramp(own, seconds=3)
        await ramp(f"{own}-demo", seconds=5)
        window = {"from": iso(T0), "to": iso(at(120))}
        response = await client.get("/api/v1/metrics/cpu/summary", headers=headers, params=window)
        assert response.status_code == 200, response.text
        assert response.json()["host"] == own and response.json()["count"] == 3
        response = await client.get("/api/v1/metrics/latest?type=cpu", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["host"] == own
        # Another host asked for by name.
        response = await client.get(
            "/api/v1/metrics/cpu/summary", headers=headers, params={**window, "host": f"{own}-demo"}
        )
        assert response.json()["count"] == 5

        # This server's host has no data: the only host, else a 422 naming them.
        monkeypatch.setenv("PERFWATCH_HOSTNAME", unique_name("elsewhere"))
        error = assert_error(
            await client.get("/api/v1/metrics/cpu/summary", headers=headers, params=window),
            422,
            "validation_failed",
        )
        assert own in error["message"] and "host=" in error["message"]
        monkeypatch.setenv("PERFWATCH_HOSTNAME", f"{own}-demo")
        response = await client.get("/api/v1/metrics/cpu/summary", headers=headers, params=window)
        assert response.json()["host"] == f"{own}-demo"


async def test_series_and_summaries_carry_no_float_noise(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        headers = await viewer_headers(api_settings)
        # 0.1 + 0.2 is 0.30000000000000004 in binary floating point: without rounding the
        # average would be 0.15000000000000002.
        await store([cpu(HOST, 0, 0.1), cpu(HOST, 1, 0.2)])
        window = {"from": iso(T0), "to": iso(at(3)), "host": HOST, "fields": "percent"}
        summary = (
            await client.get("/api/v1/metrics/cpu/summary", headers=headers, params=window)
        ).json()
        assert summary["fields"]["percent"]["avg"] == 0.15
        assert summary["fields"]["percent"]["p95"] == 0.195
        for step in ("1s", "1h"):  # from snapshots, and from per-minute totals
            series = (
                await client.get(
                    "/api/v1/metrics/cpu", headers=headers, params={**window, "step": step}
                )
            ).json()
            averages = [bucket["fields"]["percent"]["avg"] for bucket in series["buckets"]]
            assert averages == ([0.1, 0.2] if step == "1s" else [0.15]), series


# ----- live stream ------------------------------------------------------------------------------


class _Body(httpx.AsyncByteStream):
    def __init__(
        self, chunks: asyncio.Queue[bytes | None], gone: asyncio.Event, task: asyncio.Task[None]
    ) -> None:
        self.chunks, self.gone, self.task = chunks, gone, task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self.gone.set()  # the client disconnects
        await asyncio.wait_for(self.task, 10)


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Like httpx.ASGITransport, but the body arrives as the app sends it (ASGITransport waits
    for the whole response), and closing the response tells the app the client has gone."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": "http",
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": ("perfwatch.test", 80),
            "client": ("10.9.8.7", 40000),
            "root_path": "",
        }
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        gone = asyncio.Event()
        started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await chunks.put(message["body"])
                if not message.get("more_body", False):
                    await chunks.put(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)  # type: ignore[arg-type]
            finally:
                await chunks.put(None)

        task = asyncio.create_task(run())
        await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            task.result()
            raise RuntimeError("the app sent no response")
        start = started.result()
        return httpx.Response(
            start["status"], headers=start.get("headers", []), stream=_Body(chunks, gone, task)
        )


async def read_event(lines: AsyncIterator[str], timeout: float = 10) -> list[str]:
    """The next event or comment: its lines up to the blank line."""
    event: list[str] = []
    async with asyncio.timeout(timeout):
        async for line in lines:
            if line == "":
                if event:
                    return event
                continue
            event.append(line)
    raise AssertionError(f"the stream ended: {event}")


async def subscribers(app: FastAPI, channel: str) -> int:
    cache = app.state.cache
    if isinstance(cache, MemoryCache):
        return len(cache._subscribers.get(channel, ()))
    counts = await cache._redis.pubsub_numsub(channel)
    return int(counts[0][1])


@pytest.mark.parametrize("auth", ["header", "query"])
async def test_stream_delivers_published_snapshots_and_frees_the_subscription(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch, auth: str
) -> None:
    monkeypatch.setattr(metrics_live, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(metrics_live, "POLL_SECONDS", 0.05)
    host = unique_name("web")
    async with running_app(api_settings) as app:
        account = await add_user(UserRole.VIEWER)
        token = access_token(api_settings, account.user)
        headers = bearer(token) if auth == "header" else {}
        params = {"host": host} if auth == "header" else {"host": host, "access_token": token}
        channel = live_channel(host)
        client = httpx.AsyncClient(transport=StreamingASGITransport(app), base_url=BASE_URL)
        async with (
            client,
            client.stream("GET", "/api/v1/metrics/stream", headers=headers, params=params) as r,
        ):
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.aiter_lines()
            assert await read_event(lines) == [": connected"]
            assert await subscribers(app, channel) == 1

            await SnapshotPublisher(app.state.cache).publish_many(
                [(encode_snapshot(cpu(host, 1, 7.5)), 30)]
            )
            event = await read_event(lines)
            while event == [": ping"]:
                event = await read_event(lines)
            assert event[0] == "event: snapshot"
            message = json.loads(event[1].removeprefix("data: "))
            assert message["host"] == host and message["data"]["percent"] == 7.5
            # Idle: heartbeats.
            assert await read_event(lines) == [": ping"]
        # The client went away: the handler noticed and closed the subscription.
        for _ in range(100):
            if await subscribers(app, channel) == 0:
                break
            await asyncio.sleep(0.05)
        assert await subscribers(app, channel) == 0


async def test_stream_authenticates_the_query_token_like_the_header(
    api_settings: Settings,
) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        stream = "/api/v1/metrics/stream"
        assert_error(await client.get(stream, params={"host": HOST}), 401)
        assert_error(await client.get(stream, params={"host": HOST, "access_token": "x.y.z"}), 401)
        account = await add_user(UserRole.VIEWER)
        expired = access_token(api_settings, account.user, now=time.time() - 7200)
        error = assert_error(
            await client.get(stream, params={"host": HOST, "access_token": expired}), 401
        )
        assert error["code"] == "token_expired"
        # No host and nothing stored: answered before streaming.
        token = access_token(api_settings, account.user)
        assert_error(await client.get(stream, params={"access_token": token}), 404)


# ----- Prometheus -------------------------------------------------------------------------------


async def test_prometheus_metrics(
    api_settings: Settings,
    fresh_db: str,  # reads the app's own connection pool
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = api_settings.model_copy(update={"metrics_token": "m" * 24})
    host = unique_name("web")
    async with running_app(settings) as app, client_of(app) as client:
        assert_error(await client.get("/metrics"), 401)
        assert_error(await client.get("/metrics", headers=bearer("n" * 24)), 401)
        await ramp(host, seconds=3)
        await store(
            [
                SnapshotRow(
                    host,
                    at(2),
                    "memory",
                    {"virtual": {"percent": 40.5}, "swap": {"percent": 1.25}},
                ),
                SnapshotRow(
                    host,
                    at(2),
                    "network",
                    {"interfaces": {"eth0": {"bytes_sent_per_s": 10.0, "bytes_recv_per_s": 20.5}}},
                ),
                SnapshotRow(
                    host,
                    at(2),
                    "disk",
                    {"usage": [{"device": "/dev/vda", "mountpoint": '/mnt/"x"', "percent": 22.1}]},
                ),
            ]
        )
        headers = await viewer_headers(settings)
        await client.get("/api/v1/metrics/latest?type=cpu", headers=headers)
        await client.get("/no/such/path")

        class FakeSampler:
            def status(self) -> dict[str, Any]:
                return {
                    "host": host,
                    "cycles": 12,
                    "collector_errors": 0,
                    "writer": {"written": 30, "database_available": True},
                    "spool_rows": 0,
                    "spool_dropped": 0,
                    "cache": {"published": 30, "available": False},
                }

        monkeypatch.setattr(app.state, "sampler", FakeSampler(), raising=False)
        for auth in (headers, bearer("m" * 24)):  # a viewer token, or METRICS_TOKEN
            response = await client.get("/metrics", headers=auth)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        samples = parse_exposition(response.text)

        assert samples["perfwatch_cpu_percent"] == [f'perfwatch_cpu_percent{{host="{host}"}} 2']
        assert (
            f'perfwatch_load_average{{host="{host}",period="1m"}} 0.02'
            in samples["perfwatch_load_average"]
        )
        assert samples["perfwatch_memory_percent"] == [
            f'perfwatch_memory_percent{{host="{host}"}} 40.5'
        ]
        assert samples["perfwatch_swap_percent"] == [
            f'perfwatch_swap_percent{{host="{host}"}} 1.25'
        ]
        assert (
            f'perfwatch_network_bytes_per_second{{host="{host}",interface="eth0",direction="recv"}}'
            " 20.5" in samples["perfwatch_network_bytes_per_second"]
        )
        assert samples["perfwatch_filesystem_used_percent"] == [
            f'perfwatch_filesystem_used_percent{{host="{host}",mountpoint="/mnt/\\"x\\"",'
            'device="/dev/vda"} 22.1'
        ]
        assert len(samples["perfwatch_snapshot_age_seconds"]) == 4
        requests = "\n".join(samples["perfwatch_http_requests_total"])
        assert 'method="GET",route="/api/v1/metrics/latest",status="200"} 1' in requests
        assert 'route="<unmatched>",status="404"' in requests
        assert 'route="/metrics",status="401"} 2' in requests
        assert {
            line.split("result=")[1][1:4] for line in samples["perfwatch_latest_lookups_total"]
        } == {
            "hit",
            "mis",
            "err",
        }
        assert samples["perfwatch_sampler_cycles_total"] == ["perfwatch_sampler_cycles_total 12"]
        assert samples["perfwatch_sampler_writer_written_total"] == [
            "perfwatch_sampler_writer_written_total 30"
        ]
        assert samples["perfwatch_sampler_cache_available"] == [
            "perfwatch_sampler_cache_available 0"
        ]
        if settings.database_dialect == "postgresql":
            assert samples["perfwatch_db_pool_checked_out"][0].endswith(" 1")
            assert "perfwatch_db_pool_size" in samples
            checkouts = samples["perfwatch_db_pool_checkouts_total"][0].split()[-1]
            assert float(checkouts) >= 1
            assert "perfwatch_db_pool_wait_seconds_total" in samples
            assert "perfwatch_db_pool_wait_seconds_max" in samples
        else:
            assert "perfwatch_db_pool_size" not in samples
