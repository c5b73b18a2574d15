"""Storage status API (admins only): what the history holds and what the maintenance jobs did."""

from __future__ import annotations

from fastapi import APIRouter, Response

from perfwatch.api.dependencies import SessionDep, SettingsDep
from perfwatch.api.errors import error_body, error_responses
from perfwatch.api.responses import model_response
from perfwatch.api.security import AdminUser
from perfwatch.retention.status import gather_storage_status
from perfwatch.retention.status_schemas import StorageStatusOut

router = APIRouter(prefix="/retention", tags=["retention"])

_DESCRIPTION = (
    "Per metric type and tier (raw snapshots, 1-minute, 1-hour): the oldest and newest row, "
    "rows, bytes and the archive policy in force; the maintenance jobs (`tiers`, `retention`): "
    "last run, next run, last error; the database size against `storage.max_bytes`; the "
    "archive files. Cheap on a big database: on PostgreSQL rows are catalogue estimates "
    "(`rows_estimated: true`) and bytes are measured per partition; on SQLite rows are exact "
    "and bytes are estimates (`bytes_estimated: true`). Also `perfwatch retention status` and "
    "the `perfwatch_storage_*` gauges on `/metrics`."
)


def _documented(*statuses: int) -> dict[int | str, dict[str, object]]:
    responses = error_responses(*statuses)
    examples = {
        401: ("not_authenticated", "token has expired"),
        403: ("permission_denied", "this needs one of the roles: admin"),
    }
    for status_code, (code, message) in examples.items():
        if status_code in responses:
            content = responses[status_code]["content"]
            content["application/json"]["example"] = error_body(code, message)
    return dict(responses)


@router.get(
    "",
    summary="Storage status: history per type and tier, jobs, disk cap, archives",
    description=_DESCRIPTION,
    response_model=StorageStatusOut,
    responses=_documented(401, 403),
)
async def storage_status(session: SessionDep, settings: SettingsDep, _admin: AdminUser) -> Response:
    status = await gather_storage_status(session, settings.archive_dir)
    return model_response(StorageStatusOut.of(status))
