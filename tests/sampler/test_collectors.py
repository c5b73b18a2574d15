"""The psutil collectors on this real machine, validated against their JSON Schemas; the
host-mode readers on a fake /proc tree."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from jsonschema import Draft202012Validator

from perfwatch.contract.documents import SCHEMAS
from perfwatch.contract.metrics import METRIC_TYPES
from perfwatch.contract.runtime_config import DEFAULTS
from perfwatch.sampler.collectors import build_collectors
from perfwatch.sampler.collectors import network as network_module
from perfwatch.sampler.collectors.base import Collector
from perfwatch.sampler.collectors.cpu import CpuCollector
from perfwatch.sampler.collectors.disk import DiskCollector
from perfwatch.sampler.collectors.network import IS_UP_INTERVAL, NetworkCollector
from perfwatch.sampler.collectors.processes import ProcessesCollector
from perfwatch.sampler.collectors.sensors import SensorsCollector
from perfwatch.sampler.collectors.system import SystemCollector
from perfwatch.sampler.host.mounts import parse_mounts, read_host_filesystems
from perfwatch.sampler.host.net import parse_net_dev, read_net_dev
from perfwatch.sampler.host.paths import HostPaths, configure_psutil
from perfwatch.sampler.host.sockets import (
    parse_snmp,
    parse_socket_states,
    parse_sockstat,
    read_connection_counts,
    read_socket_summary,
    socket_summary,
)

CONFIG = dict(DEFAULTS)
LOCAL = HostPaths()  # this machine, whatever PERFWATCH_HOST_* the environment has


def validate(metric_type: str, document: dict[str, Any]) -> None:
    Draft202012Validator(SCHEMAS[metric_type]).validate(document)
    json.dumps(document, allow_nan=False)


def is_rate(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def burn_cpu(seconds: float) -> None:
    deadline = time.process_time() + seconds
    total = 0
    while time.process_time() < deadline:
        total += sum(range(1_000))


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def documents() -> dict[str, list[dict[str, Any]]]:
    """Three documents per collector, 0.2 s apart, from build_collectors() on this machine."""
    collectors = build_collectors(paths=LOCAL)
    for collector in collectors.values():
        collector.configure(CONFIG)
    produced: dict[str, list[dict[str, Any]]] = {name: [] for name in collectors}
    for round_ in range(3):
        if round_:
            time.sleep(0.2)
        for name, collector in collectors.items():
            produced[name].append(collector.collect())
    return produced


# --- every collector on the real machine -------------------------------------------------------


def test_one_collector_and_schema_per_metric_type() -> None:
    collectors = build_collectors(paths=LOCAL)
    assert set(collectors) == set(METRIC_TYPES) == set(SCHEMAS)
    # A collector class written but left out of build_collectors() would never sample.
    written = {
        cls
        for cls in Collector.__subclasses__()
        if cls.__module__.startswith("perfwatch.sampler.collectors.")
    }
    assert {type(collector) for collector in collectors.values()} == written
    for name, collector in collectors.items():
        assert isinstance(collector, Collector)
        assert collector.metric_type == name
        assert collector.interval_key in CONFIG


def test_schemas_are_valid_draft_2020_12() -> None:
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)
        assert schema["additionalProperties"] is False
        assert "schema_version" in schema["required"]


@pytest.mark.parametrize("metric_type", METRIC_TYPES)
def test_documents_validate_and_serialise(
    documents: dict[str, list[dict[str, Any]]], metric_type: str
) -> None:
    assert len(documents[metric_type]) == 3
    for document in documents[metric_type]:
        assert document["schema_version"] == 1
        validate(metric_type, document)


def test_cpu_rates_on_later_calls(documents: dict[str, list[dict[str, Any]]]) -> None:
    first, second, _ = documents["cpu"]
    assert first["percent"] is None
    assert first["ctx_switches_per_s"] is None
    assert len(second["per_core"]) == psutil.cpu_count()
    assert all(is_rate(v) and v <= 100 for v in second["per_core"])
    assert is_rate(second["percent"])
    assert second["times_percent"]["idle"] is not None
    assert is_rate(second["ctx_switches_per_s"]) and second["ctx_switches_per_s"] > 0
    assert is_rate(second["interrupts_per_s"])
    assert second["count_logical"] == psutil.cpu_count()


def test_memory_values(documents: dict[str, list[dict[str, Any]]]) -> None:
    virtual = documents["memory"][1]["virtual"]
    assert virtual["total_bytes"] == psutil.virtual_memory().total
    assert 0 < virtual["available_bytes"] <= virtual["total_bytes"]
    swap = documents["memory"][1]["swap"]
    if swap is not None:
        assert is_rate(swap["sin_bytes_per_s"]) and is_rate(swap["sout_bytes_per_s"])


def test_network_rates_on_later_calls(documents: dict[str, list[dict[str, Any]]]) -> None:
    first, second, _ = documents["network"]
    assert second["interfaces"], "no interface found in /proc/net/dev"
    assert all(
        v is None for e in first["interfaces"].values() for k, v in e.items() if k != "is_up"
    )
    for entry in second["interfaces"].values():
        assert all(is_rate(v) for k, v in entry.items() if k != "is_up")
    if "lo" in second["interfaces"]:
        assert second["interfaces"]["lo"]["is_up"] is True
    connections = second["connections"]
    assert connections is not None
    assert connections["total"] == connections["tcp_total"] + connections["udp_total"]
    # Read on the first sample, repeated within sampler.interval.connections (30 s).
    collected_at = {document["connections_collected_at"] for document in documents["network"]}
    assert len(collected_at) == 1 and None not in collected_at
    if os.path.exists("/proc/net/sockstat"):
        for document in documents["network"]:
            sockets = document["sockets"]
            assert sockets is not None
            assert sockets["tcp_established"] <= sockets["tcp_in_use"]


def test_disk_rates_on_later_calls(documents: dict[str, list[dict[str, Any]]]) -> None:
    second = documents["disk"][1]
    for name, entry in second["io"].items():
        assert not name.startswith(("loop", "ram", "zram"))
        assert all(is_rate(v) for k, v in entry.items() if k != "busy_percent")
    mountpoints = [fs["mountpoint"] for fs in second["usage"]]
    assert len(mountpoints) == len({fs["device"] for fs in second["usage"]})
    assert all(fs["fstype"] not in ("proc", "tmpfs", "sysfs") for fs in second["usage"])


def test_sensors_valid_without_sensors(documents: dict[str, list[dict[str, Any]]]) -> None:
    document = documents["sensors"][0]
    assert set(document) == {"schema_version", "temperatures", "fans", "battery"}


def test_system_document(documents: dict[str, list[dict[str, Any]]]) -> None:
    document = documents["system"][0]
    assert document["hostname"]
    assert document["cpu_count_logical"] == psutil.cpu_count()
    assert document["uptime_seconds"] is None or document["uptime_seconds"] >= 0
    boot = document["boot_time"]
    assert boot is not None and boot.endswith("Z")
    assert abs(datetime.fromisoformat(boot).timestamp() - psutil.boot_time()) < 1


# --- processes --------------------------------------------------------------------------------


@pytest.fixture
def process_iter_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts psutil.process_iter calls; the real function still does the work."""
    calls: list[int] = []
    real = psutil.process_iter

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(psutil, "process_iter", counting)
    yield calls


def test_processes_one_iteration_per_collect_and_own_cpu(process_iter_calls: list[int]) -> None:
    collector = ProcessesCollector(paths=LOCAL)
    collector.configure(CONFIG)
    first = collector.collect()
    assert len(process_iter_calls) == 1
    assert first["top_cpu"] == []  # no CPU history yet
    burn_cpu(0.3)
    second = collector.collect()
    assert len(process_iter_calls) == 2
    for document in (first, second):
        validate("processes", document)
        assert document["total"] == sum(document["by_status"].values())
        for key in ("top_cpu", "top_memory"):
            assert len(document[key]) <= CONFIG["sampler.processes.top_n"]
    cpu = [p["cpu_percent"] for p in second["top_cpu"]]
    assert cpu == sorted(cpu, reverse=True)
    rss = [p["rss_bytes"] for p in second["top_memory"]]
    assert rss == sorted(rss, reverse=True)
    own = os.getpid()
    assert (collector.cpu_percent_of(own) or 0) > 0
    mine = [p for p in second["top_cpu"] if p["pid"] == own]
    assert mine and mine[0]["cpu_percent"] > 0
    assert mine[0]["cmdline"] and len(mine[0]["cmdline"]) <= 256
    assert mine[0]["username"]


def test_processes_top_n_from_configure(process_iter_calls: list[int]) -> None:
    collector = ProcessesCollector(paths=LOCAL)
    collector.configure({**CONFIG, "sampler.processes.top_n": 3})
    collector.collect()
    document = collector.collect()
    assert len(document["top_memory"]) == min(3, document["total"])
    assert len(document["top_cpu"]) <= 3
    collector.configure({**CONFIG, "sampler.processes.top_n": 1})
    document = collector.collect()
    assert len(document["top_memory"]) == 1
    assert len(process_iter_calls) == 3


def test_processes_forget_vanished() -> None:
    collector = ProcessesCollector(paths=LOCAL)
    collector.configure({"sampler.processes.top_n": 500})
    collector.collect()
    child = psutil.Popen(["sleep", "30"])
    try:
        collector.collect()
        assert any(pid == child.pid for pid, _ in collector._cpu_state)
    finally:
        child.kill()
        child.wait()
    collector.collect()
    assert not any(pid == child.pid for pid, _ in collector._cpu_state)
    assert all(key in collector._cpu_state for key in collector._details)


def test_processes_usernames_from_host_passwd(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(f"hostuser:x:{os.getuid()}:0::/:/bin/sh\n")
    collector = ProcessesCollector(paths=HostPaths(root=str(root), host_root=True))
    collector.configure({"sampler.processes.top_n": 500})
    document = collector.collect()
    mine = [p for p in document["top_memory"] if p["pid"] == os.getpid()]
    assert mine and mine[0]["username"] == "hostuser"


# --- disk usage refresh ----------------------------------------------------------------------


def test_disk_usage_refreshed_only_per_interval() -> None:
    clock = FakeClock()
    wall = [datetime(2024, 1, 1, tzinfo=UTC)]

    def wall_clock() -> datetime:
        wall[0] += timedelta(seconds=1)
        return wall[0]

    collector = DiskCollector(paths=LOCAL, clock=clock, wall_clock=wall_clock)
    collector.configure({**CONFIG, "sampler.interval.disk_usage": 3600})
    first = collector.collect()["usage_collected_at"]
    clock.now += 10
    assert collector.collect()["usage_collected_at"] == first
    clock.now += 1_000
    assert collector.collect()["usage_collected_at"] == first

    collector.configure({**CONFIG, "sampler.interval.disk_usage": 5})
    clock.now += 5
    refreshed = collector.collect()["usage_collected_at"]
    assert refreshed != first
    clock.now += 1
    assert collector.collect()["usage_collected_at"] == refreshed
    clock.now += 4
    assert collector.collect()["usage_collected_at"] != refreshed


def test_disk_usage_at_the_shortest_interval() -> None:
    clock = FakeClock()
    collector = DiskCollector(paths=LOCAL, clock=clock)
    collector.configure({"sampler.interval.disk_usage": 1})
    first = collector.collect()
    time.sleep(0.01)
    clock.now += 1
    second = collector.collect()
    assert first["usage_collected_at"] != second["usage_collected_at"]
    validate("disk", second)


# --- host mode on a fake /proc tree --------------------------------------------------------------

# Real layouts with the column padding squeezed (the parsers split on whitespace).
NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls
    lo: {lo_rx} 517 0 0 0 0 0 0 39095 517 0 0 0 0 0 0
  eth0: {eth_rx} 2000 1 2 0 0 0 0 {eth_tx} 1500 3 4 0 0 0 0
"""

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout
   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 5191 1
   1: 0100007F:107E 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 6911 1
   2: 0100007F:C350 0100007F:18EB 01 00000000:00000000 00:00000000 00000000 0 0 7001 1
   3: 0100007F:C352 0100007F:18EB 06 00000000:00000000 03:00000F2C 00000000 0 0 0 3
"""
TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0
"""
UDP = """   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout
  1: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1
  2: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 2
"""
SOCKSTAT = """sockets: used 34
TCP: inuse 15 orphan 1 tw 124 alloc 18 mem 14
UDP: inuse 3 mem 0
UDPLITE: inuse 0
RAW: inuse 0
FRAG: inuse 0 memory 0
"""
SOCKSTAT6 = """TCP6: inuse 2
UDP6: inuse 4
UDPLITE6: inuse 0
RAW6: inuse 0
FRAG6: inuse 0 memory 0
"""
SNMP = """Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 20519
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens CurrEstab InSegs
Tcp: 1 200 120000 -1 651 418 4 22787
Udp: InDatagrams NoPorts InErrors
Udp: 146 0 0
"""


def write_net(proc: Path, *, lo_rx: int, eth_rx: int, eth_tx: int) -> None:
    net = proc / "1" / "net"
    net.mkdir(parents=True, exist_ok=True)
    (net / "dev").write_text(NET_DEV.format(lo_rx=lo_rx, eth_rx=eth_rx, eth_tx=eth_tx))
    (net / "tcp").write_text(TCP)
    (net / "tcp6").write_text(TCP6)
    (net / "udp").write_text(UDP)
    (net / "sockstat").write_text(SOCKSTAT)
    (net / "sockstat6").write_text(SOCKSTAT6)
    (net / "snmp").write_text(SNMP)


@pytest.fixture
def host(tmp_path: Path) -> HostPaths:
    proc, sys_, root = tmp_path / "proc", tmp_path / "sys", tmp_path / "root"
    write_net(proc, lo_rx=1_000, eth_rx=10_000, eth_tx=20_000)
    for name, flags in (("lo", "0x9"), ("eth0", "0x1003")):
        (sys_ / "class" / "net" / name).mkdir(parents=True)
        (sys_ / "class" / "net" / name / "flags").write_text(flags + "\n")
    for directory in ("", "data", "mnt/with space", "proc", "var/lib/docker"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (proc / "1" / "mounts").write_text(
        "/dev/sda1 / ext4 rw,relatime 0 0\n"
        "proc /proc proc rw 0 0\n"
        "tmpfs /run tmpfs rw 0 0\n"
        "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"
        "overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n"
        "/dev/sda1 /var/lib/docker ext4 rw 0 0\n"
        "/dev/sdb1 /data xfs rw 0 0\n"
        "server:/export /mnt/nfs nfs4 rw 0 0\n"
        "/dev/sdc1 /mnt/with\\040space ext4 rw 0 0\n"
        "/dev/sdd1 /not/mounted/here ext4 rw 0 0\n"
    )
    return HostPaths(proc=str(proc), sys=str(sys_), root=str(root), host_proc=True, host_root=True)


def test_host_paths_from_env() -> None:
    assert HostPaths.from_env({}) == HostPaths("/proc", "/sys", "/", False, False)
    paths = HostPaths.from_env(
        {
            "PERFWATCH_HOST_PROC": "/host/proc/",
            "PERFWATCH_HOST_SYS": "/host/sys",
            "PERFWATCH_HOST_ROOT": "/host/root",
        }
    )
    assert paths == HostPaths("/host/proc", "/host/sys", "/host/root", True, True)
    assert paths.net_dir == "/host/proc/1/net"
    assert paths.mounts_file == "/host/proc/1/mounts"
    assert paths.in_root("/etc/hostname") == "/host/root/etc/hostname"
    assert HostPaths().net_dir == "/proc/net"
    assert HostPaths().in_root("/etc/hostname") == "/etc/hostname"


def test_configure_psutil_sets_procfs_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "PROCFS_PATH", psutil.PROCFS_PATH)
    configure_psutil(HostPaths())
    assert psutil.PROCFS_PATH == "/proc"
    configure_psutil(HostPaths(proc="/host/proc", host_proc=True))
    assert psutil.PROCFS_PATH == "/host/proc"


def test_parse_net_dev(host: HostPaths) -> None:
    counters = read_net_dev(host)
    assert set(counters) == {"lo", "eth0"}
    assert counters["eth0"] == {
        "bytes_recv": 10_000,
        "packets_recv": 2000,
        "errin": 1,
        "dropin": 2,
        "bytes_sent": 20_000,
        "packets_sent": 1500,
        "errout": 3,
        "dropout": 4,
    }
    assert parse_net_dev("garbage\n  x: 1 2 3\n") == {}


def test_parse_socket_states(host: HostPaths) -> None:
    assert parse_socket_states(TCP) == {0x0A: 2, 0x01: 1, 0x06: 1}
    counts = read_connection_counts(host)
    assert counts is not None
    assert counts["tcp"]["LISTEN"] == 3
    assert counts["tcp"]["ESTABLISHED"] == 1
    assert counts["tcp"]["TIME_WAIT"] == 1
    assert counts["tcp"]["CLOSE_WAIT"] == 0
    assert counts["tcp_total"] == 5
    assert counts["udp_total"] == 2  # udp6 missing: skipped
    assert counts["total"] == 7


SUMMARY = {
    "tcp_in_use": 17,  # 15 + TCP6 2
    "tcp_established": 4,
    "tcp_time_wait": 124,
    "tcp_orphan": 1,
    "udp_in_use": 7,  # 3 + UDP6 4
}


def test_parse_sockstat_and_snmp() -> None:
    sockstat = parse_sockstat(SOCKSTAT)
    assert sockstat["TCP"] == {"inuse": 15, "orphan": 1, "tw": 124, "alloc": 18, "mem": 14}
    assert sockstat["sockets"] == {"used": 34}
    assert parse_sockstat(SOCKSTAT, ("UDP",)) == {"UDP": {"inuse": 3, "mem": 0}}
    assert parse_sockstat("TCP: inuse x orphan -1 tw 5\ngarbage\n") == {"TCP": {"tw": 5}}
    snmp = parse_snmp(SNMP)
    assert snmp["Tcp"]["CurrEstab"] == 4 and snmp["Tcp"]["MaxConn"] == -1
    assert snmp["Udp"] == {"InDatagrams": 146, "NoPorts": 0, "InErrors": 0}
    assert set(parse_snmp(SNMP, ("Tcp",))) == {"Tcp"}
    assert parse_snmp("Tcp: CurrEstab\n") == {}  # names without values


def test_socket_summary() -> None:
    assert socket_summary(SOCKSTAT, SOCKSTAT6, SNMP) == SUMMARY
    # No sockstat6 (IPv6 disabled): IPv4 in-use counts only.
    assert socket_summary(SOCKSTAT, None, SNMP) == {**SUMMARY, "tcp_in_use": 15, "udp_in_use": 3}
    assert socket_summary(None, SOCKSTAT6, SNMP) is None
    assert socket_summary(SOCKSTAT, SOCKSTAT6, None) is None
    assert socket_summary("garbage", None, SNMP) is None
    assert socket_summary(SOCKSTAT, None, "Tcp: MaxConn\nTcp: -1\n") is None


def test_read_socket_summary(host: HostPaths) -> None:
    assert read_socket_summary(host) == SUMMARY
    (Path(host.net_dir) / "sockstat6").unlink()
    assert read_socket_summary(host) == {**SUMMARY, "tcp_in_use": 15, "udp_in_use": 3}
    (Path(host.net_dir) / "snmp").unlink()
    assert read_socket_summary(host) is None


def test_unreadable_host_paths_degrade(tmp_path: Path) -> None:
    empty = HostPaths(
        proc=str(tmp_path / "nope"), sys=str(tmp_path), root=str(tmp_path), host_proc=True
    )
    assert read_net_dev(empty) == {}
    assert read_connection_counts(empty) is None
    assert read_socket_summary(empty) is None
    assert read_host_filesystems(empty) == []
    document = NetworkCollector(paths=empty).collect()
    assert document["interfaces"] == {} and document["connections"] is None
    assert document["sockets"] is None and document["connections_collected_at"] is None
    validate("network", document)
    disk = DiskCollector(paths=HostPaths(proc=str(tmp_path), root=str(tmp_path), host_root=True))
    validate("disk", disk.collect())


def test_host_network_collector_rates_and_reset(host: HostPaths) -> None:
    clock = FakeClock()
    collector = NetworkCollector(paths=host, clock=clock)
    first = collector.collect()
    validate("network", first)
    assert first["interfaces"]["eth0"]["bytes_recv_per_s"] is None
    assert first["interfaces"]["eth0"]["is_up"] is True
    assert first["connections"]["tcp"]["LISTEN"] == 3
    assert first["sockets"] == SUMMARY

    proc = Path(host.proc)
    write_net(proc, lo_rx=1_500, eth_rx=30_000, eth_tx=20_000)
    clock.now += 2
    second = collector.collect()
    validate("network", second)
    eth0 = second["interfaces"]["eth0"]
    assert eth0["bytes_recv_per_s"] == 10_000.0
    assert eth0["bytes_sent_per_s"] == 0.0
    assert second["interfaces"]["lo"]["bytes_recv_per_s"] == 250.0

    # eth0 re-created: counters start again lower → null, never negative; then recovers.
    write_net(proc, lo_rx=2_000, eth_rx=100, eth_tx=50)
    clock.now += 1
    third = collector.collect()
    validate("network", third)
    assert third["interfaces"]["eth0"]["bytes_recv_per_s"] is None
    assert third["interfaces"]["lo"]["bytes_recv_per_s"] == 500.0
    write_net(proc, lo_rx=2_000, eth_rx=1_100, eth_tx=50)
    clock.now += 1
    assert collector.collect()["interfaces"]["eth0"]["bytes_recv_per_s"] == 1_000.0


def test_host_interface_state_forgotten(host: HostPaths) -> None:
    collector = NetworkCollector(paths=host, clock=FakeClock())
    collector.collect()
    assert ("eth0", "bytes_recv") in collector._rates
    dev = Path(host.net_dir) / "dev"
    dev.write_text("\n".join(line for line in dev.read_text().splitlines() if "eth0" not in line))
    collector.collect()
    assert ("eth0", "bytes_recv") not in collector._rates


class WallClock:
    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def connection_reads(monkeypatch: pytest.MonkeyPatch) -> list[HostPaths]:
    """Every read of the costly /proc/net/{tcp,tcp6,udp,udp6} tables by the collector."""
    reads: list[HostPaths] = []

    def counting(paths: HostPaths) -> dict[str, Any] | None:
        reads.append(paths)
        return read_connection_counts(paths)

    monkeypatch.setattr(network_module, "read_connection_counts", counting)
    return reads


def test_network_connections_refreshed_only_per_interval(
    host: HostPaths, connection_reads: list[HostPaths]
) -> None:
    clock = FakeClock()
    collector = NetworkCollector(paths=host, clock=clock, wall_clock=WallClock())
    collector.configure(CONFIG)
    assert collector.connections_interval == 30
    first = collector.collect()
    assert len(connection_reads) == 1
    assert first["connections"]["tcp"]["LISTEN"] == 3
    assert first["connections_collected_at"] == "2024-01-01T00:00:01Z"

    # A new TIME_WAIT socket and changed summary counts: the summary follows at once, the
    # breakdown is repeated from the cache until the interval has passed.
    net = Path(host.net_dir)
    extra = "   4: 0100007F:C354 0100007F:18EB 06 00000000:00000000 03:00000F2C 00000000 0 0 0 3\n"
    (net / "tcp").write_text(TCP + extra)
    (net / "sockstat").write_text(SOCKSTAT.replace("tw 124", "tw 125"))
    for _ in range(29):
        clock.now += 1
        document = collector.collect()
        validate("network", document)
        assert document["connections"] == first["connections"]
        assert document["connections_collected_at"] == first["connections_collected_at"]
        assert document["sockets"]["tcp_time_wait"] == 125
    assert len(connection_reads) == 1

    clock.now += 1  # 30 s after the first read
    refreshed = collector.collect()
    validate("network", refreshed)
    assert len(connection_reads) == 2
    assert refreshed["connections"]["tcp"]["TIME_WAIT"] == 2
    assert refreshed["connections_collected_at"] == "2024-01-01T00:00:02Z"


def test_network_connections_interval_from_configure(
    host: HostPaths, connection_reads: list[HostPaths]
) -> None:
    clock = FakeClock()
    collector = NetworkCollector(paths=host, clock=clock, wall_clock=WallClock())
    collector.configure({**CONFIG, "sampler.interval.connections": 3600})
    collector.collect()
    clock.now += 600
    collector.collect()
    assert len(connection_reads) == 1

    collector.configure({**CONFIG, "sampler.interval.connections": 5})
    assert collector.connections_interval == 5
    clock.now += 5
    collector.collect()
    assert len(connection_reads) == 2
    clock.now += 4
    collector.collect()
    assert len(connection_reads) == 2
    clock.now += 1
    collector.collect()
    assert len(connection_reads) == 3

    # Values outside the catalogue's rule (1-3600 s; the API refuses them, SQL by hand does
    # not) fall back to the default, as a wrong type does.
    for refused in (0, -5, 7200, "bogus", True):
        collector.configure({"sampler.interval.connections": refused})
        assert collector.connections_interval == 30, refused


def test_network_is_up_cached(host: HostPaths) -> None:
    clock = FakeClock()
    collector = NetworkCollector(paths=host, clock=clock)
    assert collector.collect()["interfaces"]["eth0"]["is_up"] is True
    flags = Path(host.sys) / "class" / "net" / "eth0" / "flags"
    flags.write_text("0x1002\n")  # eth0 goes down
    clock.now += IS_UP_INTERVAL - 1
    assert collector.collect()["interfaces"]["eth0"]["is_up"] is True  # cached
    clock.now += 1
    assert collector.collect()["interfaces"]["eth0"]["is_up"] is False

    # A new interface is read at once, without waiting for the next refresh.
    (Path(host.sys) / "class" / "net" / "eth1").mkdir()
    (Path(host.sys) / "class" / "net" / "eth1" / "flags").write_text("0x1003\n")
    dev = Path(host.net_dir) / "dev"
    dev.write_text(dev.read_text() + "  eth1: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n")
    clock.now += 1
    document = collector.collect()
    assert document["interfaces"]["eth1"]["is_up"] is True
    assert document["interfaces"]["eth0"]["is_up"] is False


def test_parse_mounts_unescapes() -> None:
    assert parse_mounts("/dev/sdc1 /mnt/with\\040space ext4 rw 0 0\nbad\n") == [
        ("/dev/sdc1", "/mnt/with space", "ext4")
    ]


def test_host_filesystems(host: HostPaths) -> None:
    filesystems = read_host_filesystems(host)
    # Pseudo, network, duplicate-device and missing mountpoints are skipped; the host's own
    # mountpoints are reported, not the container's /host/root/... paths.
    assert [fs["mountpoint"] for fs in filesystems] == ["/", "/data", "/mnt/with space"]
    assert [fs["device"] for fs in filesystems] == ["/dev/sda1", "/dev/sdb1", "/dev/sdc1"]
    expected = os.statvfs(host.root)
    assert filesystems[0]["total_bytes"] == expected.f_blocks * expected.f_frsize
    for fs in filesystems:
        assert fs["used_bytes"] + fs["free_bytes"] <= fs["total_bytes"]
        assert 0 <= fs["percent"] <= 100
    document = DiskCollector(paths=host).collect()
    validate("disk", document)
    assert [fs["mountpoint"] for fs in document["usage"]] == ["/", "/data", "/mnt/with space"]


def test_host_system_identity(host: HostPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    root, proc = Path(host.root), Path(host.proc)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "hostname").write_text("the-host\n")
    (root / "etc" / "os-release").write_text('NAME="Debian"\nPRETTY_NAME="Host OS 1.0"\n')
    (proc / "sys" / "kernel").mkdir(parents=True)
    (proc / "sys" / "kernel" / "osrelease").write_text("9.9.9-host\n")
    monkeypatch.delenv("PERFWATCH_HOSTNAME", raising=False)
    document = SystemCollector(paths=host).collect()
    validate("system", document)
    assert document["hostname"] == "the-host"
    assert document["os_pretty_name"] == "Host OS 1.0"
    assert document["kernel"] == "9.9.9-host"
    assert document["in_container"] is True
    monkeypatch.setenv("PERFWATCH_HOSTNAME", "configured-name")
    assert SystemCollector(paths=host).collect()["hostname"] == "configured-name"


# --- sensors edge cases ------------------------------------------------------------------------


def raising(*_: Any) -> Any:
    raise RuntimeError("sensor driver exploded")


@pytest.mark.parametrize(
    "patch",
    [
        lambda mp: mp.delattr(psutil, "sensors_temperatures", raising=False),
        lambda mp: mp.setattr(psutil, "sensors_fans", raising, raising=False),
        lambda mp: mp.setattr(psutil, "sensors_battery", raising, raising=False),
    ],
)
def test_sensors_degrade(
    monkeypatch: pytest.MonkeyPatch, patch: Callable[[pytest.MonkeyPatch], None]
) -> None:
    patch(monkeypatch)
    validate("sensors", SensorsCollector().collect())


def test_sensors_battery_unlimited_time(monkeypatch: pytest.MonkeyPatch) -> None:
    battery = SimpleNamespace(
        percent=87.5, secsleft=psutil.POWER_TIME_UNLIMITED, power_plugged=True
    )
    monkeypatch.setattr(psutil, "sensors_battery", lambda: battery, raising=False)
    document = SensorsCollector().collect()
    validate("sensors", document)
    assert document["battery"] == {"percent": 87.5, "secs_left": None, "power_plugged": True}


# --- the schemas can fail ------------------------------------------------------------------------


def test_schemas_reject_bad_documents(documents: dict[str, list[dict[str, Any]]]) -> None:
    network = json.loads(json.dumps(documents["network"][1]))
    name = next(iter(network["interfaces"]))
    network["interfaces"][name]["bytes_recv_per_s"] = -1.0
    assert not Draft202012Validator(SCHEMAS["network"]).is_valid(network)
    network = json.loads(json.dumps(documents["network"][1]))
    network["sockets"] = dict(SUMMARY)
    assert Draft202012Validator(SCHEMAS["network"]).is_valid(network)
    for broken_sockets in (
        {**SUMMARY, "tcp_orphan": -1},
        {**SUMMARY, "extra": 1},
        {k: v for k, v in SUMMARY.items() if k != "udp_in_use"},
    ):
        assert not Draft202012Validator(SCHEMAS["network"]).is_valid(
            {**network, "sockets": broken_sockets}
        )
    assert not Draft202012Validator(SCHEMAS["network"]).is_valid(
        {k: v for k, v in network.items() if k != "connections_collected_at"}
    )

    cpu = json.loads(json.dumps(documents["cpu"][1]))
    assert Draft202012Validator(SCHEMAS["cpu"]).is_valid(cpu)
    for broken in (
        {k: v for k, v in cpu.items() if k != "schema_version"},
        {**cpu, "schema_version": 2},
        {**cpu, "unexpected": 1},
        {**cpu, "percent": 101.0},
        {**cpu, "ctx_switches_per_s": -5},
    ):
        assert not Draft202012Validator(SCHEMAS["cpu"]).is_valid(broken)

    processes = json.loads(json.dumps(documents["processes"][1]))
    if processes["top_memory"]:
        processes["top_memory"][0]["cpu_percent"] = 180.0  # several cores busy: allowed
        assert Draft202012Validator(SCHEMAS["processes"]).is_valid(processes)
        processes["top_memory"][0]["rss_bytes"] = -1
        assert not Draft202012Validator(SCHEMAS["processes"]).is_valid(processes)


def test_first_cpu_document_has_null_percentages() -> None:
    document = CpuCollector().collect()
    validate("cpu", document)
    assert document["percent"] is None
    assert all(v is None for v in document["per_core"])


def test_undecodable_process_names_are_made_storable() -> None:
    from perfwatch.sampler.collectors._common import clean_text

    undecodable = b"caf\xff".decode("utf-8", errors="surrogateescape")
    cleaned = clean_text(undecodable)
    assert cleaned is not None
    cleaned.encode("utf-8")  # a lone surrogate would raise here (and in PostgreSQL)
    assert cleaned.startswith("caf")
    assert "\x00" not in (clean_text("a\x00b") or "")
    assert clean_text("plain") == "plain"
    assert clean_text(None) is None


def test_the_thread_total_comes_from_loadavg(tmp_path: Path) -> None:
    from perfwatch.sampler.collectors.processes import total_threads

    (tmp_path / "loadavg").write_text("0.02 0.16 0.33 3/162 14045\n")
    assert total_threads(HostPaths(proc=str(tmp_path), host_proc=True)) == 162
    (tmp_path / "loadavg").write_text("garbage\n")
    assert total_threads(HostPaths(proc=str(tmp_path), host_proc=True)) is None
    assert total_threads(HostPaths(proc=str(tmp_path / "missing"))) is None
    real = total_threads(HostPaths())
    assert real is not None and real >= len(psutil.pids())


def test_absent_sensors_are_looked_for_again_only_every_few_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from perfwatch.sampler.collectors import sensors

    calls: list[str] = []

    def none_found() -> dict[str, list[Any]]:
        calls.append("temperatures")
        return {}

    monkeypatch.setattr(psutil, "sensors_temperatures", none_found, raising=False)
    now = [1000.0]
    collector = sensors.SensorsCollector(clock=lambda: now[0])
    validate("sensors", collector.collect())
    validate("sensors", collector.collect())
    assert calls == ["temperatures"]  # not scanned again right away
    now[0] += sensors.ABSENT_RECHECK_SECONDS
    document = collector.collect()
    assert calls == ["temperatures", "temperatures"]
    assert document["temperatures"] == {}
