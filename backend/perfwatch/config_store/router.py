"""Runtime configuration API: members and admins read, admins change.

A change takes effect in the sampler within about a second (it watches ``config_entries``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from perfwatch.api.dependencies import SessionDep
from perfwatch.api.errors import error_body, error_responses
from perfwatch.api.security import AdminUser, MemberUser
from perfwatch.config_store.schemas import ConfigEntryOut, ConfigList, ConfigUpdate
from perfwatch.config_store.service import ConfigService
from perfwatch.contract.runtime_config import MAX_KEY_LENGTH, known_keys_text, rules_text

router = APIRouter(prefix="/config", tags=["configuration"])

ConfigKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="The entry's key",
        examples=["sampler.interval.cpu"],
    ),
]

_RULES = f"Rules: {rules_text()}. Known keys: {known_keys_text()}."


def _with_example(
    responses: dict[int | str, dict[str, Any]], status: int, code: str, message: str
) -> dict[int | str, dict[str, Any]]:
    responses[status]["content"]["application/json"]["example"] = error_body(code, message)
    return responses


@router.get(
    "",
    summary="List the configuration",
    description="Every stored entry, plus each known key not stored yet with its default "
    "(`updated_at` null). Members and admins.",
    response_model=ConfigList,
    responses=error_responses(401, 403),
)
async def list_config(session: SessionDep, _user: MemberUser) -> ConfigList:
    entries = await ConfigService(session).list_entries()
    return ConfigList(items=[ConfigEntryOut.model_validate(entry) for entry in entries])


@router.get(
    "/{key}",
    summary="Get one configuration entry",
    description="A known key that was never stored answers with its default. Members and admins.",
    response_model=ConfigEntryOut,
    responses=_with_example(
        error_responses(401, 403, 404, 422),
        404,
        "not_found",
        'no configuration entry "sampler.interval.gpu"; known keys: …',
    ),
)
async def get_config(key: ConfigKey, session: SessionDep, _user: MemberUser) -> ConfigEntryOut:
    return ConfigEntryOut.model_validate(await ConfigService(session).get_entry(key))


@router.put(
    "/{key}",
    summary="Change a configuration entry",
    description="Admins only. Known keys only (422 `unknown_config_key` lists them); the value "
    "is checked against the key's rule (422 saying what to fix). Records your username in "
    "`updated_by`; the sampler applies the change within about a second. " + _RULES,
    response_model=ConfigEntryOut,
    responses=_with_example(
        error_responses(401, 403, 422),
        422,
        "validation_failed",
        "sampler.interval.cpu must be between 1 and 3600 seconds, got 0",
    ),
)
async def put_config(
    key: ConfigKey, body: ConfigUpdate, session: SessionDep, admin: AdminUser
) -> ConfigEntryOut:
    entry = await ConfigService(session).set_entry(key, body.value, updated_by=admin.username)
    return ConfigEntryOut.model_validate(entry)
