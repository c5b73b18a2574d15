"""Request and response bodies of the users API. ``password_hash`` never leaves the server:
``UserOut`` lists the fields it shows, nothing else."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from perfwatch.models import UserRole
from perfwatch.users.passwords import MAX_PASSWORD_LENGTH

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

Email = Annotated[str, Field(max_length=320, pattern=EMAIL_PATTERN, examples=["ada@example.com"])]
FullName = Annotated[str, Field(max_length=255, examples=["Ada Lovelace"])]

_USER_EXAMPLE: dict[str, Any] = {
    "id": "0b5cf2a4-8f0e-4a53-9d0c-3a1f7f0c2b11",
    "username": "ada",
    "email": "ada@example.com",
    "full_name": "Ada Lovelace",
    "role": "member",
    "is_active": True,
    "created_at": "2025-01-01T12:00:00Z",
    "updated_at": "2025-01-02T08:30:00Z",
    "last_login_at": "2025-01-02T08:30:00Z",
    "deleted_at": None,
}


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_USER_EXAMPLE]})

    id: uuid.UUID
    username: str
    email: str | None
    full_name: str | None
    role: UserRole
    is_active: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    deleted_at: datetime | None


class UserPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [_USER_EXAMPLE], "total": 1, "limit": 50, "offset": 0, "has_more": False}
            ]
        }
    )

    items: list[UserOut]
    total: int = Field(description="Users matching the filters, over all pages")
    limit: int
    offset: int
    has_more: bool


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "ada",
                    "password": "correct horse battery staple",
                    "role": "member",
                    "email": "ada@example.com",
                    "full_name": "Ada Lovelace",
                }
            ]
        },
    )

    username: str = Field(
        min_length=3, max_length=64, description="3 to 64 characters of a-z 0-9 _ . -"
    )
    password: str = Field(
        min_length=1,
        max_length=MAX_PASSWORD_LENGTH,
        description="At least 12 characters, not repetitive",
    )
    role: UserRole = UserRole.VIEWER
    email: Email | None = None
    full_name: FullName | None = None


class UserUpdate(BaseModel):
    """Only the fields sent are changed; ``null`` clears ``email`` or ``full_name``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"role": "viewer"}, {"is_active": False}]},
    )

    role: UserRole | None = None
    is_active: bool | None = None
    email: Email | None = None
    full_name: FullName | None = None
