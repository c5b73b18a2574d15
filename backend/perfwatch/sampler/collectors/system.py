"""System: identity and uptime of the host (name, OS, kernel, boot time, users, CPU counts)."""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any, ClassVar

import psutil

from perfwatch import __version__
from perfwatch.sampler.collectors._common import iso_from_timestamp, non_negative_int
from perfwatch.sampler.collectors.base import SCHEMA_VERSION, Collector
from perfwatch.sampler.host.etc import read_os_release
from perfwatch.sampler.host.files import read_text
from perfwatch.sampler.host.paths import HostPaths

HOSTNAME_ENV = "PERFWATCH_HOSTNAME"


def host_name(paths: HostPaths) -> str:
    """PERFWATCH_HOSTNAME, else the host's /etc/hostname (in a container), else gethostname()."""
    configured = os.environ.get(HOSTNAME_ENV, "").strip()
    if configured:
        return configured
    if paths.host_root:
        text = read_text(paths.in_root("/etc/hostname"))
        if text and text.strip():
            return text.strip().splitlines()[0]
    return socket.gethostname()


class SystemCollector(Collector):
    metric_type: ClassVar[str] = "system"
    interval_key: ClassVar[str] = "sampler.interval.system"

    def __init__(self, *, paths: HostPaths | None = None) -> None:
        self._paths = paths or HostPaths.from_env()
        try:
            self._physical: int | None = psutil.cpu_count(logical=False)
        except Exception:  # pragma: no cover - platform specific
            self._physical = None

    def collect(self) -> dict[str, Any]:
        paths = self._paths
        os_release = read_os_release(paths)
        try:
            boot = float(psutil.boot_time())
        except Exception:  # pragma: no cover - platform specific
            boot = None
        try:
            memory_total: int | None = int(psutil.virtual_memory().total)
        except Exception:  # pragma: no cover
            memory_total = None
        return {
            "schema_version": SCHEMA_VERSION,
            "hostname": host_name(paths),
            "os": platform.system(),
            "os_pretty_name": os_release.get("PRETTY_NAME") or None,
            "kernel": self._kernel(),
            "architecture": platform.machine() or None,
            "boot_time": None if boot is None else iso_from_timestamp(boot),
            "uptime_seconds": None if boot is None else max(0, int(time.time() - boot)),
            "users": _users(),
            "cpu_count_logical": psutil.cpu_count(),
            "cpu_count_physical": self._physical,
            "memory_total_bytes": non_negative_int(memory_total),
            "python_version": platform.python_version(),
            "perfwatch_version": __version__,
            "in_container": paths.host_proc or paths.host_root,
        }

    def _kernel(self) -> str | None:
        if self._paths.host_proc:
            text = read_text(f"{self._paths.proc}/sys/kernel/osrelease")
            if text and text.strip():
                return text.strip()
        return platform.release() or None


def _users() -> list[dict[str, Any]]:
    """Logged-in sessions from utmp (in a container: the container's, usually none)."""
    try:
        users = psutil.users()
    except Exception:
        return []
    return [
        {
            "name": u.name,
            "terminal": u.terminal or None,
            "host": u.host or None,
            "started": iso_from_timestamp(u.started) if u.started else None,
        }
        for u in users
    ]
