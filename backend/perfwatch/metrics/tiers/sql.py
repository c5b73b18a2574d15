"""SQL text of the tier tables, per dialect. Table names come from ``TABLES``; field paths are
bound parameters, never SQL text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, TextClause, TextualSelect, bindparam, column, text

from perfwatch.db.types import UTCDateTime
from perfwatch.metrics.tiers.plan import Tier

TABLES: dict[Tier, str] = {"1m": "metric_tier_1m", "1h": "metric_tier_1h"}

# One host and type: a range of the primary key (host, metric_type, bucket) of a tier, of the
# unique index (host, metric_type, captured_at) of the raw table.
PAIR = "host = :host AND metric_type = :metric_type"


def times(statement: str, *names: str) -> TextClause:
    """``statement`` with the parameters ``names`` bound as aware UTC times."""
    return text(statement).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in names))


# The oldest row of each source and the tier job's watermark, in one round trip of index probes
# (ordered per partition on PostgreSQL: a merge of each partition's first entry).
COVERAGE = text(
    "SELECT (SELECT watermark FROM maintenance_state WHERE name = :job),"
    f" (SELECT captured_at FROM metric_snapshots WHERE {PAIR} ORDER BY captured_at LIMIT 1),"
    f" (SELECT bucket FROM metric_tier_1m WHERE {PAIR} ORDER BY bucket LIMIT 1),"
    f" (SELECT bucket FROM metric_tier_1h WHERE {PAIR} ORDER BY bucket LIMIT 1)"
).columns(
    column("watermark", UTCDateTime()),
    column("oldest_raw", UTCDateTime()),
    column("oldest_minute", UTCDateTime()),
    column("oldest_hour", UTCDateTime()),
)

OLDEST_SNAPSHOT = text(
    f"SELECT captured_at FROM metric_snapshots WHERE {PAIR} ORDER BY captured_at LIMIT 1"
).columns(column("captured_at", UTCDateTime()))

# Marks taken and deleted in one statement, so that a mark set again after this statement (by
# rows committed later) stays for the next run (metrics/tiers/job.py).
TAKE_PENDING = text(
    "DELETE FROM metric_tier_pending WHERE (host, metric_type, minute) IN ("
    " SELECT host, metric_type, minute FROM metric_tier_pending"
    " ORDER BY host, metric_type, minute LIMIT :limit)"
    " RETURNING host, metric_type, minute"
).columns(
    column("host", String()), column("metric_type", String()), column("minute", UTCDateTime())
)


def upsert(tier: Tier, postgres: bool) -> TextClause:
    """Store buckets, replacing those stored; an unchanged bucket (a recomputation finding what
    is stored) is not rewritten. PostgreSQL: the whole batch as arrays in one statement."""
    update = (
        "ON CONFLICT (host, metric_type, bucket) DO UPDATE "
        "SET snapshots = excluded.snapshots, stats = excluded.stats "
        "WHERE t.snapshots <> excluded.snapshots OR t.stats <> excluded.stats"
    )
    columns = f"INSERT INTO {TABLES[tier]} AS t (host, metric_type, bucket, snapshots, stats)"
    if postgres:
        return text(
            f"{columns} SELECT r.host, r.metric_type, r.bucket, r.snapshots, "
            "CAST(r.stats AS jsonb) FROM unnest(CAST(:hosts AS varchar[]), "
            "CAST(:types AS varchar[]), CAST(:buckets AS timestamptz[]), "
            "CAST(:snapshots AS integer[]), CAST(:stats AS text[])) "
            f"AS r(host, metric_type, bucket, snapshots, stats) {update}"
        )
    return times(
        f"{columns} VALUES (:host, :metric_type, :bucket, :snapshots, :stats) {update}", "bucket"
    )


def delete(tier: Tier) -> TextClause:
    return times(f"DELETE FROM {TABLES[tier]} WHERE {PAIR} AND bucket = :bucket", "bucket")


def stored(tier: Tier, postgres: bool) -> TextualSelect:
    stats = "CAST(stats AS text)" if postgres else "stats"
    return times(
        f"SELECT bucket, snapshots, {stats} FROM {TABLES[tier]} "
        f"WHERE {PAIR} AND bucket >= :start AND bucket < :end ORDER BY bucket",
        "start",
        "end",
    ).columns(column("bucket", UTCDateTime()), column("snapshots"), column("stats"))


def documents(postgres: bool) -> TextualSelect:
    # Text: neither the driver nor SQLAlchemy decodes it on the way (the job does, once).
    document = "CAST(metric_data AS text)" if postgres else "metric_data"
    return times(
        f"SELECT captured_at, {document} FROM metric_snapshots "
        f"WHERE {PAIR} AND captured_at >= :start AND captured_at < :end ORDER BY captured_at",
        "start",
        "end",
    ).columns(column("captured_at", UTCDateTime()), column("document"))


def bucket_totals(
    tier: Tier, postgres: bool, paths: Sequence[str]
) -> tuple[TextClause, dict[str, Any]]:
    """Per bucket of the step (``:width``/``:origin`` on PostgreSQL, ``:step`` on SQLite, as
    ``metrics/sql.py`` binds them): its start, snapshots, then per field the count, sum, min
    and max (``records.MinuteTotals.from_row``), merged in SQL from the tier's rows.

    Each field's ``[count, sum, min, max, last]`` is picked from ``stats`` once per row, and
    its elements from that small value: PostgreSQL keeps a ``stats`` of a kilobyte or two
    compressed, and every access to it decompresses it (a year of hours read as two fields:
    68 ms against 123 ms picking the entries to Python, 314 ms reading whole ``stats``). For
    the same reason ``stats`` is decompressed once per row before the picks, not once per
    field: ``'{}' || stats`` is ``stats`` itself, detoasted (a day of minutes of cpu, stored
    compressed, read as two fields: 6.1 ms against 8.2 ms of execution)."""
    params: dict[str, Any] = {}
    picks, aggregates = [], []
    for index, path in enumerate(paths):
        name = f"path_{index}"
        if postgres:
            params[name] = path
            picks.append(f"stats -> CAST(:{name} AS text) AS f{index}")
            element = f"CAST(v.f{index} ->> {{}} AS float8)"
            count = f"CAST(v.f{index} ->> 0 AS integer)"
            value, low, high = (element.format(k) for k in (1, 2, 3))
        else:
            # One key, dots and all (safe: a field path holds no quote).
            params[name] = f'$."{path}"'
            picks.append(f"json_extract(stats, :{name}) AS f{index}")
            count, value, low, high = (f"json_extract(v.f{index}, '$[{k}]')" for k in range(4))
        # SQLite's sum() of integers can overflow; total() is a float.
        total = "sum" if postgres else "total"
        aggregates.append(f"sum({count}), {total}({value}), min({low}), max({high})")
    rows = f"{TABLES[tier]} WHERE {PAIR} AND bucket >= :start AND bucket < :end"
    if postgres:
        bucket = "date_bin(CAST(:width AS interval), bucket, CAST(:origin AS timestamptz))"
        fence = " OFFSET 0"  # the picks once per row, not once per aggregate
        rows = (
            "(SELECT bucket, snapshots, CAST('{}' AS jsonb) || stats AS stats "
            f"FROM {rows}{fence}) AS t"
        )
    else:
        epoch = "CAST(strftime('%s', bucket) AS INTEGER)"
        bucket = f"({epoch} - {epoch} % :step)"  # tier buckets are never before 1970
        fence = ""
    statement = times(
        f"SELECT v.start, sum(v.snapshots), {', '.join(aggregates)} "
        f"FROM (SELECT {bucket} AS start, snapshots, {', '.join(picks)} "
        f"FROM {rows}{fence}) AS v GROUP BY v.start ORDER BY v.start",
        "start",
        "end",
    )
    return statement, params
