"""Users administration API (admins only): list, create, read, change, delete, restore."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from perfwatch.api.dependencies import SessionDep
from perfwatch.api.errors import error_responses
from perfwatch.api.security import AdminUser
from perfwatch.errors import ValidationFailedError
from perfwatch.kit.repository import MAX_PAGE_SIZE
from perfwatch.models import UserRole
from perfwatch.users.schemas import UserCreate, UserOut, UserPage, UserUpdate
from perfwatch.users.service import API_SORT_FIELDS, UserService

router = APIRouter(prefix="/users", tags=["users"])

LIST_PARAMETERS = frozenset(
    {"limit", "offset", "sort", "role", "is_active", "username", "include_deleted"}
)


@router.get(
    "",
    summary="List users",
    description="A page of users, filtered and sorted. Soft-deleted users are left out unless "
    "`include_deleted=true`.",
    response_model=UserPage,
    responses=error_responses(401, 403, 422),
)
async def list_users(
    request: Request,
    session: SessionDep,
    _admin: AdminUser,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    sort: Annotated[
        str,
        Query(
            description="Comma-separated: " + ", ".join(API_SORT_FIELDS) + "; '-' = descending",
            examples=["-last_login_at,username"],
            max_length=200,
        ),
    ] = "username",
    role: UserRole | None = None,
    is_active: bool | None = None,
    username: Annotated[
        str | None, Query(description="Part of the username (any case)", max_length=64)
    ] = None,
    include_deleted: bool = False,
) -> UserPage:
    unknown = sorted(set(request.query_params) - LIST_PARAMETERS)
    if unknown:
        raise ValidationFailedError(
            f"unknown query parameter(s) {', '.join(unknown)[:200]}; "
            f"allowed: {', '.join(sorted(LIST_PARAMETERS))}"
        )
    page = await UserService(session).list_users(
        limit=limit,
        offset=offset,
        sort=sort,
        role=role,
        is_active=is_active,
        username_contains=username,
        include_deleted=include_deleted,
    )
    return UserPage(
        items=[UserOut.model_validate(user) for user in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
        has_more=page.has_more,
    )


@router.post(
    "",
    summary="Create a user",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=error_responses(401, 403, 409, 422),
)
async def create_user(body: UserCreate, session: SessionDep, _admin: AdminUser) -> UserOut:
    user = await UserService(session).create_user(
        username=body.username,
        password=body.password,
        role=body.role,
        email=body.email,
        full_name=body.full_name,
    )
    return UserOut.model_validate(user)


@router.get(
    "/{user_id}",
    summary="Get a user",
    response_model=UserOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_user(user_id: uuid.UUID, session: SessionDep, _admin: AdminUser) -> UserOut:
    return UserOut.model_validate(await UserService(session).get_user(user_id))


@router.patch(
    "/{user_id}",
    summary="Change a user's role, status, email or name",
    description="The last active administrator cannot be demoted or deactivated (409).",
    response_model=UserOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, session: SessionDep, _admin: AdminUser
) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    for field in ("role", "is_active"):
        if field in changes and changes[field] is None:
            raise ValidationFailedError(f"{field} cannot be null")
    user = await UserService(session).update_user(user_id, changes)
    return UserOut.model_validate(user)


@router.delete(
    "/{user_id}",
    summary="Delete a user (soft delete; restorable)",
    description="The account can no longer log in and its tokens stop working. You cannot "
    "delete yourself, nor the last active administrator (409).",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_user(user_id: uuid.UUID, session: SessionDep, admin: AdminUser) -> Response:
    await UserService(session).delete_user(user_id, actor=admin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{user_id}/restore",
    summary="Restore a deleted user",
    response_model=UserOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def restore_user(user_id: uuid.UUID, session: SessionDep, _admin: AdminUser) -> UserOut:
    return UserOut.model_validate(await UserService(session).restore_user(user_id))
