"""Memory: virtual memory and swap, in bytes; swap-in/out as per-second rates."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import psutil

from perfwatch.sampler.collectors._common import Clock, non_negative_int, percent, rate
from perfwatch.sampler.collectors.base import SCHEMA_VERSION, Collector
from perfwatch.sampler.rates import MAX_BYTES_RATE, RateTracker

VIRTUAL_FIELDS = ("total", "available", "used", "free", "buffers", "cached", "shared")


class MemoryCollector(Collector):
    metric_type: ClassVar[str] = "memory"
    interval_key: ClassVar[str] = "sampler.interval.memory"

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._rates = RateTracker(max_rate=MAX_BYTES_RATE)

    def collect(self) -> dict[str, Any]:
        now = self._clock()
        virtual = psutil.virtual_memory()
        document: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        document["virtual"] = {
            # Fields a platform lacks (buffers, cached, shared off Linux) are null.
            **{f"{f}_bytes": non_negative_int(getattr(virtual, f, None)) for f in VIRTUAL_FIELDS},
            "percent": percent(virtual.percent),
        }
        try:
            swap = psutil.swap_memory()
        except Exception:  # e.g. no /proc/vmstat in an odd container
            swap = None
        if swap is None:
            document["swap"] = None
        else:
            sin = non_negative_int(getattr(swap, "sin", None))
            sout = non_negative_int(getattr(swap, "sout", None))
            document["swap"] = {
                "total_bytes": non_negative_int(swap.total),
                "used_bytes": non_negative_int(swap.used),
                "free_bytes": non_negative_int(swap.free),
                "percent": percent(swap.percent),
                "sin_bytes_per_s": None if sin is None else rate(self._rates.rate("sin", sin, now)),
                "sout_bytes_per_s": (
                    None if sout is None else rate(self._rates.rate("sout", sout, now))
                ),
            }
        return document
