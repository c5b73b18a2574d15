"""Request and response bodies of the auth API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from perfwatch.users.passwords import MAX_PASSWORD_LENGTH


class LoginRequest(BaseModel):
    """The login body, as OAuth2 password-flow form fields or as a JSON object."""

    model_config = ConfigDict(
        title="LoginRequest",
        json_schema_extra={
            "examples": [{"username": "admin", "password": "the password you were given"}]
        },
    )

    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
    # OAuth2 clients (Swagger's Authorize) also send scope, client_id…: accepted and ignored.
    grant_type: str | None = Field(
        None, pattern="^password$", description="OAuth2 clients send 'password'; optional"
    )


class TokenResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOi…",
                    "refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOi…",
                    "token_type": "bearer",
                    "expires_in": 900,
                    "refresh_expires_in": 604800,
                }
            ]
        }
    )

    access_token: str = Field(description="Send as 'Authorization: Bearer <access_token>'")
    refresh_token: str = Field(description="Single use: POST it to /auth/refresh for a new pair")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6…"}]},
    )

    refresh_token: str = Field(min_length=1, max_length=4096)


class PasswordChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "current_password": "the password you log in with",
                    "new_password": "a new passphrase of 12+ characters",
                }
            ]
        },
    )

    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(
        min_length=1,
        max_length=MAX_PASSWORD_LENGTH,
        description="At least 12 characters, not repetitive; any length up to 1024",
    )
