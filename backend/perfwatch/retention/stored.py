"""What is stored, per (resolution, metric type, period): the unit retention expires.

A raw period is a UTC day, a tier period a UTC month (the partitions of ``db/partitions.py``).
On PostgreSQL a (type, period) usually has a leaf table of its own, dropped whole; its rows may
also sit in the period's ``_other`` child (a type without a leaf of its own, or rows that came
after its leaf was dropped) and in the table's DEFAULT partition (a period without a table):
those are deleted in bounded batches. On SQLite every part is a bounded delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from perfwatch.db.partitions import SNAPSHOTS, TIER_HOUR, TIER_MINUTE, PartitionedTable


@dataclass(frozen=True, slots=True)
class Resolution:
    name: str  # as printed and counted: raw, 1m, 1h
    table: PartitionedTable
    window: str  # the PolicyWindows field saying how many days it is kept
    # Coarser tiers are built from it, so it may only expire once the tier job rolled it up.
    rolled_up: bool

    def period_of(self, moment: datetime) -> date:
        return self.table.period_start(moment.astimezone(UTC).date())

    def start(self, period: date) -> datetime:
        return midnight(period)

    def end(self, period: date) -> datetime:
        return midnight(self.table.period_end(period))

    def label(self, period: date) -> str:
        return f"{period:%Y-%m-%d}" if self.table.unit == "day" else f"{period:%Y-%m}"


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


RAW = Resolution("raw", SNAPSHOTS, "raw_days", rolled_up=True)
MINUTE = Resolution("1m", TIER_MINUTE, "minute_days", rolled_up=True)
HOUR = Resolution("1h", TIER_HOUR, "retention_days", rolled_up=False)
RESOLUTIONS = (RAW, MINUTE, HOUR)


@dataclass(frozen=True, slots=True)
class StoredPart:
    """Where some of a (resolution, type, period)'s rows are: a table of their own
    (``own_table``: expired with one ``DROP TABLE``), or rows among others in ``table``
    (expired with bounded deletes; on SQLite per host, through the (host, type, time) key)."""

    table: str
    own_table: bool
    rows: int | None = None
    bytes: int | None = None
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Stored:
    resolution: Resolution
    metric_type: str
    period: date
    parts: tuple[StoredPart, ...]

    @property
    def start(self) -> datetime:
        return self.resolution.start(self.period)

    @property
    def end(self) -> datetime:
        return self.resolution.end(self.period)

    @property
    def rows(self) -> int | None:
        """Rows of every part, when each part's count is known."""
        counts = [part.rows for part in self.parts]
        return None if None in counts else sum(count or 0 for count in counts)

    @property
    def empty(self) -> bool:
        """Known to hold no row (a PostgreSQL leaf never written to): still dropped, so no
        table outlives its period, but not worth a line or a count."""
        return self.rows == 0

    @property
    def bytes(self) -> int | None:
        """Bytes of the parts whose size is cheap to know (PostgreSQL leaf tables)."""
        sizes = [part.bytes for part in self.parts if part.bytes is not None]
        return sum(sizes) if sizes else None

    def label(self) -> str:
        return f"{self.resolution.name} {self.metric_type} {self.resolution.label(self.period)}"


class Store(Protocol):
    """What retention needs of a dialect (``postgres_store``, ``sqlite_store``: modules)."""

    async def list_stored(
        self, connection: AsyncConnection, resolution: Resolution, before: datetime
    ) -> list[Stored]: ...

    async def count_rows(self, connection: AsyncConnection, stored: Stored) -> Stored: ...

    async def delete_rows(
        self, engine: AsyncEngine, stored: Stored, part: StoredPart, batch_rows: int
    ) -> int: ...

    async def database_size(self, engine: AsyncEngine) -> int: ...
