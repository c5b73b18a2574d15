"""ORM models, one module per table. Importing this package registers every table on ``Base``."""

from perfwatch.db.base import Base
from perfwatch.models.archive_policy import ArchiveAction, ArchivePolicy
from perfwatch.models.config_entry import ConfigEntry
from perfwatch.models.maintenance_state import MaintenanceState
from perfwatch.models.metric_snapshot import MetricSnapshot
from perfwatch.models.metric_tier import MetricTierHour, MetricTierMinute, MetricTierPending
from perfwatch.models.user import User, UserRole

__all__ = [
    "ArchiveAction",
    "ArchivePolicy",
    "Base",
    "ConfigEntry",
    "MaintenanceState",
    "MetricSnapshot",
    "MetricTierHour",
    "MetricTierMinute",
    "MetricTierPending",
    "User",
    "UserRole",
]
