"""The disk cap (``storage.max_bytes``, 0: off), like Prometheus' ``retention.size``: while the
database is larger, expire the oldest data first — raw days (every type of the day at once),
then 1-minute months, then 1-hour months — measuring again after each, so no more goes than
needed. Today's raw day and each tier's current month are never expired.

The 1-minute tier goes before the 1-hour tier, whatever their age: it is about 60 times larger
and the 1-hour tier still answers for the months it loses. The cap overrides the policies and
the tier job's watermark (a full disk stops everything); a policy's ``archive`` action is still
honoured, and a day that cannot be archived is kept and the next candidate taken."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from perfwatch.db.session import Database
from perfwatch.retention.expiry import Expirer, Expiry, Outcome, store_for
from perfwatch.retention.policies import EffectivePolicies
from perfwatch.retention.stored import RAW, RESOLUTIONS

logger = logging.getLogger("perfwatch.retention")

REASON = "disk cap"


@dataclass
class CapReport:
    max_bytes: int
    bytes_before: int
    bytes_after: int
    expired: list[Outcome] = field(default_factory=list)

    @property
    def over(self) -> bool:
        return self.bytes_after > self.max_bytes


async def _candidates(
    database: Database, policies: EffectivePolicies, now: datetime
) -> list[list[Expiry]]:
    """Oldest first, one period (every type) per group."""
    store = store_for(database.engine)
    groups: list[list[Expiry]] = []
    async with database.engine.connect() as connection:
        for resolution in RESOLUTIONS:
            current = resolution.start(resolution.period_of(now))
            by_period: dict[date, list[Expiry]] = defaultdict(list)
            for stored in await store.list_stored(connection, resolution, current):
                policy = policies.for_type(stored.metric_type)
                archive = resolution is RAW and policy is not None and policy.archives
                by_period[stored.period].append(Expiry(stored, archive, REASON))
            groups.extend(group for _, group in sorted(by_period.items()))
    return groups


async def enforce_disk_cap(
    database: Database,
    expirer: Expirer,
    policies: EffectivePolicies,
    now: datetime,
    max_bytes: int,
) -> CapReport | None:
    """Expire the oldest data until the database is at most ``max_bytes`` (None: cap off)."""
    if max_bytes <= 0:
        return None
    store = store_for(database.engine)
    size = await store.database_size(database.engine)
    report = CapReport(max_bytes, size, size)
    if size <= max_bytes:
        return report
    logger.warning(
        "database holds %d bytes, above storage.max_bytes (%d): expiring the oldest data",
        size,
        max_bytes,
    )
    for group in await _candidates(database, policies, now):
        for expiry in group:
            report.expired.append(await expirer.expire(expiry))
        size = await store.database_size(database.engine)
        logger.warning("disk cap: now %d bytes (cap %d)", size, max_bytes)
        if size <= max_bytes:
            break
    report.bytes_after = size
    if report.over:
        logger.error(
            "database still holds %d bytes, above storage.max_bytes (%d), with only today's "
            "raw snapshots and this month's tiers left (or kept): raise the cap or add disk",
            size,
            max_bytes,
        )
    return report
