from __future__ import annotations

from typing import ClassVar

from sqlalchemy import case, select

from perfwatch.contract.metrics import ALL_METRIC_TYPES
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

    async def enabled_for_type(self, metric_type: str) -> ArchivePolicy | None:
        """The enabled policy that governs ``metric_type``: its own, else the ``*`` fallback.

        Disabling a type's own policy therefore hands the type back to the ``*`` policy; to keep
        a type forever, give it its own policy with a long retention instead.
        """
        query = (
            select(ArchivePolicy)
            .where(
                ArchivePolicy.enabled.is_(True),
                ArchivePolicy.metric_type.in_([metric_type, ALL_METRIC_TYPES]),
            )
            .order_by(case((ArchivePolicy.metric_type == ALL_METRIC_TYPES, 1), else_=0))
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()
