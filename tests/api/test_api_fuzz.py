"""Schemathesis over the app's own OpenAPI spec: no 5xx, and every response matches what the
spec documents (status code, body schema, content type, headers).

Run by ``make fuzz`` (PERFWATCH_FUZZ=1), not by ``make test``: a few hundred generated
requests per run, and CI runs both targets.

The real app (create_app, lifespan running) on a migrated PostgreSQL database of its own with
the in-process cache. Every operation is fuzzed twice: as an administrator (so protected routes
are exercised past 401) and without credentials. Generation is derandomized, so a CI failure
reproduces locally with the same command.

Keeping the run meaningful and stable:

* The fuzzing admin's token is issued directly (never through the login route the fuzzer
  throttles) and the admin is never the target of a generated ``/users/{user_id}`` request:
  deleting, demoting or deactivating it would turn the rest of the run into 401s.
* ``POST /auth/password`` is fuzzed with that token: it needs the current password, a random
  secret the fuzzer cannot produce, so it only ever answers 422/429 and the token stays valid.
* Generated ids are random UUIDs (404s), so ``/users/{user_id}`` cases are also sent once more
  with the id of an existing user (a pool of victims, never an admin) to reach the 200/204/409
  responses and check their bodies.
* Login attempts are throttled per (username, address) and per address (5 and 20 failures in 15
  minutes): after the first few cases the login route answers 429, which the spec documents.
"""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

if os.environ.get("PERFWATCH_FUZZ") != "1":
    pytest.skip("API fuzzing runs with `make fuzz` (PERFWATCH_FUZZ=1)", allow_module_level=True)

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from perfwatch.app import create_app
from perfwatch.config import Settings
from perfwatch.db.session import open_database
from perfwatch.models import UserRole
from tests.support.api import access_token, add_user, bearer
from tests.support.helpers import make_settings, migrate, run_async, scratch_postgres
from tests.support.services import PostgresServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
VICTIMS = 8
STREAM_SECONDS = 0.5

FUZZ_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


class _AppUnderTest:
    """The ASGI app schemathesis calls: the fixture plugs the real app in.

    The spec has to exist when pytest collects (one test per operation), the database only
    when the tests run; and schemathesis's fixture-based loader does not work with pytest 9."""

    app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the fuzz_target fixture has not started the app"
        await self.app(scope, receive, send)


APP = _AppUnderTest()
# The routes do not depend on the settings: a spec-only app (never started) gives the spec.
schema = schemathesis.openapi.from_dict(
    create_app(make_settings("sqlite+aiosqlite:///spec-only.db")).openapi()
)
schema.app = APP


@dataclass(frozen=True, slots=True)
class FuzzTarget:
    admin_id: str
    admin_token: str
    victim_ids: tuple[str, ...]


async def _accounts(settings: Settings) -> tuple[str, str, list[str]]:
    """The fuzzing admin (id, token) and the victims' ids, committed before the app starts."""
    async with open_database(settings) as database:
        admin = await add_user(UserRole.ADMIN, sessions=database.sessionmaker)
        victims = [
            await add_user(
                UserRole.MEMBER if index % 2 else UserRole.VIEWER, sessions=database.sessionmaker
            )
            for index in range(VICTIMS)
        ]
    token = access_token(settings, admin.user)
    return str(admin.user.id), token, [str(victim.user.id) for victim in victims]


@pytest.fixture(scope="module")
def fuzz_target(postgres_server: PostgresServer) -> Iterator[FuzzTarget]:
    with scratch_postgres(postgres_server) as url:
        migrate(url)
        # No redis_url: the in-process cache. Tokens outlive the run.
        app_settings = make_settings(url, access_token_minutes=120)
        admin_id, token, victims = run_async(_accounts(app_settings))
        APP.app = create_app(app_settings)
        # The first request starts the lifespan on schemathesis's event loop thread; every
        # request then runs on that loop, with the engine the lifespan created there.
        try:
            yield FuzzTarget(admin_id, token, tuple(victims))
        finally:
            asgi.shutdown_lifespans()  # disposes the engine before the database is dropped
            APP.app = None


def _victim_for(case: schemathesis.Case, target: FuzzTarget) -> str:
    """A pick among the victims that is the same on every run (``hash`` is salted)."""
    return target.victim_ids[zlib.crc32(repr(case.body).encode()) % len(target.victim_ids)]


def _is_event_stream(operation: Any) -> bool:
    responses = operation.definition.raw.get("responses", {})
    return any("text/event-stream" in (r.get("content") or {}) for r in responses.values())


def _call_kwargs(case: schemathesis.Case) -> dict[str, Any]:
    """Checks, and a short read for endless event streams: what arrived by then is checked
    (schemathesis would otherwise wait out its 10 s default on every such case)."""
    kwargs: dict[str, Any] = {"checks": CHECKS}
    if _is_event_stream(case.operation):
        kwargs["timeout"] = STREAM_SECONDS
    return kwargs


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_admin(case: schemathesis.Case, fuzz_target: FuzzTarget) -> None:
    headers = bearer(fuzz_target.admin_token)
    kwargs = _call_kwargs(case)
    path_parameters = case.path_parameters or {}
    if "user_id" in path_parameters:
        if str(path_parameters["user_id"]) == fuzz_target.admin_id:
            path_parameters["user_id"] = str(uuid.uuid4())
        case.call_and_validate(headers=headers, **kwargs)
        # The same request on a real user: the 200/204/409 answers and their bodies.
        path_parameters["user_id"] = _victim_for(case, fuzz_target)
    case.call_and_validate(headers=headers, **kwargs)


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=10)
def test_api_without_credentials(case: schemathesis.Case, fuzz_target: FuzzTarget) -> None:
    case.call_and_validate(**_call_kwargs(case))


# ----- what the fuzzer found, pinned ----------------------------------------------------------


def test_text_with_nul_is_invalid_input(fuzz_target: FuzzTarget) -> None:
    """PostgreSQL cannot store NUL in text: 422 validation_failed, not a 500."""
    with asgi.get_client(APP) as client:
        response = client.post(
            "/api/v1/auth/login", data={"username": "nul\x00user", "password": "x"}
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "validation_failed"
        response = client.post(
            "/api/v1/users",
            headers=bearer(fuzz_target.admin_token),
            json={
                "username": "nulname",
                "password": "correct horse battery staple",
                "full_name": "a\x00b",
            },
        )
        assert response.status_code == 422, response.text
        assert "NUL" in response.json()["error"]["message"]


def test_undecodable_body_is_invalid_input(fuzz_target: FuzzTarget) -> None:
    """Bytes that are not UTF-8: the 422 every route with a body documents, not a 400."""
    with asgi.get_client(APP) as client:
        response = client.post(
            "/api/v1/users",
            headers={**bearer(fuzz_target.admin_token), "Content-Type": "application/json"},
            data=b"\xff\xfe{",
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        assert error["details"] == [
            {
                "location": "body",
                "field": "",
                "message": "the body could not be parsed (send UTF-8 JSON)",
            }
        ]
