"""The sampling loop: run each collector at its configured interval, hand the snapshots to the
batch writer (database, spool) and the publisher (cache, live channel).

Intervals and sizes are read from ``config_entries`` every second, so a change made through the
CLI or the API takes effect within one cycle, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.cache import Cache
from perfwatch.contract import runtime_config
from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.kit.hostname import resolve_host_name
from perfwatch.sampler.collectors import build_collectors
from perfwatch.sampler.collectors.base import Collector
from perfwatch.sampler.config_watch import ConfigWatcher
from perfwatch.sampler.publisher import SnapshotPublisher
from perfwatch.sampler.spool import Spool
from perfwatch.sampler.writer import SnapshotWriter

logger = logging.getLogger("perfwatch.sampler")

SPOOL_FILE = "spool.db"
CONFIG_REFRESH_SECONDS = 1.0
FIRST_CONFIG_WAIT_SECONDS = 2.0


@dataclass
class SamplerConfig:
    """The runtime settings the sampler reads from config_entries (defaults when absent)."""

    values: dict[str, Any]

    def interval(self, collector: Collector) -> float:
        return float(runtime_config.read_number(self.values, collector.interval_key))

    def number(self, key: str) -> float:
        return float(runtime_config.read_number(self.values, key))


class Sampler:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: Cache,
        spool_path: Path,
        host: str | None = None,
        collectors: Mapping[str, Collector] | None = None,
        spool_max_rows: int | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.host = host or resolve_host_name()
        self.config = SamplerConfig(dict(runtime_config.DEFAULTS))
        self.collectors = dict(collectors) if collectors is not None else build_collectors()
        for collector in self.collectors.values():
            collector.configure(self.config.values)
        spool = Spool(spool_path) if spool_max_rows is None else Spool(spool_path, spool_max_rows)
        self.writer = SnapshotWriter(
            sessionmaker,
            spool,
            max_rows=int(self.config.number("sampler.batch.max_rows")),
            max_seconds=self.config.number("sampler.batch.max_seconds"),
        )
        self.publisher = SnapshotPublisher(cache)
        self.config_watcher = ConfigWatcher(sessionmaker)
        self._config_due = asyncio.Event()
        self.cycles = 0
        self.collector_errors = 0

    def status(self) -> dict[str, Any]:
        """Counters for logs, health and metrics endpoints."""
        return {
            "host": self.host,
            "cycles": self.cycles,
            "collector_errors": self.collector_errors,
            "writer": self.writer.stats.as_dict(),
            "spool_rows": len(self.writer.spool),
            "spool_dropped": self.writer.spool.dropped,
            "cache": self.publisher.stats.as_dict(),
        }

    async def refresh_config(self) -> None:
        """Re-read config_entries; keep the last known values while the database is away."""
        try:
            values = await self.config_watcher.changed_values()
        except Exception as exc:  # the database may be away; sampling goes on
            logger.debug("config not refreshed: %s", exc)
            return
        if values is None:  # unchanged
            return
        self.config = SamplerConfig({**runtime_config.DEFAULTS, **values})
        for collector in self.collectors.values():
            collector.configure(self.config.values)
        self.writer.max_rows = int(self.config.number("sampler.batch.max_rows"))
        self.writer.max_seconds = self.config.number("sampler.batch.max_seconds")

    def _collect(self, due: list[Collector], captured_at: datetime) -> list[EncodedSnapshot]:
        """Run the due collectors and encode their documents (in a worker thread)."""
        snapshots = []
        for collector in due:
            try:
                document = json.dumps(collector.collect(), separators=(",", ":"), allow_nan=False)
            except Exception:  # one broken collector must not stop the others
                self.collector_errors += 1
                logger.exception("collector %s failed", collector.metric_type)
                continue
            snapshots.append(
                EncodedSnapshot(self.host, captured_at, collector.metric_type, document)
            )
        return snapshots

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until ``stop`` is set, then flush the batch (to the spool if need be)."""
        # The first samples follow the configured intervals, if the database answers quickly.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.refresh_config(), timeout=FIRST_CONFIG_WAIT_SECONDS)
        writer_task = asyncio.create_task(self.writer.run(stop), name="snapshot-writer")
        # Config is read beside the loop, never in it: a database that hangs must not stall
        # sampling; the loop applies whatever was read last.
        config_task = asyncio.create_task(self._refresh_config_forever(stop), name="config")
        next_due = {name: time.monotonic() for name in self.collectors}
        last_run: dict[str, float] = {}
        next_refresh = time.monotonic() + CONFIG_REFRESH_SECONDS
        logger.info("sampling %s: %s", self.host, ", ".join(sorted(self.collectors)))
        try:
            while not stop.is_set():
                now = time.monotonic()
                # Checked on a sampling wake-up when one comes close enough, so that the two
                # share it: each wake-up of the process costs CPU of its own.
                if now >= next_refresh - CONFIG_REFRESH_SECONDS / 2:
                    self._config_due.set()
                    next_refresh = now + CONFIG_REFRESH_SECONDS
                for name, ran_at in last_run.items():  # a shortened interval applies now
                    sooner = ran_at + self.config.interval(self.collectors[name])
                    next_due[name] = min(next_due[name], max(sooner, now))
                due = [c for name, c in self.collectors.items() if next_due[name] <= now]
                if due:
                    await self._sample(due)
                    if self.cycles == 0:  # show data at once after a start, not in 5 s
                        self.writer.request_flush()
                    for collector in due:
                        last_run[collector.metric_type] = now
                        interval = self.config.interval(collector)
                        # Keep a steady grid; after a stall, start again from now.
                        following = next_due[collector.metric_type] + interval
                        next_due[collector.metric_type] = (
                            following if following > now else now + interval
                        )
                    self.cycles += 1
                # Wake at least every refresh period, so a shortened interval applies at once.
                wake = min(min(next_due.values()), next_refresh)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(wake - time.monotonic(), 0))
        finally:
            stop.set()
            config_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await config_task
            await self.config_watcher.close()
            await writer_task
            await self.writer.close()

    async def _refresh_config_forever(self, stop: asyncio.Event) -> None:
        # Woken by the sampling loop rather than by a timer of its own: every wake-up of the
        # process costs CPU, so the config check rides on the loop's (docs/benchmarks.md).
        while not stop.is_set():
            await self._config_due.wait()
            self._config_due.clear()
            await self.refresh_config()

    async def _sample(self, due: list[Collector]) -> None:
        captured_at = datetime.now(UTC)
        snapshots = await asyncio.to_thread(self._collect, due, captured_at)
        await self.writer.add_encoded(snapshots)
        ttl_floor = self.config.number("cache.latest_ttl_seconds")
        await self.publisher.publish_many(
            [
                (
                    snapshot,
                    max(ttl_floor, 3 * self.config.interval(self.collectors[snapshot.metric_type])),
                )
                for snapshot in snapshots
            ]
        )
