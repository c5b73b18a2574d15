from __future__ import annotations

import builtins
from datetime import datetime
from typing import ClassVar

from sqlalchemy import select, update

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

    async def enabled(self) -> builtins.list[ArchivePolicy]:
        """Every enabled policy (one per metric type, so a handful of rows)."""
        query = select(ArchivePolicy).where(ArchivePolicy.enabled.is_(True))
        return list((await self.session.execute(query)).scalars())

    async def mark_applied(self, at: datetime) -> None:
        """Set ``last_run_at`` of every enabled policy; ``updated_at`` (when a person last
        changed the policy) is left as it was."""
        await self.session.execute(
            update(ArchivePolicy)
            .where(ArchivePolicy.enabled.is_(True))
            .values(last_run_at=at, updated_at=ArchivePolicy.updated_at)
        )
