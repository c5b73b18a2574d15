"""Archive policies API (admins only): list, create, read, change, delete."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from perfwatch.api.dependencies import SessionDep
from perfwatch.api.errors import error_body, error_responses
from perfwatch.api.security import AdminUser
from perfwatch.retention.schemas import (
    ArchivePolicyCreate,
    ArchivePolicyList,
    ArchivePolicyOut,
    ArchivePolicyUpdate,
)
from perfwatch.retention.service import ArchivePolicyService

router = APIRouter(prefix="/archive-policies", tags=["archive policies"])

_RULES = (
    "Rules: `metric_type` is a known type or `*` (the fallback for types without a policy of "
    "their own), one policy per type (409); 1 ≤ `raw_days` ≤ `minute_days` ≤ `retention_days` "
    "(raw snapshots, then the 1-minute tier, then the 1-hour tier: docs/retention.md)."
)


def _documented(*statuses: int) -> dict[int | str, dict[str, object]]:
    responses = error_responses(*statuses)
    examples = {
        404: ("not_found", "no archive policy with id 5f0c1d2e-…"),
        409: ("conflict", "a policy for metric type 'cpu' already exists (id 5f0c1d2e-…)"),
        422: ("validation_failed", "retention_days must be between 1 and 36500 days, got 0"),
    }
    for status_code, (code, message) in examples.items():
        if status_code in responses:
            content = responses[status_code]["content"]
            content["application/json"]["example"] = error_body(code, message)
    return dict(responses)


@router.get(
    "",
    summary="List archive policies",
    response_model=ArchivePolicyList,
    responses=_documented(401, 403),
)
async def list_policies(session: SessionDep, _admin: AdminUser) -> ArchivePolicyList:
    policies = await ArchivePolicyService(session).list_policies()
    return ArchivePolicyList(
        items=[ArchivePolicyOut.model_validate(policy) for policy in policies],
        total=len(policies),
    )


@router.post(
    "",
    summary="Create an archive policy",
    description=_RULES,
    status_code=status.HTTP_201_CREATED,
    response_model=ArchivePolicyOut,
    responses=_documented(401, 403, 409, 422),
)
async def create_policy(
    body: ArchivePolicyCreate, session: SessionDep, _admin: AdminUser
) -> ArchivePolicyOut:
    policy = await ArchivePolicyService(session).create_policy(body.model_dump())
    return ArchivePolicyOut.model_validate(policy)


@router.get(
    "/{policy_id}",
    summary="Get an archive policy",
    response_model=ArchivePolicyOut,
    responses=_documented(401, 403, 404, 422),
)
async def get_policy(
    policy_id: uuid.UUID, session: SessionDep, _admin: AdminUser
) -> ArchivePolicyOut:
    return ArchivePolicyOut.model_validate(
        await ArchivePolicyService(session).get_policy(policy_id)
    )


@router.patch(
    "/{policy_id}",
    summary="Change an archive policy",
    description="Only the fields sent change; the result must still follow the rules. " + _RULES,
    response_model=ArchivePolicyOut,
    responses=_documented(401, 403, 404, 409, 422),
)
async def update_policy(
    policy_id: uuid.UUID, body: ArchivePolicyUpdate, session: SessionDep, _admin: AdminUser
) -> ArchivePolicyOut:
    changes = body.model_dump(exclude_unset=True)
    policy = await ArchivePolicyService(session).update_policy(policy_id, changes)
    return ArchivePolicyOut.model_validate(policy)


@router.delete(
    "/{policy_id}",
    summary="Delete an archive policy",
    description="Metric types it governed fall back to the `*` policy (none: kept for good).",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_documented(401, 403, 404, 422),
)
async def delete_policy(policy_id: uuid.UUID, session: SessionDep, _admin: AdminUser) -> Response:
    await ArchivePolicyService(session).delete_policy(policy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
