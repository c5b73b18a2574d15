"""Where the archive of one host, type and UTC day lives:
``<archive_dir>/<host>/<type>/<YYYY-MM-DD>.jsonl.zst`` and its ``<YYYY-MM-DD>.manifest.json``.

Host and type become one safe path component each: letters, digits, ``-``, ``_`` and ``.`` stay,
every other byte of their UTF-8 (``/``, ``%``, NUL, spaces, non-ASCII) is written ``%XX``, and a
leading ``.`` is ``%2E`` (so no component is ``.``, ``..`` or hidden: hidden names are the
writer's temporary files). Names longer than :data:`MAX_COMPONENT` keep a prefix and the SHA-256
of the real name. The mapping is deterministic; the manifest holds the real names. Two names that
differ only in case share a directory on a case-insensitive file system: the writer refuses to
merge rows of another host into a file (its lines name their host).
"""

from __future__ import annotations

import hashlib
import string
from datetime import date
from pathlib import Path

DATA_SUFFIX = ".jsonl.zst"
MANIFEST_SUFFIX = ".manifest.json"
TEMP_SUFFIX = ".tmp"
# File systems allow 255 bytes per name; the hashed form below stays well inside.
MAX_COMPONENT = 200

_KEPT = frozenset(string.ascii_letters + string.digits + "-_.")


def path_component(name: str) -> str:
    """``name`` (a host or metric type) as one directory name, as described above."""
    if not name:
        raise ValueError("an empty name has no archive directory")
    escaped = "".join(
        char if char in _KEPT else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in name
    )
    if escaped.startswith("."):
        escaped = "%2E" + escaped[1:]
    if len(escaped) > MAX_COMPONENT:
        # "~" is never kept by the escaping, so a hashed name cannot equal an escaped one.
        digest = hashlib.sha256(name.encode()).hexdigest()
        escaped = f"{escaped[: MAX_COMPONENT - len(digest) - 1]}~{digest}"
    return escaped


def archive_path(archive_dir: Path, host: str, metric_type: str, day: date) -> Path:
    """The data file of ``host``'s ``metric_type`` snapshots captured on ``day`` (UTC)."""
    return (
        archive_dir
        / path_component(host)
        / path_component(metric_type)
        / f"{day.isoformat()}{DATA_SUFFIX}"
    )


def manifest_path(data_path: Path) -> Path:
    """The sidecar manifest of the data file ``data_path``."""
    return data_path.with_name(data_path.name.removesuffix(DATA_SUFFIX) + MANIFEST_SUFFIX)


def data_path(sidecar: Path) -> Path:
    """The data file a manifest ``sidecar`` describes (the inverse of :func:`manifest_path`)."""
    return sidecar.with_name(sidecar.name.removesuffix(MANIFEST_SUFFIX) + DATA_SUFFIX)


def day_of(data_path: Path) -> date:
    """The day in the name of ``data_path``; ``ValueError`` unless it is YYYY-MM-DD.jsonl.zst."""
    stem = data_path.name.removesuffix(DATA_SUFFIX)
    day = date.fromisoformat(stem)
    if stem == data_path.name or day.isoformat() != stem:
        raise ValueError(f"{data_path.name} is not named YYYY-MM-DD{DATA_SUFFIX}")
    return day
