"""The storage status over HTTP on both databases: ``GET /api/v1/retention`` (admins), its
gauges on ``/metrics``, and the disk-cap warning of ``/health/ready``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfwatch.config import Settings
from perfwatch.contract.metrics import METRIC_TYPES
from perfwatch.models import UserRole
from perfwatch.retention.status_schemas import StorageStatusOut
from tests.retention.storage_data import DAY1, add_archive, add_history
from tests.support.api import (
    access_token,
    add_user,
    app_session,
    assert_error,
    bearer,
    client_of,
    running_app,
)
from tests.support.prometheus import parse_exposition


async def headers_for(settings: Settings, role: UserRole) -> dict[str, str]:
    account = await add_user(role)
    return bearer(access_token(settings, account.user))


def _series(body: dict[str, Any], metric_type: str, tier: str) -> dict[str, Any]:
    (found,) = [s for s in body["series"] if s["metric_type"] == metric_type and s["tier"] == tier]
    return dict(found)


async def test_storage_status_for_admins_only(
    api_settings: Settings, dialect: str, tmp_path: Path
) -> None:
    settings = api_settings.model_copy(update={"perfwatch_archive_dir": tmp_path})
    add_archive(tmp_path)
    async with running_app(settings) as app, client_of(app) as client:
        async with app_session() as session:
            await add_history(session)
        assert_error(await client.get("/api/v1/retention"), 401)
        member = await headers_for(settings, UserRole.MEMBER)
        assert_error(await client.get("/api/v1/retention", headers=member), 403)
        admin = await headers_for(settings, UserRole.ADMIN)
        response = await client.get("/api/v1/retention", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    StorageStatusOut.model_validate(body)  # the documented shape
    assert {s["tier"] for s in body["series"]} == {"raw", "1m", "1h"}
    assert {s["metric_type"] for s in body["series"]} == {*METRIC_TYPES, "other"}
    cpu = _series(body, "cpu", "raw")
    assert cpu["oldest"] == DAY1.isoformat().replace("+00:00", "Z")
    assert cpu["rows"] >= 25
    assert cpu["rows_estimated"] is (dialect == "postgres")
    assert cpu["bytes_estimated"] is (dialect == "sqlite")
    assert cpu["policy"] == {"source": "*", "keep_days": 3, "action": "delete"}
    assert _series(body, "processes", "raw")["policy"] == {
        "source": "processes",
        "keep_days": 2,
        "action": "archive",
    }
    assert [job["name"] for job in body["jobs"]] == ["tiers", "retention"]
    assert body["jobs"][1]["last_error"].startswith("OSError")
    assert body["database"]["dialect"] == ("postgresql" if dialect == "postgres" else "sqlite")
    assert body["database"]["max_bytes"] == 0 and body["database"]["percent_used"] is None
    assert body["archive"] == {
        "directory": str(tmp_path),
        "exists": True,
        "files": 2,
        "bytes": 350,
        "rows": 8,
        "unreadable": 1,
    }


async def test_storage_gauges_on_metrics(api_settings: Settings, tmp_path: Path) -> None:
    settings = api_settings.model_copy(update={"perfwatch_archive_dir": tmp_path})
    add_archive(tmp_path)
    async with running_app(settings) as app, client_of(app) as client:
        async with app_session() as session:
            await add_history(session)
        viewer = await headers_for(settings, UserRole.VIEWER)
        response = await client.get("/metrics", headers=viewer)
    assert response.status_code == 200, response.text
    samples = parse_exposition(response.text)
    rows = samples["perfwatch_storage_rows"]
    assert len(rows) == 3 * len(METRIC_TYPES) + 1  # and "other" in raw
    assert any(
        line.startswith('perfwatch_storage_rows{metric_type="cpu",tier="raw"} ') for line in rows
    )
    assert len(samples["perfwatch_storage_bytes"]) == len(rows)
    oldest = samples["perfwatch_storage_oldest_timestamp_seconds"]
    cpu_raw = '{metric_type="cpu",tier="raw"}'
    assert f"perfwatch_storage_oldest_timestamp_seconds{cpu_raw} {DAY1.timestamp():.0f}" in oldest
    assert "perfwatch_storage_newest_timestamp_seconds" in samples
    assert (
        'perfwatch_storage_keep_days{metric_type="processes",tier="raw"} 2'
        in samples["perfwatch_storage_keep_days"]
    )
    (database_bytes,) = samples["perfwatch_database_bytes"]
    assert int(database_bytes.split()[-1]) > 0
    assert samples["perfwatch_storage_max_bytes"] == ["perfwatch_storage_max_bytes 0"]
    assert samples["perfwatch_maintenance_last_error"] == [
        'perfwatch_maintenance_last_error{job="tiers"} 0',
        'perfwatch_maintenance_last_error{job="retention"} 1',
    ]
    (success,) = samples["perfwatch_maintenance_last_success_timestamp_seconds"]
    assert success.startswith('perfwatch_maintenance_last_success_timestamp_seconds{job="tiers"}')
    assert samples["perfwatch_archive_files"] == ["perfwatch_archive_files 2"]
    assert samples["perfwatch_archive_bytes"] == ["perfwatch_archive_bytes 350"]
    assert samples["perfwatch_storage_status_failures_total"] == [
        "perfwatch_storage_status_failures_total 0"
    ]
    assert "# TYPE perfwatch_storage_rows gauge" in response.text
    assert "# HELP perfwatch_storage_rows Rows per metric type and tier" in response.text


async def test_ready_warns_above_90_percent_of_the_cap(
    api_settings: Settings,
    fresh_db: str,  # /health/ready reads through the app's own pool
) -> None:
    async with running_app(api_settings) as app, client_of(app) as client:
        admin = await headers_for(api_settings, UserRole.ADMIN)
        response = await client.get("/health/ready")
        assert response.status_code == 200, response.text
        assert response.json()["warnings"] == []

        cap = await client.put(
            "/api/v1/config/storage.max_bytes", headers=admin, json={"value": 1000}
        )
        assert cap.status_code == 200, cap.text
        response = await client.get("/health/ready")
        assert response.status_code == 200, response.text  # still ready
        body = response.json()
        assert body["status"] == "ok" and body["failed"] == []
        (warning,) = body["warnings"]
        assert warning["check"] == "storage"
        assert warning["max_bytes"] == 1000
        assert warning["bytes"] > 1000 and warning["percent_used"] > 100
        assert f"({warning['bytes']} bytes)" in warning["message"]
        assert "storage.max_bytes 1.0 KB (1000 bytes)" in warning["message"]
        assert f"{warning['percent_used']:g} %" in warning["message"]

        # Under 90 % of a cap: no warning.
        roomy = warning["bytes"] * 2
        cap = await client.put(
            "/api/v1/config/storage.max_bytes", headers=admin, json={"value": roomy}
        )
        assert cap.status_code == 200, cap.text
        response = await client.get("/health/ready")
        assert response.json()["warnings"] == []
