"""Sockets of the host's network namespace: per-state tables (rare, costly) and the summary
counters of sockstat/snmp (cheap)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from perfwatch.sampler.host.files import read_text
from perfwatch.sampler.host.paths import HostPaths

# /proc/net/tcp `st` column → state name (include/net/tcp_states.h; psutil's names).
TCP_STATES: dict[int, str] = {
    0x01: "ESTABLISHED",
    0x02: "SYN_SENT",
    0x03: "SYN_RECV",
    0x04: "FIN_WAIT1",
    0x05: "FIN_WAIT2",
    0x06: "TIME_WAIT",
    0x07: "CLOSE",
    0x08: "CLOSE_WAIT",
    0x09: "LAST_ACK",
    0x0A: "LISTEN",
    0x0B: "CLOSING",
    0x0C: "NEW_SYN_RECV",
}
TCP_STATE_NAMES: tuple[str, ...] = tuple(TCP_STATES.values())


# --- /proc/net/tcp, tcp6, udp, udp6 -----------------------------------------------------------
# Costly: the kernel walks the whole socket hash table to produce each file (~1.5 ms for tcp
# and tcp6 each even with a handful of sockets), so the network collector reads them rarely.


def parse_socket_states(text: str) -> dict[int, int]:
    """State code → socket count from a /proc/net/{tcp,tcp6,udp,udp6} table (header skipped)."""
    counts: dict[int, int] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith(":"):
            continue
        try:
            state = int(fields[3], 16)
        except ValueError:
            continue
        counts[state] = counts.get(state, 0) + 1
    return counts


def tcp_state_counts(codes: Mapping[int, int]) -> dict[str, int]:
    """Named TCP state counts, every known state present (0 when none)."""
    named = dict.fromkeys(TCP_STATE_NAMES, 0)
    for code, count in codes.items():
        name = TCP_STATES.get(code, "UNKNOWN")
        named[name] = named.get(name, 0) + count
    return named


def read_connection_counts(paths: HostPaths) -> dict[str, Any] | None:
    """TCP sockets by state and UDP socket count (v4 + v6); None when no table is readable."""
    tcp_codes: dict[int, int] = {}
    udp = 0
    readable = False
    for table in ("tcp", "tcp6", "udp", "udp6"):
        text = read_text(f"{paths.net_dir}/{table}")
        if text is None:
            continue
        readable = True
        codes = parse_socket_states(text)
        if table.startswith("tcp"):
            for code, count in codes.items():
                tcp_codes[code] = tcp_codes.get(code, 0) + count
        else:
            udp += sum(codes.values())
    if not readable:
        return None
    tcp = tcp_state_counts(tcp_codes)
    tcp_total = sum(tcp.values())
    return {"tcp": tcp, "tcp_total": tcp_total, "udp_total": udp, "total": tcp_total + udp}


# --- /proc/net/sockstat, sockstat6, snmp: cheap socket summary ---------------------------------


def parse_sockstat(
    text: str, protocols: Collection[str] | None = None
) -> dict[str, dict[str, int]]:
    """Protocol → counters from /proc/net/sockstat or sockstat6 (``TCP: inuse 15 orphan 0 …``).

    Only ``protocols`` (all when None) are parsed; values that are not non-negative integers
    are skipped.
    """
    result: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        proto, sep, rest = line.partition(":")
        proto = proto.strip()
        if not sep or not proto or (protocols is not None and proto not in protocols):
            continue
        fields = rest.split()
        values: dict[str, int] = {}
        for key, value in zip(fields[::2], fields[1::2], strict=False):
            if value.isdecimal():
                values[key] = int(value)
        result[proto] = values
    return result


def parse_snmp(text: str, protocols: Collection[str] | None = None) -> dict[str, dict[str, int]]:
    """Protocol → counters from /proc/net/snmp: per protocol a names line, then a values line.

    Only ``protocols`` (all when None) are parsed; non-integer values are skipped.
    """
    result: dict[str, dict[str, int]] = {}
    names: dict[str, list[str]] = {}
    for line in text.splitlines():
        proto, sep, rest = line.partition(":")
        if not sep or (protocols is not None and proto not in protocols):
            continue
        fields = rest.split()
        header = names.pop(proto, None)
        if header is None:
            names[proto] = fields  # the names line; the next line of this protocol has values
            continue
        values: dict[str, int] = {}
        for key, value in zip(header, fields, strict=False):
            try:
                values[key] = int(value)
            except ValueError:
                continue
        result[proto] = values
    return result


def socket_summary(
    sockstat: str | None, sockstat6: str | None, snmp: str | None
) -> dict[str, int] | None:
    """The ``sockets`` summary from the three files' texts; None without sockstat or snmp.

    ``sockstat6`` may be None (IPv6 disabled): its in-use counts then add nothing. The TIME_WAIT
    and orphan counts of sockstat already cover IPv4 and IPv6.
    """
    if sockstat is None or snmp is None:
        return None
    v4 = parse_sockstat(sockstat, ("TCP", "UDP"))
    v6 = parse_sockstat(sockstat6, ("TCP6", "UDP6")) if sockstat6 is not None else {}
    tcp, udp = v4.get("TCP", {}), v4.get("UDP", {})
    curr_estab = parse_snmp(snmp, ("Tcp",)).get("Tcp", {}).get("CurrEstab")
    tcp_in_use, time_wait, orphan = tcp.get("inuse"), tcp.get("tw"), tcp.get("orphan")
    udp_in_use = udp.get("inuse")
    if (
        curr_estab is None
        or curr_estab < 0
        or tcp_in_use is None
        or time_wait is None
        or orphan is None
        or udp_in_use is None
    ):
        return None
    return {
        "tcp_in_use": tcp_in_use + v6.get("TCP6", {}).get("inuse", 0),
        "tcp_established": curr_estab,
        "tcp_time_wait": time_wait,
        "tcp_orphan": orphan,
        "udp_in_use": udp_in_use + v6.get("UDP6", {}).get("inuse", 0),
    }


def read_socket_summary(paths: HostPaths) -> dict[str, int] | None:
    """Socket counts from {net_dir}/sockstat, sockstat6 and snmp: ~0.01 ms per file."""
    net = paths.net_dir
    return socket_summary(
        read_text(f"{net}/sockstat"), read_text(f"{net}/sockstat6"), read_text(f"{net}/snmp")
    )
