"""The policy in force per metric type: its own enabled policy, else the enabled ``*``, else
none (kept for good)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.models import ArchiveAction
from perfwatch.retention.policies import effective_policies
from perfwatch.retention.repository import ArchivePolicyRepository


async def add(session: AsyncSession, metric_type: str, raw: int, **values: object) -> None:
    await ArchivePolicyRepository(session).create(
        metric_type=metric_type, raw_days=raw, minute_days=30, retention_days=60, **values
    )


async def test_no_policy_keeps_everything(session: AsyncSession) -> None:
    policies = await effective_policies(session)
    assert policies.for_type("cpu") is None
    assert policies.all() == []


async def test_own_policy_then_the_fallback_and_disabled_ones_are_absent(
    session: AsyncSession,
) -> None:
    await add(session, "*", 3)
    await add(session, "cpu", 1)
    await add(session, "processes", 2, action=ArchiveAction.ARCHIVE)
    await add(session, "memory", 5, enabled=False)
    policies = await effective_policies(session)

    cpu, processes = policies.for_type("cpu"), policies.for_type("processes")
    assert cpu is not None and (cpu.raw_days, cpu.source, cpu.archives) == (1, "cpu", False)
    assert processes is not None and (processes.raw_days, processes.archives) == (2, True)
    for fallback_type in ("memory", "network", "gpu"):  # disabled, none of its own, unknown
        policy = policies.for_type(fallback_type)
        assert policy is not None and (policy.raw_days, policy.source) == (3, "*")
    assert sorted(p.source for p in policies.all()) == ["*", "cpu", "processes"]


async def test_a_disabled_fallback_leaves_other_types_without_a_policy(
    session: AsyncSession,
) -> None:
    await add(session, "*", 3, enabled=False)
    await add(session, "cpu", 1)
    policies = await effective_policies(session)
    assert policies.for_type("memory") is None
    assert policies.for_type("cpu") is not None
