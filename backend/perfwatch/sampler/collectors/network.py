"""Network: per-interface rates, a socket summary, and socket counts by TCP state.

Counters come from /proc/net/dev; in a container with the host's /proc mounted, from
``{proc}/1/net/*`` (the host's network namespace). An interface re-created with lower counters
gets null rates for one sample, never negative ones.

Every sample reads the cheap ``sockets`` summary (/proc/net/sockstat, sockstat6, snmp: ~0.01 ms
each). The by-state ``connections`` breakdown comes from the ``st`` column of
/proc/net/{tcp,tcp6,udp,udp6}, which costs the kernel a walk of the whole socket hash table
(~1.5 ms per TCP file even on an idle host), so it is refreshed only every
``sampler.interval.connections`` seconds and repeated in between; ``connections_collected_at``
tells its age. Interface up/down flags (one sysfs read per interface) are refreshed every
``IS_UP_INTERVAL`` seconds, and at once for a new interface. ``psutil.net_connections`` is never
used: it walks every process's file descriptors.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import psutil

from perfwatch.sampler.collectors._common import (
    Clock,
    Periodic,
    WallClock,
    rate,
    utc_now,
)
from perfwatch.sampler.collectors.base import SCHEMA_VERSION, Collector
from perfwatch.sampler.host.net import read_interface_up, read_net_dev
from perfwatch.sampler.host.paths import HostPaths
from perfwatch.sampler.host.sockets import read_connection_counts, read_socket_summary
from perfwatch.sampler.rates import MAX_BYTES_RATE, MAX_COUNT_RATE, RateTracker

CONNECTIONS_INTERVAL_KEY = "sampler.interval.connections"
# Seconds between re-reads of the interfaces' IFF_UP flags (~0.01 ms per interface).
IS_UP_INTERVAL = 10.0

# counter (NET_DEV_FIELDS name) → (document field, plausibility cap)
INTERFACE_RATES = (
    ("bytes_sent", "bytes_sent_per_s", MAX_BYTES_RATE),
    ("bytes_recv", "bytes_recv_per_s", MAX_BYTES_RATE),
    ("packets_sent", "packets_sent_per_s", MAX_COUNT_RATE),
    ("packets_recv", "packets_recv_per_s", MAX_COUNT_RATE),
    ("errin", "errin_per_s", MAX_COUNT_RATE),
    ("errout", "errout_per_s", MAX_COUNT_RATE),
    ("dropin", "dropin_per_s", MAX_COUNT_RATE),
    ("dropout", "dropout_per_s", MAX_COUNT_RATE),
)


class NetworkCollector(Collector):
    metric_type: ClassVar[str] = "network"
    interval_key: ClassVar[str] = "sampler.interval.network"

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
        self._connections = Periodic(
            lambda: read_connection_counts(self._paths),
            CONNECTIONS_INTERVAL_KEY,
            wall_clock,
        )
        self._is_up: dict[str, bool | None] = {}
        self._is_up_at: float | None = None

    @property
    def connections_interval(self) -> float:
        return self._connections.interval

    def configure(self, values: Mapping[str, Any]) -> None:
        self._connections.configure(values)

    def collect(self) -> dict[str, Any]:
        now = self._clock()
        connections = self._connections.get(now)
        return {
            "schema_version": SCHEMA_VERSION,
            "interfaces": self._interfaces(now),
            "sockets": read_socket_summary(self._paths),
            "connections": connections,
            "connections_collected_at": self._connections.collected_at,
        }

    def _interfaces(self, now: float) -> dict[str, dict[str, Any]]:
        counters = read_net_dev(self._paths)
        if not counters and not self._paths.host_proc:
            counters = _psutil_counters()  # not Linux: no /proc/net/dev
        is_up = self._flags(list(counters), now)
        interfaces: dict[str, dict[str, Any]] = {}
        for name, values in counters.items():
            entry: dict[str, Any] = {}
            for field, out, cap in INTERFACE_RATES:
                value = values.get(field)
                entry[out] = (
                    None
                    if value is None
                    else rate(self._rates.rate((name, field), value, now, max_rate=cap))
                )
            entry["is_up"] = is_up.get(name)
            interfaces[name] = entry
        self._rates.retain_entities(counters)
        return interfaces

    def _flags(self, names: Sequence[str], now: float) -> Mapping[str, bool | None]:
        """IFF_UP per interface, re-read every IS_UP_INTERVAL s and at once for new ones."""
        due = self._is_up_at is None or now - self._is_up_at >= IS_UP_INTERVAL
        missing = [n for n in names if n not in self._is_up]
        if not due and not missing:
            return self._is_up
        if due:
            self._is_up_at = now
            self._is_up = {}
            missing = list(names)
        else:
            self._is_up = {n: v for n, v in self._is_up.items() if n in names}
        for name in missing:
            self._is_up[name] = read_interface_up(self._paths, name)
        if (
            self._is_up
            and not self._paths.host_proc
            and all(v is None for v in self._is_up.values())
        ):
            _fill_is_up(self._is_up)
        return self._is_up


def _psutil_counters() -> dict[str, dict[str, int]]:
    try:
        pernic = psutil.net_io_counters(pernic=True, nowrap=True) or {}
    except Exception:
        return {}
    return {name: c._asdict() for name, c in pernic.items()}


def _fill_is_up(is_up: dict[str, bool | None]) -> None:
    """No sysfs flags (not Linux): ask psutil, which sees this process's own namespace."""
    try:
        stats = psutil.net_if_stats()
    except Exception:
        return
    for name in is_up:
        if name in stats:
            is_up[name] = bool(stats[name].isup)
