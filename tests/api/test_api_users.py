"""The users administration API over HTTP, on both databases."""

from __future__ import annotations

from perfwatch.config import Settings
from perfwatch.models import UserRole
from tests.support.api import (
    access_token,
    add_user,
    assert_error,
    bearer,
    client_of,
    login,
    running_app,
)


async def test_users_crud(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        admin = await add_user(UserRole.ADMIN, username="root")
        headers = bearer(access_token(api_settings, admin.user))

        new = {
            "username": "ada",
            "password": "correct horse battery staple",
            "role": "member",
            "email": "ada@example.com",
            "full_name": "Ada Lovelace",
        }
        response = await client.post("/api/v1/users", headers=headers, json=new)
        assert response.status_code == 201, response.text
        ada = response.json()
        assert ada["role"] == "member" and ada["is_active"] and ada["deleted_at"] is None
        assert "password" not in response.text
        assert_error(
            await client.post("/api/v1/users", headers=headers, json={**new, "email": None}),
            409,
            "conflict",
        )
        weak = {**new, "username": "bob", "email": None, "password": "short"}
        assert_error(
            await client.post("/api/v1/users", headers=headers, json=weak),
            422,
            "validation_failed",
        )
        error = assert_error(
            await client.post("/api/v1/users", headers=headers, json={"username": "x" * 5000}),
            422,
        )
        assert {detail["field"] for detail in error["details"]} == {"username", "password"}
        assert "x" * 100 not in str(error)

        response = await client.get(f"/api/v1/users/{ada['id']}", headers=headers)
        assert response.status_code == 200 and response.json()["username"] == "ada"

        response = await client.patch(
            f"/api/v1/users/{ada['id']}",
            headers=headers,
            json={"role": "viewer", "full_name": None},
        )
        assert response.status_code == 200, response.text
        assert response.json()["role"] == "viewer" and response.json()["full_name"] is None
        assert_error(
            await client.patch(
                f"/api/v1/users/{ada['id']}", headers=headers, json={"password_hash": "x"}
            ),
            422,
        )

        # The list: filters, sorting, paging, and the errors.
        await add_user(UserRole.VIEWER, username="carol", is_active=False)
        response = await client.get("/api/v1/users", headers=headers, params={"sort": "-username"})
        assert [u["username"] for u in response.json()["items"]] == ["root", "carol", "ada"]
        response = await client.get(
            "/api/v1/users", headers=headers, params={"role": "viewer", "is_active": "true"}
        )
        assert [u["username"] for u in response.json()["items"]] == ["ada"]
        response = await client.get("/api/v1/users", headers=headers, params={"username": "AR"})
        assert [u["username"] for u in response.json()["items"]] == ["carol"]
        page = (
            await client.get("/api/v1/users", headers=headers, params={"limit": 2, "offset": 0})
        ).json()
        assert page["total"] == 3 and len(page["items"]) == 2 and page["has_more"]
        error = assert_error(
            await client.get("/api/v1/users", headers=headers, params={"sort": "password_hash"}),
            422,
            "validation_failed",
        )
        assert "username, created_at, last_login_at" in error["message"]
        error = assert_error(
            await client.get("/api/v1/users", headers=headers, params={"colour": "red"}), 422
        )
        assert "colour" in error["message"]
        assert_error(await client.get("/api/v1/users", headers=headers, params={"limit": 0}), 422)

        # Delete (soft), the deleted user cannot log in, restore.
        response = await client.delete(f"/api/v1/users/{ada['id']}", headers=headers)
        assert response.status_code == 204
        assert_error(await client.get(f"/api/v1/users/{ada['id']}", headers=headers), 404)
        assert_error(await login(client, "ada", new["password"]), 401, "invalid_credentials")
        response = await client.get(
            "/api/v1/users", headers=headers, params={"include_deleted": "true"}
        )
        assert response.json()["total"] == 3
        response = await client.post(f"/api/v1/users/{ada['id']}/restore", headers=headers)
        assert response.status_code == 200 and response.json()["deleted_at"] is None
        assert (await login(client, "ada", new["password"])).status_code == 200


async def test_the_last_active_admin_stays(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        root = await add_user(UserRole.ADMIN)
        headers = bearer(access_token(api_settings, root.user))
        path = f"/api/v1/users/{root.user.id}"

        for change in ({"role": "member"}, {"is_active": False}):
            error = assert_error(await client.patch(path, headers=headers, json=change), 409)
            assert "last active administrator" in error["message"]
        assert_error(await client.delete(path, headers=headers), 409, "conflict")

        second = await add_user(UserRole.ADMIN)
        second_headers = bearer(access_token(api_settings, second.user))
        # Now there are two: one may be demoted, after which the other is the last again.
        response = await client.patch(path, headers=headers, json={"role": "member"})
        assert response.status_code == 200, response.text
        error = assert_error(
            await client.patch(
                f"/api/v1/users/{second.user.id}", headers=second_headers, json={"role": "viewer"}
            ),
            409,
        )
        assert "last active administrator" in error["message"]
        # The demoted admin has lost access at once (the role is read from the database).
        assert_error(await client.get("/api/v1/users", headers=headers), 403, "permission_denied")


async def test_an_admin_cannot_delete_themselves_and_deleted_tokens_stop(
    api_settings: Settings,
) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        root = await add_user(UserRole.ADMIN)
        other = await add_user(UserRole.ADMIN)
        headers = bearer(access_token(api_settings, root.user))
        error = assert_error(
            await client.delete(f"/api/v1/users/{root.user.id}", headers=headers), 409
        )
        assert "your own account" in error["message"]
        other_headers = bearer(access_token(api_settings, other.user))
        assert (await client.get("/api/v1/auth/me", headers=other_headers)).status_code == 200
        response = await client.delete(f"/api/v1/users/{other.user.id}", headers=headers)
        assert response.status_code == 204
        assert_error(await client.get("/api/v1/auth/me", headers=other_headers), 401)
