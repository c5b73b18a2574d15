"""Demo metric documents for ``perfwatch seed``: one generator per type, each giving a document
of the shape the sampler writes (``contract/documents.py``; tests validate them against it),
with daily-looking curves so charts of seeded history look like a working server."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from perfwatch import __version__
from perfwatch.contract.documents import SCHEMA_VERSION

CORES = 4
PROCESS_NAMES = (
    "postgres",
    "redis-server",
    "uvicorn",
    "nginx",
    "sshd",
    "systemd",
    "cron",
    "python3",
)
TCP_STATES = (
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
)
BOOT_TIME = 1_700_000_000
GIB = 1024**3
MIB = 1024**2

Generator = Callable[[float, random.Random], dict[str, Any]]


def _wave(t: float, period: float, low: float, high: float, noise: random.Random) -> float:
    """A daily-looking load curve with noise, clamped to [low, high]."""
    value = (
        low + (high - low) * (0.5 + 0.4 * math.sin(2 * math.pi * t / period)) + noise.gauss(0, 3)
    )
    return round(min(max(value, low), high), 2)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _cpu(t: float, r: random.Random) -> dict[str, Any]:
    per_core = [_wave(t + i * 600, 86_400, 0, 100, r) for i in range(CORES)]
    total = round(sum(per_core) / CORES, 2)
    return {
        "schema_version": SCHEMA_VERSION,
        "percent": total,
        "per_core": per_core,
        "times_percent": {
            "user": round(total * 0.7, 2),
            "nice": 0.0,
            "system": round(total * 0.2, 2),
            "idle": round(100 - total, 2),
            "iowait": round(total * 0.05, 2),
            "irq": 0.0,
            "softirq": round(total * 0.05, 2),
            "steal": 0.0,
            "guest": 0.0,
        },
        "load_average": {
            "1m": round(total / 25, 2),
            "5m": round(total / 27, 2),
            "15m": round(total / 30, 2),
        },
        "ctx_switches_per_s": round(2_000 + total * 80 + r.random() * 100, 1),
        "interrupts_per_s": round(1_000 + total * 30 + r.random() * 50, 1),
        "soft_interrupts_per_s": round(800 + total * 20 + r.random() * 40, 1),
        "count_logical": CORES,
        "count_physical": CORES // 2,
        "frequency_mhz": {"current": 2_400.0, "min": 800.0, "max": 3_200.0},
    }


def _memory(t: float, r: random.Random) -> dict[str, Any]:
    total = 16 * GIB
    percent = _wave(t, 43_200, 20, 90, r)
    used = int(total * percent / 100)
    swap_total = 2 * GIB
    return {
        "schema_version": SCHEMA_VERSION,
        "virtual": {
            "total_bytes": total,
            "available_bytes": total - used,
            "used_bytes": used,
            "free_bytes": max(total - used - 2 * GIB, 0),
            "buffers_bytes": 200 * MIB,
            "cached_bytes": 2 * GIB,
            "shared_bytes": 64 * MIB,
            "percent": percent,
        },
        "swap": {
            "total_bytes": swap_total,
            "used_bytes": 0,
            "free_bytes": swap_total,
            "percent": 0.0,
            "sin_bytes_per_s": 0.0,
            "sout_bytes_per_s": 0.0,
        },
    }


def _disk(t: float, r: random.Random) -> dict[str, Any]:
    total = 500 * GIB
    used = int(total * (0.4 + (t / 86_400 % 365) / 1_000))  # grows a little every day
    read_bps = max(0.0, _wave(t, 3_600, 0, 100, r) * MIB / 10)
    return {
        "schema_version": SCHEMA_VERSION,
        "io": {
            "vda": {
                "read_bytes_per_s": round(read_bps, 1),
                "write_bytes_per_s": round(read_bps * 1.5, 1),
                "read_iops": round(read_bps / 4096, 1),
                "write_iops": round(read_bps * 1.5 / 4096, 1),
                "busy_percent": round(min(read_bps / 2e6, 100), 2),
            }
        },
        "usage": [
            {
                "device": "/dev/vda1",
                "mountpoint": "/",
                "fstype": "ext4",
                "total_bytes": total,
                "used_bytes": used,
                "free_bytes": total - used,
                "percent": round(used / total * 100, 2),
            }
        ],
        "usage_collected_at": _iso(t),
    }


def _network(t: float, r: random.Random) -> dict[str, Any]:
    rx = _wave(t, 7_200, 0, 100, r) * 12_500
    established = 40 + r.randint(0, 20)
    time_wait = r.randint(0, 30)
    tcp = dict.fromkeys(TCP_STATES, 0) | {
        "ESTABLISHED": established,
        "TIME_WAIT": time_wait,
        "LISTEN": 12,
    }
    tcp_total = sum(tcp.values())
    return {
        "schema_version": SCHEMA_VERSION,
        "interfaces": {
            "eth0": {
                "bytes_sent_per_s": round(rx / 3, 1),
                "bytes_recv_per_s": round(rx, 1),
                "packets_sent_per_s": round(rx / 2_700, 1),
                "packets_recv_per_s": round(rx / 900, 1),
                "errin_per_s": 0.0,
                "errout_per_s": 0.0,
                "dropin_per_s": 0.0,
                "dropout_per_s": 0.0,
                "is_up": True,
            }
        },
        "sockets": {
            "tcp_in_use": established + 12,
            "tcp_established": established,
            "tcp_time_wait": time_wait,
            "tcp_orphan": 0,
            "udp_in_use": 6,
        },
        "connections": {"tcp": tcp, "tcp_total": tcp_total, "udp_total": 6, "total": tcp_total + 6},
        "connections_collected_at": _iso(t),
    }


def _processes(t: float, r: random.Random) -> dict[str, Any]:
    top = [
        {
            "pid": 100 + i * 37,
            "name": name,
            "username": "postgres" if name == "postgres" else "root",
            "cpu_percent": round(r.random() * 30, 2),
            "memory_percent": round(r.random() * 5, 2),
            "rss_bytes": r.randint(10, 800) * MIB,
            "num_threads": r.randint(1, 40),
            "status": "sleeping",
            "cmdline": f"/usr/bin/{name}",
        }
        for i, name in enumerate(PROCESS_NAMES)
    ]
    running = r.randint(1, 4)
    return {
        "schema_version": SCHEMA_VERSION,
        "total": 180 + running,
        "threads_total": 420 + r.randint(0, 40),
        "by_status": {"running": running, "sleeping": 175, "idle": 5, "stopped": 0, "zombie": 0},
        "top_cpu": sorted(top, key=lambda p: -p["cpu_percent"]),
        "top_memory": sorted(top, key=lambda p: -p["rss_bytes"]),
    }


def _system(t: float, r: random.Random) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "hostname": "demo",
        "os": "Linux",
        "os_pretty_name": "Debian GNU/Linux 12 (bookworm)",
        "kernel": "6.1.0-demo",
        "architecture": "x86_64",
        "boot_time": _iso(BOOT_TIME),
        "uptime_seconds": max(int(t) - BOOT_TIME, 0),
        "users": [
            {"name": "admin", "terminal": "pts/0", "host": "10.0.0.2", "started": _iso(t - 600)}
        ],
        "cpu_count_logical": CORES,
        "cpu_count_physical": CORES // 2,
        "memory_total_bytes": 16 * GIB,
        "python_version": "3.12.0",
        "perfwatch_version": __version__,
        "in_container": False,
    }


def _sensors(t: float, r: random.Random) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "temperatures": {
            "coretemp": [
                {
                    "label": "Package id 0",
                    "current_c": _wave(t, 86_400, 35, 85, r),
                    "high_c": 90.0,
                    "critical_c": 100.0,
                }
            ]
        },
        "fans": {"nct6775": [{"label": "fan1", "rpm": 900 + r.randint(0, 300)}]},
        # A battery on mains power, so the type's default field (battery.percent) has a value.
        "battery": {
            "percent": round(95 + 5 * r.random(), 1),
            "secs_left": None,
            "power_plugged": True,
        },
    }


GENERATORS: dict[str, Generator] = {
    "cpu": _cpu,
    "memory": _memory,
    "disk": _disk,
    "network": _network,
    "processes": _processes,
    "system": _system,
    "sensors": _sensors,
}
