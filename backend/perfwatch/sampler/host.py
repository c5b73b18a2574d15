"""Observing the host, possibly from inside a container.

In Docker Compose the sampler runs with ``pid: host`` but its own network and mount
namespaces; the host's ``/proc``, ``/sys`` and ``/`` are bind-mounted and named by
``PERFWATCH_HOST_PROC``, ``PERFWATCH_HOST_SYS`` and ``PERFWATCH_HOST_ROOT``. Unset (running
directly on a machine) they default to ``/proc``, ``/sys`` and ``/``.

Because the network namespace is the container's, ``/proc/net/*`` would describe the container:
interface counters and socket states are read from ``{proc}/1/net/*`` instead (pid 1 is the
host's init, in the host's network namespace). Filesystems come from ``{proc}/1/mounts`` and
``os.statvfs(host_root + mountpoint)``. Small parsers below read those files directly, which is
also far cheaper than ``psutil.net_connections`` (a scan of every process's descriptors).

Every reader degrades to an empty result when a file cannot be read; none raises.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

ENV_PROC = "PERFWATCH_HOST_PROC"
ENV_SYS = "PERFWATCH_HOST_SYS"
ENV_ROOT = "PERFWATCH_HOST_ROOT"

# Filesystem types that hold no user data (or whose statvfs is meaningless or can hang).
PSEUDO_FSTYPES = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fuse.gvfsd-fuse",
        "fuse.lxcfs",
        "fuse.portal",
        "fuse.snapfuse",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "overlay",
        "proc",
        "pstore",
        "ramfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
        "nfsd",
        "none",
    }
)
# Network filesystems: a dead server makes statvfs block, so they are skipped (psutil's
# disk_partitions(all=False) skips them too).
NETWORK_FSTYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "fuse.sshfs", "sshfs"}
)

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


@dataclass(frozen=True)
class HostPaths:
    """Where the host's /proc, /sys and / are visible, and whether they are the host's."""

    proc: str = "/proc"
    sys: str = "/sys"
    root: str = "/"
    # True when PERFWATCH_HOST_PROC is set: network data comes from {proc}/1/net.
    host_proc: bool = False
    # True when PERFWATCH_HOST_ROOT is set: filesystems come from {proc}/1/mounts + statvfs.
    host_root: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HostPaths:
        env = os.environ if environ is None else environ
        proc = env.get(ENV_PROC) or ""
        sys_ = env.get(ENV_SYS) or ""
        root = env.get(ENV_ROOT) or ""
        return cls(
            proc=proc.rstrip("/") or "/proc",
            sys=sys_.rstrip("/") or "/sys",
            root=root.rstrip("/") or "/",
            host_proc=bool(proc),
            host_root=bool(root),
        )

    @property
    def net_dir(self) -> str:
        """The host's network namespace view: {proc}/1/net in a container, else {proc}/net."""
        return f"{self.proc}/1/net" if self.host_proc else f"{self.proc}/net"

    @property
    def mounts_file(self) -> str:
        return (
            f"{self.proc}/1/mounts" if self.host_proc or self.host_root else f"{self.proc}/mounts"
        )

    def in_root(self, path: str) -> str:
        """``path`` (absolute, as the host sees it) under the host root."""
        if self.root == "/":
            return path
        return self.root + ("" if path.startswith("/") else "/") + path


def configure_psutil(paths: HostPaths | None = None) -> HostPaths:
    """Point psutil at the host's /proc when PERFWATCH_HOST_PROC is set; return the paths."""
    paths = paths or HostPaths.from_env()
    if paths.host_proc:
        import psutil

        psutil.PROCFS_PATH = paths.proc
    return paths


def read_text(path: str) -> str | None:
    """A small file's text, or None when it cannot be read.

    Plain ``os.open``/``os.read`` (no buffered text wrapper) halves the cost of the small /proc
    and /sys files read every second; newlines are normalised like ``open()`` in text mode.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# --- /proc/net/dev ---------------------------------------------------------------------------


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

SOCKET_SUMMARY_FIELDS = (
    "tcp_in_use",
    "tcp_established",
    "tcp_time_wait",
    "tcp_orphan",
    "udp_in_use",
)


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


# --- mounts -----------------------------------------------------------------------------------

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape_mount(field: str) -> str:
    """/proc/*/mounts escapes space, tab, newline and backslash as octal (``\\040``)."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[tuple[str, str, str]]:
    """(device, mountpoint, fstype) per line of /proc/*/mounts."""
    mounts: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mounts.append((_unescape_mount(fields[0]), _unescape_mount(fields[1]), fields[2]))
    return mounts


def is_pseudo_fstype(fstype: str) -> bool:
    return (
        fstype in PSEUDO_FSTYPES
        or fstype in NETWORK_FSTYPES
        or fstype.startswith("cgroup")
        or fstype.startswith("fuse.lxcfs")
    )


def real_mounts(mounts: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Mounts holding data: pseudo and network filesystems, and repeats of a device, dropped."""
    seen: set[str] = set()
    kept: list[tuple[str, str, str]] = []
    for device, mountpoint, fstype in mounts:
        if is_pseudo_fstype(fstype) or device in seen:
            continue
        seen.add(device)
        kept.append((device, mountpoint, fstype))
    return kept


def statvfs_usage(path: str) -> dict[str, Any] | None:
    """Total/used/free bytes and percent as ``df`` (and psutil.disk_usage) computes them."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize  # available to unprivileged users
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    usable = used + free
    percent = round(used / usable * 100, 1) if usable > 0 else 0.0
    return {"total_bytes": total, "used_bytes": used, "free_bytes": free, "percent": percent}


def read_host_filesystems(paths: HostPaths) -> list[dict[str, Any]]:
    """The host's filesystems through {proc}/1/mounts and statvfs under the host root."""
    text = read_text(paths.mounts_file)
    if text is None:
        return []
    filesystems: list[dict[str, Any]] = []
    for device, mountpoint, fstype in real_mounts(parse_mounts(text)):
        usage = statvfs_usage(paths.in_root(mountpoint))
        if usage is None or usage["total_bytes"] <= 0:
            continue
        filesystems.append({"device": device, "mountpoint": mountpoint, "fstype": fstype, **usage})
    return filesystems


def read_os_release(paths: HostPaths) -> dict[str, str]:
    """KEY=value pairs of {root}/etc/os-release (or /usr/lib/os-release)."""
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        text = read_text(paths.in_root(candidate))
        if text is None:
            continue
        values: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                values[key] = value.strip().strip("\"'")
        return values
    return {}


def read_passwd(paths: HostPaths) -> dict[int, str]:
    """uid → user name from {root}/etc/passwd (a container's own passwd lacks host users)."""
    text = read_text(paths.in_root("/etc/passwd"))
    users: dict[int, str] = {}
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 3:
            try:
                users.setdefault(int(fields[2]), fields[0])
            except ValueError:
                continue
    return users
