"""The queries behind the storage status (``retention/status.py``): how much each history table
holds per metric type, its time span, the database size, the maintenance jobs' rows.

Cheap on a big database, by design:

* **PostgreSQL** — rows and bytes come from the catalogue, never from ``count(*)``: per (period,
  type) leaf of ``db/partitions.list_partitions``, ``pg_total_relation_size`` (heap, TOAST,
  indexes) and ``pg_class.reltuples`` scaled to the leaf's current size, as the planner does.
  Leaves never analysed that hold data are counted exactly: autovacuum analyses a leaf once 50
  rows changed (within ``autovacuum_naptime``), so they hold about a minute of rows. The
  oldest/newest times read only the oldest and newest non-empty leaf of each type (and the
  DEFAULT partition): an index skip-scan over (host, type), then one probe of the unique index
  (host, metric_type, time) per pair.
* **SQLite** — one plain table per tier: exact ``count(*)`` per (host, type) through the same
  index (no table row is read; ~95 ms for 1.8 M rows, three days of one host at 1 s, which is
  what retention keeps). SQLite keeps no size per table (``dbstat`` walks every page: 0.6 s on
  2 GB), so bytes are estimates: the database's used pages shared out by rows times (the
  newest documents' average size + the table's per-row overhead).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Float, Integer, String, column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.contract.metrics import METRIC_TYPES
from perfwatch.db.partitions import Partition, PartitionedTable, list_partitions
from perfwatch.db.types import UTCDateTime
from perfwatch.models import ArchivePolicy, MaintenanceState

# Types without a partition (PostgreSQL) or a policy of their own are shown together.
OTHER_TYPES = "other"
# SQLite: each history table's JSON column, and its bytes per row beside the document (key,
# unique index entry, page slack), measured on 1.8 M seeded rows: raw 1,105 B a row for 854 B
# of document; the WITHOUT ROWID tiers 75 B for 26 B of statistics.
SQLITE_ROW_LAYOUT = {
    "metric_snapshots": ("metric_data", 250),
    "metric_tier_1m": ("stats", 50),
    "metric_tier_1h": ("stats", 50),
}
# The newest documents of a (host, type) whose average size shares SQLite's table bytes out.
SIZE_SAMPLE_ROWS = 64


@dataclass(slots=True)
class TypeUsage:
    """One metric type's share of one history table."""

    metric_type: str
    rows: int = 0
    bytes: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    rows_estimated: bool = False
    bytes_estimated: bool = False

    def widen(self, oldest: datetime | None, newest: datetime | None) -> None:
        if oldest is not None and (self.oldest is None or oldest < self.oldest):
            self.oldest = oldest
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest


@dataclass(slots=True)
class TableUsage:
    """A history table: per type, and its totals (on PostgreSQL the totals also hold the rows
    waiting in the DEFAULT partition for their period's partition, and empty leaves' pages)."""

    table: str
    types: dict[str, TypeUsage] = field(default_factory=dict)
    rows: int = 0
    bytes: int = 0
    rows_estimated: bool = False
    bytes_estimated: bool = False

    def of(self, metric_type: str) -> TypeUsage:
        kind = metric_type if metric_type in METRIC_TYPES else OTHER_TYPES
        if kind not in self.types:
            self.types[kind] = TypeUsage(
                kind, rows_estimated=self.rows_estimated, bytes_estimated=self.bytes_estimated
            )
        return self.types[kind]


@dataclass(frozen=True, slots=True)
class _LeafSize:
    name: str
    rows: int | None  # None: never analysed with data, to be counted
    bytes: int
    has_pages: bool


def _bounds_sql(relation: str, time_column: str, document: str | None = None) -> str:
    """Per (host, type) of ``relation``: oldest and newest time, by an index skip-scan that
    reads O(pairs) index entries, never the rows; with ``document``, also the exact row count
    (an index range count) and the average size of the newest documents."""
    counted = (
        f", (SELECT count(*) FROM {relation} m WHERE m.host = p.host"
        " AND m.metric_type = p.metric_type) AS row_count"
        f", (SELECT avg(length(d.v)) FROM (SELECT CAST(m.{document} AS TEXT) AS v"
        f" FROM {relation} m WHERE m.host = p.host AND m.metric_type = p.metric_type"
        f" ORDER BY m.{time_column} DESC LIMIT {SIZE_SAMPLE_ROWS}) AS d) AS row_size"
        if document
        else ""
    )
    return (
        "WITH RECURSIVE hosts(host) AS ("
        f" SELECT (SELECT host FROM {relation} ORDER BY host LIMIT 1)"
        " UNION ALL"
        f" SELECT (SELECT m.host FROM {relation} m WHERE m.host > hosts.host"
        "  ORDER BY m.host LIMIT 1) FROM hosts WHERE hosts.host IS NOT NULL"
        "), pairs(host, metric_type) AS ("
        f" SELECT h.host, (SELECT m.metric_type FROM {relation} m WHERE m.host = h.host"
        "  ORDER BY m.metric_type LIMIT 1) FROM hosts h WHERE h.host IS NOT NULL"
        " UNION ALL"
        f" SELECT p.host, (SELECT m.metric_type FROM {relation} m WHERE m.host = p.host"
        "  AND m.metric_type > p.metric_type ORDER BY m.metric_type LIMIT 1)"
        " FROM pairs p WHERE p.metric_type IS NOT NULL"
        ") SELECT p.metric_type,"
        f" (SELECT m.{time_column} FROM {relation} m WHERE m.host = p.host"
        f"  AND m.metric_type = p.metric_type ORDER BY m.{time_column} LIMIT 1) AS oldest,"
        f" (SELECT m.{time_column} FROM {relation} m WHERE m.host = p.host"
        f"  AND m.metric_type = p.metric_type ORDER BY m.{time_column} DESC LIMIT 1) AS newest"
        f"{counted} FROM pairs p WHERE p.metric_type IS NOT NULL"
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class StorageRepository:
    """Read-only; never flushes or commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def database_bytes(self) -> int:
        """The whole database: ``pg_database_size`` (every relation, the catalogue too), or the
        SQLite file's pages (the WAL, checkpointed every few MB, not included)."""
        if self.dialect == "postgresql":
            query = "SELECT pg_database_size(current_database())"
        else:
            query = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        return int((await self.session.execute(text(query))).scalar_one())

    async def policies(self) -> list[ArchivePolicy]:
        """Every archive policy (one per type: a handful), without a page's count."""
        return list((await self.session.execute(select(ArchivePolicy))).scalars())

    async def jobs(self) -> list[MaintenanceState]:
        result = await self.session.execute(
            select(MaintenanceState).order_by(MaintenanceState.name)
        )
        return list(result.scalars())

    async def history_usage(self, tables: Sequence[PartitionedTable]) -> list[TableUsage]:
        """What each of ``tables`` holds, per metric type, in the order given."""
        if self.dialect == "postgresql":
            return [await self._postgres_usage(table) for table in tables]
        return await self._sqlite_usage(tables)

    # ----- PostgreSQL ------------------------------------------------------------------------

    async def _postgres_usage(self, table: PartitionedTable) -> TableUsage:
        usage = TableUsage(table.name, rows_estimated=True)
        leaves = await list_partitions(self.session, table)
        sizes = await self._leaf_sizes([leaf.name for leaf in leaves] + [table.default_partition])
        counted = await self._exact_counts(
            [name for name, size in sizes.items() if size.rows is None]
        )
        rows = {
            name: counted.get(name, 0) if size.rows is None else size.rows
            for name, size in sizes.items()
        }
        usage.rows = sum(rows.values())
        usage.bytes = sum(size.bytes for size in sizes.values())
        for leaf in leaves:
            if leaf.name not in sizes:  # dropped since it was listed
                continue
            entry = usage.of(leaf.metric_type or OTHER_TYPES)
            entry.rows += rows[leaf.name]
            entry.bytes += sizes[leaf.name].bytes
        await self._postgres_bounds(usage, table, leaves, sizes)
        return usage

    async def _leaf_sizes(self, names: Sequence[str]) -> dict[str, _LeafSize]:
        result = await self.session.execute(
            text(
                "SELECT n.name, c.reltuples, c.relpages, pg_relation_size(c.oid) AS heap,"
                " pg_total_relation_size(c.oid) AS total,"
                " current_setting('block_size')::int AS block"
                " FROM unnest(CAST(:names AS text[])) AS n(name)"
                " JOIN pg_class c ON c.oid = to_regclass(quote_ident(n.name))"
            ),
            {"names": list(names)},
        )
        sizes: dict[str, _LeafSize] = {}
        for name, reltuples, relpages, heap, total, block in result:
            if heap is None or total is None:  # dropped between the listing and now
                continue
            rows: int | None
            if relpages > 0 and reltuples >= 0:
                # The planner's estimate: tuples per page at the last ANALYZE, times pages now.
                rows = round(reltuples / relpages * (heap / block))
            elif heap == 0:
                rows = 0
            else:
                rows = None
            sizes[name] = _LeafSize(name, rows, int(total), heap > 0)
        return sizes

    async def _exact_counts(self, names: Sequence[str]) -> dict[str, int]:
        if not names:
            return {}
        statement = " UNION ALL ".join(
            f"SELECT CAST(:n{index} AS text), count(*) FROM {_quoted(name)}"
            for index, name in enumerate(names)
        )
        parameters = {f"n{index}": name for index, name in enumerate(names)}
        result = await self.session.execute(text(statement), parameters)
        return {name: int(rows) for name, rows in result}

    async def _postgres_bounds(
        self,
        usage: TableUsage,
        table: PartitionedTable,
        leaves: Sequence[Partition],
        sizes: dict[str, _LeafSize],
    ) -> None:
        """Oldest and newest time per type from the oldest and newest leaf holding pages (a
        leaf with pages may still be empty: then the next one is tried), plus the DEFAULT
        partition, whose rows may be of any type and time."""
        by_type: dict[str, list[str]] = defaultdict(list)
        for leaf in leaves:  # oldest period first
            size = sizes.get(leaf.name)
            if size is not None and size.has_pages:
                by_type[leaf.metric_type or OTHER_TYPES].append(leaf.name)
        default = sizes.get(table.default_partition)
        pending: set[str] = {table.default_partition} if default and default.has_pages else set()
        searching = {kind: [list(names), list(reversed(names))] for kind, names in by_type.items()}
        while True:
            for ends in searching.values():
                pending.update(candidates[0] for candidates in ends if candidates)
            if not pending:
                return
            found = await self._leaf_bounds(sorted(pending), table.time_column)
            pending = set()
            for kind, ends in searching.items():
                for end, candidates in enumerate(ends):
                    if not candidates:
                        continue
                    bounds = found.get(candidates[0])
                    if bounds:
                        # The type's first (or last) non-empty leaf: nothing older (newer)
                        # outside it but the DEFAULT partition, merged below.
                        if end == 0:
                            usage.of(kind).widen(min(b[1] for b in bounds), None)
                        else:
                            usage.of(kind).widen(None, max(b[2] for b in bounds))
                        candidates.clear()
                    else:
                        candidates.pop(0)
            for metric_type, oldest, newest in found.get(table.default_partition, []):
                usage.of(metric_type).widen(oldest, newest)

    async def _leaf_bounds(
        self, names: Sequence[str], time_column: str
    ) -> dict[str, list[tuple[str, datetime, datetime]]]:
        """(type, oldest, newest) per (host, type) of each relation, in one statement."""
        statement = " UNION ALL ".join(
            f"SELECT CAST(:n{index} AS text) AS relation, b.* FROM "
            f"({_bounds_sql(_quoted(name), time_column)}) AS b"
            for index, name in enumerate(names)
        )
        query = text(statement).columns(
            column("relation", String()),
            column("metric_type", String()),
            column("oldest", UTCDateTime()),
            column("newest", UTCDateTime()),
        )
        result = await self.session.execute(
            query, {f"n{index}": name for index, name in enumerate(names)}
        )
        found: dict[str, list[tuple[str, datetime, datetime]]] = defaultdict(list)
        for relation, metric_type, oldest, newest in result:
            found[relation].append((metric_type, oldest, newest))
        return found

    # ----- SQLite ----------------------------------------------------------------------------

    async def _sqlite_usage(self, tables: Sequence[PartitionedTable]) -> list[TableUsage]:
        """Exact rows per type; bytes are the database's used pages shared out by rows times
        (the newest documents' average size + the table's per-row overhead)."""
        usages: list[TableUsage] = []
        weights: dict[tuple[str, str], float] = defaultdict(float)
        for table in tables:
            usage = TableUsage(table.name, bytes_estimated=True)
            document, overhead = SQLITE_ROW_LAYOUT[table.name]
            query = text(_bounds_sql(table.name, table.time_column, document)).columns(
                column("metric_type", String()),
                column("oldest", UTCDateTime()),
                column("newest", UTCDateTime()),
                column("row_count", Integer()),
                column("row_size", Float()),
            )
            for metric_type, oldest, newest, rows, row_size in await self.session.execute(query):
                entry = usage.of(metric_type)
                entry.widen(oldest, newest)
                entry.rows += int(rows)
                usage.rows += int(rows)
                weights[table.name, entry.metric_type] += int(rows) * ((row_size or 0) + overhead)
            usages.append(usage)
        used = await self._sqlite_used_bytes()
        total_weight = sum(weights.values())
        for usage in usages:
            for kind, entry in usage.types.items():
                share = weights[usage.table, kind] / total_weight if total_weight else 0.0
                entry.bytes = round(used * share)
            usage.bytes = sum(entry.bytes for entry in usage.types.values())
        return usages

    async def _sqlite_used_bytes(self) -> int:
        result = await self.session.execute(
            text(
                "SELECT (p.page_count - f.freelist_count) * s.page_size"
                " FROM pragma_page_count() AS p, pragma_freelist_count() AS f,"
                " pragma_page_size() AS s"
            )
        )
        return int(result.scalar_one())
