"""Response body of ``GET /api/v1/retention`` (and ``perfwatch retention status --json``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from perfwatch.models import ArchiveAction
from perfwatch.retention.status import StorageStatus

TierName = Literal["raw", "1m", "1h"]

_EXAMPLE: dict[str, Any] = {
    "generated_at": "2026-12-02T16:00:00Z",
    "database": {
        "dialect": "postgresql",
        "bytes": 1_278_737_431,
        "max_bytes": 1_500_000_000,
        "percent_used": 85.2,
        "warning": None,
    },
    "series": [
        {
            "metric_type": "cpu",
            "tier": "raw",
            "oldest": "2026-11-29T16:00:00Z",
            "newest": "2026-12-02T15:59:59Z",
            "rows": 259_200,
            "rows_estimated": True,
            "bytes": 158_294_016,
            "bytes_estimated": False,
            "policy": {"source": "*", "keep_days": 3, "action": "delete"},
        },
        {
            "metric_type": "processes",
            "tier": "1h",
            "oldest": "2025-12-02T16:00:00Z",
            "newest": "2026-12-02T15:00:00Z",
            "rows": 8_760,
            "rows_estimated": True,
            "bytes": 8_888_320,
            "bytes_estimated": False,
            "policy": {"source": "processes", "keep_days": 365, "action": "delete"},
        },
    ],
    "tiers": [
        {
            "tier": "raw",
            "table": "metric_snapshots",
            "rows": 1_209_528,
            "rows_estimated": True,
            "bytes": 1_007_075_328,
            "bytes_estimated": False,
        }
    ],
    "jobs": [
        {
            "name": "retention",
            "running": False,
            "last_started_at": "2026-12-02T15:00:00Z",
            "last_finished_at": "2026-12-02T15:00:01Z",
            "last_success_at": "2026-12-02T15:00:01Z",
            "next_run_at": "2026-12-02T16:00:00Z",
            "last_error": None,
            "watermark": None,
            "details": {"dropped_partitions": 7},
        }
    ],
    "archive": {
        "directory": "/var/lib/perfwatch/archive",
        "exists": True,
        "files": 30,
        "bytes": 41_943_040,
        "rows": 518_400,
        "unreadable": 0,
    },
}


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PolicyInForceOut(_Out):
    source: str = Field(
        description="The policy that applies: the type's own, or '*' (the fallback); disabled "
        "policies are skipped",
        examples=["*"],
    )
    keep_days: int = Field(
        description="Days this tier is kept: raw_days, minute_days or retention_days"
    )
    action: ArchiveAction = Field(
        description="Raw: deleted, or archived to a verified file first; tiers: deleted"
    )


class SeriesStorageOut(_Out):
    metric_type: str = Field(
        description="A sampler type, or 'other': every type without a partition of its own"
    )
    tier: TierName = Field(description="raw snapshots, the 1-minute tier or the 1-hour tier")
    oldest: datetime | None = Field(description="Time of the oldest row; null: no rows")
    newest: datetime | None = Field(description="Time of the newest row; null: no rows")
    rows: int = Field(description="Rows held; an estimate when rows_estimated")
    rows_estimated: bool = Field(
        description="True on PostgreSQL: catalogue statistics (pg_class.reltuples) scaled to "
        "the partitions' current size, not a count; SQLite counts exactly"
    )
    bytes: int = Field(description="Bytes on disk with indexes (PostgreSQL: TOAST too)")
    bytes_estimated: bool = Field(
        description="True on SQLite: the database's used pages shared out by rows and document "
        "sizes (SQLite keeps no size per table); PostgreSQL measures each partition"
    )
    policy: PolicyInForceOut | None = Field(description="null: no enabled policy, kept for good")


class TierStorageOut(_Out):
    tier: TierName
    table: str
    rows: int = Field(
        description="Every row of the table; on PostgreSQL with rows waiting in the DEFAULT "
        "partition for their period's partition, which belong to no type above"
    )
    rows_estimated: bool
    bytes: int
    bytes_estimated: bool


class DatabaseStorageOut(_Out):
    dialect: Literal["postgresql", "sqlite"]
    bytes: int = Field(
        description="The whole database: pg_database_size, or the SQLite file's pages"
    )
    max_bytes: int = Field(description="The config key storage.max_bytes; 0: no cap")
    percent_used: float | None = Field(description="bytes / max_bytes in %; null without a cap")
    warning: str | None = Field(
        description="Set above 90 % of the cap (also reported by /health/ready)"
    )


class JobOut(_Out):
    name: str = Field(description="tiers (rolls raw rows up) or retention (expires, archives)")
    running: bool = Field(description="Started and not finished (or stopped mid-run)")
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_success_at: datetime | None = Field(
        description="last_finished_at when the last run had no error"
    )
    next_run_at: datetime | None
    last_error: str | None
    watermark: datetime | None = Field(
        description="The job's progress mark (tiers: every minute before it is rolled up)"
    )
    details: dict[str, Any] | None = Field(description="What the last run did, as the job says")


class ArchiveOut(_Out):
    directory: str = Field(description="PERFWATCH_ARCHIVE_DIR (default <data dir>/archive)")
    exists: bool
    files: int = Field(description="Archived host/type/days: readable manifests")
    bytes: int = Field(description="The archive files' bytes, as their manifests record them")
    rows: int
    unreadable: int = Field(description="Manifests that could not be read")


class StorageStatusOut(_Out):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    generated_at: datetime
    database: DatabaseStorageOut
    series: list[SeriesStorageOut] = Field(
        description="Per tier, then metric type: every sampler type, 'other' when it holds rows"
    )
    tiers: list[TierStorageOut]
    jobs: list[JobOut] = Field(description="tiers and retention first, even before any run")
    archive: ArchiveOut

    @classmethod
    def of(cls, status: StorageStatus) -> StorageStatusOut:
        return cls.model_validate(status)
