"""The sidecar manifest of an archive file: what it holds and the digest of its bytes. It is
written after the data file, so a data file without one is an unfinished write."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from perfwatch.retention.archive.lines import format_time, parse_time

FORMAT_VERSION = 1

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Manifest:
    """One archive file: ``rows`` snapshots of ``host``'s ``metric_type`` captured on ``day``
    (UTC) from ``first`` to ``last``, holding ``values`` numbers, compressed into ``size_bytes``
    bytes (``"bytes"`` in the JSON) whose SHA-256 is ``sha256``."""

    host: str
    metric_type: str
    day: date
    rows: int
    first: datetime
    last: datetime
    sha256: str
    size_bytes: int
    values: int


def manifest_json(manifest: Manifest) -> bytes:
    document = {
        "format_version": FORMAT_VERSION,
        "host": manifest.host,
        "metric_type": manifest.metric_type,
        "day": manifest.day.isoformat(),
        "rows": manifest.rows,
        "first": format_time(manifest.first),
        "last": format_time(manifest.last),
        "sha256": manifest.sha256,
        "bytes": manifest.size_bytes,
        "values": manifest.values,
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def parse_manifest(raw: bytes) -> Manifest:
    """The manifest in ``raw``; ``ValueError`` naming the first thing that is wrong."""
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("the manifest is not a JSON object")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"format_version {version!r}: this version reads {FORMAT_VERSION}")
    expected = {"format_version", "host", "metric_type", "day", "rows", "first", "last"}
    expected |= {"sha256", "bytes", "values"}
    if set(document) != expected:
        raise ValueError(f"the manifest's keys are not {sorted(expected)}")
    host, metric_type, day, sha256 = (
        _text(document, key) for key in ("host", "metric_type", "day", "sha256")
    )
    if not _SHA256.fullmatch(sha256):
        raise ValueError("sha256 is not 64 lowercase hex digits")
    manifest = Manifest(
        host=host,
        metric_type=metric_type,
        day=date.fromisoformat(day),
        rows=_count(document, "rows"),
        first=parse_time(_text(document, "first")),
        last=parse_time(_text(document, "last")),
        sha256=sha256,
        size_bytes=_count(document, "bytes"),
        values=_count(document, "values"),
    )
    if manifest.day.isoformat() != day:
        raise ValueError(f"day {day!r} is not YYYY-MM-DD")
    if manifest.rows < 1 or manifest.first > manifest.last:
        raise ValueError("an archive holds at least one row, first <= last")
    return manifest


def _text(document: dict[str, Any], key: str) -> str:
    value = document[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def _count(document: dict[str, Any], key: str) -> int:
    value = document[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} is not a count")
    return value
