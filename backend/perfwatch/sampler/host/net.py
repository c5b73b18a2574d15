"""Interfaces of the host's network namespace: /proc/net/dev counters and IFF_UP flags."""

from __future__ import annotations

from perfwatch.sampler.host.files import read_text
from perfwatch.sampler.host.paths import HostPaths

NET_DEV_FIELDS = (
    "bytes_recv",
    "packets_recv",
    "errin",
    "dropin",
    "bytes_sent",
    "packets_sent",
    "errout",
    "dropout",
)
_NET_DEV_COLUMNS = tuple(zip(NET_DEV_FIELDS, (0, 1, 2, 3, 8, 9, 10, 11), strict=True))


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """Interface → counters from /proc/net/dev (two header lines, then ``name: 16 numbers``)."""
    result: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        fields = rest.split()
        if not name or len(fields) < 16:
            continue
        try:
            # Receive bytes, packets, errs, drop (columns 0-3); transmit the same (8-11).
            result[name] = {field: int(fields[i]) for field, i in _NET_DEV_COLUMNS}
        except ValueError:
            continue
    return result


def read_net_dev(paths: HostPaths) -> dict[str, dict[str, int]]:
    text = read_text(f"{paths.net_dir}/dev")
    return parse_net_dev(text) if text is not None else {}


def read_interface_up(paths: HostPaths, name: str) -> bool | None:
    """IFF_UP from {sys}/class/net/<if>/flags, None when unknown."""
    if "/" in name:
        return None
    text = read_text(f"{paths.sys}/class/net/{name}/flags")
    if text is None:
        return None
    try:
        return bool(int(text.strip(), 16) & 0x1)
    except ValueError:
        return None
