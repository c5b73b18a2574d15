"""Request and response bodies of the archive policies API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from perfwatch.models import ArchiveAction
from perfwatch.retention.service import (
    MAX_DOWNSAMPLE_INTERVAL,
    MAX_RETENTION_DAYS,
    POLICY_METRIC_TYPES,
)

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
RetentionDays = Annotated[
    int,
    Field(ge=1, le=MAX_RETENTION_DAYS, description="Days raw snapshots are kept", examples=[7]),
]
DownsampleAfterDays = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Age in days after which history is downsampled; less than retention_days; "
        "set together with downsample_interval (both null: no downsampling)",
        examples=[1],
    ),
]
DownsampleInterval = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_DOWNSAMPLE_INTERVAL,
        description="Bucket width of downsampled history, seconds",
        examples=[300],
    ),
]

_POLICY_EXAMPLE: dict[str, Any] = {
    "id": "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
    "metric_type": "processes",
    "retention_days": 7,
    "downsample_after_days": 1,
    "downsample_interval": 300,
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
    retention_days: int
    downsample_after_days: int | None
    downsample_interval: int | None
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
                    "retention_days": 7,
                    "downsample_after_days": 1,
                    "downsample_interval": 300,
                    "action": "archive",
                },
                {"metric_type": "sensors", "retention_days": 90},
            ]
        },
    )

    metric_type: MetricType
    retention_days: RetentionDays
    downsample_after_days: DownsampleAfterDays | None = None
    downsample_interval: DownsampleInterval | None = None
    action: ArchiveAction = Field(
        default=ArchiveAction.DELETE, description="At the end of retention: delete or archive"
    )
    enabled: bool = Field(default=True, description="Disabled policies are ignored")


class ArchivePolicyUpdate(BaseModel):
    """Only the fields sent are changed; ``null`` clears the downsampling fields."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"retention_days": 14},
                {"enabled": False},
                {"downsample_after_days": None, "downsample_interval": None},
            ]
        },
    )

    metric_type: MetricType | None = None
    retention_days: RetentionDays | None = None
    downsample_after_days: DownsampleAfterDays | None = None
    downsample_interval: DownsampleInterval | None = None
    action: ArchiveAction | None = None
    enabled: bool | None = None
