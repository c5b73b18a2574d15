"""Response models of the metrics read API: routers can return them as they are."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from perfwatch.metrics.records import Bucket
from perfwatch.metrics.tiers.plan import Source as SeriesSource

Source = Literal["cache", "database"]

_T0 = "2026-11-27T10:00:00Z"


class MetricTypeList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"metric_types": ["cpu", "memory", "disk", "network"]}]}
    )

    metric_types: list[str] = Field(description="Known types first, then other stored ones")


class HostInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "host": "web-1",
                    "last_seen": "2026-11-27T10:59:59Z",
                    "metric_types": {
                        "cpu": "2026-11-27T10:59:59Z",
                        "system": "2026-11-27T10:59:00Z",
                    },
                }
            ]
        }
    )

    host: str
    last_seen: datetime = Field(description="Time of the host's newest snapshot of any type")
    metric_types: dict[str, datetime] = Field(description="Newest snapshot time per type")


class HostList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "hosts": [
                        {
                            "host": "web-1",
                            "last_seen": "2026-11-27T10:59:59Z",
                            "metric_types": {"cpu": "2026-11-27T10:59:59Z"},
                        }
                    ]
                }
            ]
        }
    )

    hosts: list[HostInfo]


class LatestSnapshot(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "host": "web-1",
                    "metric_type": "cpu",
                    "captured_at": _T0,
                    "data": {"schema_version": 1, "percent": 1.96, "load_average": {"1m": 0.31}},
                    "source": "cache",
                }
            ]
        }
    )

    host: str
    metric_type: str
    captured_at: datetime
    data: dict[str, Any] = Field(description="The metric document (docs/metrics.md)")
    source: Source = Field(description="'cache' (latest-value cache) or 'database'")


# A series' buckets are the repository's dataclasses as they are: pydantic writes them out
# directly, where building and validating a model per bucket took a third of a 24 h series.
SeriesBucket = Bucket


class Series(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "host": "web-1",
                    "metric_type": "cpu",
                    "start": "2026-11-26T10:00:00Z",
                    "end": _T0,
                    "step_seconds": 60,
                    "resolution_seconds": 60,
                    "source": "1m",
                    "fields": ["percent"],
                    "buckets": [
                        {
                            "start": "2026-11-26T10:00:00Z",
                            "count": 60,
                            "fields": {"percent": {"avg": 12.4, "min": 3.1, "max": 40.2}},
                        }
                    ],
                }
            ]
        }
    )

    host: str
    metric_type: str
    start: datetime
    end: datetime
    step_seconds: int = Field(description="Bucket width chosen (a 'nice' step, epoch-aligned)")
    resolution_seconds: Literal[1, 60, 3600] = Field(
        description="How fine the data the buckets were built from is: 1 (raw snapshots, "
        "as often as they were taken), 60 (the 1-minute tier) or 3600 (the 1-hour tier). "
        "The newest minutes, not rolled up yet, always come from finer data",
        examples=[1, 60, 3600],
    )
    source: SeriesSource = Field(
        description="Where the buckets were read from: 'raw' (snapshots), '1m' or '1h' (the "
        "resolution tiers, used for steps of whole minutes or hours and for ranges older "
        "than raw retention)",
        examples=["raw", "1m", "1h"],
    )
    fields: list[str]
    buckets: list[SeriesBucket] = Field(description="Oldest first; empty buckets are left out")


class RawSnapshot(BaseModel):
    id: int
    captured_at: datetime
    data: dict[str, Any]


class RawPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "host": "web-1",
                    "metric_type": "memory",
                    "start": "2026-11-27T09:59:00Z",
                    "end": _T0,
                    "items": [
                        {
                            "id": 42,
                            "captured_at": "2026-11-27T09:59:00Z",
                            "data": {"schema_version": 1, "virtual": {"percent": 2.7}},
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    host: str
    metric_type: str
    start: datetime
    end: datetime
    items: list[RawSnapshot]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class FieldSummary(BaseModel):
    count: int = Field(description="Snapshots with a number at this field")
    min: float | None
    avg: float | None
    max: float | None
    p95: float | None = Field(description="95th percentile, interpolated (percentile_cont)")


class Summary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "host": "web-1",
                    "metric_type": "cpu",
                    "start": "2026-11-26T10:00:00Z",
                    "end": _T0,
                    "count": 86400,
                    "fields": {
                        "percent": {
                            "count": 86400,
                            "min": 0.5,
                            "avg": 12.4,
                            "max": 99.0,
                            "p95": 61.2,
                        }
                    },
                }
            ]
        }
    )

    host: str
    metric_type: str
    start: datetime
    end: datetime
    count: int = Field(description="Snapshots in the range")
    fields: dict[str, FieldSummary]
