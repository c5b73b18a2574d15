"""Minutes that late rows touched, for the tier job to recompute (``metric_tier_pending``).

The tier job rolls up a minute once it has settled (``SETTLE_SECONDS`` after it ends). A row
stored later than that for an older minute (a spool replay, the seed, an archive restore, an
agent's back-fill) would be missing from the minute's tier row, so whoever stores it marks its
minute here in the same transaction (``SnapshotIngest`` does, for every path), and the job
recomputes exactly those minutes, idempotently. ``LATE_ROW_SECONDS`` is below ``SETTLE_SECONDS``
so that a live batch delivered a little late is still marked, with 30 s to spare for a slow
transaction or clock skew.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.db.types import utcnow
from perfwatch.metrics.buckets import floor_minute, from_epoch
from perfwatch.models import MetricTierPending

SETTLE_SECONDS = 120
LATE_ROW_SECONDS = 90

# DO UPDATE, not DO NOTHING: it locks a mark that exists until this transaction commits, so
# the tier job cannot take (delete) that mark and read the minute before these rows are
# visible, which would lose them (metrics/tiers/job.py). The minutes are distinct.
_POSTGRES_MARK = text(
    "INSERT INTO metric_tier_pending (host, metric_type, minute) "
    "SELECT * FROM unnest(CAST(:hosts AS varchar[]), CAST(:types AS varchar[]), "
    "CAST(:minutes AS timestamptz[])) "
    "ON CONFLICT (host, metric_type, minute) DO UPDATE SET minute = EXCLUDED.minute"
)


def late_minutes(
    rows: Iterable[tuple[str, datetime, str]], now: datetime
) -> set[tuple[str, str, datetime]]:
    """(host, type, minute) of the ``rows`` (host, captured_at, type) older than
    ``LATE_ROW_SECONDS``; a live batch costs one pass and yields nothing."""
    threshold = now - timedelta(seconds=LATE_ROW_SECONDS)
    return {
        (host, metric_type, from_epoch(floor_minute(captured_at)))
        for host, captured_at, metric_type in rows
        if captured_at < threshold
    }


async def mark_late_rows(
    session: AsyncSession, rows: Iterable[tuple[str, datetime, str]], now: datetime | None = None
) -> int:
    """Mark the minutes of the late ``rows`` just stored in this transaction; returns how many
    distinct minutes were late (some may have been marked already)."""
    minutes = sorted(late_minutes(rows, now or utcnow()))
    if not minutes:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            _POSTGRES_MARK,
            {
                "hosts": [host for host, _, _ in minutes],
                "types": [metric_type for _, metric_type, _ in minutes],
                "minutes": [minute for _, _, minute in minutes],
            },
        )
    else:
        await session.execute(
            sqlite_insert(MetricTierPending).on_conflict_do_nothing(),
            [{"host": h, "metric_type": t, "minute": m} for h, t, m in minutes],
        )
    return len(minutes)
