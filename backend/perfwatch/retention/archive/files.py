"""Crash-safe file writes for the archive tree: a temporary file beside the target, fsync,
rename, fsync of the directory. A reader sees the old file or the whole new one, never a part;
a crash leaves at most a hidden ``.<name>.<random>.tmp``, removed later by
:func:`remove_stale_temp_files`."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from perfwatch.retention.archive.paths import TEMP_SUFFIX

# Older than this, a temporary file belongs to a write that will never finish (a write of one
# host-day takes seconds; the maintenance runner allows one writer at a time).
STALE_AFTER = timedelta(minutes=15)


def write_atomically(path: Path, chunks: Iterable[bytes]) -> tuple[str, int]:
    """Replace ``path`` by the concatenated ``chunks``; their SHA-256 (hex) and size.

    The file gets mode 0600 (``mkstemp``): archives hold process names and command lines."""
    descriptor, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX
    )
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return digest.hexdigest(), size


def make_directories(directory: Path) -> None:
    """``mkdir -p`` whose new entries survive a crash (each new directory's parent is synced)."""
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        fsync_directory(new.parent)


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_stale_temp_files(
    archive_dir: Path, older_than: timedelta = STALE_AFTER, now: float | None = None
) -> list[Path]:
    """Delete the temporary files of interrupted writes under ``archive_dir`` last modified more
    than ``older_than`` before ``now`` (epoch seconds, default: the clock); the deleted paths."""
    limit = (time.time() if now is None else now) - older_than.total_seconds()
    removed = []
    for candidate in sorted(archive_dir.rglob(f".*{TEMP_SUFFIX}")):
        try:
            if candidate.is_file() and candidate.stat().st_mtime < limit:
                candidate.unlink()
                removed.append(candidate)
        except FileNotFoundError:  # finished or removed meanwhile
            continue
    return removed
