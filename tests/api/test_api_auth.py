"""Authentication over HTTP: login, tokens, refresh rotation, password change, throttling.

Real databases (``fresh_db``: PostgreSQL with Redis, SQLite with the in-process cache)."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from perfwatch.auth.throttle import (
    ADDRESS_LIMIT,
    PAIR_LIMIT,
    SLOWDOWN_AFTER,
    WINDOW_SECONDS,
    slowdown_seconds,
    unlock,
)
from perfwatch.auth.tokens import TokenType, issue_token, signing_key
from perfwatch.config import Settings
from perfwatch.db.types import utcnow
from perfwatch.models import UserRole
from perfwatch.users.repository import UserRepository
from perfwatch.users.service import UserService
from tests.support.api import (
    Account,
    access_token,
    add_user,
    api_settings_for,
    app_session,
    assert_error,
    bearer,
    client_of,
    login,
    random_address,
    running_app,
)


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/auth/me", headers=bearer(token))


async def test_login_me_and_last_login(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        account = await add_user(UserRole.MEMBER)
        assert account.user.last_login_at is None
        started = utcnow()
        response = await login(client, account.username.upper(), account.password)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 15 * 60
        assert body["refresh_expires_in"] == 7 * 86400
        assert response.headers["cache-control"] == "no-store"

        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == str(account.user.id)
        assert claims["role"] == "member"
        assert claims["typ"] == "access"
        assert {"iat", "exp", "jti"} <= set(claims)

        response = await me(client, body["access_token"])
        assert response.status_code == 200, response.text
        user = response.json()
        assert user["username"] == account.username
        assert user["role"] == "member"
        assert "password_hash" not in response.text
        assert "password" not in user

        async with app_session() as session:
            stored = await UserRepository(session).get(account.user.id)
        assert stored is not None and stored.last_login_at is not None
        assert stored.last_login_at >= started.replace(microsecond=0)


async def test_failed_logins_look_the_same(api_settings: Settings) -> None:
    async with running_app(api_settings) as app:
        active = await add_user()
        inactive = await add_user(is_active=False)
        deleted = await add_user(deleted_at=utcnow())
        attempts = [
            (active.username, "wrong password"),
            ("no-such-user", "whatever password"),
            ("x" * 500, "whatever password"),
            (inactive.username, inactive.password),
            (deleted.username, deleted.password),
        ]
        messages = set()
        for username, password in attempts:
            async with client_of(app) as client:
                response = await login(client, username, password)
            error = assert_error(response, 401, "invalid_credentials")
            assert response.headers["www-authenticate"] == "Bearer"
            messages.add(error["message"])
        assert messages == {"incorrect username or password"}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the HS512 case
async def test_tokens_that_must_be_refused(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        account = await add_user()
        good = access_token(api_settings, account.user)
        assert (await me(client, good)).status_code == 200

        header, payload, signature = good.split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        claims = jwt.decode(good, options={"verify_signature": False})
        key = signing_key(api_settings)
        refresh = issue_token(
            api_settings, user_id=account.user.id, role="viewer", typ=TokenType.REFRESH
        ).token
        expired = access_token(api_settings, account.user, now=time.time() - 3600)
        cases = {
            "tampered signature": f"{header}.{payload}.{flipped}",
            "tampered payload": f"{header}.{b64({**claims, 'role': 'admin'})}.{signature}",
            "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
            "HS512": jwt.encode(claims, key, algorithm="HS512"),
            "other secret": jwt.encode(claims, "another secret" * 4, algorithm="HS256"),
            "no exp": jwt.encode(
                {k: v for k, v in claims.items() if k != "exp"}, key, algorithm="HS256"
            ),
            "no sub": jwt.encode(
                {k: v for k, v in claims.items() if k != "sub"}, key, algorithm="HS256"
            ),
            "refresh as access": refresh,
            "expired": expired,
            "garbage": "not-a-jwt",
        }
        for name, token in cases.items():
            error = assert_error(await me(client, token), 401)
            assert error["code"] in {
                "invalid_token",
                "token_expired",
                "wrong_token_type",
            }, name
        assert assert_error(await me(client, expired), 401)["code"] == "token_expired"
        assert assert_error(await me(client, refresh), 401)["code"] == "wrong_token_type"

        # An access token is not a refresh token either.
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": good})
        assert assert_error(response, 401)["code"] == "wrong_token_type"
        # No header at all.
        response = await client.get("/api/v1/auth/me")
        assert assert_error(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_access_tokens_expire_after_the_configured_lifetime(
    request: pytest.FixtureRequest, fresh_db: str, dialect: str
) -> None:
    settings = api_settings_for(request, fresh_db, dialect, access_token_minutes=1 / 60)  # 1 s
    async with running_app(settings) as app, client_of(app) as client:
        account = await add_user()
        response = await login(client, account.username, account.password)
        assert response.json()["expires_in"] == 1
        token = response.json()["access_token"]
        assert (await me(client, token)).status_code == 200  # verified and remembered
        await asyncio.sleep(1.6)
        # The remembered verification does not outlive the token.
        assert_error(await me(client, token), 401, "token_expired")


async def test_refresh_rotates_and_reuse_signs_everything_out(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        account = await add_user()
        first = (await login(client, account.username, account.password)).json()

        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        second = response.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert (await me(client, second["access_token"])).status_code == 200

        # The spent token again: refused, and every session of the account is revoked.
        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert_error(response, 401, "refresh_token_reused")
        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
        )
        assert_error(response, 401, "token_revoked")
        assert_error(await me(client, second["access_token"]), 401, "token_revoked")

        # Logging in again works.
        third = (await login(client, account.username, account.password)).json()
        assert (await me(client, third["access_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_let_one_through(
    api_settings: Settings,
    fresh_db: str,  # concurrent requests: each needs a connection of its own
) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        account = await add_user()
        tokens = (await login(client, account.username, account.password)).json()
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
                for _ in range(4)
            )
        )
        assert sorted(r.status_code for r in responses) == [200, 401, 401, 401]


async def test_refresh_is_refused_for_a_deactivated_user(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        account = await add_user()
        tokens = (await login(client, account.username, account.password)).json()
        async with app_session() as session:
            users = UserRepository(session)
            user = await users.get(account.user.id)
            assert user is not None
            await users.update(user, is_active=False)
        assert_error(await me(client, tokens["access_token"]), 401, "invalid_token")
        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert_error(response, 401, "invalid_token")


async def test_changes_made_elsewhere_apply_within_auth_cache_seconds(
    api_settings: Settings,
) -> None:
    """A verified account is remembered for AUTH_CACHE_SECONDS; a change that bypasses this
    process (here: straight in the database, like the CLI or another worker) is seen once
    that memory runs out, and not a request later."""
    settings = api_settings.model_copy(update={"auth_cache_seconds": 0.5})
    async with running_app(settings) as app, client_of(app) as client:
        account = await add_user()
        token = (await login(client, account.username, account.password)).json()["access_token"]
        assert (await me(client, token)).status_code == 200  # verified, now remembered
        async with app_session() as session:
            users = UserRepository(session)
            user = await users.get(account.user.id)
            assert user is not None
            await users.update(user, is_active=False)
        remembered = await client.get("/api/v1/metrics/types", headers=bearer(token))
        assert remembered.status_code == 200, remembered.text
        await asyncio.sleep(0.6)
        refused = await client.get("/api/v1/metrics/types", headers=bearer(token))
        assert_error(refused, 401, "invalid_token")


async def test_a_deactivation_is_not_undone_by_a_check_before_its_commit(
    api_settings: Settings,
    fresh_db: str,  # about commits seen by another request's connection
) -> None:
    """A request that verifies the token between the change and its commit reads the old row;
    what it remembers must be dropped when the change commits."""
    async with running_app(api_settings) as app, client_of(app) as client:
        account = await add_user()
        headers = bearer(
            (await login(client, account.username, account.password)).json()["access_token"]
        )
        async with app_session() as session:
            await UserService(session).update_user(account.user.id, {"is_active": False})
            early = await client.get("/api/v1/metrics/types", headers=headers)
            assert early.status_code == 200, early.text  # not committed yet: still active
        refused = await client.get("/api/v1/metrics/types", headers=headers)
        assert_error(refused, 401, "invalid_token")


async def test_password_change_revokes_earlier_tokens(api_settings: Settings) -> None:
    # 80 bytes of UTF-8, past bcrypt's 72-byte limit; a second one that shares the first 72.
    long_password = "pässwörd-" * 8 + "end"
    assert len(long_password.encode()) > 72
    twin = long_password[:-3] + "END"
    assert long_password.encode()[:72] == twin.encode()[:72]

    async with running_app(api_settings) as app, client_of(app) as client:
        account = await add_user()
        tokens = (await login(client, account.username, account.password)).json()
        headers = bearer(tokens["access_token"])

        response = await client.post(
            "/api/v1/auth/password",
            headers=headers,
            json={"current_password": "not it", "new_password": long_password},
        )
        assert_error(response, 422, "invalid_current_password")
        response = await client.post(
            "/api/v1/auth/password",
            headers=headers,
            json={"current_password": account.password, "new_password": "short"},
        )
        assert "at least 12" in assert_error(response, 422, "validation_failed")["message"]

        response = await client.post(
            "/api/v1/auth/password",
            headers=headers,
            json={"current_password": account.password, "new_password": long_password},
        )
        assert response.status_code == 204, response.text
        assert response.headers["cache-control"] == "no-store"

        assert_error(await me(client, tokens["access_token"]), 401, "token_revoked")
        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert_error(response, 401, "token_revoked")

        assert_error(await login(client, account.username, account.password), 401)
        assert_error(await login(client, account.username, twin), 401)
        response = await login(client, account.username, long_password)
        assert response.status_code == 200, response.text
        assert (await me(client, response.json()["access_token"])).status_code == 200


async def _fail(app: FastAPI, username: str, address: str) -> httpx.Response:
    async with client_of(app, address) as client:
        return await login(client, username, "definitely wrong")


async def _login_from(app: FastAPI, account: Account, address: str) -> httpx.Response:
    async with client_of(app, address) as client:
        return await login(client, account.username, account.password)


async def test_failures_from_one_address_throttle_it_but_not_the_owner_elsewhere(
    api_settings: Settings,
) -> None:
    async with running_app(api_settings) as app:
        account = await add_user()
        guesser, owner = random_address(), random_address()
        for _ in range(PAIR_LIMIT):
            assert_error(await _fail(app, account.username, guesser), 401)

        # The guessing address is refused, even with the right password, and told what to do.
        response = await _login_from(app, account, guesser)
        error = assert_error(response, 429, "login_throttled")
        retry_after = int(response.headers["retry-after"])
        assert WINDOW_SECONDS - 60 <= retry_after <= WINDOW_SECONDS
        assert f"try again in {retry_after} s" in error["message"]
        assert f"`perfwatch user unlock {account.username}`" in error["message"]

        # The owner, from an address that did not fail, logs in.
        assert (await _login_from(app, account, owner)).status_code == 200


async def test_failures_from_many_addresses_slow_a_username_down_but_never_lock_it(
    api_settings: Settings,
) -> None:
    async with running_app(api_settings) as app:
        account = await add_user()
        for _ in range(SLOWDOWN_AFTER):  # each from another address: no pair reaches its limit
            assert_error(await _fail(app, account.username, random_address()), 401)
        started = time.monotonic()
        response = await _login_from(app, account, random_address())
        assert response.status_code == 200, response.text
        assert time.monotonic() - started >= slowdown_seconds(SLOWDOWN_AFTER) == 1.0

        if api_settings.redis_url:  # the counts live in Redis, shared by every replica
            client_redis = aioredis.from_url(api_settings.redis_url, decode_responses=True)
            try:
                keys = await client_redis.keys("perfwatch:auth:throttle:username:*")
                values = [await client_redis.get(key) for key in keys]
                assert str(SLOWDOWN_AFTER) in values
            finally:
                await client_redis.aclose()


async def test_throttling_per_address(api_settings: Settings) -> None:
    async with running_app(api_settings) as app:
        account = await add_user()
        address = random_address()
        for number in range(ADDRESS_LIMIT):
            assert_error(await _fail(app, f"guess-{number}", address), 401)
        response = await _login_from(app, account, address)
        error = assert_error(response, 429, "login_throttled")
        assert int(response.headers["retry-after"]) > 0
        assert f"--address {address}`" in error["message"]
        # Another address is not affected.
        assert (await _login_from(app, account, random_address())).status_code == 200


async def test_a_successful_login_clears_its_pair(api_settings: Settings) -> None:
    async with running_app(api_settings) as app:
        account = await add_user()
        address = random_address()
        for _ in range(PAIR_LIMIT - 1):
            assert_error(await _fail(app, account.username, address), 401)
        assert (await _login_from(app, account, address)).status_code == 200
        for _ in range(PAIR_LIMIT - 1):
            assert_error(await _fail(app, account.username, address), 401)
        assert (await _login_from(app, account, address)).status_code == 200


async def test_unlock_clears_a_username_from_every_address(api_settings: Settings) -> None:
    async with running_app(api_settings) as app:
        account = await add_user()
        first, second, crowded = random_address(), random_address(), random_address()
        for address in (first, second):
            for _ in range(PAIR_LIMIT):
                assert_error(await _fail(app, account.username, address), 401)
            assert_error(await _login_from(app, account, address), 429, "login_throttled")
        for number in range(ADDRESS_LIMIT):
            assert_error(await _fail(app, f"guess-{number}", crowded), 401)
        assert_error(await _login_from(app, account, crowded), 429, "login_throttled")

        cache = app.state.cache
        assert await unlock(cache, account.username.upper()) == 2 * PAIR_LIMIT
        assert await unlock(cache, account.username) == 0  # nothing left to clear
        for address in (first, second):
            assert (await _login_from(app, account, address)).status_code == 200
        # An address refused for guessing many usernames stays refused unless named.
        assert_error(await _login_from(app, account, crowded), 429, "login_throttled")
        await unlock(cache, account.username, address=crowded)
        assert (await _login_from(app, account, crowded)).status_code == 200


async def test_login_takes_a_form_or_json_and_says_so(api_settings: Settings) -> None:
    url = "/api/v1/auth/login"
    async with running_app(api_settings) as app, client_of(app) as client:
        account = await add_user()
        credentials = {"username": account.username, "password": account.password}
        # The OAuth2 password flow form (what Swagger's Authorize sends) and a JSON object.
        form = {**credentials, "grant_type": "password", "scope": "", "client_id": "docs"}
        assert (await client.post(url, data=form)).status_code == 200
        response = await client.post(url, json=credentials)
        assert response.status_code == 200, response.text
        assert (await me(client, response.json()["access_token"])).status_code == 200
        assert_error(await client.post(url, json={**credentials, "password": "no"}), 401)

        error = assert_error(await client.post(url, json={"username": "a"}), 422)
        assert error["details"] == [
            {"location": "body", "field": "password", "message": "Field required"}
        ]
        error = assert_error(await client.post(url, data={**form, "grant_type": "code"}), 422)
        assert [detail["field"] for detail in error["details"]] == ["grant_type"]
        error = assert_error(await client.post(url, content=b"{not json"), 422)
        for body, headers in [
            (b"", {}),  # no body at all
            (b"username=a&password=b", {"content-type": "text/plain"}),
            (b"[1, 2]", {"content-type": "application/json"}),
        ]:
            response = await client.post(url, content=body, headers=headers)
            error = assert_error(response, 422, "validation_failed")
            assert "application/x-www-form-urlencoded" in error["message"], error
            assert "application/json" in error["message"], error
        # JSON sent with a form's content type (curl -d '{...}' without -H): say what is missing.
        response = await client.post(
            url,
            content=json.dumps(credentials).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        error = assert_error(response, 422, "validation_failed")
        assert "Content-Type: application/json" in error["message"], error

        spec = (await client.get("/openapi.json")).json()
        content = spec["paths"][url]["post"]["requestBody"]["content"]
        assert set(content) == {"application/x-www-form-urlencoded", "application/json"}
        for media in content.values():
            assert set(media["schema"]["required"]) == {"username", "password"}
