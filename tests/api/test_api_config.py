"""The configuration and archive policies APIs over HTTP on both databases, the validation rules
they share with ``perfwatch config set``, and that CLI command."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from perfwatch.config import Settings
from perfwatch.config_store.service import ConfigService
from perfwatch.config_store.validation import unknown_key_message, validate_value
from perfwatch.contract.metrics import METRIC_TYPES
from perfwatch.contract.runtime_config import CATALOGUE, KNOWN_KEYS, known_keys_text, rule_for
from perfwatch.errors import ValidationFailedError
from perfwatch.models import UserRole
from tests.support.api import (
    access_token,
    add_user,
    app_session,
    assert_error,
    bearer,
    client_of,
    running_app,
)
from tests.support.cli import assert_one_line_error, invoke
from tests.support.helpers import fetch, migrate, perfwatch, subprocess_env

MARKER_SQL = "SELECT count(*), max(updated_at) FROM config_entries"


async def headers_for(settings: Settings, role: UserRole) -> tuple[str, dict[str, str]]:
    account = await add_user(role)
    return account.username, bearer(access_token(settings, account.user))


# ----- the rules ----------------------------------------------------------------------------------


def test_every_known_key_has_a_rule_its_default_passes() -> None:
    for default in CATALOGUE:
        assert rule_for(default.key) is not None, default.key
        assert validate_value(default.key, default.default) == default.default
    assert len(unknown_key_message("x" * 128)) <= 300  # fits the error shape's message
    assert "sampler.interval.{cpu," in known_keys_text()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "sampler.interval.cpu",
            0,
            "sampler.interval.cpu must be between 1 and 3600 seconds, got 0",
        ),
        ("sampler.interval.connections", 3601, "must be between 1 and 3600 seconds, got 3601"),
        ("sampler.interval.cpu", "abc", 'must be a number between 1 and 3600 seconds, got "abc"'),
        ("sampler.interval.cpu", True, "got true"),
        ("sampler.interval.cpu", float("nan"), "got NaN"),
        ("sampler.processes.top_n", 2.5, "sampler.processes.top_n must be a whole number, got 2.5"),
        ("sampler.processes.top_n", 501, "between 0 and 500, got 501"),
        ("sampler.batch.max_rows", 0, "between 1 and 100000, got 0"),
        ("sampler.batch.max_seconds", 301, "between 1 and 300 seconds, got 301"),
        ("cache.latest_ttl_seconds", 86401, "between 1 and 86400 seconds"),
        ("api.max_points", 9, "api.max_points must be between 10 and 10000, got 9"),
        ("api.max_points", None, "got null"),
    ],
)
def test_rules_say_what_to_fix(key: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationFailedError) as raised:
        validate_value(key, value)
    assert message in raised.value.message


def test_rules_accept_and_normalise() -> None:
    assert validate_value("sampler.interval.cpu", 0.5 + 1) == 1.5
    assert validate_value("sampler.processes.top_n", 0) == 0
    assert validate_value("sampler.processes.top_n", 25.0) == 25
    assert isinstance(validate_value("sampler.processes.top_n", 25.0), int)
    assert validate_value("sampler.interval.gpu", 3600) == 3600  # any sampler.interval.* key
    assert validate_value("custom.anything", {"free": "form"}) == {"free": "form"}


# ----- /api/v1/config -----------------------------------------------------------------------------


async def test_config_list_get_put(api_settings: Settings, fresh_db: str) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        admin_name, admin = await headers_for(api_settings, UserRole.ADMIN)
        _, member = await headers_for(api_settings, UserRole.MEMBER)

        # Nothing stored yet: every known key shows its default.
        response = await client.get("/api/v1/config", headers=member)
        assert response.status_code == 200, response.text
        items = {item["key"]: item for item in response.json()["items"]}
        assert set(items) == set(KNOWN_KEYS)
        cpu = items["sampler.interval.cpu"]
        assert cpu["value"] == cpu["default"] == 1 and cpu["known"]
        assert cpu["updated_at"] is None and cpu["updated_by"] is None
        assert cpu["description"] == "Seconds between CPU samples"

        response = await client.put(
            "/api/v1/config/sampler.interval.cpu", headers=admin, json={"value": 2}
        )
        assert response.status_code == 200, response.text
        first = response.json()
        assert first["value"] == 2 and first["default"] == 1
        assert first["updated_by"] == admin_name and first["updated_at"] is not None

        response = await client.get("/api/v1/config/sampler.interval.cpu", headers=member)
        assert response.status_code == 200 and response.json() == first
        marker = fetch(fresh_db, MARKER_SQL)[0]

        # The same value again still moves updated_at, and so the sampler's marker.
        response = await client.put(
            "/api/v1/config/sampler.interval.cpu", headers=admin, json={"value": 2}
        )
        assert response.status_code == 200
        assert response.json()["updated_at"] > first["updated_at"]
        assert fetch(fresh_db, MARKER_SQL)[0] != marker

        response = await client.put(
            "/api/v1/config/sampler.processes.top_n", headers=admin, json={"value": 25.0}
        )
        assert response.status_code == 200 and response.json()["value"] == 25
        response = await client.get("/api/v1/config", headers=member)
        values = {item["key"]: item["value"] for item in response.json()["items"]}
        assert values["sampler.interval.cpu"] == 2 and values["sampler.processes.top_n"] == 25
        assert values["api.max_points"] == 1500

        # Invalid values: 422 in the error shape, saying what to fix; nothing changes.
        for key, value, fragment in [
            ("sampler.interval.cpu", 0, "sampler.interval.cpu must be between 1 and 3600 seconds"),
            ("sampler.interval.cpu", 3601, "got 3601"),
            (
                "sampler.interval.cpu",
                "abc",
                'must be a number between 1 and 3600 seconds, got "abc"',
            ),
            ("sampler.processes.top_n", "ten", "sampler.processes.top_n must be a whole number"),
            ("sampler.processes.top_n", 2.5, "must be a whole number, got 2.5"),
            ("sampler.processes.top_n", [1], "got [1]"),
            ("api.max_points", None, "got null"),
        ]:
            error = assert_error(
                await client.put(f"/api/v1/config/{key}", headers=admin, json={"value": value}),
                422,
                "validation_failed",
            )
            assert fragment in error["message"], (key, value, error)
        response = await client.get("/api/v1/config/sampler.interval.cpu", headers=member)
        assert response.json()["value"] == 2

        # The body: exactly {"value": ...}.
        assert_error(await client.put("/api/v1/config/api.max_points", headers=admin, json={}), 422)
        assert_error(
            await client.put(
                "/api/v1/config/api.max_points", headers=admin, json={"value": 10, "x": 1}
            ),
            422,
        )

        # Unknown keys: not settable through the API, 404 to read.
        error = assert_error(
            await client.put("/api/v1/config/sampler.gpu", headers=admin, json={"value": 1}),
            422,
            "unknown_config_key",
        )
        assert "sampler.gpu" in error["message"] and "api.max_points" in error["message"]
        error = assert_error(
            await client.get("/api/v1/config/sampler.gpu", headers=member), 404, "not_found"
        )
        assert "known keys: sampler.interval.{cpu," in error["message"]
        assert_error(await client.get(f"/api/v1/config/{'k' * 129}", headers=member), 422)


async def test_config_roles(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        _, member = await headers_for(api_settings, UserRole.MEMBER)
        _, viewer = await headers_for(api_settings, UserRole.VIEWER)
        assert (await client.get("/api/v1/config", headers=member)).status_code == 200
        assert_error(
            await client.put(
                "/api/v1/config/sampler.interval.cpu", headers=member, json={"value": 2}
            ),
            403,
            "permission_denied",
        )
        assert_error(await client.get("/api/v1/config", headers=viewer), 403)
        assert_error(await client.get("/api/v1/config/sampler.interval.cpu", headers=viewer), 403)
        assert_error(await client.get("/api/v1/config"), 401)


async def test_entries_set_by_the_cli_are_listed(api_settings: Settings, fresh_db: str) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        _, member = await headers_for(api_settings, UserRole.MEMBER)
        async with app_session() as session:
            await ConfigService(session).set_entry(
                "custom.note", "hello", updated_by="cli", allow_unknown=True
            )
        response = await client.get("/api/v1/config/custom.note", headers=member)
        assert response.status_code == 200
        body = response.json()
        assert body["value"] == "hello" and body["known"] is False and body["default"] is None
        listed = [
            item["key"]
            for item in (await client.get("/api/v1/config", headers=member)).json()["items"]
        ]
        assert "custom.note" in listed and listed == sorted(listed)


# ----- /api/v1/archive-policies -------------------------------------------------------------------


async def test_archive_policies_crud(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        _, admin = await headers_for(api_settings, UserRole.ADMIN)
        _, member = await headers_for(api_settings, UserRole.MEMBER)
        base = "/api/v1/archive-policies"

        cpu = {"metric_type": "cpu", "raw_days": 2, "minute_days": 7, "retention_days": 14}
        response = await client.post(base, headers=admin, json=cpu)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["action"] == "delete" and created["enabled"] is True
        assert created["last_run_at"] is None and created["retention_days"] == 14
        policy_url = f"{base}/{created['id']}"

        error = assert_error(await client.post(base, headers=admin, json=cpu), 409, "conflict")
        assert "'cpu' already exists" in error["message"]

        error = assert_error(
            await client.post(base, headers=admin, json={**cpu, "retention_days": 0}), 422
        )
        assert [detail["field"] for detail in error["details"]] == ["retention_days"]
        error = assert_error(
            await client.post(base, headers=admin, json={"metric_type": "disk", "raw_days": 1}),
            422,
        )
        assert {detail["field"] for detail in error["details"]} == {
            "minute_days",
            "retention_days",
        }
        error = assert_error(
            await client.post(base, headers=admin, json={**cpu, "metric_type": "gpu"}),
            422,
            "validation_failed",
        )
        assert "metric_type must be one of cpu, memory" in error["message"]
        assert "'gpu'" in error["message"]
        error = assert_error(
            await client.post(
                base,
                headers=admin,
                json={"metric_type": "disk", "raw_days": 8, "minute_days": 7, "retention_days": 7},
            ),
            422,
        )
        assert "raw_days (8) <= minute_days (7) <= retention_days (7) must hold" in error["message"]
        assert_error(await client.post(base, headers=admin, json={**cpu, "action": "shred"}), 422)
        assert_error(await client.post(base, headers=admin, json={**cpu, "last_run_at": None}), 422)

        response = await client.post(
            base,
            headers=admin,
            json={
                "metric_type": "*",
                "raw_days": 1,
                "minute_days": 30,
                "retention_days": 30,
                "action": "archive",
            },
        )
        assert response.status_code == 201, response.text
        fallback = response.json()

        response = await client.get(base, headers=admin)
        assert response.status_code == 200
        listing = response.json()
        assert listing["total"] == 2
        assert [item["metric_type"] for item in listing["items"]] == ["*", "cpu"]

        response = await client.get(policy_url, headers=admin)
        assert response.status_code == 200 and response.json() == created
        assert_error(await client.get(f"{base}/{uuid.uuid4()}", headers=admin), 404, "not_found")
        assert_error(await client.get(f"{base}/not-a-uuid", headers=admin), 422)

        # PATCH: only what is sent; the result must still follow the rules.
        response = await client.patch(
            policy_url, headers=admin, json={"retention_days": 30, "action": "archive"}
        )
        assert response.status_code == 200, response.text
        patched = response.json()
        assert patched["retention_days"] == 30 and patched["action"] == "archive"
        assert patched["raw_days"] == 2 and patched["updated_at"] >= created["updated_at"]
        assert_error(await client.patch(policy_url, headers=admin, json={"metric_type": "*"}), 409)
        error = assert_error(
            await client.patch(policy_url, headers=admin, json={"retention_days": None}), 422
        )
        assert "retention_days cannot be null" in error["message"]
        error = assert_error(
            await client.patch(policy_url, headers=admin, json={"retention_days": 2}), 422
        )
        assert "minute_days (7) <= retention_days (2)" in error["message"]
        assert_error(await client.patch(policy_url, headers=admin, json={"retention_days": 0}), 422)
        response = await client.patch(
            policy_url,
            headers=admin,
            json={"raw_days": 1, "minute_days": 1, "enabled": False, "metric_type": "memory"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["minute_days"] == 1 and body["enabled"] is False
        assert body["metric_type"] == "memory"
        assert_error(
            await client.patch(f"{base}/{uuid.uuid4()}", headers=admin, json={"enabled": True}),
            404,
        )

        # Members cannot even read policies.
        assert_error(await client.get(base, headers=member), 403)
        assert_error(await client.delete(policy_url, headers=member), 403)

        response = await client.delete(policy_url, headers=admin)
        assert response.status_code == 204 and response.content == b""
        assert_error(await client.get(policy_url, headers=admin), 404)
        assert_error(await client.delete(policy_url, headers=admin), 404)
        response = await client.get(base, headers=admin)
        assert [item["id"] for item in response.json()["items"]] == [fallback["id"]]


async def test_every_metric_type_can_have_a_policy(api_settings: Settings) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        _, admin = await headers_for(api_settings, UserRole.ADMIN)
        for metric_type in METRIC_TYPES:
            response = await client.post(
                "/api/v1/archive-policies",
                headers=admin,
                json={
                    "metric_type": metric_type,
                    "raw_days": 1,
                    "minute_days": 1,
                    "retention_days": 1,
                },
            )
            assert response.status_code == 201, response.text
        response = await client.get("/api/v1/archive-policies", headers=admin)
        assert response.json()["total"] == len(METRIC_TYPES)


# ----- perfwatch config set -----------------------------------------------------------------------


def test_cli_config_set_refuses_an_invalid_value(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'config.db'}"
    migrate(url)
    result = perfwatch(
        "config",
        "set",
        "sampler.interval.cpu",
        "0",
        env=subprocess_env(url, tmp_path / "data"),
        cwd=tmp_path,
    )
    assert_one_line_error(result, "sampler.interval.cpu must be between 1 and 3600 seconds, got 0")
    assert result.stdout == ""
    assert fetch(url, "SELECT count(*) FROM config_entries")[0][0] == 0


def test_cli_config_set_checks_known_keys_and_keeps_free_form_ones(
    fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "data"
    result = invoke(["config", "set", "sampler.processes.top_n", "25"], fresh_db, data_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "sampler.processes.top_n = 25"
    for value, fragment in [
        ("ten", 'sampler.processes.top_n must be a whole number between 0 and 500, got "ten"'),
        ("501", "sampler.processes.top_n must be between 0 and 500, got 501"),
    ]:
        result = invoke(["config", "set", "sampler.processes.top_n", value], fresh_db, data_dir)
        assert result.exit_code == 1
        assert fragment in result.output
    result = invoke(["config", "set", "team.note", "anything goes"], fresh_db, data_dir)
    assert result.exit_code == 0, result.output
    rows = dict(
        (key, (value, updated_by, description))
        for key, value, updated_by, description in fetch(
            fresh_db, 'SELECT "key", value, updated_by, description FROM config_entries'
        )
    )
    assert set(rows) == {"sampler.processes.top_n", "team.note"}
    top_n = rows["sampler.processes.top_n"]
    assert str(top_n[0]) == "25" and top_n[1] == "cli"
    assert top_n[2] == "Processes listed by CPU and by memory"
