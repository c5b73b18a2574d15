"""``ConfigRepository`` (typed runtime settings) and ``ArchivePolicyRepository`` (retention rules),
on PostgreSQL and SQLite. Settings change through ``ConfigService`` (test_config_service.py)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.config_store.repository import ConfigRepository
from perfwatch.errors import ConflictError
from perfwatch.kit.repository import MAX_PAGE_SIZE
from perfwatch.models import ArchiveAction, ArchivePolicy
from perfwatch.retention.repository import ArchivePolicyRepository
from perfwatch.users.repository import UserRepository


# ----- config ----------------------------------------------------------------------------------
async def test_as_dict_returns_every_entry(session: AsyncSession) -> None:
    repo = ConfigRepository(session)
    assert await repo.as_dict() == {}
    await repo.create(key="b.key", value=[1, 2])
    await repo.create(key="a.key", value={"x": "y"})
    await repo.create(key="c.key", value="text")

    result = await repo.as_dict()

    assert result == {"a.key": {"x": "y"}, "b.key": [1, 2], "c.key": "text"}
    assert list(result) == ["a.key", "b.key", "c.key"]


async def test_as_dict_is_not_cut_at_a_page_size(session: AsyncSession) -> None:
    repo = ConfigRepository(session)
    entries = [{"key": f"plugin.{n:04d}", "value": n} for n in range(MAX_PAGE_SIZE + 5)]
    await repo.bulk_create(entries)

    result = await repo.as_dict()

    assert len(result) == MAX_PAGE_SIZE + 5
    assert result["plugin.1004"] == 1004


async def test_config_list_filters_on_who_changed_it(session: AsyncSession) -> None:
    repo = ConfigRepository(session)
    for key, value, who in (("one", 1, "cli"), ("two", 2, "api"), ("three", 3, "cli")):
        await repo.create(key=key, value=value, updated_by=who)

    page = await repo.list(filters={"updated_by": "cli"})

    assert [entry.key for entry in page.items] == ["one", "three"]


async def test_creating_a_key_twice_is_a_conflict(session: AsyncSession) -> None:
    repo = ConfigRepository(session)
    await repo.create(key="dup", value=1)

    with pytest.raises(ConflictError, match="ConfigEntry conflicts with an existing row"):
        await repo.create(key="dup", value=2)

    assert (await repo.as_dict())["dup"] == 1


# ----- archive policies ------------------------------------------------------------------------
async def add_policy(
    repo: ArchivePolicyRepository, metric_type: str, retention_days: int = 30, **values: Any
) -> ArchivePolicy:
    windows = {"raw_days": 1, "minute_days": retention_days} | values
    return await repo.create(metric_type=metric_type, retention_days=retention_days, **windows)


async def test_a_policy_gets_its_defaults(session: AsyncSession) -> None:
    repo = ArchivePolicyRepository(session)
    policy = await add_policy(repo, "cpu", 14)

    session.expunge_all()
    stored = await repo.get_by_metric_type("cpu")

    assert stored is not None
    assert stored.id == policy.id
    assert stored.retention_days == 14
    assert stored.action is ArchiveAction.DELETE
    assert stored.enabled is True
    assert (stored.raw_days, stored.minute_days) == (1, 14)
    assert stored.last_run_at is None
    assert await repo.get_by_metric_type("memory") is None


async def test_duplicate_metric_type_is_a_conflict(session: AsyncSession) -> None:
    repo = ArchivePolicyRepository(session)
    first = await add_policy(repo, "cpu", 30)

    with pytest.raises(ConflictError) as caught:
        await add_policy(repo, "cpu", 7)

    assert str(caught.value) == "a policy for this metric type already exists"
    assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
    assert await repo.count() == 1
    assert (await repo.get_by_metric_type("cpu")) is first
    assert first.retention_days == 30


async def test_policies_list_filters_and_sorts(session: AsyncSession) -> None:
    repo = ArchivePolicyRepository(session)
    await add_policy(repo, "cpu", 10)
    await add_policy(repo, "disk", 5, action=ArchiveAction.ARCHIVE)
    await add_policy(repo, "memory", 20, enabled=False)

    by_retention = await repo.list(sort="-retention_days")
    archived = await repo.list(filters={"action": ArchiveAction.ARCHIVE})
    enabled = await repo.list(filters={"enabled": True})

    assert [p.metric_type for p in by_retention.items] == ["memory", "cpu", "disk"]
    assert [p.metric_type for p in archived.items] == ["disk"]
    assert [p.metric_type for p in enabled.items] == ["cpu", "disk"]


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"retention_days": 0, "minute_days": 0, "raw_days": 0}, "retention_days_positive"),
        ({"retention_days": -1}, "retention_days_positive"),
        ({"raw_days": 0}, "tiers_ordered"),
        ({"raw_days": 31}, "tiers_ordered"),
        ({"minute_days": 31}, "tiers_ordered"),
    ],
)
async def test_check_constraints_reject_through_the_repository(
    session: AsyncSession, values: dict[str, Any], constraint: str
) -> None:
    repo = ArchivePolicyRepository(session)

    with pytest.raises(ConflictError) as caught:
        await repo.create(
            **(
                {"metric_type": "cpu", "raw_days": 1, "minute_days": 7, "retention_days": 30}
                | values
            )
        )

    message = str(caught.value)
    assert constraint in message
    assert "existing row" not in message, "a broken rule is not a clash with another row"
    assert await repo.count() == 0
    assert (await add_policy(repo, "cpu", 1)).retention_days == 1


INSERT_POLICY = (
    "INSERT INTO archive_policies (id, metric_type, raw_days, minute_days, retention_days, "
    "action) VALUES (:id, 'cpu', :raw, :minute, :retention_days, :action)"
)


@pytest.mark.parametrize(
    ("raw", "minute", "retention_days", "action"),
    [
        (0, 0, 0, "delete"),
        (0, 7, 30, "delete"),
        (8, 7, 30, "delete"),
        (1, 31, 30, "delete"),
        (1, 7, 30, "explode"),
    ],
)
async def test_the_database_itself_enforces_the_policy_rules(
    session: AsyncSession, raw: int, minute: int, retention_days: int, action: str
) -> None:
    """Raw SQL skips every Python check: only the table's constraints stand in the way."""
    parameters: dict[str, Any] = {
        "id": "0b5c8a0e9d6f4d0a8a4a0e3c0b6c2f11",
        "raw": raw,
        "minute": minute,
        "retention_days": retention_days,
        "action": action,
    }
    if session.bind.dialect.name == "postgresql":
        parameters["id"] = "0b5c8a0e-9d6f-4d0a-8a4a-0e3c0b6c2f11"

    with pytest.raises(IntegrityError, match=r"(?i)check constraint"):
        async with session.begin_nested():
            await session.execute(text(INSERT_POLICY), parameters)

    valid = parameters | {"retention_days": 1, "raw": 1, "minute": 1, "action": "delete"}
    await session.execute(text(INSERT_POLICY), valid)
    assert await ArchivePolicyRepository(session).count() == 1


# ----- integrity errors that are not uniqueness ---------------------------------------------
async def test_a_missing_required_value_is_not_reported_as_a_duplicate(
    session: AsyncSession,
) -> None:
    users = UserRepository(session)

    with pytest.raises(ConflictError) as caught:
        await users.create(username="alice", email="a@example.com", password_hash=None)

    assert "already exists" not in str(caught.value)
    assert "password_hash" in str(caught.value)
    policies = ArchivePolicyRepository(session)
    with pytest.raises(ConflictError) as caught:
        await policies.create(metric_type=None, retention_days=3)
    assert "already exists" not in str(caught.value)
    assert "metric_type" in str(caught.value)
