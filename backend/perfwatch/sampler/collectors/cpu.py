"""CPU: utilisation (total, per core, by time category), load average, event rates, frequency.

Utilisation is computed from ``psutil.cpu_times(percpu=True)`` deltas against this collector's
previous call (the same arithmetic as ``psutil.cpu_percent``, but with the state held here
rather than in psutil's module globals, and from one read of /proc/stat). The first call has
no previous reading, so its percentages are null.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import psutil

from perfwatch.sampler.collectors._common import Clock, num, percent, rate
from perfwatch.sampler.collectors.base import SCHEMA_VERSION, Collector
from perfwatch.sampler.rates import MAX_COUNT_RATE, RateTracker

FREQUENCY_REFRESH_SECONDS = 30.0
# Time categories reported in times_percent when the platform has them.
TIME_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest")
STAT_RATES = (
    ("ctx_switches", "ctx_switches_per_s"),
    ("interrupts", "interrupts_per_s"),
    ("soft_interrupts", "soft_interrupts_per_s"),
)


def _total(times: Any) -> float:
    total = float(sum(times))
    # On Linux guest time is already counted in user (and guest_nice in nice).
    if psutil.LINUX:
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return total


def _busy(times: Any) -> float:
    return _total(times) - float(times.idle) - float(getattr(times, "iowait", 0.0))


def _sum_times(per_core: list[Any]) -> Any:
    """The machine-wide cpu_times as the sum of the per-core ones (saves a /proc/stat read)."""
    return type(per_core[0])._make(sum(values) for values in zip(*per_core, strict=True))


def busy_percent(previous: Any, current: Any) -> float | None:
    """Share of non-idle time between two cpu_times readings (None when no time elapsed)."""
    all_delta = _total(current) - _total(previous)
    if all_delta <= 0:
        return None
    return percent((_busy(current) - _busy(previous)) / all_delta * 100)


def times_percent(previous: Any, current: Any) -> dict[str, float | None]:
    fields = [f for f in TIME_FIELDS if f in current._fields]
    all_delta = _total(current) - _total(previous)
    if all_delta <= 0:
        return dict.fromkeys(fields)
    return {
        f: percent((getattr(current, f) - getattr(previous, f)) / all_delta * 100) for f in fields
    }


class CpuCollector(Collector):
    metric_type: ClassVar[str] = "cpu"
    interval_key: ClassVar[str] = "sampler.interval.cpu"

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._previous_total: Any = None
        self._previous_per_core: list[Any] = []
        self._rates = RateTracker(max_rate=MAX_COUNT_RATE)
        try:
            self._physical: int | None = psutil.cpu_count(logical=False)
        except Exception:  # pragma: no cover - platform specific
            self._physical = None
        self._frequency: dict[str, float | None] | None = None
        self._frequency_at: float | None = None

    def collect(self) -> dict[str, Any]:
        now = self._clock()
        per_core_times = psutil.cpu_times(percpu=True)
        total_times = _sum_times(per_core_times) if per_core_times else psutil.cpu_times()

        per_core: list[float | None] = []
        for index, current in enumerate(per_core_times):
            previous = (
                self._previous_per_core[index] if index < len(self._previous_per_core) else None
            )
            per_core.append(None if previous is None else busy_percent(previous, current))

        if self._previous_total is None:
            total: float | None = None
            breakdown: dict[str, float | None] = dict.fromkeys(
                f for f in TIME_FIELDS if f in total_times._fields
            )
        else:
            total = busy_percent(self._previous_total, total_times)
            breakdown = times_percent(self._previous_total, total_times)
        self._previous_total = total_times
        self._previous_per_core = list(per_core_times)

        return {
            "schema_version": SCHEMA_VERSION,
            "percent": total,
            "per_core": per_core,
            "times_percent": breakdown,
            "load_average": self._load_average(),
            **self._stat_rates(now),
            "count_logical": psutil.cpu_count() or len(per_core_times) or None,
            "count_physical": self._physical,
            "frequency_mhz": self._frequency_now(now),
        }

    def _load_average(self) -> dict[str, float | None] | None:
        try:
            one, five, fifteen = psutil.getloadavg()
        except (AttributeError, OSError):
            return None
        return {"1m": num(one, 2), "5m": num(five, 2), "15m": num(fifteen, 2)}

    def _stat_rates(self, now: float) -> dict[str, float | None]:
        try:
            stats = psutil.cpu_stats()
        except Exception:  # pragma: no cover - platform specific
            return {name: None for _, name in STAT_RATES}
        return {
            name: rate(self._rates.rate(field, float(getattr(stats, field)), now))
            for field, name in STAT_RATES
        }

    def _frequency_now(self, now: float) -> dict[str, float | None] | None:
        """current/min/max in MHz, re-read at most every 30 s (it scans /sys per core)."""
        if self._frequency_at is not None and now - self._frequency_at < FREQUENCY_REFRESH_SECONDS:
            return self._frequency
        self._frequency_at = now
        self._frequency = None
        if hasattr(psutil, "cpu_freq"):
            try:
                freq = psutil.cpu_freq()
            except Exception:
                freq = None
            if freq is not None:
                # psutil reports 0.0 for a bound it does not know.
                self._frequency = {
                    key: (value if value is not None and value > 0 else None)
                    for key, value in (
                        ("current", num(freq.current, 1)),
                        ("min", num(freq.min, 1)),
                        ("max", num(freq.max, 1)),
                    )
                }
        return self._frequency
