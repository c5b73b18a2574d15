"""Archive policy rules: which metric types, how long each resolution is kept, archive or not.
Flushes through the repository; the caller's unit of work commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.contract.metrics import ALL_METRIC_TYPES, METRIC_TYPES
from perfwatch.errors import ConflictError, NotFoundError, ValidationFailedError
from perfwatch.kit.repository import MAX_PAGE_SIZE
from perfwatch.models import ArchiveAction, ArchivePolicy
from perfwatch.retention.repository import ArchivePolicyRepository

POLICY_METRIC_TYPES = (*METRIC_TYPES, ALL_METRIC_TYPES)
MAX_RETENTION_DAYS = 36_500  # about a century: "keep for good" without an unbounded number
# The three windows, finest first: each resolution is kept at least as long as the finer one.
WINDOWS = ("raw_days", "minute_days", "retention_days")
POLICY_FIELDS = frozenset({"metric_type", *WINDOWS, "action", "enabled"})
REQUIRED_FIELDS = POLICY_FIELDS


def _whole(name: str, value: Any, minimum: int, maximum: int, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailedError(f"{name} must be a whole number of {unit}")
    if not minimum <= value <= maximum:
        raise ValidationFailedError(
            f"{name} must be between {minimum} and {maximum} {unit}, got {value}"
        )


def check_policy(values: Mapping[str, Any]) -> None:
    """Raise ``ValidationFailedError`` unless ``values`` (every field) make a sensible policy."""
    missing = sorted(name for name in REQUIRED_FIELDS if values.get(name) is None)
    if missing:
        raise ValidationFailedError(f"{', '.join(missing)} cannot be null")
    metric_type = values["metric_type"]
    if metric_type not in POLICY_METRIC_TYPES:
        raise ValidationFailedError(
            f"metric_type must be one of {', '.join(METRIC_TYPES)} or '*' (every other type), "
            f"got {str(metric_type)[:64]!r}"
        )
    for name in WINDOWS:
        _whole(name, values[name], 1, MAX_RETENTION_DAYS, "days")
    if not isinstance(values["action"], ArchiveAction):
        raise ValidationFailedError("action must be 'delete' or 'archive'")
    if not isinstance(values["enabled"], bool):
        raise ValidationFailedError("enabled must be true or false")
    raw, minute, hour = (values[name] for name in WINDOWS)
    if not raw <= minute <= hour:
        raise ValidationFailedError(
            f"raw_days ({raw}) <= minute_days ({minute}) <= retention_days ({hour}) must hold: "
            "a coarser resolution is built from the finer one, so it is kept at least as long"
        )


class ArchivePolicyService:
    def __init__(self, session: AsyncSession) -> None:
        self.policies = ArchivePolicyRepository(session)

    async def list_policies(self) -> list[ArchivePolicy]:
        # One row per metric type (unique), so a single page holds them all.
        return (await self.policies.list(limit=MAX_PAGE_SIZE)).items

    async def get_policy(self, policy_id: uuid.UUID) -> ArchivePolicy:
        policy = await self.policies.get(policy_id)
        if policy is None:
            raise NotFoundError(f"no archive policy with id {policy_id}")
        return policy

    async def _refuse_duplicate(self, metric_type: str, *, other_than: uuid.UUID | None) -> None:
        existing = await self.policies.get_by_metric_type(metric_type)
        if existing is not None and existing.id != other_than:
            raise ConflictError(
                f"a policy for metric type {metric_type!r} already exists (id {existing.id}); "
                "change that one instead"
            )

    async def create_policy(self, values: Mapping[str, Any]) -> ArchivePolicy:
        unknown = set(values) - POLICY_FIELDS
        if unknown:
            raise ValidationFailedError(f"unknown field(s) {', '.join(sorted(unknown))}")
        fields: dict[str, Any] = {
            "action": ArchiveAction.DELETE,
            "enabled": True,
            **values,
        }
        check_policy(fields)
        await self._refuse_duplicate(fields["metric_type"], other_than=None)
        return await self.policies.create(**fields)

    async def update_policy(
        self, policy_id: uuid.UUID, changes: Mapping[str, Any]
    ) -> ArchivePolicy:
        unknown = set(changes) - POLICY_FIELDS
        if unknown:
            raise ValidationFailedError(f"cannot change {', '.join(sorted(unknown))}")
        policy = await self.get_policy(policy_id)
        merged = {name: getattr(policy, name) for name in POLICY_FIELDS} | dict(changes)
        check_policy(merged)
        if "metric_type" in changes and changes["metric_type"] != policy.metric_type:
            await self._refuse_duplicate(changes["metric_type"], other_than=policy.id)
        if not changes:
            return policy
        return await self.policies.update(policy, **dict(changes))

    async def delete_policy(self, policy_id: uuid.UUID) -> None:
        await self.policies.delete(await self.get_policy(policy_id))
