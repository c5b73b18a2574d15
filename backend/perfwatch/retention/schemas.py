"""Request and response bodies of the archive policies API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from perfwatch.models import ArchiveAction
from perfwatch.retention.service import MAX_RETENTION_DAYS, POLICY_METRIC_TYPES

MetricType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="One of " + ", ".join(POLICY_METRIC_TYPES) + " ('*': every type without "
        "a policy of its own)",
        examples=["processes"],
    ),
]
RawDays = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Days raw snapshots (every sample) are kept; at most minute_days",
        examples=[3],
    ),
]
MinuteDays = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Days the 1-minute tier is kept; between raw_days and retention_days",
        examples=[30],
    ),
]
RetentionDays = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Days the 1-hour tier is kept: all of the history; at least minute_days",
        examples=[730],
    ),
]

_POLICY_EXAMPLE: dict[str, Any] = {
    "id": "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
    "metric_type": "processes",
    "raw_days": 2,
    "minute_days": 30,
    "retention_days": 365,
    "action": "archive",
    "enabled": True,
    "last_run_at": None,
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-02T08:30:00Z",
}


class ArchivePolicyOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_POLICY_EXAMPLE]}
    )

    id: uuid.UUID
    metric_type: str
    raw_days: int
    minute_days: int
    retention_days: int
    action: ArchiveAction
    enabled: bool
    last_run_at: datetime | None = Field(description="When the policy was last applied")
    created_at: datetime
    updated_at: datetime


class ArchivePolicyList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_POLICY_EXAMPLE], "total": 1}]}
    )

    items: list[ArchivePolicyOut] = Field(description="Every policy, sorted by metric type")
    total: int


class ArchivePolicyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "metric_type": "processes",
                    "raw_days": 2,
                    "minute_days": 30,
                    "retention_days": 365,
                    "action": "archive",
                },
                {"metric_type": "sensors", "raw_days": 7, "minute_days": 90, "retention_days": 730},
            ]
        },
    )

    metric_type: MetricType
    raw_days: RawDays
    minute_days: MinuteDays
    retention_days: RetentionDays
    action: ArchiveAction = Field(
        default=ArchiveAction.DELETE,
        description="When raw snapshots leave raw_days: delete them, or archive them to "
        "verified files first (docs/retention.md)",
    )
    enabled: bool = Field(default=True, description="Disabled policies are ignored")


class ArchivePolicyUpdate(BaseModel):
    """Only the fields sent are changed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"retention_days": 365},
                {"enabled": False},
                {"raw_days": 1, "minute_days": 14},
            ]
        },
    )

    metric_type: MetricType | None = None
    raw_days: RawDays | None = None
    minute_days: MinuteDays | None = None
    retention_days: RetentionDays | None = None
    action: ArchiveAction | None = None
    enabled: bool | None = None
