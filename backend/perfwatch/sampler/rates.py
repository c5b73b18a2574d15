"""Per-second rates from monotonically increasing counters (bytes, packets, context switches).

Pure functions plus a small stateful tracker; the caller passes the (monotonic) time in, so
tests can feed synthetic sequences. The rules, in order:

* first sample of a counter → ``None`` (no rate yet);
* elapsed time ≤ 0 → ``None``;
* counter went backwards (reboot, interface re-created, counter reset) → ``None``, never a
  negative rate, unless a known wrap width (``wrap_at``, e.g. ``2**32``) makes the wrapped
  delta plausible (less than half the counter range);
* a rate above the caller's plausibility cap (``max_rate``) → ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

WRAP_32 = 2**32
WRAP_64 = 2**64

# Default plausibility caps, per second.
MAX_BYTES_RATE = 1e12  # 1 TB/s: far beyond any NIC or disk
MAX_COUNT_RATE = 1e10  # packets, IOPS, context switches, interrupts


def counter_rate(
    previous: float | None,
    current: float,
    elapsed_seconds: float,
    *,
    wrap_at: int | None = None,
    max_rate: float | None = None,
) -> float | None:
    """The per-second rate between two readings of a counter, or ``None`` when unknowable."""
    if previous is None or not _finite(previous) or not _finite(current):
        return None
    if not _finite(elapsed_seconds) or elapsed_seconds <= 0:
        return None
    delta = current - previous
    if delta < 0:
        if wrap_at is None or previous >= wrap_at or current >= wrap_at:
            return None
        delta = wrap_at - previous + current
        if delta > wrap_at / 2:  # more likely a reset than a wrap
            return None
    rate = delta / elapsed_seconds
    if max_rate is not None and rate > max_rate:
        return None
    return rate


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass
class _Reading:
    value: float
    at: float


class RateTracker:
    """Previous reading and time per key (e.g. ``("eth0", "bytes_sent")``).

    ``rate`` answers one counter; ``update`` answers a whole cycle's counters and forgets the
    keys that are no longer reported, so vanished entities never accumulate state.
    """

    def __init__(self, *, wrap_at: int | None = None, max_rate: float | None = None) -> None:
        self.wrap_at = wrap_at
        self.max_rate = max_rate
        self._readings: dict[Hashable, _Reading] = {}

    def __len__(self) -> int:
        return len(self._readings)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._readings

    def rate(
        self,
        key: Hashable,
        value: float,
        now: float,
        *,
        wrap_at: int | None = None,
        max_rate: float | None = None,
    ) -> float | None:
        """Record ``value`` at ``now`` and return the rate since the previous reading."""
        previous = self._readings.get(key)
        if previous is not None and now <= previous.at:
            # Time did not advance: no rate, and keep the older reading as the baseline.
            return None
        self._readings[key] = _Reading(value, now)
        if previous is None:
            return None
        return counter_rate(
            previous.value,
            value,
            now - previous.at,
            wrap_at=wrap_at if wrap_at is not None else self.wrap_at,
            max_rate=max_rate if max_rate is not None else self.max_rate,
        )

    def update(self, values: Mapping[Hashable, float], now: float) -> dict[Hashable, float | None]:
        """Rates for every key in ``values``; keys absent from ``values`` are forgotten."""
        rates = {key: self.rate(key, value, now) for key, value in values.items()}
        self.retain(values.keys())
        return rates

    def retain(self, keys: Iterable[Hashable]) -> None:
        """Forget every key not in ``keys``."""
        keep = set(keys)
        for key in [k for k in self._readings if k not in keep]:
            del self._readings[key]

    def retain_entities(self, entities: Iterable[Hashable]) -> None:
        """Forget tuple keys whose first element (the entity, e.g. a NIC) is not in ``entities``."""
        keep = set(entities)
        for key in [k for k in self._readings if not isinstance(k, tuple) or k[0] not in keep]:
            del self._readings[key]

    def clear(self) -> None:
        self._readings.clear()
