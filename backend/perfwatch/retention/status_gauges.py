"""The storage status as Prometheus gauges. ``metrics`` (which serves ``/metrics``) may not
import this domain, so the app registers a :class:`StorageGauges` among the scrape's sources
(``app.state.scrape_sources``); it hands samples over as plain values."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.retention.status import StorageStatus, gather_storage_status

logger = logging.getLogger("perfwatch.retention.status")

# Storage moves slowly; a scrape every few seconds must not gather it every time.
DEFAULT_MAX_AGE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Gauge:
    name: str
    help: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    kind: str = "gauge"


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def storage_gauges(status: StorageStatus) -> list[Gauge]:
    gauges: list[Gauge] = []

    def add(name: str, help_text: str, value: float | None, **labels: str) -> None:
        if value is not None:
            gauges.append(Gauge(name, help_text, float(value), labels))

    for entry in status.series:
        labels = {"metric_type": entry.metric_type, "tier": entry.tier}
        add(
            "perfwatch_storage_rows",
            "Rows per metric type and tier (PostgreSQL: a catalogue estimate)",
            entry.rows,
            **labels,
        )
        add(
            "perfwatch_storage_bytes",
            "Bytes on disk per metric type and tier, indexes included (SQLite: an estimate)",
            entry.bytes,
            **labels,
        )
        add(
            "perfwatch_storage_oldest_timestamp_seconds",
            "Time of the oldest row per metric type and tier",
            _seconds(entry.oldest),
            **labels,
        )
        add(
            "perfwatch_storage_newest_timestamp_seconds",
            "Time of the newest row per metric type and tier",
            _seconds(entry.newest),
            **labels,
        )
        add(
            "perfwatch_storage_keep_days",
            "Days the archive policy in force keeps the tier (absent: kept for good)",
            entry.policy.keep_days if entry.policy else None,
            **labels,
        )
    add("perfwatch_database_bytes", "Size of the whole database", status.database.bytes)
    add(
        "perfwatch_storage_max_bytes",
        "storage.max_bytes, the disk cap (0: none)",
        status.database.max_bytes,
    )
    for job in status.jobs:
        add(
            "perfwatch_maintenance_last_success_timestamp_seconds",
            "End of the maintenance job's last run without error",
            _seconds(job.last_success_at),
            job=job.name,
        )
        add(
            "perfwatch_maintenance_next_run_timestamp_seconds",
            "When the maintenance job runs next",
            _seconds(job.next_run_at),
            job=job.name,
        )
        add(
            "perfwatch_maintenance_last_error",
            "1 when the maintenance job's last run failed, else 0",
            job.last_error is not None,
            job=job.name,
        )
    add("perfwatch_archive_files", "Archived host/type/day files", status.archive.files)
    add("perfwatch_archive_bytes", "Bytes of the archive files", status.archive.bytes)
    add("perfwatch_archive_rows", "Snapshots in the archive files", status.archive.rows)
    return gauges


class StorageGauges:
    """A scrape source: the storage status as gauges, gathered at most every ``max_age``
    seconds (concurrent scrapes share one gathering); a failed gathering is logged and counted,
    and the previous gauges are served."""

    def __init__(
        self,
        archive_dir: Path,
        *,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.archive_dir = archive_dir
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self.failures = 0
        self._gauges: list[Gauge] = []
        self._gathered_at: float | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, session: AsyncSession) -> list[Gauge]:
        async with self._lock:
            now = self.clock()
            if self._gathered_at is None or now - self._gathered_at >= self.max_age_seconds:
                try:
                    # A savepoint: a failed statement must not spoil the scrape's transaction.
                    async with session.begin_nested():
                        status = await gather_storage_status(session, self.archive_dir)
                except (SQLAlchemyError, OSError) as exc:
                    self.failures += 1
                    logger.warning("storage status for /metrics failed: %s", exc)
                else:
                    self._gauges = storage_gauges(status)
                # Failed or not: retried after max_age, not on every scrape.
                self._gathered_at = now
            failures = Gauge(
                "perfwatch_storage_status_failures_total",
                "Storage status gatherings for /metrics that failed",
                self.failures,
                kind="counter",
            )
            return [*self._gauges, failures]
