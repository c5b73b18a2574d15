"""What the sampler, the metrics API, the seed and the retention rules agree on about snapshots:
the metric types, a snapshot before it is stored, its one encoding, and the cache names under
which the latest value and the live stream of a host are found."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

# The metric types the sampler produces, in the order lists show them.
METRIC_TYPES: tuple[str, ...] = (
    "cpu",
    "memory",
    "disk",
    "network",
    "processes",
    "system",
    "sensors",
)
# An archive policy for this "type" applies to every type without a policy of its own.
ALL_METRIC_TYPES = "*"


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A snapshot to store, before it has an id."""

    host: str
    captured_at: datetime
    metric_type: str
    metric_data: dict[str, Any]


class EncodedSnapshot(NamedTuple):
    """A snapshot with its document encoded once as JSON text, for the database, the spool and
    the cache alike. A tuple, so that asyncpg's COPY and the spool take it as a row."""

    host: str
    captured_at: datetime
    metric_type: str
    document: str


def encode_snapshot(row: SnapshotRow) -> EncodedSnapshot:
    document = json.dumps(row.metric_data, separators=(",", ":"))
    return EncodedSnapshot(row.host, row.captured_at, row.metric_type, document)


def latest_key(host: str, metric_type: str) -> str:
    """Cache key of the newest snapshot of ``host`` and ``metric_type`` (its
    :func:`cache_message`)."""
    return f"perfwatch:latest:{host}:{metric_type}"


def live_channel(host: str) -> str:
    """Channel on which every snapshot of ``host`` is published as it is sampled."""
    return f"perfwatch:live:{host}"


def cache_message(record: EncodedSnapshot) -> str:
    """The cached and published form: ``{"host", "metric_type", "captured_at", "data"}``, the
    stored document embedded as it is (no decode/encode round)."""
    return (
        f'{{"host":{json.dumps(record.host)},"metric_type":{json.dumps(record.metric_type)},'
        f'"captured_at":"{record.captured_at.isoformat()}","data":{record.document}}}'
    )
