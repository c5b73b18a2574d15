"""The host's filesystems: {proc}/1/mounts, filtered to those holding data, and statvfs."""

from __future__ import annotations

import os
import re
from typing import Any

from perfwatch.sampler.host.files import read_text
from perfwatch.sampler.host.paths import HostPaths

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
