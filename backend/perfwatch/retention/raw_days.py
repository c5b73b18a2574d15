"""Reading one (metric type, UTC day) of raw snapshots for the archive: which hosts have rows,
how many, and the rows themselves in bounded keyset pages, each document as the text the
database stores (PostgreSQL: ``metric_data::text``, jsonb's one spelling; SQLite: the stored
text). Queries only, in the caller's transaction; every one is a range of the
``(host, metric_type, captured_at)`` key."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Text, and_, cast, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.models import MetricSnapshot

# Rows per page: a busy processes document is ~2 KB of text, so a page stays a few MB.
PAGE_ROWS = 2_000

_DOCUMENT = cast(MetricSnapshot.metric_data, Text)


@dataclass(frozen=True, slots=True)
class HostDay:
    """``rows`` snapshots of ``host`` in the day, captured from ``first`` to ``last``."""

    host: str
    rows: int
    first: datetime
    last: datetime


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of the UTC ``day``."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _in_day(metric_type: str, day: date) -> ColumnElement[bool]:
    start, end = day_bounds(day)
    return and_(
        MetricSnapshot.metric_type == metric_type,
        MetricSnapshot.captured_at >= start,
        MetricSnapshot.captured_at < end,
    )


async def hosts_with_rows(session: AsyncSession, metric_type: str, day: date) -> list[str]:
    """The hosts with ``metric_type`` rows captured on ``day``, sorted: a loose scan of the key,
    one index seek per host rather than a read of the day's rows. On PostgreSQL the query is
    pruned to the day's type partition, where every entry matches, so the next host there is
    the next host with rows; SQLite's one table holds every day and type, so its next host
    overall is probed for rows of the day instead."""
    in_day = _in_day(metric_type, day)
    postgres = session.get_bind().dialect.name == "postgresql"
    hosts: list[str] = []
    after: str | None = None
    while True:
        query = select(MetricSnapshot.host).order_by(MetricSnapshot.host).limit(1)
        if after is not None:
            query = query.where(MetricSnapshot.host > after)
        if postgres:
            query = query.where(in_day)
        host = await session.scalar(query)
        if host is None:
            return hosts
        if postgres or await session.scalar(
            select(exists().where(MetricSnapshot.host == host, in_day))
        ):
            hosts.append(host)
        after = host


async def host_day(session: AsyncSession, host: str, metric_type: str, day: date) -> HostDay | None:
    """How many rows ``host`` has of ``metric_type`` on ``day`` and their time span; None when
    it has none."""
    result = await session.execute(
        select(
            func.count(), func.min(MetricSnapshot.captured_at), func.max(MetricSnapshot.captured_at)
        ).where(MetricSnapshot.host == host, _in_day(metric_type, day))
    )
    rows, first, last = result.one()
    if not rows:
        return None
    return HostDay(host, rows, first, last)


async def day_pages(
    session: AsyncSession, host: str, metric_type: str, day: date, page_rows: int = PAGE_ROWS
) -> AsyncGenerator[list[EncodedSnapshot], None]:
    """``host``'s ``metric_type`` rows of ``day`` in captured_at order, ``page_rows`` at a time,
    each page a keyset query after the last row of the one before (never the day in memory)."""
    start, end = day_bounds(day)
    after: datetime | None = None
    while True:
        lower = (
            MetricSnapshot.captured_at >= start
            if after is None
            else MetricSnapshot.captured_at > after
        )
        result = await session.execute(
            select(MetricSnapshot.captured_at, _DOCUMENT)
            .where(
                MetricSnapshot.host == host,
                MetricSnapshot.metric_type == metric_type,
                lower,
                MetricSnapshot.captured_at < end,
            )
            .order_by(MetricSnapshot.captured_at)
            .limit(page_rows)
        )
        page = [EncodedSnapshot(host, at, metric_type, document) for at, document in result]
        if page:
            yield page
        if len(page) < page_rows:
            return
        after = page[-1].captured_at
