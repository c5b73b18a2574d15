"""The name of the host this process observes: what the sampler writes its snapshots under and
what hostless metric queries default to. Here, below every domain, so that both can ask."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def resolve_host_name() -> str:
    """The observed host's name: $PERFWATCH_HOSTNAME, else the host's /etc/hostname when the
    host's root is mounted (compose), else this machine's name."""
    explicit = os.environ.get("PERFWATCH_HOSTNAME", "").strip()
    if explicit:
        return explicit
    host_root = os.environ.get("PERFWATCH_HOST_ROOT", "").strip()
    if host_root:
        try:
            name = (Path(host_root) / "etc" / "hostname").read_text(encoding="utf-8").strip()
        except OSError:
            name = ""
        if name:
            return name
    return socket.gethostname()
