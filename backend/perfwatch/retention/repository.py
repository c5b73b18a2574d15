from __future__ import annotations

from typing import ClassVar

from sqlalchemy import select

from perfwatch.kit.repository import Repository
from perfwatch.models import ArchivePolicy


class ArchivePolicyRepository(Repository[ArchivePolicy]):
    model = ArchivePolicy
    sortable_fields: ClassVar[frozenset[str]] = frozenset(
        {"metric_type", "retention_days", "created_at", "last_run_at"}
    )
    filterable_fields: ClassVar[frozenset[str]] = frozenset({"metric_type", "action", "enabled"})
    default_sort = ("metric_type",)
    conflict_messages: ClassVar[dict[str, str]] = {
        "metric_type": "a policy for this metric type already exists",
    }

    async def get_by_metric_type(self, metric_type: str) -> ArchivePolicy | None:
        query = select(ArchivePolicy).where(ArchivePolicy.metric_type == metric_type)
        return (await self.session.execute(query)).scalar_one_or_none()
