"""Every numeric leaf of a document by its field path: what a tier bucket keeps statistics of.

Paths are written as ``metrics/fields.py`` reads them (``percent``, ``per_core.0``,
``load_average.1m``, ``io.sda.read_bytes_per_s``, ``usage.0.percent``): object keys joined by
dots, an array element by its index. Left out, because no query could name them and the tiers
would store them for nothing:

- keys that are not one segment of ``FIELD_PATH_PATTERN`` (letters, digits, ``_`` and ``-``):
  a chip named ``acpitz 1``, a key with a dot or a slash, the empty key;
- leaves deeper than ``MAX_FIELD_PATH_DEPTH`` segments or with paths longer than
  ``MAX_FIELD_PATH_LENGTH``;
- the type's ``NOT_SERIES`` members (``schema_version``, the processes' top-N lists);
- whatever is not a finite number: booleans (``is_up``), null, strings, NaN and infinities (the
  sampler never writes those, PostgreSQL's JSONB cannot hold them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from perfwatch.metrics.fields import (
    FIELD_PATH_PATTERN,
    MAX_FIELD_PATH_DEPTH,
    MAX_FIELD_PATH_LENGTH,
    NOT_SERIES,
    NOT_SERIES_ANY_TYPE,
)

# A leaf's value: ints stay ints (byte counts keep every digit), floats stay floats.
Number = int | float


def numeric_leaves(metric_type: str, document: Mapping[str, Any]) -> dict[str, Number]:
    """The numbers of ``document`` by field path, in document order."""
    skip = NOT_SERIES.get(metric_type, NOT_SERIES_ANY_TYPE)
    leaves: dict[str, Number] = {}
    _object({key: value for key, value in document.items() if key not in skip}, "", 1, leaves)
    return leaves


@functools.lru_cache(maxsize=4096)
def _nameable(key: str) -> bool:
    """A key a query can name: one segment of a field path. Cached: the same few hundred keys
    come back in every document, and the bound caps what odd keys can cost."""
    return "." not in key and FIELD_PATH_PATTERN.fullmatch(key) is not None


# Leaves are handled in the containers' loops, not by a call each: this runs for thousands of
# leaves per host and minute. Exact types, not isinstance: json.loads gives exactly these, and a
# bool (an int subclass) is thereby no number. ``depth``: segments in the children's paths.
def _object(node: Mapping[str, Any], prefix: str, depth: int, leaves: dict[str, Number]) -> None:
    for key, value in node.items():
        kind = type(value)
        if kind is int or kind is float:
            if (kind is int or math.isfinite(value)) and _nameable(key):
                path = prefix + key
                if len(path) <= MAX_FIELD_PATH_LENGTH:
                    leaves[path] = value
        elif (kind is dict or kind is list) and depth < MAX_FIELD_PATH_DEPTH and _nameable(key):
            walk = _object if kind is dict else _array
            walk(value, f"{prefix}{key}.", depth + 1, leaves)


def _array(node: list[Any], prefix: str, depth: int, leaves: dict[str, Number]) -> None:
    for index, value in enumerate(node):
        kind = type(value)
        if kind is int or kind is float:
            if kind is int or math.isfinite(value):
                path = f"{prefix}{index}"
                if len(path) <= MAX_FIELD_PATH_LENGTH:
                    leaves[path] = value
        elif (kind is dict or kind is list) and depth < MAX_FIELD_PATH_DEPTH:
            walk = _object if kind is dict else _array
            walk(value, f"{prefix}{index}.", depth + 1, leaves)
