"""The role matrix: every route under /api/v1 by admin/member/viewer/anonymous.

Anonymous → 401 on protected routes, a role below the route's minimum → 403, otherwise neither
(a 2xx, or a 4xx about the request itself). The table is ``tests/api_routes.py``."""

from __future__ import annotations

import uuid
from collections import defaultdict

from perfwatch.app import create_app
from perfwatch.config import Settings
from perfwatch.models import UserRole
from tests.support.api import (
    access_token,
    add_user,
    assert_error,
    bearer,
    client_of,
    running_app,
)
from tests.support.api_routes import API_ROUTES, expected_outcome
from tests.support.helpers import make_settings

ROLES: list[UserRole | None] = [UserRole.ADMIN, UserRole.MEMBER, UserRole.VIEWER, None]


def test_the_table_lists_every_api_route(sqlite_url: str) -> None:
    schema = create_app(make_settings(sqlite_url)).openapi()
    served = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    }
    listed = {(route.method, route.path) for route in API_ROUTES}
    assert served == listed, {"not in the table": served - listed, "gone": listed - served}


async def test_role_matrix(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        tokens: dict[UserRole | None, dict[str, str]] = {None: {}}
        for role in (UserRole.ADMIN, UserRole.MEMBER, UserRole.VIEWER):
            account = await add_user(role)
            tokens[role] = bearer(access_token(api_settings, account.user))
        problems = []
        for route in API_ROUTES:
            path = route.path.format_map(defaultdict(uuid.uuid4))  # any {placeholder}
            for role in ROLES:
                response = await client.request(
                    route.method, path, headers=tokens[role], json=route.json, data=route.form
                )
                outcome = expected_outcome(route, role)
                status = response.status_code
                if outcome == "unauthenticated":
                    ok = status == 401 and response.headers.get("www-authenticate") == "Bearer"
                elif outcome == "forbidden":
                    ok = status == 403
                else:
                    ok = (
                        status < 500
                        and status not in {403, 405}
                        and (outcome == "public" or status != 401)
                    )
                if status >= 400:
                    assert_error(response, status)
                if not ok:
                    problems.append((route.method, route.path, role, outcome, status))
        assert not problems, problems
