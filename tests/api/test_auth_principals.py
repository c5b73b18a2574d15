"""The in-process memory of verified accounts (perfwatch.users.principals)."""

from __future__ import annotations

import time
import uuid

from perfwatch.models import UserRole
from perfwatch.users import passwords
from perfwatch.users.principals import Principal, PrincipalCache


def principal() -> Principal:
    return Principal(id=uuid.uuid4(), username="ada", role=UserRole.VIEWER)


def test_remembers_until_the_ttl_runs_out() -> None:
    cache = PrincipalCache(ttl_seconds=0.2)
    someone = principal()
    cache.remember(someone, None, cache.mark())
    assert cache.get(someone.id, issued_at=time.time()) == someone
    time.sleep(0.25)
    assert cache.get(someone.id, issued_at=time.time()) is None


def test_a_token_issued_before_the_revocation_is_not_let_through() -> None:
    cache = PrincipalCache()
    someone = principal()
    cache.remember(someone, revoked_before=1000.0, mark=cache.mark())
    assert cache.get(someone.id, issued_at=999.0) is None
    assert cache.get(someone.id, issued_at=1000.0) is None
    assert cache.get(someone.id, issued_at=1000.5) == someone


def test_a_check_that_began_before_a_change_does_not_store_what_it_read() -> None:
    cache = PrincipalCache()
    someone = principal()
    mark = cache.mark()  # a request starts checking someone's token …
    cache.forget(someone.id)  # … meanwhile the account is deactivated …
    cache.remember(someone, None, mark)  # … and the request's (old) reading comes back
    assert cache.get(someone.id, issued_at=time.time()) is None
    cache.remember(someone, None, cache.mark())  # a check that began after the change
    assert cache.get(someone.id, issued_at=time.time()) == someone


def test_zero_seconds_remembers_nothing() -> None:
    cache = PrincipalCache(ttl_seconds=0)
    someone = principal()
    cache.remember(someone, None, cache.mark())
    assert cache.get(someone.id, issued_at=time.time()) is None


def test_passwords_are_hashed_at_the_production_cost() -> None:
    # The test run hashes at a lower cost (tests/conftest.py); the code's own is 2**12.
    assert passwords.BCRYPT_ROUNDS == 12
    hashed = passwords.make_context().hash("correct horse battery staple")
    assert ",r=12$" in hashed
    assert passwords.verify_password("correct horse battery staple", hashed)
