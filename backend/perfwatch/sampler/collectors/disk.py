"""Disks: per-device I/O rates every call; filesystem usage every ``sampler.interval.disk_usage``.

I/O comes from ``psutil.disk_io_counters(perdisk=True, nowrap=True)`` (/proc/diskstats is not
namespaced, so it is the host's even in a container). Loop, RAM and zram devices are skipped,
and so are partitions whose whole disk is listed (counted twice otherwise).

Filesystem usage (statvfs) is refreshed only every ``sampler.interval.disk_usage`` seconds and
reused in between; ``usage_collected_at`` tells its age.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import psutil

from perfwatch.sampler.collectors._common import (
    Clock,
    Periodic,
    WallClock,
    percent,
    rate,
    utc_now,
)
from perfwatch.sampler.collectors.base import SCHEMA_VERSION, Collector
from perfwatch.sampler.host.mounts import is_pseudo_fstype, read_host_filesystems
from perfwatch.sampler.host.paths import HostPaths
from perfwatch.sampler.rates import MAX_BYTES_RATE, MAX_COUNT_RATE, RateTracker

USAGE_INTERVAL_KEY = "sampler.interval.disk_usage"
SKIPPED_PREFIXES = ("loop", "ram", "zram", "fd")

# counter field → (document field, plausibility cap)
IO_RATES = (
    ("read_bytes", "read_bytes_per_s", MAX_BYTES_RATE),
    ("write_bytes", "write_bytes_per_s", MAX_BYTES_RATE),
    ("read_count", "read_iops", MAX_COUNT_RATE),
    ("write_count", "write_iops", MAX_COUNT_RATE),
)


class DiskCollector(Collector):
    metric_type: ClassVar[str] = "disk"
    interval_key: ClassVar[str] = "sampler.interval.disk_io"

    def __init__(
        self,
        *,
        paths: HostPaths | None = None,
        clock: Clock = time.monotonic,
        wall_clock: WallClock = utc_now,
    ) -> None:
        self._paths = paths or HostPaths.from_env()
        self._clock = clock
        self._rates = RateTracker()
        self._is_partition: dict[str, bool] = {}
        self._usage = Periodic(self._read_usage, USAGE_INTERVAL_KEY, wall_clock)

    @property
    def usage_interval(self) -> float:
        return self._usage.interval

    def configure(self, values: Mapping[str, Any]) -> None:
        self._usage.configure(values)

    def collect(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "schema_version": SCHEMA_VERSION,
            "io": self._io(now),
            "usage": self._usage.get(now),
            "usage_collected_at": self._usage.collected_at,
        }

    # --- I/O -------------------------------------------------------------------------------

    def _io(self, now: float) -> dict[str, dict[str, float | None]]:
        try:
            counters = psutil.disk_io_counters(perdisk=True, nowrap=True) or {}
        except Exception:  # no /proc/diskstats (some containers, exotic platforms)
            counters = {}
        devices = {name: c for name, c in counters.items() if self._is_reported(name, counters)}
        io: dict[str, dict[str, float | None]] = {}
        for name, c in devices.items():
            entry: dict[str, float | None] = {}
            for field, out, cap in IO_RATES:
                value = getattr(c, field, None)
                entry[out] = (
                    None
                    if value is None
                    else rate(self._rates.rate((name, field), value, now, max_rate=cap))
                )
            busy_ms = getattr(c, "busy_time", None)
            busy = None if busy_ms is None else self._rates.rate((name, "busy_time"), busy_ms, now)
            # busy_time is in ms: ms per second / 10 = percent of the time the device was busy.
            entry["busy_percent"] = None if busy is None else percent(busy / 10)
            io[name] = entry
        self._rates.retain_entities(devices)
        for gone in [n for n in self._is_partition if n not in counters]:
            del self._is_partition[gone]
        return io

    def _is_reported(self, name: str, counters: Mapping[str, Any]) -> bool:
        if name.startswith(SKIPPED_PREFIXES):
            return False
        known = self._is_partition.get(name)
        if known is None:
            known = os.path.exists(f"{self._paths.sys}/class/block/{name}/partition")
            self._is_partition[name] = known
        if not known:
            return True
        # A partition: reported only when its whole disk is not (e.g. sysfs without it).
        parent = self._parent_disk(name)
        return parent is None or parent not in counters

    def _parent_disk(self, name: str) -> str | None:
        try:
            target = os.path.realpath(f"{self._paths.sys}/class/block/{name}")
        except OSError:
            return None
        parent = os.path.basename(os.path.dirname(target))
        return parent or None

    # --- usage -----------------------------------------------------------------------------

    def _read_usage(self) -> list[dict[str, Any]]:
        try:
            if self._paths.host_root:
                return read_host_filesystems(self._paths)
            return _local_filesystems()
        except Exception:  # degrade, never fail the whole disk document
            return []


def _local_filesystems() -> list[dict[str, Any]]:
    seen: set[str] = set()
    filesystems: list[dict[str, Any]] = []
    for part in psutil.disk_partitions(all=False):
        if is_pseudo_fstype(part.fstype) or part.device in seen:
            continue
        seen.add(part.device)
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except (OSError, psutil.Error):
            continue
        if usage.total <= 0:
            continue
        filesystems.append(
            {
                "device": part.device,
                "mountpoint": part.mountpoint,
                "fstype": part.fstype,
                "total_bytes": int(usage.total),
                "used_bytes": int(usage.used),
                "free_bytes": int(usage.free),
                "percent": percent(usage.percent),
            }
        )
    return filesystems
