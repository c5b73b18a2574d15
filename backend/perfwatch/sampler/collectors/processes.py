"""Processes: counts by status, thread total, and the top-N by CPU and by memory.

Exactly one ``psutil.process_iter`` per call, fetching only cheap attributes. A process's CPU
percentage is computed here from its cpu_times delta against the previous call (state keyed by
``(pid, create_time)``, so a recycled pid starts over) and the elapsed monotonic time: 100 means
one core fully busy, so a multi-threaded process can exceed 100 (up to 100 x cores). A process
seen for the first time has no CPU percentage yet (null) and is not ranked by CPU.

User name and command line change rarely and cost extra reads: they are fetched only for the
processes that make a top list, cached per process and refreshed at most every 60 s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import psutil

from perfwatch.contract import runtime_config
from perfwatch.sampler.collectors._common import Clock, clean_text, percent
from perfwatch.sampler.collectors.base import SCHEMA_VERSION, Collector
from perfwatch.sampler.host.etc import read_passwd
from perfwatch.sampler.host.files import read_text
from perfwatch.sampler.host.paths import HostPaths

TOP_N_KEY = "sampler.processes.top_n"
DEFAULT_TOP_N = int(runtime_config.default(TOP_N_KEY))
DETAILS_REFRESH_SECONDS = 60.0
CMDLINE_MAX_CHARS = 256
# /proc/<pid>/stat and statm only. num_threads would read /proc/<pid>/status for every process,
# and psutil's name() reads /proc/<pid>/cmdline for every name of 15+ characters (kernel
# threads: ~40 % of a machine's processes): both only for the listed processes, below; the
# thread total comes from /proc/loadavg.
ATTRS = ["pid", "status", "cpu_times", "memory_info", "create_time"]
# Always present in by_status (0 when none); other psutil statuses appear when seen.
BASE_STATUSES = ("running", "sleeping", "disk-sleep", "idle", "stopped", "zombie")
_PROCESS_ERRORS = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError)

ProcessKey = tuple[int, float]


@dataclass
class _Details:
    username: str | None
    cmdline: str | None
    fetched_at: float


@dataclass
class _Row:
    key: ProcessKey
    process: Any
    info: dict[str, Any]
    cpu_percent: float | None
    rss: int


class ProcessesCollector(Collector):
    metric_type: ClassVar[str] = "processes"
    interval_key: ClassVar[str] = "sampler.interval.processes"

    def __init__(
        self,
        *,
        paths: HostPaths | None = None,
        clock: Clock = time.monotonic,
        top_n: int = DEFAULT_TOP_N,
    ) -> None:
        self._paths = paths or HostPaths.from_env()
        self._clock = clock
        self.top_n = top_n
        # (pid, create_time) → (cpu seconds, monotonic time) from the previous call.
        self._cpu_state: dict[ProcessKey, tuple[float, float]] = {}
        self._cpu_percent: dict[ProcessKey, float | None] = {}
        self._details: dict[ProcessKey, _Details] = {}
        self._passwd: dict[int, str] = {}
        self._passwd_at: float | None = None
        try:
            self._total_memory = int(psutil.virtual_memory().total)
        except Exception:  # pragma: no cover - platform specific
            self._total_memory = 0

    def configure(self, values: Mapping[str, Any]) -> None:
        self.top_n = int(runtime_config.read_number(values, TOP_N_KEY))

    def cpu_percent_of(self, pid: int) -> float | None:
        """The CPU percentage computed for ``pid`` in the last call (None when unknown)."""
        for (candidate, _), value in self._cpu_percent.items():
            if candidate == pid:
                return value
        return None

    def collect(self) -> dict[str, Any]:
        by_status = dict.fromkeys(BASE_STATUSES, 0)
        rows: list[_Row] = []
        cpu_state: dict[ProcessKey, tuple[float, float]] = {}
        cpu_percent: dict[ProcessKey, float | None] = {}

        for process in psutil.process_iter(attrs=ATTRS, ad_value=None):
            now = self._clock()
            info = process.info
            status = str(info.get("status") or "unknown")
            by_status[status] = by_status.get(status, 0) + 1
            key: ProcessKey = (int(info["pid"]), float(info.get("create_time") or 0.0))
            times = info.get("cpu_times")
            value: float | None = None
            if times is not None:
                seconds = float(times.user + times.system)
                cpu_state[key] = (seconds, now)
                previous = self._cpu_state.get(key)
                if previous is not None and now > previous[1]:
                    value = max(0.0, (seconds - previous[0]) / (now - previous[1]) * 100)
            cpu_percent[key] = value
            memory = info.get("memory_info")
            rss = int(memory.rss) if memory is not None else 0
            rows.append(_Row(key, process, info, value, rss))

        # Processes that vanished are forgotten.
        self._cpu_state = cpu_state
        self._cpu_percent = cpu_percent
        for gone in [k for k in self._details if k not in cpu_state]:
            del self._details[gone]

        n = self.top_n
        ranked_cpu = [r for r in rows if r.cpu_percent is not None]
        ranked_cpu.sort(key=lambda r: (r.cpu_percent or 0.0, r.rss), reverse=True)
        ranked_memory = sorted(rows, key=lambda r: r.rss, reverse=True)
        return {
            "schema_version": SCHEMA_VERSION,
            "total": len(rows),
            "threads_total": total_threads(self._paths),
            "by_status": by_status,
            "top_cpu": [self._entry(r) for r in ranked_cpu[:n]] if n > 0 else [],
            "top_memory": [self._entry(r) for r in ranked_memory[:n]] if n > 0 else [],
        }

    def _entry(self, row: _Row) -> dict[str, Any]:
        details = self._details_of(row)
        info = row.info
        memory_percent = row.rss / self._total_memory * 100 if self._total_memory else None
        cpu = row.cpu_percent
        return {
            "pid": row.key[0],
            "name": clean_text(_name(row.process)),
            "username": details.username,
            # Not capped at 100: one process can keep several cores busy.
            "cpu_percent": None if cpu is None else percent(cpu, cap=False),
            "memory_percent": percent(memory_percent),
            "rss_bytes": row.rss,
            "num_threads": _num_threads(row.process),
            "status": info.get("status"),
            "cmdline": details.cmdline,
        }

    def _details_of(self, row: _Row) -> _Details:
        now = self._clock()
        cached = self._details.get(row.key)
        if cached is not None and now - cached.fetched_at < DETAILS_REFRESH_SECONDS:
            return cached
        details = _Details(
            clean_text(self._username(row.process)), clean_text(_cmdline(row.process)), now
        )
        self._details[row.key] = details
        return details

    def _username(self, process: Any) -> str | None:
        try:
            if not self._paths.host_root:
                return str(process.username())
            # In a container the host's users are in the host's /etc/passwd, not ours.
            uid = int(process.uids().real)
        except _PROCESS_ERRORS:
            return None
        now = self._clock()
        if self._passwd_at is None or now - self._passwd_at >= DETAILS_REFRESH_SECONDS:
            self._passwd = read_passwd(self._paths)
            self._passwd_at = now
        return self._passwd.get(uid, str(uid))


def _name(process: Any) -> str | None:
    try:
        return str(process.name())
    except _PROCESS_ERRORS:
        return None


def _num_threads(process: Any) -> int | None:
    try:
        return int(process.num_threads())
    except _PROCESS_ERRORS:
        return None


def total_threads(paths: HostPaths) -> int | None:
    """Every thread on the machine (kernel threads included): the denominator of the fourth
    field of /proc/loadavg ("1/162"), one small read instead of one per process."""
    text = read_text(f"{paths.proc}/loadavg")
    try:
        return int(text.split()[3].split("/")[1]) if text else None
    except (IndexError, ValueError):
        return None


def _cmdline(process: Any) -> str | None:
    try:
        parts = process.cmdline()
    except _PROCESS_ERRORS:
        return None
    return " ".join(parts)[:CMDLINE_MAX_CHARS] if parts else None
