"""Expiring history by the archive policies: the plan (every (resolution, type, period) past
its policy's window) and its execution (archive first when the policy says so, then drop or
delete), on both dialects.

A period expires when the whole of it is older than ``now`` less the window: a raw day once its
end is ``raw_days`` old, a tier month once its end is ``minute_days`` (1-minute) or
``retention_days`` (1-hour) old. Raw days and 1-minute months also wait for the tier job: they
expire only once its watermark has passed their end (what it has not rolled up yet would be lost
from every coarser tier), and a raw day with minutes still pending a recompute waits too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from perfwatch.db.session import Database
from perfwatch.models import MetricTierPending
from perfwatch.retention import postgres_store, sqlite_store
from perfwatch.retention.archiving import Archiver, ArchiveResult
from perfwatch.retention.policies import EffectivePolicies
from perfwatch.retention.stored import RAW, RESOLUTIONS, Resolution, Store, Stored

logger = logging.getLogger("perfwatch.retention")

# Rows per DELETE transaction (SQLite, and PostgreSQL's rare rows outside a leaf of their own):
# a few milliseconds of write lock each, so the sampler's batches and the API go on in between.
BATCH_ROWS = 5_000
# How long a DROP TABLE waits for its lock (a query still reading the period) before it gives
# up until the next run; while it waits, newer queries on that period queue behind it.
LOCK_TIMEOUT_MS = 500


def store_for(engine: AsyncEngine) -> Store:
    if engine.dialect.name == "postgresql":
        return postgres_store
    return sqlite_store


def cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class Expiry:
    """A (resolution, type, period) to expire, and why."""

    stored: Stored
    archive: bool  # archive the raw snapshots before they go
    reason: str

    def describe(self) -> str:
        """One line for the CLI: what would go, how, how much."""
        own = any(part.own_table for part in self.stored.parts)
        shared = any(not part.own_table for part in self.stored.parts)
        how = "+".join(
            step
            for step, wanted in (("archive", self.archive), ("drop", own), ("delete", shared))
            if wanted
        )
        rows, size = self.stored.rows, self.stored.bytes
        amount = f"{rows:,} rows" if rows is not None else "rows not counted"
        if size is not None:
            amount += f", {size / 1e6:,.1f} MB"
        return f"{self.stored.label():<28} {how:<20} {amount}  ({self.reason})"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an :class:`Expiry`. ``kept`` says why (part of) it is still stored; the
    next run tries again."""

    expiry: Expiry
    tables_dropped: int = 0
    rows_deleted: int = 0
    archived: ArchiveResult | None = None
    kept: str | None = None

    def describe(self) -> str:
        return f"{self.expiry.stored.label():<28} {self.summary()}"

    def summary(self) -> str:
        done = []
        if self.archived is not None:
            done.append(f"archived {self.archived.rows:,} rows")
        if self.tables_dropped:
            rows = sum(p.rows or 0 for p in self.expiry.stored.parts if p.own_table)
            counted = all(p.rows is not None for p in self.expiry.stored.parts if p.own_table)
            tables = f"{self.tables_dropped} table{'s' if self.tables_dropped > 1 else ''}"
            done.append(f"dropped {tables}" + (f" ({rows:,} rows)" if counted else ""))
        if self.rows_deleted:
            done.append(f"deleted {self.rows_deleted:,} rows")
        status = "; ".join(done) or "nothing removed"
        return f"{status}; KEPT: {self.kept}" if self.kept else status


async def _pending_raw_days(session: AsyncSession, before: datetime) -> set[tuple[str, date]]:
    """(type, day) with minutes the tier job has still to recompute (late rows)."""
    query = select(MetricTierPending.metric_type, MetricTierPending.minute).where(
        MetricTierPending.minute < before
    )
    return {
        (metric_type, RAW.period_of(minute))
        for metric_type, minute in (await session.execute(query)).all()
    }


async def plan_expiry(
    database: Database,
    policies: EffectivePolicies,
    now: datetime,
    rolled_up_until: datetime | None,
    *,
    count_rows: bool = False,
) -> list[Expiry]:
    """Every (resolution, type, period) past its policy's window, raw first, oldest first.
    Types without a policy (none of their own, no ``*``) are kept. ``count_rows`` counts each
    one's rows exactly (one scan of what would go: for the CLI)."""
    windows = policies.all()
    if not windows:
        return []
    store = store_for(database.engine)
    planned: list[Expiry] = []
    async with database.sessionmaker() as session:
        connection = await session.connection()
        for resolution in RESOLUTIONS:
            before = max(cutoff(now, getattr(w, resolution.window)) for w in windows)
            pending: set[tuple[str, date]] = set()
            if resolution.rolled_up:
                if rolled_up_until is None:
                    continue  # the tier job has not rolled anything up yet
                before = min(before, rolled_up_until)
                if resolution is RAW:
                    pending = await _pending_raw_days(session, before)
            for stored in await store.list_stored(connection, resolution, before):
                expiry = _expiry(stored, resolution, policies, now, pending)
                if expiry is None:
                    continue
                if count_rows:
                    stored = await store.count_rows(connection, stored)
                    expiry = Expiry(stored, expiry.archive, expiry.reason)
                planned.append(expiry)
    return planned


def _expiry(
    stored: Stored,
    resolution: Resolution,
    policies: EffectivePolicies,
    now: datetime,
    pending: set[tuple[str, date]],
) -> Expiry | None:
    policy = policies.for_type(stored.metric_type)
    if policy is None:
        return None
    days: int = getattr(policy, resolution.window)
    if stored.end > cutoff(now, days) or (stored.metric_type, stored.period) in pending:
        return None
    reason = f"policy {policy.source!r}: {resolution.name} kept {days} d"
    return Expiry(stored, resolution is RAW and policy.archives, reason)


@dataclass
class Expirer:
    """Executes expiries: archive when asked (each (type, day) once per run), then each part
    in a short transaction of its own."""

    database: Database
    archiver: Archiver | None
    batch_rows: int = BATCH_ROWS
    lock_timeout_ms: int = LOCK_TIMEOUT_MS
    _archived: dict[tuple[str, date], ArchiveResult] = field(default_factory=dict)

    async def expire(self, expiry: Expiry) -> Outcome:
        stored = expiry.stored
        archived = None
        if expiry.archive:
            try:
                archived = await self._archive(stored)
            except Exception as exc:  # any failure keeps the data: the next run tries again
                logger.warning("kept %s: archiving failed: %s", stored.label(), exc, exc_info=True)
                return Outcome(expiry, kept=f"archiving failed: {exc}"[:300])
            if archived is None:
                reason = "its policy archives raw snapshots and no archive writer is configured"
                logger.warning("kept %s: %s", stored.label(), reason)
                return Outcome(expiry, kept=reason)
        engine = self.database.engine
        store = store_for(engine)
        dropped = deleted = 0
        for part in stored.parts:
            if part.own_table:
                try:
                    await postgres_store.drop_table(
                        engine,
                        part.table,
                        self.lock_timeout_ms,
                        None if archived is None else archived.rows,
                    )
                except postgres_store.ChangedSinceArchived as exc:
                    reason = f"rows arrived after it was archived ({exc}); archived again next run"
                    logger.warning("kept %s for the next run: %s", stored.label(), reason)
                    return Outcome(expiry, dropped, deleted, archived, kept=reason)
                except postgres_store.LockTimeout:
                    reason = (
                        f"{part.table} was not unlocked within {self.lock_timeout_ms} ms "
                        "(a query was reading it)"
                    )
                    logger.warning("kept %s for the next run: %s", stored.label(), reason)
                    return Outcome(expiry, dropped, deleted, archived, kept=reason)
                dropped += 1
            else:
                deleted += await store.delete_rows(engine, stored, part, self.batch_rows)
        outcome = Outcome(expiry, dropped, deleted, archived)
        logger.log(
            logging.DEBUG if stored.empty else logging.INFO,
            "expired %s (%s): %s",
            stored.label(),
            expiry.reason,
            outcome.summary(),
        )
        return outcome

    async def _archive(self, stored: Stored) -> ArchiveResult | None:
        if self.archiver is None:
            return None
        key = (stored.metric_type, stored.period)
        if key not in self._archived:
            self._archived[key] = await self.archiver.archive(
                self.database, stored.metric_type, stored.period
            )
        return self._archived[key]
