"""The generic ``Repository[Model]`` exercised through ``UserRepository`` (and the others where a
feature only they have matters), on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.config_store.repository import ConfigRepository
from perfwatch.errors import ConflictError, NotFoundError, ValidationFailedError
from perfwatch.kit.repository import MAX_PAGE_SIZE
from perfwatch.models import User, UserRole
from perfwatch.users.repository import UserRepository
from tests.support.helpers import user_values

BASE_TIME = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def make_users(repo: UserRepository, *names: str, **overrides: Any) -> list[User]:
    return await repo.bulk_create([user_values(name, **overrides) for name in names])


async def reload(session: AsyncSession, repo: UserRepository, user_id: uuid.UUID) -> User:
    """Forget every loaded object and read the row back from the database."""
    session.expunge_all()
    user = await repo.get(user_id, include_deleted=True)
    assert user is not None
    return user


# ----- get / get_many -------------------------------------------------------------------------
async def test_get_returns_the_row_and_none_for_an_unknown_id(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice = await repo.create(**user_values("alice"))

    found = await repo.get(alice.id)

    assert found is not None
    assert found.username == "alice"
    assert await repo.get(uuid.uuid4()) is None


async def test_get_or_raise_raises_not_found_naming_the_model(session: AsyncSession) -> None:
    repo = UserRepository(session)
    missing = uuid.uuid4()

    with pytest.raises(NotFoundError, match=f"User {missing} not found"):
        await repo.get_or_raise(missing)


async def test_get_many_returns_the_requested_rows_only(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice, bob, _carol = await make_users(repo, "alice", "bob", "carol")

    found = await repo.get_many([alice.id, bob.id, uuid.uuid4()])

    assert sorted(user.username for user in found) == ["alice", "bob"]


async def test_get_many_with_no_ids_returns_an_empty_list(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await make_users(repo, "alice")

    assert await repo.get_many([]) == []
    assert await repo.get_many(iter(())) == []


async def test_get_many_skips_soft_deleted_rows_unless_asked(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice, bob = await make_users(repo, "alice", "bob")
    await repo.soft_delete(bob)

    assert [user.username for user in await repo.get_many([alice.id, bob.id])] == ["alice"]
    both = await repo.get_many([alice.id, bob.id], include_deleted=True)
    assert sorted(user.username for user in both) == ["alice", "bob"]


# ----- list: pagination ------------------------------------------------------------------------
async def test_list_pages_through_rows_with_total_and_has_more(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await make_users(repo, "user1", "user2", "user3", "user4", "user5")

    first = await repo.list(limit=2, offset=0)
    second = await repo.list(limit=2, offset=2)
    last = await repo.list(limit=2, offset=4)

    assert [user.username for user in first.items] == ["user1", "user2"]
    assert [user.username for user in second.items] == ["user3", "user4"]
    assert [user.username for user in last.items] == ["user5"]
    assert (first.total, second.total, last.total) == (5, 5, 5)
    assert (first.has_more, second.has_more, last.has_more) == (True, True, False)
    assert (last.limit, last.offset) == (2, 4)


async def test_list_page_that_ends_exactly_at_the_last_row_has_no_more(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    await make_users(repo, "user1", "user2", "user3", "user4")

    page = await repo.list(limit=2, offset=2)

    assert len(page.items) == 2
    assert page.has_more is False


async def test_list_beyond_the_end_is_an_empty_page_with_the_total(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await make_users(repo, "user1", "user2", "user3")

    page = await repo.list(limit=10, offset=50)

    assert page.items == []
    assert page.total == 3
    assert page.has_more is False


async def test_list_of_an_empty_table(session: AsyncSession) -> None:
    page = await UserRepository(session).list()

    assert (page.items, page.total, page.has_more) == ([], 0, False)


@pytest.mark.parametrize(
    ("limit", "offset", "message"),
    [
        (0, 0, "limit must be between 1 and"),
        (MAX_PAGE_SIZE + 1, 0, "limit must be between 1 and"),
        (-1, 0, "limit must be between 1 and"),
        (10, -1, "offset must be 0 or more"),
    ],
)
async def test_list_refuses_bad_limit_and_offset(
    session: AsyncSession, limit: int, offset: int, message: str
) -> None:
    with pytest.raises(ValidationFailedError, match=message):
        await UserRepository(session).list(limit=limit, offset=offset)


async def test_list_accepts_the_maximum_page_size(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await make_users(repo, "user1")

    page = await repo.list(limit=MAX_PAGE_SIZE)

    assert page.total == 1


# ----- list: filters ---------------------------------------------------------------------------
async def filter_fixture(repo: UserRepository) -> None:
    """Five users with distinct roles, names and creation times one hour apart."""
    rows = [
        ("ann", UserRole.ADMIN, "Ann 100% Sure", True),
        ("bob", UserRole.MEMBER, "Bob_Builder", True),
        ("cid", UserRole.VIEWER, "Cid BobbyX", False),
        ("dee", UserRole.VIEWER, None, True),
        ("eve", UserRole.MEMBER, "EVE plain", False),
    ]
    await repo.bulk_create(
        [
            user_values(
                name,
                role=role,
                full_name=full_name,
                is_active=active,
                created_at=BASE_TIME + timedelta(hours=index),
                email=None if name == "dee" else f"{name}@example.com",
            )
            for index, (name, role, full_name, active) in enumerate(rows)
        ]
    )


async def usernames(repo: UserRepository, **filters: Any) -> list[str]:
    page = await repo.list(filters=filters, sort="username")
    assert page.total == len(page.items)
    return [user.username for user in page.items]


async def test_filter_equality(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await filter_fixture(repo)

    assert await usernames(repo, role=UserRole.VIEWER) == ["cid", "dee"]
    assert await usernames(repo, role__eq="member") == ["bob", "eve"]
    assert await usernames(repo, is_active=False) == ["cid", "eve"]
    assert await usernames(repo, role="admin", is_active=True) == ["ann"]
    assert await usernames(repo, username="nobody") == []


async def test_filter_ne(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await filter_fixture(repo)

    assert await usernames(repo, role__ne=UserRole.VIEWER) == ["ann", "bob", "eve"]


async def test_filter_in(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await filter_fixture(repo)

    assert await usernames(repo, username__in=["ann", "eve", "zed"]) == ["ann", "eve"]
    assert await usernames(repo, role__in=(UserRole.ADMIN, UserRole.VIEWER)) == [
        "ann",
        "cid",
        "dee",
    ]
    assert await usernames(repo, username__in=[]) == []


@pytest.mark.parametrize("value", ["ann", 5, None])
async def test_filter_in_needs_a_list(session: AsyncSession, value: Any) -> None:
    with pytest.raises(ValidationFailedError, match="needs a list"):
        await UserRepository(session).list(filters={"username__in": value})


async def test_filter_ranges(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await filter_fixture(repo)
    middle = BASE_TIME + timedelta(hours=2)  # cid's created_at

    assert await usernames(repo, created_at__gt=middle) == ["dee", "eve"]
    assert await usernames(repo, created_at__gte=middle) == ["cid", "dee", "eve"]
    assert await usernames(repo, created_at__lt=middle) == ["ann", "bob"]
    assert await usernames(repo, created_at__lte=middle) == ["ann", "bob", "cid"]
    window = {"created_at__gt": BASE_TIME, "created_at__lt": BASE_TIME + timedelta(hours=3)}
    assert await usernames(repo, **window) == ["bob", "cid"]
    assert await usernames(repo, username__gte="cid", username__lt="eve") == ["cid", "dee"]


async def test_filter_ranges_compare_instants_across_time_zones(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await filter_fixture(repo)
    # 14:00 UTC (cid) written as 16:00 at UTC+2.
    cid_in_plus_two = (BASE_TIME + timedelta(hours=2)).astimezone(timezone(timedelta(hours=2)))

    assert await usernames(repo, created_at__gte=cid_in_plus_two) == ["cid", "dee", "eve"]
    assert await usernames(repo, created_at=cid_in_plus_two) == ["cid"]


async def test_filter_icontains_is_case_insensitive(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await filter_fixture(repo)

    assert await usernames(repo, full_name__icontains="BOB") == ["bob", "cid"]
    assert await usernames(repo, full_name__icontains="eve PL") == ["eve"]
    assert await usernames(repo, full_name__icontains="nothing like it") == []


async def test_filter_icontains_treats_percent_and_underscore_literally(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    await filter_fixture(repo)

    # Unescaped, "%" and "_" would be LIKE wildcards matching every non-null name.
    assert await usernames(repo, full_name__icontains="%") == ["ann"]
    assert await usernames(repo, full_name__icontains="_") == ["bob"]
    assert await usernames(repo, full_name__icontains="0% s") == ["ann"]
    assert await usernames(repo, full_name__icontains="b_b") == ["bob"]
    assert await usernames(repo, full_name__icontains="b%b") == []
    # The escape character itself is literal too.
    assert await usernames(repo, full_name__icontains="/") == []


async def test_filter_isnull(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await filter_fixture(repo)

    assert await usernames(repo, full_name__isnull=True) == ["dee"]
    assert await usernames(repo, full_name__isnull=False) == ["ann", "bob", "cid", "eve"]
    assert await usernames(repo, email__isnull=True) == ["dee"]
    assert await usernames(repo, last_login_at__isnull=True) == ["ann", "bob", "cid", "dee", "eve"]


async def test_unknown_filter_field_names_the_allowed_fields(session: AsyncSession) -> None:
    repo = UserRepository(session)

    with pytest.raises(ValidationFailedError) as caught:
        await repo.list(filters={"password_hash": "x"})

    message = str(caught.value)
    assert "'password_hash'" in message
    for allowed in sorted(UserRepository.filterable_fields):
        assert allowed in message


async def test_unknown_filter_operator_names_the_allowed_operators(session: AsyncSession) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        await UserRepository(session).list(filters={"username__startswith": "a"})

    message = str(caught.value)
    assert "'startswith'" in message
    for operator in ("eq", "ne", "in", "gt", "gte", "lt", "lte", "icontains", "isnull"):
        assert operator in message


async def test_count_and_exists_validate_filters_too(session: AsyncSession) -> None:
    repo = UserRepository(session)

    with pytest.raises(ValidationFailedError, match="allowed"):
        await repo.count(filters={"secret": 1})
    with pytest.raises(ValidationFailedError, match="allowed"):
        await repo.exists(password_hash="x")


# ----- list: sorting ---------------------------------------------------------------------------
async def test_sort_ascending_and_descending(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await make_users(repo, "mia", "abe", "zoe", "kim")

    ascending = await repo.list(sort="username")
    descending = await repo.list(sort="-username")
    explicit_plus = await repo.list(sort=["+username"])
    default = await repo.list()

    assert [user.username for user in ascending.items] == ["abe", "kim", "mia", "zoe"]
    assert [user.username for user in descending.items] == ["zoe", "mia", "kim", "abe"]
    assert [user.username for user in explicit_plus.items] == ["abe", "kim", "mia", "zoe"]
    assert [user.username for user in default.items] == ["abe", "kim", "mia", "zoe"]


async def test_sort_on_several_fields(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await repo.bulk_create(
        [
            user_values("abe", role=UserRole.VIEWER),
            user_values("bea", role=UserRole.ADMIN),
            user_values("cal", role=UserRole.VIEWER),
            user_values("dan", role=UserRole.ADMIN),
        ]
    )

    page = await repo.list(sort=["role", "-username"])

    assert [user.username for user in page.items] == ["dan", "bea", "cal", "abe"]


@pytest.mark.parametrize("sort", ["role", "-role"])
async def test_sort_ties_are_broken_by_id_so_pages_never_repeat_or_skip(
    session: AsyncSession, sort: str
) -> None:
    repo = UserRepository(session)
    roles = [UserRole.MEMBER, UserRole.VIEWER]
    users = await repo.bulk_create(
        [user_values(f"user{index:02d}", role=roles[index % 2]) for index in range(10)]
    )

    walked: list[User] = []
    for offset in range(len(users)):
        page = await repo.list(sort=sort, limit=1, offset=offset)
        walked.extend(page.items)

    assert len({user.id for user in walked}) == len(users)
    by_role: dict[UserRole, list[uuid.UUID]] = {}
    for user in walked:
        by_role.setdefault(user.role, []).append(user.id)
    expected_roles = sorted(by_role, reverse=sort.startswith("-"))
    assert [user.role for user in walked] == [role for role in expected_roles for _ in range(5)]
    for ids in by_role.values():
        assert ids == sorted(ids), "ties must come in ascending id order"


async def test_bad_sort_field_names_the_allowed_fields(session: AsyncSession) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        await UserRepository(session).list(sort="-password_hash")

    message = str(caught.value)
    assert "'password_hash'" in message
    for allowed in sorted(UserRepository.sortable_fields):
        assert allowed in message


# ----- create / bulk create / update / delete ------------------------------------------------
async def test_create_flushes_a_row_with_defaults(session: AsyncSession) -> None:
    repo = UserRepository(session)

    created = await repo.create(**user_values("alice", full_name="Alice A."))

    assert isinstance(created.id, uuid.UUID)
    stored = await reload(session, repo, created.id)
    assert stored is not created
    assert (stored.username, stored.email, stored.full_name) == (
        "alice",
        "alice@example.com",
        "Alice A.",
    )
    assert stored.role is UserRole.VIEWER
    assert stored.is_active is True
    assert stored.deleted_at is None
    assert stored.last_login_at is None


async def test_create_accepts_an_instance(session: AsyncSession) -> None:
    repo = UserRepository(session)
    instance = User(**user_values("alice", role=UserRole.ADMIN))

    created = await repo.create(instance)

    assert created is instance
    assert (await reload(session, repo, instance.id)).role is UserRole.ADMIN


async def test_bulk_create_inserts_every_item(session: AsyncSession) -> None:
    repo = UserRepository(session)

    created = await repo.bulk_create(
        [user_values("alice"), User(**user_values("bob")), user_values("carol")]
    )

    assert [user.username for user in created] == ["alice", "bob", "carol"]
    assert await repo.count() == 3
    assert len(await repo.get_many([user.id for user in created])) == 3


async def test_bulk_create_of_nothing_is_a_no_op(session: AsyncSession) -> None:
    repo = UserRepository(session)

    assert await repo.bulk_create([]) == []
    assert await repo.count() == 0


async def test_update_changes_the_stored_row(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice = await repo.create(**user_values("alice"))

    returned = await repo.update(alice, full_name="Alice Liddell", role=UserRole.MEMBER, email=None)

    assert returned is alice
    stored = await reload(session, repo, alice.id)
    assert (stored.full_name, stored.role, stored.email) == ("Alice Liddell", UserRole.MEMBER, None)


async def test_update_with_an_unknown_field_changes_nothing(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice = await repo.create(**user_values("alice"))

    with pytest.raises(ValidationFailedError, match="User has no field"):
        await repo.update(alice, full_name="Changed", nickname="ally")

    stored = await reload(session, repo, alice.id)
    assert stored.full_name is None


async def test_delete_removes_the_row(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice, bob = await make_users(repo, "alice", "bob")

    await repo.delete(alice)

    assert await repo.get(alice.id, include_deleted=True) is None
    raw_count = await session.scalar(select(func.count()).select_from(User))
    assert raw_count == 1
    assert await repo.get(bob.id) is not None


async def test_delete_works_for_a_model_keyed_by_a_string(session: AsyncSession) -> None:
    repo = ConfigRepository(session)
    entry = await repo.create(key="sampler.interval", value=5)

    await repo.delete(entry)

    assert await repo.get("sampler.interval") is None


# ----- soft delete ------------------------------------------------------------------------------
async def test_soft_delete_hides_the_row_everywhere(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice, _bob = await make_users(repo, "alice", "bob")

    await repo.soft_delete(alice)

    assert alice.is_deleted
    assert await repo.get(alice.id) is None
    assert await repo.get_by_username("alice") is None
    assert [user.username for user in (await repo.list()).items] == ["bob"]
    assert (await repo.list()).total == 1
    assert await repo.count() == 1
    assert await repo.exists(username="alice") is False
    # The row itself is still there.
    raw_count = await session.scalar(select(func.count()).select_from(User))
    assert raw_count == 2


async def test_include_deleted_shows_soft_deleted_rows(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice, _bob = await make_users(repo, "alice", "bob")
    await repo.soft_delete(alice)

    assert await repo.get(alice.id, include_deleted=True) is alice
    page = await repo.list(include_deleted=True)
    assert [user.username for user in page.items] == ["alice", "bob"]
    assert page.total == 2
    assert await repo.count(include_deleted=True) == 2
    assert await repo.exists(username="alice", include_deleted=True) is True
    assert await repo.get_by_username("alice", include_deleted=True) is alice


async def test_soft_delete_records_when_and_keeps_the_first_time(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice = await repo.create(**user_values("alice"))
    before = datetime.now(UTC)

    await repo.soft_delete(alice)
    first = (await reload(session, repo, alice.id)).deleted_at
    again = await reload(session, repo, alice.id)
    await repo.soft_delete(again)

    assert first is not None
    assert first.tzinfo is not None and first.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= first <= datetime.now(UTC) + timedelta(seconds=1)
    assert (await reload(session, repo, alice.id)).deleted_at == first


async def test_restore_brings_a_soft_deleted_row_back(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice = await repo.create(**user_values("alice"))
    await repo.soft_delete(alice)

    await repo.restore(alice)

    stored = await reload(session, repo, alice.id)
    assert stored.deleted_at is None
    assert await repo.get(alice.id) is not None
    assert await repo.get_by_username("alice") is not None
    assert await repo.count() == 1


async def test_soft_delete_is_refused_for_models_without_it(session: AsyncSession) -> None:
    repo = ConfigRepository(session)
    entry = await repo.create(key="k", value=1)

    with pytest.raises(ValidationFailedError, match="does not support soft delete"):
        await repo.soft_delete(entry)
    with pytest.raises(ValidationFailedError, match="does not support soft delete"):
        await repo.restore(entry)
    assert await repo.get("k") is not None


# ----- exists / count ---------------------------------------------------------------------------
async def test_exists(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await make_users(repo, "alice")
    await make_users(repo, "bob", role=UserRole.ADMIN)

    assert await repo.exists() is True
    assert await repo.exists(username="alice") is True
    assert await repo.exists(username="alice", role=UserRole.ADMIN) is False
    assert await repo.exists(role__in=[UserRole.ADMIN]) is True
    assert await repo.exists(username="nobody") is False


async def test_exists_on_an_empty_table(session: AsyncSession) -> None:
    assert await UserRepository(session).exists() is False


async def test_count(session: AsyncSession) -> None:
    repo = UserRepository(session)
    assert await repo.count() == 0
    await filter_fixture(repo)

    assert await repo.count() == 5
    assert await repo.count(filters={"role": UserRole.VIEWER}) == 2
    assert await repo.count(filters={"is_active": True, "role__ne": "admin"}) == 2
    assert await repo.count(filters={"username__in": []}) == 0


# ----- uniqueness ------------------------------------------------------------------------------
async def assert_session_still_usable(session: AsyncSession, repo: UserRepository) -> None:
    """A failed statement poisons a PostgreSQL transaction unless it ran in a savepoint."""
    assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
    later = await repo.create(**user_values("later"))
    assert await repo.get(later.id) is later


async def test_duplicate_username_is_a_conflict_and_the_session_survives(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    alice = await repo.create(**user_values("alice"))

    with pytest.raises(ConflictError) as caught:
        await repo.create(**user_values("alice", email="other@example.com"))

    assert str(caught.value) == "a user with this username already exists"
    await assert_session_still_usable(session, repo)
    # Only the failed insert was undone; earlier work in the transaction is intact.
    assert await repo.get(alice.id) is alice
    assert await repo.count() == 2
    assert await repo.count(filters={"username": "alice"}) == 1


async def test_duplicate_email_is_a_conflict_and_the_session_survives(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    await repo.create(**user_values("alice", email="shared@example.com"))

    with pytest.raises(ConflictError) as caught:
        await repo.create(**user_values("bob", email="shared@example.com"))

    assert str(caught.value) == "a user with this email address already exists"
    await assert_session_still_usable(session, repo)
    assert await repo.exists(username="bob") is False


async def test_duplicate_email_that_mentions_username_is_reported_as_an_email_conflict(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    await repo.create(**user_values("alice", email="username@example.com"))

    with pytest.raises(ConflictError) as caught:
        await repo.create(**user_values("bob", email="username@example.com"))

    assert str(caught.value) == "a user with this email address already exists"


async def test_username_that_mentions_email_is_reported_as_a_username_conflict(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    await repo.create(**user_values("email", email="a@example.com"))

    with pytest.raises(ConflictError) as caught:
        await repo.create(**user_values("email", email="b@example.com"))

    assert str(caught.value) == "a user with this username already exists"


async def test_duplicate_in_a_bulk_create_inserts_none_of_the_batch(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await repo.create(**user_values("alice"))

    with pytest.raises(ConflictError, match="username already exists"):
        await repo.bulk_create([user_values("bob"), user_values("alice", email="a2@example.com")])

    await assert_session_still_usable(session, repo)
    assert sorted(user.username for user in (await repo.list()).items) == ["alice", "later"]


async def test_update_to_a_taken_username_is_a_conflict_and_the_session_survives(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    _alice, bob = await make_users(repo, "alice", "bob")

    with pytest.raises(ConflictError, match="username already exists"):
        await repo.update(bob, username="alice")

    await assert_session_still_usable(session, repo)
    session.expunge_all()
    assert sorted(user.username for user in (await repo.list()).items) == ["alice", "bob", "later"]


async def test_an_item_whose_update_failed_keeps_its_stored_values(session: AsyncSession) -> None:
    """The savepoint's rollback expires the item; it must come back usable, not lazy-loading
    (which an async session cannot do) on the next attribute access."""
    repo = UserRepository(session)
    _alice, bob = await make_users(repo, "alice", "bob")

    with pytest.raises(ConflictError):
        await repo.update(bob, username="alice", full_name="Bob B.")

    assert (bob.username, bob.full_name) == ("bob", None)
    await repo.update(bob, full_name="Robert")
    assert (await reload(session, repo, bob.id)).full_name == "Robert"


async def test_an_item_whose_update_was_refused_for_a_naive_time_stays_usable(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    alice = await repo.create(**user_values("alice"))

    with pytest.raises(StatementError, match="naive datetime"):
        await repo.update(alice, last_login_at=datetime(2024, 1, 1), full_name="A")

    assert (alice.last_login_at, alice.full_name) == (None, None)
    assert await repo.get(alice.id) is alice


async def test_usernames_differing_only_in_case_are_a_conflict(session: AsyncSession) -> None:
    repo = UserRepository(session)
    await repo.create(**user_values("alice"))

    with pytest.raises(ConflictError, match="username already exists"):
        await repo.create(**user_values("Alice", email="other@example.com"))
    with pytest.raises(ConflictError, match="email address already exists"):
        await repo.create(**user_values("bob", email="ALICE@example.com"))

    await assert_session_still_usable(session, repo)
    assert (await repo.get_by_username("ALICE")) is not None


# ----- users ----------------------------------------------------------------------------------
async def test_get_by_username_ignores_case(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice = await repo.create(**user_values("Alice"))

    assert await repo.get_by_username("alice") is alice
    assert await repo.get_by_username("ALICE") is alice
    assert await repo.get_by_username("Alice") is alice
    assert await repo.get_by_username("alic") is None


# ----- timestamps ------------------------------------------------------------------------------
def assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


async def test_timestamps_are_timezone_aware_utc_after_a_round_trip(session: AsyncSession) -> None:
    repo = UserRepository(session)
    before = datetime.now(UTC)
    alice = await repo.create(**user_values("alice"))

    stored = await reload(session, repo, alice.id)

    assert_utc(stored.created_at)
    assert_utc(stored.updated_at)
    slack = timedelta(seconds=5)
    assert before - slack <= stored.created_at <= datetime.now(UTC) + slack


async def test_timestamps_in_another_zone_are_stored_as_the_same_instant(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    tokyo = timezone(timedelta(hours=9))
    login = datetime(2024, 3, 10, 9, 30, 15, 123456, tzinfo=tokyo)
    alice = await repo.create(**user_values("alice", last_login_at=login))

    stored = await reload(session, repo, alice.id)

    assert_utc(stored.last_login_at)
    assert stored.last_login_at == login
    assert stored.last_login_at == datetime(2024, 3, 10, 0, 30, 15, 123456, tzinfo=UTC)


async def test_updated_at_changes_on_update_and_created_at_does_not(session: AsyncSession) -> None:
    repo = UserRepository(session)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    alice = await repo.create(**user_values("alice", created_at=long_ago, updated_at=long_ago))

    await repo.update(alice, full_name="Alice")

    stored = await reload(session, repo, alice.id)
    assert stored.created_at == long_ago
    assert stored.updated_at > long_ago + timedelta(days=365)
    assert_utc(stored.updated_at)


async def test_a_naive_datetime_is_refused(session: AsyncSession) -> None:
    repo = UserRepository(session)

    with pytest.raises(StatementError, match="naive datetime") as caught:
        await repo.create(**user_values("alice", last_login_at=datetime(2024, 1, 1, 12, 0)))

    assert isinstance(caught.value.orig, ValueError)
    await assert_session_still_usable(session, repo)
    assert await repo.exists(username="alice") is False


async def test_a_naive_datetime_filter_is_refused(session: AsyncSession) -> None:
    repo = UserRepository(session)

    with pytest.raises(StatementError, match="naive datetime"):
        await repo.list(filters={"created_at__gte": datetime(2024, 1, 1)})


async def test_case_variants_within_one_batch_are_a_conflict(session: AsyncSession) -> None:
    repo = UserRepository(session)

    with pytest.raises(ConflictError, match="username already exists"):
        await repo.bulk_create([user_values("bob"), user_values("BOB", email="b2@example.com")])
    with pytest.raises(ConflictError, match="email address already exists"):
        await repo.bulk_create(
            [user_values("x1", email="a@x.org"), user_values("x2", email="A@x.org")]
        )

    assert await repo.count() == 0


async def test_case_variant_of_a_soft_deleted_user_is_a_conflict(session: AsyncSession) -> None:
    repo = UserRepository(session)
    alice = await repo.create(**user_values("alice"))
    await repo.soft_delete(alice)

    with pytest.raises(ConflictError, match="username already exists"):
        await repo.create(**user_values("ALICE", email="new@example.com"))


async def test_update_may_change_the_case_of_its_own_name_but_not_take_anothers(
    session: AsyncSession,
) -> None:
    repo = UserRepository(session)
    alice, bob = await make_users(repo, "alice", "bob")

    await repo.update(alice, username="Alice", email="ALICE@example.com")
    with pytest.raises(ConflictError, match="username already exists"):
        await repo.update(bob, username="ALICE")

    assert bob.username == "bob"
    assert (await repo.get_by_username("alice")) is alice
    assert alice.username == "Alice"
