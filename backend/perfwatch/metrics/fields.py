"""The numeric fields a query may name per metric type, derived from the documents' JSON
Schemas (``contract/documents.py``), with each type's default fields.

A field is a dotted path into the document (``percent``, ``virtual.percent``,
``load_average.1m``, ``per_core.0``, ``io.sda.read_bytes_per_s``). It is valid when it walks
the schema to a number or an integer: an object's named property, any key where the object
allows more (``additionalProperties``: device, interface, chip names) or an index of an array.
The catalogue shows those as placeholders: ``io.<device>.read_bytes_per_s``, ``per_core.<n>``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from typing import Any

from perfwatch.contract.documents import SCHEMAS
from perfwatch.errors import ValidationFailedError

# Only this shape is accepted; the path then travels as a bound parameter, never as SQL text.
FIELD_PATH_PATTERN = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
MAX_FIELD_PATH_LENGTH = 200
MAX_FIELD_PATH_DEPTH = 8
MAX_FIELDS = 20

# What a series or summary shows when the query names no fields (docs/metrics.md).
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "cpu": ("percent", "load_average.1m"),
    "memory": ("virtual.percent", "swap.percent"),
    "disk": ("usage.0.percent",),
    "network": ("sockets.tcp_established", "connections.total"),
    "processes": ("total", "threads_total"),
    "system": ("uptime_seconds",),
    "sensors": ("battery.percent",),
}

# Top-level members whose numbers are not series, so the resolution tiers (metrics/tiers) keep no
# statistics of them. Every document's schema_version is a constant. The processes' top-N lists
# are ranks: slot 0 holds whichever process leads at that instant, so ``top_cpu.0.cpu_percent``
# over time follows no process. They are also most of the type's numbers: 100 of 108 fields at
# the default sampler.processes.top_n of 10.
NOT_SERIES_ANY_TYPE = frozenset({"schema_version"})
NOT_SERIES: dict[str, frozenset[str]] = {
    "processes": NOT_SERIES_ANY_TYPE | {"top_cpu", "top_memory"},
}

# The name shown for the free keys of an object, by the object's own name.
_KEY_PLACEHOLDERS = {
    "io": "<device>",
    "interfaces": "<interface>",
    "temperatures": "<chip>",
    "fans": "<chip>",
    "tcp": "<state>",
    "by_status": "<status>",
    "times_percent": "<name>",
}
_NUMERIC = frozenset({"number", "integer"})


def _branch(schema: Any) -> dict[str, Any]:
    """The schema without its ``null`` alternative (``anyOf: [X, {type: null}]`` → X)."""
    for option in schema.get("anyOf", ()):
        if option.get("type") != "null":
            return _branch(option)
    return dict(schema)


def _child(schema: dict[str, Any], segment: str) -> dict[str, Any] | None:
    kind = schema.get("type")
    if kind == "object":
        named = schema.get("properties", {}).get(segment)
        if named is not None:
            return _branch(named)
        more = schema.get("additionalProperties")
        return _branch(more) if isinstance(more, dict) else None
    if kind == "array" and segment.isdigit():
        return _branch(schema.get("items", {}))
    return None


def _walk(schema: dict[str, Any], prefix: str, name: str) -> Iterator[str]:
    kind = schema.get("type")
    if kind in _NUMERIC:
        yield prefix
    elif kind == "object":
        for key, child in schema.get("properties", {}).items():
            yield from _walk(_branch(child), f"{prefix}{key}.", key)
        more = schema.get("additionalProperties")
        if isinstance(more, dict):
            placeholder = _KEY_PLACEHOLDERS.get(name, "<key>")
            yield from _walk(_branch(more), f"{prefix}{placeholder}.", placeholder)
    elif kind == "array":
        yield from _walk(_branch(schema.get("items", {})), f"{prefix}<n>.", name)


@functools.cache
def catalogue(metric_type: str) -> tuple[str, ...]:
    """Every numeric field of ``metric_type``'s document, placeholders for free keys and
    indexes; empty for a type without a schema."""
    schema = SCHEMAS.get(metric_type)
    if schema is None:
        return ()
    return tuple(path.removesuffix(".") for path in _walk(_branch(schema), "", ""))


def is_numeric_field(metric_type: str, path: str) -> bool:
    node: dict[str, Any] | None = _branch(SCHEMAS[metric_type])
    for segment in path.split("."):
        node = _child(node, segment) if node is not None else None
    return node is not None and node.get("type") in _NUMERIC


def _check_syntax(path: str, example: str) -> None:
    if len(path) > MAX_FIELD_PATH_LENGTH or FIELD_PATH_PATTERN.fullmatch(path) is None:
        raise ValidationFailedError(
            f"field {path[:80]!r} is not a valid path: use dot-separated names of letters, "
            f"digits, '_' and '-', e.g. fields={example}"
        )
    if path.count(".") >= MAX_FIELD_PATH_DEPTH:
        raise ValidationFailedError(
            f"field {path[:80]!r} is nested too deeply (at most {MAX_FIELD_PATH_DEPTH} levels)"
        )


def resolve_fields(metric_type: str, fields: Sequence[str]) -> list[str]:
    """The fields a query reads: ``fields`` checked and de-duplicated (order kept), or the
    type's defaults when none are named. A path that is not a number in the type's documents
    is refused, with the valid ones in the error's details."""
    example = ",".join(DEFAULT_FIELDS.get(metric_type, ("value",)))
    unique = list(dict.fromkeys(fields))
    if not unique:
        if metric_type in DEFAULT_FIELDS:
            return list(DEFAULT_FIELDS[metric_type])
        raise ValidationFailedError(
            f"{metric_type} has no default fields: name numeric fields of its documents, "
            "e.g. fields=value"
        )
    if len(unique) > MAX_FIELDS:
        raise ValidationFailedError(f"at most {MAX_FIELDS} fields per query, got {len(unique)}")
    for path in unique:
        _check_syntax(path, example)
        if metric_type in SCHEMAS and not is_numeric_field(metric_type, path):
            raise ValidationFailedError(
                f"{path[:80]!r} is not a numeric field of {metric_type}; send fields from the "
                f"list in details, e.g. fields={example}",
                details=[
                    {
                        "location": "query",
                        "field": "fields",
                        "message": f"valid for {metric_type}: {', '.join(catalogue(metric_type))}",
                    }
                ],
            )
    return unique
