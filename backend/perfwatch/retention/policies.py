"""The policy in force for each metric type: its own enabled policy, else the enabled ``*``
policy, else none (that type's history is kept for good)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.contract.metrics import ALL_METRIC_TYPES
from perfwatch.models import ArchiveAction, ArchivePolicy
from perfwatch.retention.repository import ArchivePolicyRepository


@dataclass(frozen=True, slots=True)
class PolicyWindows:
    """Days each resolution is kept, and whether raw snapshots are archived before they go.
    ``source`` is the policy's own ``metric_type`` (``*`` when the fallback applies)."""

    raw_days: int
    minute_days: int
    retention_days: int
    action: ArchiveAction
    source: str

    @property
    def archives(self) -> bool:
        return self.action is ArchiveAction.ARCHIVE

    @classmethod
    def of(cls, policy: ArchivePolicy) -> PolicyWindows:
        return cls(
            policy.raw_days,
            policy.minute_days,
            policy.retention_days,
            policy.action,
            policy.metric_type,
        )


@dataclass(frozen=True, slots=True)
class EffectivePolicies:
    own: dict[str, PolicyWindows] = field(default_factory=dict)
    fallback: PolicyWindows | None = None

    def for_type(self, metric_type: str) -> PolicyWindows | None:
        """The windows in force for ``metric_type``; None: keep everything."""
        return self.own.get(metric_type, self.fallback)

    def all(self) -> list[PolicyWindows]:
        """Every distinct policy in force (the fallback included)."""
        found = list(self.own.values())
        return found if self.fallback is None else [*found, self.fallback]


async def effective_policies(session: AsyncSession) -> EffectivePolicies:
    """Read the enabled policies once: disabled ones are as if absent."""
    policies = {
        policy.metric_type: PolicyWindows.of(policy)
        for policy in await ArchivePolicyRepository(session).enabled()
    }
    fallback = policies.pop(ALL_METRIC_TYPES, None)
    return EffectivePolicies(policies, fallback)
