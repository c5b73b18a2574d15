"""The storage status: what each metric type keeps in each tier (time span, rows, bytes, the
policy in force), the maintenance jobs' last and next runs, the database size against
``storage.max_bytes``, and the archive files. One gathering shown three ways: ``GET
/api/v1/retention``, ``perfwatch retention status`` and the gauges on ``/metrics``.

How rows and bytes are obtained, and what they cost, is in ``status_repository.py``: catalogue
estimates on PostgreSQL (``rows_estimated``), exact counts on SQLite.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.config_store.repository import ConfigRepository
from perfwatch.contract import runtime_config
from perfwatch.contract.metrics import ALL_METRIC_TYPES, METRIC_TYPES
from perfwatch.db.partitions import SNAPSHOTS, TIER_HOUR, TIER_MINUTE, PartitionedTable
from perfwatch.models import ArchiveAction, ArchivePolicy, MaintenanceState
from perfwatch.retention.archive.paths import MANIFEST_SUFFIX
from perfwatch.retention.status_repository import OTHER_TYPES, StorageRepository

logger = logging.getLogger("perfwatch.retention.status")

MAX_BYTES_KEY = "storage.max_bytes"
# Above this share of storage.max_bytes /health/ready warns (the cap itself expires data).
WARN_PERCENT = 90.0
# The jobs of maintenance_state shown even before their first run.
JOB_NAMES = ("tiers", "retention")


@dataclass(frozen=True, slots=True)
class Tier:
    name: str  # as the API and the gauges label it
    table: PartitionedTable
    window: str  # the policy column saying how many days it is kept


TIERS = (
    Tier("raw", SNAPSHOTS, "raw_days"),
    Tier("1m", TIER_MINUTE, "minute_days"),
    Tier("1h", TIER_HOUR, "retention_days"),
)


@dataclass(frozen=True, slots=True)
class PolicyInForce:
    source: str  # the policy's metric_type: the type itself or "*"
    keep_days: int
    action: ArchiveAction  # raw: delete or archive first; the tiers are always deleted


@dataclass(frozen=True, slots=True)
class SeriesStatus:
    metric_type: str
    tier: str
    oldest: datetime | None
    newest: datetime | None
    rows: int
    bytes: int
    rows_estimated: bool
    bytes_estimated: bool
    policy: PolicyInForce | None


@dataclass(frozen=True, slots=True)
class TierStatus:
    tier: str
    table: str
    rows: int
    bytes: int
    rows_estimated: bool
    bytes_estimated: bool


@dataclass(frozen=True, slots=True)
class JobStatus:
    name: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    next_run_at: datetime | None
    last_error: str | None
    watermark: datetime | None
    details: dict[str, Any] | None

    @property
    def running(self) -> bool:
        """Started and not finished since (or killed mid-run)."""
        started, finished = self.last_started_at, self.last_finished_at
        return started is not None and (finished is None or started > finished)

    @property
    def last_success_at(self) -> datetime | None:
        """The end of the last run when it did not fail (a job clears ``last_error`` on
        success and sets it on failure)."""
        return self.last_finished_at if self.last_error is None else None

    @classmethod
    def never_run(cls, name: str) -> JobStatus:
        return cls(name, None, None, None, None, None, None)

    @classmethod
    def from_row(cls, row: MaintenanceState) -> JobStatus:
        return cls(
            row.name,
            row.last_started_at,
            row.last_finished_at,
            row.next_run_at,
            row.last_error,
            row.watermark,
            row.details,
        )


@dataclass(frozen=True, slots=True)
class DatabaseUsage:
    dialect: str
    bytes: int
    max_bytes: int  # storage.max_bytes; 0: no cap

    @property
    def percent_used(self) -> float | None:
        if self.max_bytes <= 0:
            return None
        return round(self.bytes / self.max_bytes * 100, 1)

    @property
    def warning(self) -> str | None:
        """Set above WARN_PERCENT of the cap: what /health/ready reports."""
        percent = self.percent_used
        if percent is None or percent <= WARN_PERCENT:
            return None
        return (
            f"the database is {human_bytes(self.bytes)} ({self.bytes} bytes), {percent:g} % of "
            f"storage.max_bytes {human_bytes(self.max_bytes)} ({self.max_bytes} bytes): the "
            "oldest history is expired early past the cap"
        )


@dataclass(frozen=True, slots=True)
class ArchiveUsage:
    directory: str
    exists: bool
    files: int  # readable manifests, one per archived host/type/day
    bytes: int  # the archive files' bytes, as their manifests record them
    rows: int
    unreadable: int  # manifests that could not be read or lack rows/bytes


@dataclass(frozen=True, slots=True)
class StorageStatus:
    generated_at: datetime
    database: DatabaseUsage
    series: tuple[SeriesStatus, ...]
    tiers: tuple[TierStatus, ...]
    jobs: tuple[JobStatus, ...]
    archive: ArchiveUsage


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def resolve_policy(policies: Mapping[str, ArchivePolicy], metric_type: str) -> ArchivePolicy | None:
    """The policy that governs ``metric_type``: its own when enabled, else the enabled ``*``
    policy, else none (kept for good). Disabled policies are ignored."""
    for name in (metric_type, ALL_METRIC_TYPES):
        policy = policies.get(name)
        if policy is not None and policy.enabled:
            return policy
    return None


def policy_in_force(policy: ArchivePolicy | None, tier: Tier) -> PolicyInForce | None:
    if policy is None:
        return None
    action = policy.action if tier.table is SNAPSHOTS else ArchiveAction.DELETE
    return PolicyInForce(policy.metric_type, int(getattr(policy, tier.window)), action)


async def read_max_bytes(session: AsyncSession) -> int:
    """``storage.max_bytes`` as stored, or its default (0) when absent or against its rule."""
    entry = await ConfigRepository(session).get(MAX_BYTES_KEY)
    stored = {} if entry is None else {MAX_BYTES_KEY: entry.value}
    return int(runtime_config.read_number(stored, MAX_BYTES_KEY))


async def database_usage(session: AsyncSession) -> DatabaseUsage:
    """Two cheap statements: the size (``pg_database_size`` or SQLite's page count) and the cap."""
    storage = StorageRepository(session)
    max_bytes = await read_max_bytes(session)
    return DatabaseUsage(storage.dialect, await storage.database_bytes(), max_bytes)


async def capped_usage(session: AsyncSession) -> DatabaseUsage | None:
    """The database size against ``storage.max_bytes``; None, without reading the size, when
    there is no cap (the readiness probe's check)."""
    max_bytes = await read_max_bytes(session)
    if max_bytes <= 0:
        return None
    storage = StorageRepository(session)
    return DatabaseUsage(storage.dialect, await storage.database_bytes(), max_bytes)


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _manifest_numbers(path: Path) -> tuple[int, int] | None:
    """A manifest's (rows, bytes), or None when it cannot be read or lacks them."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    rows, size = manifest.get("rows"), manifest.get("bytes")
    if not (_is_count(rows) and _is_count(size)):
        return None
    return rows, size


def scan_archive(directory: Path) -> ArchiveUsage:
    """Add up the manifests ``<directory>/<host>/<type>/<day>.manifest.json`` (blocking file
    reads: call it in a worker thread). A missing directory is an empty archive."""
    files = size = rows = unreadable = 0
    if not directory.is_dir():
        return ArchiveUsage(str(directory), False, 0, 0, 0, 0)
    try:
        manifests = sorted(directory.glob(f"*/*/*{MANIFEST_SUFFIX}"))
    except OSError as exc:
        logger.warning("cannot list the archive directory %s: %s", directory, exc)
        manifests = []
    for path in manifests:
        numbers = _manifest_numbers(path)
        if numbers is None:
            unreadable += 1
            continue
        files += 1
        rows += numbers[0]
        size += numbers[1]
    return ArchiveUsage(str(directory), True, files, size, rows, unreadable)


async def gather_storage_status(
    session: AsyncSession, archive_dir: Path, *, now: datetime | None = None
) -> StorageStatus:
    """The whole status. Read-only: the caller's unit of work has nothing to commit."""
    archive = await asyncio.to_thread(scan_archive, archive_dir)
    storage = StorageRepository(session)
    policies = {policy.metric_type: policy for policy in await storage.policies()}
    series: list[SeriesStatus] = []
    tiers: list[TierStatus] = []
    usages = await storage.history_usage([tier.table for tier in TIERS])
    for tier, usage in zip(TIERS, usages, strict=True):
        tiers.append(
            TierStatus(
                tier.name,
                usage.table,
                usage.rows,
                usage.bytes,
                usage.rows_estimated,
                usage.bytes_estimated,
            )
        )
        # Every sampler type, even without rows; "other" only when it holds some.
        kinds = list(METRIC_TYPES)
        other = usage.types.get(OTHER_TYPES)
        if other is not None and (other.rows or other.oldest is not None):
            kinds.append(OTHER_TYPES)
        for metric_type in kinds:
            entry = usage.of(metric_type)
            series.append(
                SeriesStatus(
                    metric_type,
                    tier.name,
                    entry.oldest,
                    entry.newest,
                    entry.rows,
                    entry.bytes,
                    entry.rows_estimated,
                    entry.bytes_estimated,
                    policy_in_force(resolve_policy(policies, metric_type), tier),
                )
            )
    stored = {row.name: JobStatus.from_row(row) for row in await storage.jobs()}
    jobs = [stored.pop(name, JobStatus.never_run(name)) for name in JOB_NAMES]
    jobs.extend(stored[name] for name in sorted(stored))
    return StorageStatus(
        generated_at=now or datetime.now(UTC),
        database=await database_usage(session),
        series=tuple(series),
        tiers=tuple(tiers),
        jobs=tuple(jobs),
        archive=archive,
    )
