"""Helpers for tests that run the sampler: config, a recorder of the live channel, counts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.cache import Cache
from perfwatch.config_store.service import ConfigService
from perfwatch.contract.metrics import live_channel
from perfwatch.sampler.runner import Sampler
from tests.support.helpers import fetch

ALL_INTERVALS = (
    "cpu",
    "memory",
    "network",
    "disk_io",
    "disk_usage",
    "processes",
    "system",
    "sensors",
)


async def set_config(
    sessionmaker: async_sessionmaker[AsyncSession], values: Mapping[str, Any]
) -> None:
    async with sessionmaker() as session, session.begin():
        service = ConfigService(session)
        for key, value in values.items():
            await service.set_entry(key, value, updated_by="test")


def every_interval(seconds: float) -> dict[str, float]:
    return {f"sampler.interval.{name}": seconds for name in ALL_INTERVALS}


@dataclass
class Recorder:
    """Every snapshot the sampler published on its live channel: what it produced."""

    produced: list[tuple[str, str]] = field(default_factory=list)  # (type, captured_at)

    def by_type(self) -> Counter[str]:
        return Counter(kind for kind, _ in self.produced)


@asynccontextmanager
async def running_sampler(sampler: Sampler, cache: Cache) -> AsyncIterator[Recorder]:
    """Run ``sampler`` (recording what it publishes) until the block ends, then stop it."""
    recorder = Recorder()
    subscription = await cache.subscribe(live_channel(sampler.host))

    async def record() -> None:
        while True:
            message = await subscription.get(timeout=0.5)
            if message is not None:
                snapshot = json.loads(message)
                recorder.produced.append((snapshot["metric_type"], snapshot["captured_at"]))

    recording = asyncio.create_task(record())
    stop = asyncio.Event()
    task = asyncio.create_task(sampler.run(stop))
    try:
        yield recorder
    finally:
        stop.set()
        await task
        await asyncio.sleep(0.6)  # the recorder drains what is queued
        recording.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recording
        await subscription.close()


def stored_snapshots(url: str, host: str) -> list[tuple[str, str]]:
    """(type, captured_at ISO 8601) of every stored snapshot of ``host``."""
    placeholder = "$1" if url.startswith("postgresql") else "?"
    rows = fetch(
        url,
        f"SELECT metric_type, captured_at FROM metric_snapshots WHERE host = {placeholder}",
        host,
    )
    return [(kind, _iso(at)) for kind, at in rows]


def _iso(value: Any) -> str:
    from datetime import UTC, datetime

    if isinstance(value, str):  # SQLite stores text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.astimezone(UTC).isoformat())


def spooled_keys(path: Path) -> list[tuple[str, str]]:
    """(type, captured_at) of the rows in a spool file, read as another process would."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
        rows = connection.execute(
            "SELECT metric_type, captured_at FROM spooled_snapshots ORDER BY seq"
        ).fetchall()
    return [(kind, _iso(at)) for kind, at in rows]
