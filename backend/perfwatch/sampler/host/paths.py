"""Where the host's /proc, /sys and / are visible (``PERFWATCH_HOST_*``); psutil pointed there."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_PROC = "PERFWATCH_HOST_PROC"
ENV_SYS = "PERFWATCH_HOST_SYS"
ENV_ROOT = "PERFWATCH_HOST_ROOT"


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
