"""What retention asks of an archive writer before it expires raw snapshots of a policy with
``action=archive``. The writer itself lives elsewhere (issue 11, "Archives"); retention only
calls it and drops the (type, day) when, and only when, it returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from perfwatch.db.session import Database


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    """What was written for one (type, day): every host's file, re-read and verified."""

    rows: int
    files: int
    bytes: int


class Archiver(Protocol):
    async def archive(self, database: Database, metric_type: str, day: date) -> ArchiveResult:
        """Write and verify the raw snapshots of ``metric_type`` on UTC ``day`` (every host);
        raise when that cannot be done, and the day is then kept for the next run."""
        ...
