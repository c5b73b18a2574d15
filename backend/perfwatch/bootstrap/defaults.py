"""Default archive policies written by ``perfwatch init`` (the runtime configuration's defaults
are the catalogue's: ``contract/runtime_config.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from perfwatch.contract.metrics import ALL_METRIC_TYPES
from perfwatch.models import ArchiveAction


@dataclass(frozen=True)
class PolicyDefault:
    metric_type: str
    raw_days: int
    minute_days: int
    retention_days: int
    action: ArchiveAction


# Sized in docs/retention.md: one host at the default intervals stays under ~1.5 GB.
DEFAULT_POLICIES: tuple[PolicyDefault, ...] = (
    # Every sample for 2 days, 1-minute points for a month, 1-hour points for two years: raw
    # is ~0.4 GB per host-day, and 3 days of it would pass 1.5 GB (docs/retention.md).
    PolicyDefault(ALL_METRIC_TYPES, 2, 30, 730, ArchiveAction.DELETE),
    # Process tables are the bulkiest documents: 2 days raw, archived to files, then a year.
    PolicyDefault("processes", 2, 30, 365, ArchiveAction.ARCHIVE),
)
