"""The collectors, one module per metric type; ``build_collectors`` makes one of each.

Importing the package does no I/O: host paths are read and psutil configured only when the
collectors are built.
"""

from __future__ import annotations

from perfwatch.sampler.collectors import (
    cpu,
    disk,
    memory,
    network,
    processes,
    sensors,
    system,
)
from perfwatch.sampler.collectors.base import SCHEMA_VERSION, Collector
from perfwatch.sampler.host.paths import HostPaths, configure_psutil

__all__ = ["SCHEMA_VERSION", "Collector", "build_collectors"]


def build_collectors(
    *, top_n: int | None = None, paths: HostPaths | None = None
) -> dict[str, Collector]:
    """One collector per metric type, keyed by metric_type.

    Reads the host paths from the environment (PERFWATCH_HOST_*) unless given, and points
    psutil at the host's /proc when one is mounted.
    """
    paths = configure_psutil(paths or HostPaths.from_env())
    built: list[Collector] = [
        cpu.CpuCollector(),
        memory.MemoryCollector(),
        disk.DiskCollector(paths=paths),
        network.NetworkCollector(paths=paths),
        processes.ProcessesCollector(
            paths=paths, top_n=processes.DEFAULT_TOP_N if top_n is None else top_n
        ),
        system.SystemCollector(paths=paths),
        sensors.SensorsCollector(),
    ]
    return {c.metric_type: c for c in built}
