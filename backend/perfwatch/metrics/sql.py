"""SQL text of the snapshot read queries, per dialect. A field path becomes a bound parameter
(a text[] for PostgreSQL's ``#>``, a JSON path for SQLite's ``json_extract``), never SQL text;
paths reaching here have been checked by ``metrics/fields.py``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import String, TextClause, bindparam, column, text

from perfwatch.db.types import UTCDateTime
from perfwatch.metrics.buckets import EPOCH

# The rows of one host and type in [start, end): served by the unique index
# (host, metric_type, captured_at) and, on PostgreSQL, pruned to the day partitions.
RANGE_WHERE = (
    "s.host = :host AND s.metric_type = :metric_type "
    "AND s.captured_at >= :start AND s.captured_at < :end"
)


def sqlite_json_path(path: str) -> str:
    """``a.b.0`` → ``$."a"."b"[0]``: keys quoted (safe: the pattern allows no quote), a segment
    of digits only is an array index (``per_core.0``). PostgreSQL's ``#>`` resolves a digit
    segment as an array index or an object key, whichever the value is; SQLite treats it as an
    index only."""
    parts = ["$"]
    for segment in path.split("."):
        parts.append(f"[{segment}]" if segment.isdigit() else f'."{segment}"')
    return "".join(parts)


def typed(statement: str) -> TextClause:
    return text(statement).bindparams(
        bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    )


def bucket_params(postgres: bool, step_seconds: int) -> dict[str, Any]:
    """The bucket width's parameters: ``date_bin``'s on PostgreSQL, seconds on SQLite."""
    if postgres:
        return {"width": timedelta(seconds=step_seconds), "origin": EPOCH}
    return {"step": step_seconds}


class SnapshotQueries:
    """The read-side statements for one dialect and list of fields; ``params`` binds the
    field paths."""

    def __init__(self, dialect: str, fields: Sequence[str]) -> None:
        self.postgres = dialect == "postgresql"
        # PostgreSQL: OFFSET 0 stops the planner from merging the inner query into the outer.
        self.fence = " OFFSET 0" if self.postgres else ""
        self.fields = list(fields)
        self.params: dict[str, Any] = {}
        self.values: list[str] = []  # SQL expression of field i's number (NULL if not one)
        for index, path in enumerate(self.fields):
            name = f"path_{index}"
            if self.postgres:
                # jsonb_typeof guards the cast: strings, booleans, null and objects give NULL.
                # The text form (#>>) of a JSON number casts to double precision directly.
                self.params[name] = path.split(".")
                self.values.append(
                    f"CASE WHEN jsonb_typeof(s.metric_data #> CAST(:{name} AS text[])) = 'number' "
                    f"THEN CAST(s.metric_data #>> CAST(:{name} AS text[]) AS double precision) END"
                )
            else:
                self.params[name] = sqlite_json_path(path)
                self.values.append(
                    f"CASE WHEN json_type(s.metric_data, :{name}) IN ('integer', 'real') "
                    f"THEN json_extract(s.metric_data, :{name}) END"
                )

    def value_columns(self) -> str:
        return ", ".join(f"{value} AS v{index}" for index, value in enumerate(self.values))

    def downsample(self) -> str:
        """Per bucket: its start, snapshots, then per field avg, min and max."""
        return self._per_bucket(
            "".join(f", avg(v.v{i}), min(v.v{i}), max(v.v{i})" for i in range(len(self.fields)))
        )

    def totals(self) -> str:
        """Per bucket: its start, snapshots, then per field the count, sum, min and max of its
        numbers (the column order of ``records.MinuteTotals.from_row``)."""
        # SQLite's sum() of integers is an integer that can overflow; total() is a float.
        total = "sum" if self.postgres else "total"
        return self._per_bucket(
            "".join(
                f", count(v.v{i}), {total}(v.v{i}), min(v.v{i}), max(v.v{i})"
                for i in range(len(self.fields))
            )
        )

    def bucket_params(self, step_seconds: int) -> dict[str, Any]:
        return bucket_params(self.postgres, step_seconds)

    def _per_bucket(self, aggregates: str) -> str:
        if self.postgres:
            bucket = (
                "date_bin(CAST(:width AS interval), s.captured_at, CAST(:origin AS timestamptz))"
            )
        else:
            # Whole seconds since the epoch, floored to a multiple of the step (also below 0).
            epoch = "CAST(strftime('%s', s.captured_at) AS INTEGER)"
            bucket = f"({epoch} - ((({epoch} % :step) + :step) % :step))"
        # OFFSET 0 keeps the inner query a separate step: each value is extracted once per row
        # (not once per aggregate), and the planner, blind to the bucket's statistics, groups
        # the few buckets in a hash table instead of sorting every row.
        return (
            f"SELECT v.bucket, count(*){aggregates} "
            f"FROM (SELECT {bucket} AS bucket, {self.value_columns()} "
            f"FROM metric_snapshots s WHERE {RANGE_WHERE}{self.fence}) AS v "
            "GROUP BY v.bucket ORDER BY v.bucket"
        )

    def summary(self) -> str:
        """Snapshots, then per field count, min, avg, max (and p95 on PostgreSQL)."""
        parts = []
        for i in range(len(self.fields)):
            parts.append(f"count(v.v{i}), min(v.v{i}), avg(v.v{i}), max(v.v{i})")
            if self.postgres:
                parts.append(f"percentile_cont(0.95) WITHIN GROUP (ORDER BY v.v{i})")
        return (
            f"SELECT count(*), {', '.join(parts)} "
            f"FROM (SELECT {self.value_columns()} "
            f"FROM metric_snapshots s WHERE {RANGE_WHERE}{self.fence}) AS v"
        )

    def nth_values(self, index: int) -> str:
        """SQLite's percentile: the sorted numbers of field ``index`` from an offset."""
        return (
            f"SELECT v.v{index} FROM (SELECT {self.values[index]} AS v{index} "
            f"FROM metric_snapshots s WHERE {RANGE_WHERE}) AS v "
            f"WHERE v.v{index} IS NOT NULL ORDER BY v.v{index} LIMIT 2 OFFSET :offset"
        )


# Index skip-scans: "which hosts/types exist" must not read months of rows.
HOSTS_LAST_SEEN = text(
    "WITH RECURSIVE hosts(host) AS ("
    " SELECT (SELECT host FROM metric_snapshots ORDER BY host LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT m.host FROM metric_snapshots m WHERE m.host > hosts.host"
    "  ORDER BY m.host LIMIT 1) FROM hosts WHERE hosts.host IS NOT NULL"
    "), pairs(host, metric_type) AS ("
    " SELECT h.host, (SELECT m.metric_type FROM metric_snapshots m WHERE m.host = h.host"
    "  ORDER BY m.metric_type LIMIT 1) FROM hosts h WHERE h.host IS NOT NULL"
    " UNION ALL"
    " SELECT p.host, (SELECT m.metric_type FROM metric_snapshots m WHERE m.host = p.host"
    "  AND m.metric_type > p.metric_type ORDER BY m.metric_type LIMIT 1)"
    " FROM pairs p WHERE p.metric_type IS NOT NULL"
    ") SELECT p.host, p.metric_type, (SELECT m.captured_at FROM metric_snapshots m"
    " WHERE m.host = p.host AND m.metric_type = p.metric_type"
    " ORDER BY m.captured_at DESC LIMIT 1) AS last_seen"
    " FROM pairs p WHERE p.metric_type IS NOT NULL ORDER BY p.host, p.metric_type"
).columns(
    column("host", String()), column("metric_type", String()), column("last_seen", UTCDateTime())
)


def distinct_metric_types(for_host: bool, excluding: bool = False) -> TextClause:
    """The types stored, by an index skip-scan; ``excluding``: other than the ``:excluding``
    list. On PostgreSQL that excludes the list's (day, type) leaves at plan time, so looking
    for types beyond the sampler's reads only the ``_other`` leaves (normally empty) instead of
    probing every partition once per type."""
    host_filter = "m.host = :host AND " if for_host else ""
    if excluding:
        host_filter += "m.metric_type NOT IN :excluding AND "
    statement = text(
        "WITH RECURSIVE types(metric_type) AS ("
        f" SELECT (SELECT m.metric_type FROM metric_snapshots m WHERE {host_filter}true"
        "  ORDER BY m.metric_type LIMIT 1)"
        " UNION ALL"
        f" SELECT (SELECT m.metric_type FROM metric_snapshots m WHERE {host_filter}"
        "  m.metric_type > types.metric_type ORDER BY m.metric_type LIMIT 1)"
        " FROM types WHERE types.metric_type IS NOT NULL"
        ") SELECT metric_type FROM types WHERE metric_type IS NOT NULL"
    )
    if excluding:
        statement = statement.bindparams(bindparam("excluding", expanding=True))
    return statement
