"""A small, known history for the storage status tests: raw rows, tier rows, job rows,
policies and archive manifests, and what the status must say about them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.contract.metrics import SnapshotRow
from perfwatch.db.partitions import SNAPSHOTS, TIER_HOUR, TIER_MINUTE, ensure_partitions_between
from perfwatch.metrics.ingest import SnapshotIngest
from perfwatch.models import (
    ArchiveAction,
    ArchivePolicy,
    MaintenanceState,
    MetricTierHour,
    MetricTierMinute,
)

DAY1 = datetime(2026, 9, 14, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
HOUR_MONTH = datetime(2026, 6, 1, tzinfo=UTC)
FINISHED = datetime(2026, 9, 16, 3, 0, 5, tzinfo=UTC)


def at(day: datetime, seconds: int) -> datetime:
    return day + timedelta(seconds=seconds)


def _rows() -> list[SnapshotRow]:
    rows = [
        SnapshotRow(host, at(DAY1, i), "cpu", {"percent": float(i)})
        for host in ("alpha", "beta")
        for i in range(10)
    ]
    rows += [SnapshotRow("alpha", at(DAY2, 60 + i), "cpu", {"percent": 1.0}) for i in range(5)]
    rows += [SnapshotRow("beta", at(DAY2, i), "processes", {"count": i}) for i in range(3)]
    # A type without a partition of its own: the "other" children.
    rows += [SnapshotRow("alpha", at(DAY2, 30 + i), "gpu", {"busy": 0.5}) for i in range(2)]
    return rows


async def add_history(session: AsyncSession) -> None:
    """Rows in partitions made for them (PostgreSQL), the way the jobs leave things."""
    await ensure_partitions_between(session, SNAPSHOTS, DAY1.date(), DAY2.date())
    await ensure_partitions_between(session, TIER_MINUTE, DAY1.date(), DAY1.date())
    await ensure_partitions_between(session, TIER_HOUR, HOUR_MONTH.date(), HOUR_MONTH.date())
    await SnapshotIngest(session).bulk_insert_ignore_conflicts(_rows())
    session.add_all(
        MetricTierMinute(
            host="alpha",
            metric_type="cpu",
            bucket=at(DAY1, 60 * i),
            snapshots=60,
            stats={"percent": [60, 60.0, 0.0, 2.0, 1.0]},
        )
        for i in range(4)
    )
    session.add_all(
        MetricTierHour(
            host=host,
            metric_type="memory",
            bucket=HOUR_MONTH + timedelta(hours=i),
            snapshots=3600,
            stats={"percent": [3600, 1.0, 0.0, 1.0, 0.0]},
        )
        for host in ("alpha", "beta")
        for i in range(3)
    )
    session.add_all(
        [
            MaintenanceState(
                name="tiers",
                last_started_at=FINISHED - timedelta(seconds=5),
                last_finished_at=FINISHED,
                next_run_at=FINISHED + timedelta(minutes=1),
                watermark=DAY2,
                details={"minutes": 4},
            ),
            MaintenanceState(
                name="retention",
                last_started_at=FINISHED,
                last_finished_at=FINISHED + timedelta(seconds=1),
                last_error="OSError: archive directory is read-only",
            ),
        ]
    )
    session.add_all(
        [
            ArchivePolicy(
                metric_type="*",
                raw_days=3,
                minute_days=30,
                retention_days=730,
                action=ArchiveAction.DELETE,
            ),
            ArchivePolicy(
                metric_type="processes",
                raw_days=2,
                minute_days=30,
                retention_days=365,
                action=ArchiveAction.ARCHIVE,
            ),
            # Disabled: cpu falls back to "*".
            ArchivePolicy(
                metric_type="cpu",
                raw_days=1,
                minute_days=1,
                retention_days=1,
                action=ArchiveAction.DELETE,
                enabled=False,
            ),
        ]
    )
    await session.flush()


def write_manifest(
    archive_dir: Path, host: str, metric_type: str, day: date, **values: object
) -> Path:
    folder = archive_dir / host / metric_type
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{day:%Y-%m-%d}.manifest.json"
    manifest = {"host": host, "metric_type": metric_type, "day": f"{day:%Y-%m-%d}", **values}
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def add_archive(archive_dir: Path) -> None:
    """Two readable manifests (3 + 5 rows, 100 + 250 bytes) and one broken one."""
    write_manifest(archive_dir, "alpha", "processes", DAY1.date(), rows=3, bytes=100)
    write_manifest(archive_dir, "beta", "processes", DAY1.date(), rows=5, bytes=250)
    broken = write_manifest(archive_dir, "beta", "processes", DAY2.date())
    broken.write_text("{not json", encoding="utf-8")
