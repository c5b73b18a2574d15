"""Request and response bodies of the configuration API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_ENTRY_EXAMPLE: dict[str, Any] = {
    "key": "sampler.interval.cpu",
    "value": 2,
    "default": 1,
    "description": "Seconds between CPU samples",
    "updated_at": "2025-01-02T08:30:00Z",
    "updated_by": "ada",
    "known": True,
}


class ConfigEntryOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_ENTRY_EXAMPLE]}
    )

    key: str
    value: Any = Field(description="The value in force (JSON)")
    default: Any = Field(description="The built-in default; null for keys PerfWatch does not know")
    description: str | None
    updated_at: datetime | None = Field(
        description="Last change; null when the key was never stored and its default applies"
    )
    updated_by: str | None = Field(description="Who made the last change: a username, or 'cli'")
    known: bool = Field(
        description="A key PerfWatch uses (settable through the API); false for free-form "
        "entries stored with `perfwatch config set`"
    )


class ConfigList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_ENTRY_EXAMPLE]}]})

    items: list[ConfigEntryOut] = Field(description="Every entry, sorted by key")


class ConfigUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"value": 2}, {"value": 25}]},
    )

    value: Any = Field(description="The new value; checked against the key's rule")
