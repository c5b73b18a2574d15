"""One tier bucket of one host and type: how many snapshots fell in it and, per numeric field,
``[count, sum, min, max, last]``; stored as the JSON object ``{"<path>": [count, sum, min, max,
last], ...}`` in the ``stats`` column of ``metric_tier_1m`` and ``metric_tier_1h``.

``count`` is the number of snapshots of the bucket that had a number at the path (``snapshots``
counts them all), ``last`` the number in the newest of those. A 1-hour bucket is its minutes
merged: counts and sums add up, min and max combine, ``last`` comes from the newest minute that
had one; the same merge as adding the hour's documents one by one.

Numbers: ints stay Python ints, so the sum of a byte count is exact at any size; floats add as
floats (binary rounding of about 1e-16 of the sum, far below the 6 decimals a series shows).
The stored form is compact JSON with whole floats written as ints (``0`` for ``0.0``): 8 %
smaller for a quiet host's zero rates, 1.5 % for a busy one, for 0.05 ms a host-minute
(bench/tier_bench.py). Rounding to 6 decimals would save 6 % more but blur sums.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from perfwatch.metrics.tiers.flatten import Number, numeric_leaves

# [count, sum, min, max, last] of one field in one bucket.
Entry = list[Number]
# The stored form: field path → entry (a decoded ``stats`` column).
Stats = dict[str, Entry]

# From here on Python writes a float with an exponent (1e+16), shorter than an int's digits.
_WHOLE_LIMIT = 1e16


class BucketStats:
    """The statistics of one bucket, built from documents (:meth:`add`) or from narrower
    buckets (:meth:`merge`), oldest first either way."""

    __slots__ = ("fields", "snapshots")

    def __init__(self, snapshots: int = 0, fields: Stats | None = None) -> None:
        self.snapshots = snapshots
        self.fields: Stats = {} if fields is None else fields

    def add(self, metric_type: str, document: Mapping[str, Any]) -> None:
        """Count one snapshot newer than every one added before."""
        self.snapshots += 1
        fields = self.fields
        for path, value in numeric_leaves(metric_type, document).items():
            entry = fields.get(path)
            if entry is None:
                fields[path] = [1, value, value, value, value]
                continue
            entry[0] += 1
            entry[1] += value
            if value < entry[2]:
                entry[2] = value
            elif value > entry[3]:
                entry[3] = value
            entry[4] = value

    def merge(self, newer: BucketStats) -> None:
        """Add the bucket ``newer``, which follows every one merged or added before."""
        self.snapshots += newer.snapshots
        fields = self.fields
        for path, (count, total, low, high, last) in newer.fields.items():
            entry = fields.get(path)
            if entry is None:
                fields[path] = [count, total, low, high, last]
                continue
            entry[0] += count
            entry[1] += total
            if low < entry[2]:
                entry[2] = low
            if high > entry[3]:
                entry[3] = high
            entry[4] = last

    def encode(self) -> str:
        """The ``stats`` column's JSON text."""
        return json.dumps(
            {path: [_compact(value) for value in entry] for path, entry in self.fields.items()},
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def decode(
        cls, snapshots: int, stats: Mapping[str, Sequence[Number]] | str | bytes
    ) -> BucketStats:
        """A stored bucket, to merge into a wider one. Its entries are copies: merging
        changes them in place."""
        return cls(snapshots, {path: list(entry) for path, entry in _stats(stats).items()})


def _stats(stats: Mapping[str, Sequence[Number]] | str | bytes) -> Mapping[str, Sequence[Number]]:
    """The ``stats`` column as a mapping: PostgreSQL's driver may give JSONB back as text."""
    if isinstance(stats, str | bytes):
        decoded: Mapping[str, Sequence[Number]] = json.loads(stats)
        return decoded
    return stats


def _compact(value: Number) -> Number:
    if type(value) is float and -_WHOLE_LIMIT < value < _WHOLE_LIMIT and value.is_integer():
        return int(value)
    return value
