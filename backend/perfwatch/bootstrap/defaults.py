"""Default runtime configuration and archive policies written by ``perfwatch init``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perfwatch.models import ArchiveAction
from perfwatch.models.archive_policy import ALL_METRIC_TYPES

# The metric types the sampler produces; the seed generates each of them.
METRIC_TYPES = ("cpu", "memory", "disk", "network", "processes", "system", "sensors")


@dataclass(frozen=True)
class ConfigDefault:
    key: str
    value: Any
    description: str


DEFAULT_CONFIG: tuple[ConfigDefault, ...] = (
    ConfigDefault("sampler.interval.cpu", 1, "Seconds between CPU samples"),
    ConfigDefault("sampler.interval.memory", 1, "Seconds between memory samples"),
    ConfigDefault("sampler.interval.network", 1, "Seconds between network samples"),
    ConfigDefault("sampler.interval.disk_io", 1, "Seconds between disk I/O samples"),
    ConfigDefault("sampler.interval.disk_usage", 30, "Seconds between filesystem usage samples"),
    ConfigDefault(
        "sampler.interval.connections",
        30,
        "Seconds between full TCP/UDP connection-state counts (costly on busy hosts)",
    ),
    ConfigDefault("sampler.interval.processes", 5, "Seconds between process table samples"),
    ConfigDefault("sampler.interval.system", 60, "Seconds between system information samples"),
    ConfigDefault("sampler.interval.sensors", 10, "Seconds between sensor samples"),
    ConfigDefault("sampler.processes.top_n", 10, "Processes listed by CPU and by memory"),
    ConfigDefault("sampler.batch.max_rows", 500, "Snapshots buffered before a database write"),
    ConfigDefault(
        "sampler.batch.max_seconds", 5, "Longest wait before buffered snapshots are written"
    ),
    ConfigDefault("cache.latest_ttl_seconds", 10, "Lifetime of the latest-snapshot cache entries"),
    ConfigDefault("api.max_points", 1500, "Most points a downsampled range query returns"),
)


@dataclass(frozen=True)
class PolicyDefault:
    metric_type: str
    retention_days: int
    downsample_after_days: int | None
    downsample_interval: int | None
    action: ArchiveAction


DEFAULT_POLICIES: tuple[PolicyDefault, ...] = (
    # Raw per-second history for a month, averaged to one-minute points after a week.
    PolicyDefault(ALL_METRIC_TYPES, 30, 7, 60, ArchiveAction.DELETE),
    # Process tables are the bulkiest documents: a week raw, then archived.
    PolicyDefault("processes", 7, 1, 300, ArchiveAction.ARCHIVE),
)
