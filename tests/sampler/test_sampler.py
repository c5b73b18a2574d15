"""The sampler in-process against real PostgreSQL 16 and SQLite, real collectors on this
machine: every type at its interval, interval changes without a restart, and a Redis outage."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.cache.memory import MemoryCache
from perfwatch.cache.redis import RedisCache
from perfwatch.contract.metrics import METRIC_TYPES, latest_key
from perfwatch.db.engine import build_engine
from perfwatch.db.session import make_sessionmaker
from perfwatch.sampler.runner import Sampler
from tests.support.helpers import make_settings
from tests.support.sampling import running_sampler, set_config, stored_snapshots
from tests.support.services import start_private_redis


@pytest.fixture
async def sessionmaker(fresh_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = build_engine(make_settings(fresh_db))
    yield make_sessionmaker(engine)
    await engine.dispose()


async def wait_until(condition, timeout: float, interval: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(interval)
    return bool(condition())


async def test_every_type_is_stored_at_its_interval_and_matches_what_was_published(
    fresh_db: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await set_config(sessionmaker, {"sampler.batch.max_seconds": 1})
    cache = MemoryCache()
    sampler = Sampler(
        sessionmaker=sessionmaker, cache=cache, spool_path=tmp_path / "spool.db", host="h-types"
    )
    async with running_sampler(sampler, cache) as recorder:
        await asyncio.sleep(4.2)

    produced = recorder.by_type()
    assert set(produced) == set(METRIC_TYPES)
    # Default intervals: 1 s for cpu/memory/network/disk, 5 s processes, 10 s sensors, 60 s system.
    for kind in ("cpu", "memory", "network", "disk"):
        assert 4 <= produced[kind] <= 6, produced
    for kind in ("processes", "sensors", "system"):
        assert produced[kind] == 1, produced

    stored = stored_snapshots(fresh_db, "h-types")
    # The graceful stop flushed the batch: everything produced is stored, once.
    assert sorted(stored) == sorted(recorder.produced)
    assert sampler.writer.stats.database_available
    assert len(sampler.writer.spool) == 0
    assert sampler.collector_errors == 0


async def test_a_changed_interval_applies_within_a_cycle_without_a_restart(
    fresh_db: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await set_config(sessionmaker, {"sampler.interval.memory": 30})
    cache = MemoryCache()
    sampler = Sampler(
        sessionmaker=sessionmaker, cache=cache, spool_path=tmp_path / "spool.db", host="h-int"
    )
    async with running_sampler(sampler, cache) as recorder:
        await asyncio.sleep(2.5)
        assert recorder.by_type()["memory"] == 1  # the first sample, then 30 s to wait
        await set_config(sessionmaker, {"sampler.interval.memory": 1})
        changed_at = time.monotonic()
        assert await wait_until(lambda: recorder.by_type()["memory"] >= 3, timeout=5)
        # Config is re-read every second: the next sample came within ~one refresh plus one
        # interval, not after the 30 s the old interval promised.
        assert time.monotonic() - changed_at < 4.5


async def test_a_redis_outage_does_not_stop_sampling_and_the_cache_refills(
    fresh_db: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    redis = start_private_redis()
    cache = RedisCache(redis.url)
    await set_config(sessionmaker, {"sampler.batch.max_seconds": 1})
    sampler = Sampler(
        sessionmaker=sessionmaker, cache=cache, spool_path=tmp_path / "spool.db", host="h-redis"
    )
    reader = cache
    stop = asyncio.Event()
    task = asyncio.create_task(sampler.run(stop))
    started = time.monotonic()
    try:
        assert await wait_until(lambda: sampler.publisher.stats.published >= 5, timeout=5)

        # Blocking calls run in threads: the sampler shares this event loop.
        await asyncio.to_thread(redis.stop)
        stored_before = len(await asyncio.to_thread(stored_snapshots, fresh_db, "h-redis"))
        failures_before = sampler.publisher.stats.failures
        await asyncio.sleep(3.5)
        assert not task.done()
        assert sampler.publisher.stats.failures > failures_before
        assert not sampler.publisher.stats.available
        # The database writes went on without the cache.
        stored_during = await asyncio.to_thread(stored_snapshots, fresh_db, "h-redis")
        assert len(stored_during) > stored_before + 4

        await asyncio.to_thread(redis.start)  # an empty Redis: nothing cached survived
        restarted = time.time()
        assert await wait_until(lambda: sampler.publisher.stats.available, timeout=5)
        cached = await reader.get(latest_key("h-redis", "cpu"))
        assert cached is not None
        latest = json.loads(cached)
        from datetime import datetime

        assert datetime.fromisoformat(latest["captured_at"]).timestamp() >= restarted - 1.5
    finally:
        stop.set()
        await task
        await cache.close()
        await asyncio.to_thread(redis.stop)
    elapsed = time.monotonic() - started
    counts = Counter(kind for kind, _ in stored_snapshots(fresh_db, "h-redis"))
    # One cpu sample a second all along, outage included (the first at once, so ≥ elapsed - 1).
    assert counts["cpu"] >= int(elapsed) - 1, (counts, elapsed)


@pytest.mark.parametrize("run_sampler", [True, False])
async def test_the_app_samples_in_process_unless_told_not_to(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_sampler: bool
) -> None:
    from perfwatch.app import create_app

    host = f"h-app-{run_sampler}"
    monkeypatch.setenv("PERFWATCH_HOSTNAME", host)
    settings = make_settings(fresh_db, run_sampler=run_sampler, perfwatch_data_dir=tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(1.5)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = (await client.get("/health/ready")).json()
    stored = {kind for kind, _ in stored_snapshots(fresh_db, host)}
    if run_sampler:  # readiness reports the sampler's counters
        assert ready["sampler"]["host"] == host
        assert ready["sampler"]["cycles"] >= 1
        assert ready["sampler"]["writer"]["database_available"] is True
        assert ready["sampler"]["spool_rows"] == 0
    else:
        assert "sampler" not in ready
    # Sampling starts with the app and its first cycle is written at once (then on shutdown).
    assert stored == (set(METRIC_TYPES) if run_sampler else set())
