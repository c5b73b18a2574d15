"""Default archive policies written by ``perfwatch init`` (the runtime configuration's defaults
are the catalogue's: ``contract/runtime_config.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from perfwatch.contract.metrics import ALL_METRIC_TYPES
from perfwatch.models import ArchiveAction


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
