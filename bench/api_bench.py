"""HTTP API benchmarks (issue: HTTP API), run by ``BENCH_ONLY=api make bench`` (bench/run.py).

The real server runs as its own process: one uvicorn worker (``perfwatch.app:create_app``) on a
free loopback port, on a dedicated database (``perfwatch_bench_api``, recreated and migrated)
and Redis database 14 (``BENCH_API_REDIS_URL``, flushed), without the sampler. The load comes
from ``wrk`` (another process, same machine) with Lua scripts that set the bearer token and
report latency percentiles, errors and ``X-Cache`` counts as one JSON line.

Data: BENCH_API_DAYS (default 30) days of 1 s cpu snapshots of one host ending now (the
seed's generated documents, loaded with COPY), and the latest snapshot of every type in Redis
through ``SnapshotPublisher``, so ``/api/v1/metrics/latest`` is a cache hit.

Figures:

- ``api_latest_*``: ``GET /metrics/latest?type=cpu&host=…``, 16 connections for
  BENCH_API_LATEST_SECONDS (default 10): the worker saturated, its throughput.
- ``api_latest_light_*``: the same with 4 connections: latency below saturation.
- ``api_mix_*``: 100 connections for BENCH_API_SECONDS (default 60), each request drawn at
  random: 70 % latest (random type), 20 % one hour of cpu percent downsampled, 5 % hosts,
  5 % types. Closed loop: every connection sends its next request as soon as the previous
  answer arrives (no think time), the hardest case for 100 clients. ``api_mix_pool_*``: the
  server's own count of database connections taken and of the time spent waiting for them.
- ``api_series_24h_*``: 24 h of cpu percent downsampled (≤ ``api.max_points`` buckets), one
  connection for BENCH_API_SERIES_SECONDS (default 10), as a dashboard repeats it: the
  per-minute rollups are in place. ``api_series_24h_cold_ms``: the very first such request
  (the sanity check before the load), which computes and stores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from redis.asyncio import Redis

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "backend"))

from perfwatch.auth.tokens import TokenType, issue_token  # noqa: E402
from perfwatch.bootstrap.seed import METRIC_TYPES, SeedPlan, generate_rows  # noqa: E402
from perfwatch.cache.redis import RedisCache  # noqa: E402
from perfwatch.config import Settings  # noqa: E402
from perfwatch.contract.metrics import encode_snapshot  # noqa: E402
from perfwatch.db import migrations  # noqa: E402
from perfwatch.db.engine import build_engine  # noqa: E402
from perfwatch.db.partitions import ensure_snapshot_partitions  # noqa: E402
from perfwatch.db.session import make_sessionmaker  # noqa: E402
from perfwatch.models import UserRole  # noqa: E402
from perfwatch.sampler.publisher import SnapshotPublisher  # noqa: E402
from perfwatch.users.service import UserService  # noqa: E402

DATABASE = "perfwatch_bench_api"
HOST = "bench-api-host"
SECRET_KEY = "bench-api-secret-key-0123456789-abcdefghijklmnop"
TOKEN_MINUTES = 240
LATEST_CONNECTIONS = 16
LIGHT_CONNECTIONS = 4
COPY_CHUNK = 20_000

Report = Callable[[str, float, str], None]

# ----- wrk scripts (LuaJIT) ------------------------------------------------------------------

LUA_COMMON = r"""
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() * 100 + id)
  hits, misses, non2xx, latest_sent = 0, 0, 0, 0
end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  for name, value in pairs(headers) do
    if string.lower(name) == "x-cache" then
      if value == "hit" then hits = hits + 1 else misses = misses + 1 end
    end
  end
end
function done(summary, latency, requests)
  local total = {hits = 0, misses = 0, non2xx = 0, latest_sent = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(total) do total[key] = total[key] + thread:get(key) end
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"hits":%d,"misses":%d,"non2xx":%d,"latest_sent":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    total.hits, total.misses, total.non2xx, total.latest_sent))
end
"""

LUA_SINGLE = (
    LUA_COMMON
    + r"""
local path = os.getenv("BENCH_PATH")
function request()
  return wrk.format("GET", path)
end
"""
)

LUA_MIX = (
    LUA_COMMON
    + r"""
local host = os.getenv("BENCH_HOST")
local types = {"cpu", "memory", "disk", "network", "processes", "system", "sensors"}
function request()
  local draw = math.random(100)
  local path
  if draw <= 70 then
    latest_sent = latest_sent + 1
    path = "/api/v1/metrics/latest?type=" .. types[math.random(#types)] .. "&host=" .. host
  elseif draw <= 90 then
    path = "/api/v1/metrics/cpu?from=-1h&to=now&fields=percent&host=" .. host
  elseif draw <= 95 then
    path = "/api/v1/hosts"
  else
    path = "/api/v1/metrics/types"
  end
  return wrk.format("GET", path)
end
"""
)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wrk(
    script: Path, base_url: str, connections: int, seconds: float, env: dict[str, str]
) -> dict[str, Any]:
    threads = min(2, connections)
    completed = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url,
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return result
    raise RuntimeError(f"wrk printed no RESULT line:\n{completed.stdout}\n{completed.stderr}")


def failures(result: dict[str, Any]) -> int:
    """Non-2xx answers plus socket errors and timeouts (wrk's ``status`` counts non-2xx/3xx)."""
    return int(
        result["non2xx"] + result["connect"] + result["read"] + result["write"] + result["timeout"]
    )


# ----- set-up --------------------------------------------------------------------------------


async def recreate(admin_url: str, database: str = DATABASE) -> str:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await connection.execute(f"CREATE DATABASE {database}")
    finally:
        await connection.close()
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{database}"


def copy_records(rows: Iterator[Any], size: int) -> list[tuple[Any, ...]]:
    return [
        (
            row.host,
            row.captured_at,
            row.metric_type,
            json.dumps(row.metric_data, separators=(",", ":")),
        )
        for row in islice(rows, size)
    ]


async def fill(url: str, days: float, end: datetime) -> int:
    """``days`` of 1 s cpu snapshots ending at ``end``: generated in a thread while the
    previous chunk is copied."""
    plan = SeedPlan(HOST, end - timedelta(days=days), end, 1, ("cpu",))
    rows = generate_rows(plan, "cpu")
    connection = await asyncpg.connect(url)
    try:
        chunk = await asyncio.to_thread(copy_records, rows, COPY_CHUNK)
        while chunk:
            copying = asyncio.create_task(
                connection.copy_records_to_table(
                    "metric_snapshots",
                    records=chunk,
                    columns=["host", "captured_at", "metric_type", "metric_data"],
                )
            )
            following = await asyncio.to_thread(copy_records, rows, COPY_CHUNK)
            await copying
            chunk = following
        await connection.execute("VACUUM ANALYZE metric_snapshots")
    finally:
        await connection.close()
    return plan.points_per_type


async def prepare(
    admin_url: str, redis_url: str, days: float
) -> tuple[str, Settings, dict[str, Any]]:
    url = await recreate(admin_url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        redis_url=redis_url,
        secret_key=SECRET_KEY,
        access_token_minutes=TOKEN_MINUTES,
        run_sampler=False,
    )
    await asyncio.to_thread(migrations.upgrade, "head", settings)
    end = datetime.now(UTC).replace(microsecond=0)
    engine = build_engine(settings)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        await ensure_snapshot_partitions(session, days_behind=int(days) + 2, days_ahead=2)
        await session.commit()
    started = time.perf_counter()
    rows = await fill(url.replace("+asyncpg", ""), days, end)
    fill_seconds = time.perf_counter() - started
    print(
        f"# api: {rows} cpu rows ({days:g} days at 1 s) loaded in {fill_seconds:.1f} s", flush=True
    )
    async with sessions() as session:
        user = await UserService(session).create_user(
            username="bench-viewer",
            password="bench-viewer-password-0123456789",
            role=UserRole.VIEWER,
            check_strength=False,
        )
        await session.commit()
        user_id, role = user.id, user.role.value
    await engine.dispose()

    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()
    cache = RedisCache(redis_url)
    publisher = SnapshotPublisher(cache)
    now = datetime.now(UTC).replace(microsecond=0)
    for metric_type in METRIC_TYPES:
        plan = SeedPlan(HOST, now - timedelta(seconds=1), now, 1, (metric_type,))
        for row in generate_rows(plan, metric_type):
            assert await publisher.publish_many([(encode_snapshot(row), 6 * 3600)])
    with contextlib.suppress(Exception):
        await cache.client.aclose()
    token = issue_token(settings, user_id=user_id, role=role, typ=TokenType.ACCESS).token
    return token, settings, {"rows": rows, "fill_seconds": fill_seconds}


# ----- the server ----------------------------------------------------------------------------


class Server:
    def __init__(self, settings: Settings, data_dir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        assert settings.database_url
        env = {
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "RUN_SAMPLER": "0",
            "SECRET_KEY": SECRET_KEY,
            "ENVIRONMENT": "development",
            "PERFWATCH_ENV_FILE": "",
            "PERFWATCH_DATA_DIR": str(data_dir),
            "ACCESS_TOKEN_MINUTES": str(TOKEN_MINUTES),
            "LOG_LEVEL": "WARNING",
        }
        if settings.redis_url:  # else the server's in-process cache
            env["REDIS_URL"] = settings.redis_url
        else:
            env.pop("REDIS_URL", None)
        uvicorn = Path(sys.executable).with_name("uvicorn")
        self.process = subprocess.Popen(
            [
                str(uvicorn),
                "perfwatch.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=str(data_dir),
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health/live", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def check(base_url: str, token: str) -> tuple[int, float]:
    """Sanity checks before timing: a cache hit, and the 24 h series' bucket count. Returns
    that count and the time of the first (cold) 24 h request."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for metric_type in METRIC_TYPES:
            answer = client.get(
                "/api/v1/metrics/latest", params={"type": metric_type, "host": HOST}
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-cache"] == "hit", (metric_type, answer.headers)
        hour = client.get(
            "/api/v1/metrics/cpu", params={"from": "-1h", "fields": "percent", "host": HOST}
        )
        assert hour.status_code == 200, hour.text
        # The first 24 h request finds no per-minute rollups: it computes and stores them.
        started = time.perf_counter()
        day = client.get(
            "/api/v1/metrics/cpu", params={"from": "-24h", "fields": "percent", "host": HOST}
        )
        cold_ms = (time.perf_counter() - started) * 1000
        assert day.status_code == 200, day.text
        buckets = len(day.json()["buckets"])
        assert 0 < buckets <= 1500, buckets
        for path in ("/api/v1/hosts", "/api/v1/metrics/types"):
            assert client.get(path).status_code == 200
    return buckets, cold_ms


def pool_waits(base_url: str, token: str) -> dict[str, float]:
    """The server's pool counters from its Prometheus exposition (``GET /metrics``)."""
    answer = httpx.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    answer.raise_for_status()
    values: dict[str, float] = {}
    for line in answer.text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("perfwatch_db_pool_"):
            values[name] = float(value)
    return values


# ----- the benchmark -------------------------------------------------------------------------


def ensure_wrk() -> None:
    """wrk is the load generator: installed from Debian's packages when missing (as root)."""
    if shutil.which("wrk") is not None:
        return
    if os.geteuid() == 0 and shutil.which("apt-get") is not None:
        print("# installing wrk (apt-get install -y wrk)", flush=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=False,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    if shutil.which("wrk") is None:
        raise SystemExit("the API benchmark needs wrk: apt-get install -y wrk")


async def run(admin_url: str, report: Report) -> dict[str, Any]:
    """All HTTP API figures; returns the parameters used (for results.json)."""
    ensure_wrk()
    days = env_float("BENCH_API_DAYS", 30)
    mix_seconds = env_float("BENCH_API_SECONDS", 60)
    latest_seconds = env_float("BENCH_API_LATEST_SECONDS", 10)
    series_seconds = env_float("BENCH_API_SERIES_SECONDS", 10)
    redis_url = os.environ.get("BENCH_API_REDIS_URL", "redis://127.0.0.1:6379/14")
    token, settings, loaded = await prepare(admin_url, redis_url, days)
    report("api_dataset_rows", loaded["rows"], "rows")

    with tempfile.TemporaryDirectory(prefix="perfwatch-api-bench-") as tmp:
        scripts = Path(tmp)
        (scripts / "single.lua").write_text(LUA_SINGLE)
        (scripts / "mix.lua").write_text(LUA_MIX)
        server = Server(settings, scripts)
        try:
            await asyncio.to_thread(server.wait_ready)
            buckets, series_cold_ms = await asyncio.to_thread(check, server.base_url, token)
            report("api_series_24h_cold_ms", series_cold_ms, "ms")
            print(
                f"# api: server on {server.base_url}; 24 h series = {buckets} buckets", flush=True
            )
            base_env = {"BENCH_TOKEN": token, "BENCH_HOST": HOST}

            def load(script: str, connections: int, seconds: float, path: str = "") -> Any:
                return asyncio.to_thread(
                    wrk,
                    scripts / script,
                    server.base_url,
                    connections,
                    seconds,
                    {**base_env, "BENCH_PATH": path},
                )

            # warm-up: connections, prepared statements, the JIT of the first requests
            await load("mix.lua", 16, 3)

            server_process = psutil.Process(server.process.pid)

            def server_cpu() -> float:
                times = server_process.cpu_times()
                return float(times.user + times.system)

            cpu_before = server_cpu()
            latest = await load(
                "single.lua",
                LATEST_CONNECTIONS,
                latest_seconds,
                f"/api/v1/metrics/latest?type=cpu&host={HOST}",
            )
            latest_cpu = server_cpu() - cpu_before
            report("api_latest_p50_ms", latest["p50_us"] / 1000, "ms")
            report("api_latest_p95_ms", latest["p95_us"] / 1000, "ms")
            report("api_latest_rps", latest["requests"] / (latest["duration_us"] / 1e6), "req/s")
            report("api_latest_errors", failures(latest), "requests")
            report(
                "api_latest_server_core_percent",
                100 * latest_cpu / (latest["duration_us"] / 1e6),
                "%",
            )
            latest_seen = latest["hits"] + latest["misses"]
            report("api_latest_cache_hit_rate", 100 * latest["hits"] / max(1, latest_seen), "%")

            # The same below saturation: 16 closed-loop connections keep the one worker at
            # 100 % and measure its queue; 4 show the latency a few dashboards see.
            light = await load(
                "single.lua",
                LIGHT_CONNECTIONS,
                latest_seconds,
                f"/api/v1/metrics/latest?type=cpu&host={HOST}",
            )
            report("api_latest_light_p50_ms", light["p50_us"] / 1000, "ms")
            report("api_latest_light_p95_ms", light["p95_us"] / 1000, "ms")
            report(
                "api_latest_light_rps", light["requests"] / (light["duration_us"] / 1e6), "req/s"
            )
            report("api_latest_light_errors", failures(light), "requests")

            pool_before = await asyncio.to_thread(pool_waits, server.base_url, token)
            cpu_before = server_cpu()
            mix = await load("mix.lua", 100, mix_seconds)
            mix_cpu = server_cpu() - cpu_before
            pool_after = await asyncio.to_thread(pool_waits, server.base_url, token)
            report("api_mix_requests", mix["requests"], "requests")
            report("api_mix_rps", mix["requests"] / (mix["duration_us"] / 1e6), "req/s")
            report("api_mix_errors", failures(mix), "requests")
            report("api_mix_p50_ms", mix["p50_us"] / 1000, "ms")
            report("api_mix_p95_ms", mix["p95_us"] / 1000, "ms")
            report("api_mix_p99_ms", mix["p99_us"] / 1000, "ms")
            report("api_mix_server_core_percent", 100 * mix_cpu / (mix["duration_us"] / 1e6), "%")
            mix_seen = mix["hits"] + mix["misses"]
            report("api_cache_hit_rate", 100 * mix["hits"] / max(1, mix_seen), "%")
            checkouts = (
                pool_after["perfwatch_db_pool_checkouts_total"]
                - pool_before["perfwatch_db_pool_checkouts_total"]
            )
            waited = (
                pool_after["perfwatch_db_pool_wait_seconds_total"]
                - pool_before["perfwatch_db_pool_wait_seconds_total"]
            )
            report("api_mix_pool_checkouts", checkouts, "checkouts")
            report("api_mix_pool_wait_mean_ms", 1000 * waited / max(1.0, checkouts), "ms")
            # The longest single wait since the server started (warm-up included).
            report(
                "api_mix_pool_wait_max_ms",
                1000 * pool_after["perfwatch_db_pool_wait_seconds_max"],
                "ms",
            )

            series = await load(
                "single.lua",
                1,
                series_seconds,
                f"/api/v1/metrics/cpu?from=-24h&to=now&fields=percent&host={HOST}",
            )
            report("api_series_24h_p50_ms", series["p50_us"] / 1000, "ms")
            report("api_series_24h_p95_ms", series["p95_us"] / 1000, "ms")
            report("api_series_24h_errors", failures(series), "requests")
        finally:
            await asyncio.to_thread(server.stop)

    return {
        "api_days": days,
        "api_fill_seconds": round(loaded["fill_seconds"], 1),
        "api_mix_seconds": mix_seconds,
        "api_latest_seconds": latest_seconds,
        "api_series_seconds": series_seconds,
        "api_series_24h_buckets": buckets,
        "api_redis_url": redis_url,
        "load_generator": "wrk",
    }
