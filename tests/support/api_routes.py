"""Every route under /api/v1 and the least role that may call it: the table the role matrix in
``test_api_roles.py`` runs. A router added later appends its rows here (a test fails while any
/api/v1 route is missing from the table).

``minimum_role`` None means public (no token needed). Path placeholders (``{user_id}``…) are
filled with a random UUID, so an allowed call may well answer 404: the matrix checks only
that anonymous callers get 401, too-low roles 403, and everyone else neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfwatch.models import UserRole


@dataclass(frozen=True, slots=True)
class ApiRoute:
    method: str
    path: str
    minimum_role: UserRole | None
    json: Any = None
    form: dict[str, str] | None = field(default=None)


VIEWER, MEMBER, ADMIN = UserRole.VIEWER, UserRole.MEMBER, UserRole.ADMIN

API_ROUTES: list[ApiRoute] = [
    # auth
    ApiRoute("POST", "/api/v1/auth/login", None, form={"username": "nobody", "password": "x"}),
    ApiRoute("POST", "/api/v1/auth/refresh", None, json={"refresh_token": "not.a.token"}),
    ApiRoute("GET", "/api/v1/auth/me", VIEWER),
    ApiRoute(
        "POST",
        "/api/v1/auth/password",
        VIEWER,
        json={"current_password": "wrong-password", "new_password": "x"},
    ),
    # users
    ApiRoute("GET", "/api/v1/users", ADMIN),
    ApiRoute("POST", "/api/v1/users", ADMIN, json={"username": "x"}),
    ApiRoute("GET", "/api/v1/users/{user_id}", ADMIN),
    ApiRoute("PATCH", "/api/v1/users/{user_id}", ADMIN, json={"full_name": "X"}),
    ApiRoute("DELETE", "/api/v1/users/{user_id}", ADMIN),
    ApiRoute("POST", "/api/v1/users/{user_id}/restore", ADMIN),
    # configuration
    ApiRoute("GET", "/api/v1/config", MEMBER),
    ApiRoute("GET", "/api/v1/config/{key}", MEMBER),
    ApiRoute("PUT", "/api/v1/config/{key}", ADMIN, json={"value": 1}),
    # archive policies
    ApiRoute("GET", "/api/v1/archive-policies", ADMIN),
    ApiRoute("POST", "/api/v1/archive-policies", ADMIN, json={"metric_type": "x"}),
    ApiRoute("GET", "/api/v1/archive-policies/{policy_id}", ADMIN),
    ApiRoute("PATCH", "/api/v1/archive-policies/{policy_id}", ADMIN, json={"enabled": True}),
    ApiRoute("DELETE", "/api/v1/archive-policies/{policy_id}", ADMIN),
    # storage status
    ApiRoute("GET", "/api/v1/retention", ADMIN),
    # metrics
    ApiRoute("GET", "/api/v1/metrics/types", VIEWER),
    ApiRoute("GET", "/api/v1/hosts", VIEWER),
    ApiRoute("GET", "/api/v1/metrics/latest", VIEWER),
    ApiRoute("GET", "/api/v1/metrics/stream", VIEWER),
    ApiRoute("GET", "/api/v1/metrics/{metric_type}", VIEWER),
    ApiRoute("GET", "/api/v1/metrics/{metric_type}/summary", VIEWER),
]

ROLE_RANK = {VIEWER: 0, MEMBER: 1, ADMIN: 2}


def expected_outcome(route: ApiRoute, role: UserRole | None) -> str:
    """'public', 'unauthenticated' (401), 'forbidden' (403) or 'allowed'."""
    if route.minimum_role is None:
        return "public"
    if role is None:
        return "unauthenticated"
    return "allowed" if ROLE_RANK[role] >= ROLE_RANK[route.minimum_role] else "forbidden"
