"""The host's own /etc (under the host root): its distribution and its users."""

from __future__ import annotations

from perfwatch.sampler.host.files import read_text
from perfwatch.sampler.host.paths import HostPaths


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
