"""The name of the host this process observes: what the sampler writes its snapshots under and
what hostless metric queries default to. Here, below every domain, so that both can ask."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path


def resolve_host_name() -> str:
    """The observed host's name: $PERFWATCH_HOSTNAME, else the host's /etc/hostname when the
    host's root is mounted (compose), else this machine's name."""
    return _resolve(
        os.environ.get("PERFWATCH_HOSTNAME", "").strip(),
        os.environ.get("PERFWATCH_HOST_ROOT", "").strip(),
    )


# Read once per setting: every hostless query asks, and a file read there would be blocking
# I/O on the event loop. Like the sampler, which names its host once, a renamed host is seen
# after a restart.
@functools.lru_cache(maxsize=8)
def _resolve(explicit: str, host_root: str) -> str:
    if explicit:
        return explicit
    if host_root:
        try:
            name = (Path(host_root) / "etc" / "hostname").read_text(encoding="utf-8").strip()
        except OSError:
            name = ""
        if name:
            return name
    return socket.gethostname()
