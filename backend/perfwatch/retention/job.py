"""The retention job: partitions ahead, expiry by the policies, the disk cap, then the space
given back. Run hourly by the maintenance runner and by ``perfwatch retention run``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.config_store.repository import ConfigRepository
from perfwatch.contract import runtime_config
from perfwatch.db.partitions import PARTITIONED_TABLES, ensure_snapshot_partitions
from perfwatch.db.session import Database, unit_of_work
from perfwatch.retention import postgres_store, sqlite_store
from perfwatch.retention.archiving import Archiver
from perfwatch.retention.disk_cap import CapReport, enforce_disk_cap
from perfwatch.retention.expiry import Expirer, Expiry, Outcome, plan_expiry, store_for
from perfwatch.retention.policies import EffectivePolicies, effective_policies
from perfwatch.retention.repository import ArchivePolicyRepository
from perfwatch.retention.state import TIERS_JOB, MaintenanceStateRepository

MAX_BYTES_KEY = "storage.max_bytes"
LISTED = 20  # expiries named in maintenance_state.details; the log names every one


async def read_max_bytes(session: AsyncSession) -> int:
    entry = await ConfigRepository(session).get(MAX_BYTES_KEY)
    stored = {} if entry is None else {MAX_BYTES_KEY: entry.value}
    return int(runtime_config.read_number(stored, MAX_BYTES_KEY))


@dataclass(frozen=True, slots=True)
class Inputs:
    policies: EffectivePolicies
    rolled_up_until: datetime | None
    max_bytes: int


async def read_inputs(database: Database) -> Inputs:
    async with unit_of_work(database.sessionmaker) as session:
        return Inputs(
            await effective_policies(session),
            await MaintenanceStateRepository(session).watermark(TIERS_JOB),
            await read_max_bytes(session),
        )


@dataclass
class RetentionReport:
    now: datetime
    inputs: Inputs
    planned: list[Expiry]
    bytes_now: int | None = None  # a dry run's measure for the cap
    partitions_created: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    cap: CapReport | None = None
    periods_dropped: list[str] = field(default_factory=list)
    pages_reclaimed: int = 0
    converted_to_incremental: bool = False

    def _all_outcomes(self) -> list[Outcome]:
        return self.outcomes + (self.cap.expired if self.cap else [])

    def details(self) -> dict[str, Any]:
        """For ``maintenance_state.details``: counts, and the first few expiries by name."""
        outcomes = self._all_outcomes()
        expired: dict[str, int] = {}
        for outcome in outcomes:
            if outcome.kept is None and not outcome.expiry.stored.empty:
                name = outcome.expiry.stored.resolution.name
                expired[name] = expired.get(name, 0) + 1
        kept = [o for o in outcomes if o.kept]
        gone = [o.expiry.stored.label() for o in self._shown(outcomes) if not o.kept]
        rolled_up = self.inputs.rolled_up_until
        details: dict[str, Any] = {
            "expired": expired,
            "tables_dropped": sum(o.tables_dropped for o in outcomes) + len(self.periods_dropped),
            "rows_deleted": sum(o.rows_deleted for o in outcomes),
            "archived": sum(1 for o in outcomes if o.archived is not None),
            "kept": len(kept),
            "kept_reasons": [f"{o.expiry.stored.label()}: {o.kept}" for o in kept[:LISTED]],
            "expired_names": gone[:LISTED],
            "partitions_created": self.partitions_created,
            "rolled_up_until": rolled_up.isoformat() if rolled_up else None,
            "pages_reclaimed": self.pages_reclaimed,
            "converted_to_incremental": self.converted_to_incremental,
        }
        if self.cap is not None:
            details["disk_cap"] = {
                "max_bytes": self.cap.max_bytes,
                "bytes_before": self.cap.bytes_before,
                "bytes_after": self.cap.bytes_after,
                "expired": sum(1 for o in self._shown(self.cap.expired) if o.kept is None),
                "over": self.cap.over,
            }
        return details

    @staticmethod
    def _shown(outcomes: list[Outcome]) -> list[Outcome]:
        return [o for o in outcomes if not o.expiry.stored.empty]

    def preview_lines(self) -> list[str]:
        """A dry run: what would go, one line per (resolution, type, period) holding rows."""
        lines = [expiry.describe() for expiry in self.planned if not expiry.stored.empty]
        if not lines:
            lines.append("nothing is past its policy's window")
        if self.inputs.rolled_up_until is None:
            lines.append(
                "raw snapshots and the 1-minute tier wait for the tier job, which has not "
                "rolled anything up yet"
            )
        lines.append(self._cap_line())
        return lines

    def result_lines(self) -> list[str]:
        lines = [outcome.describe() for outcome in self._shown(self._all_outcomes())]
        if not lines:
            lines.append("nothing was past its policy's window")
        lines.append(self._cap_line())
        if self.periods_dropped:
            lines.append(f"dropped {len(self.periods_dropped)} emptied period table(s)")
        if self.converted_to_incremental:
            lines.append("converted the SQLite file to incremental auto-vacuum (VACUUM)")
        elif self.pages_reclaimed:
            lines.append(f"gave {self.pages_reclaimed:,} free pages back to the file system")
        return lines

    def _cap_line(self) -> str:
        cap = self.inputs.max_bytes
        if cap <= 0:
            return "disk cap: off (storage.max_bytes = 0)"
        if self.cap is not None:
            state = "over" if self.cap.over else "within"
            return (
                f"disk cap: {self.cap.bytes_after:,} bytes of {cap:,} ({state}; "
                f"{self.cap.bytes_before:,} before)"
            )
        size = self.bytes_now or 0
        verdict = "would expire the oldest data" if size > cap else "within"
        return f"disk cap: {size:,} bytes of {cap:,} ({verdict})"


async def preview_retention(database: Database, now: datetime) -> RetentionReport:
    """What a run would expire now; changes nothing."""
    inputs = await read_inputs(database)
    planned = await plan_expiry(
        database, inputs.policies, now, inputs.rolled_up_until, count_rows=True
    )
    size = await store_for(database.engine).database_size(database.engine)
    return RetentionReport(now, inputs, planned, bytes_now=size)


async def run_retention(
    database: Database,
    now: datetime,
    archiver: Archiver | None,
    *,
    count_rows: bool = False,
    expirer: Expirer | None = None,
) -> RetentionReport:
    """Partitions ahead, expiry, disk cap, space back; returns what was done. A failure (the
    database away) raises: what was done stays done, the rest is for the next run."""
    engine = database.engine
    async with engine.begin() as connection:
        created = await ensure_snapshot_partitions(connection, today=now.date())
    inputs = await read_inputs(database)
    planned = await plan_expiry(
        database, inputs.policies, now, inputs.rolled_up_until, count_rows=count_rows
    )
    report = RetentionReport(now, inputs, planned, partitions_created=created)
    expirer = expirer or Expirer(database, archiver)
    report.outcomes = [await expirer.expire(expiry) for expiry in planned]
    report.cap = await enforce_disk_cap(database, expirer, inputs.policies, now, inputs.max_bytes)
    if engine.dialect.name == "postgresql":
        for table in PARTITIONED_TABLES:
            report.periods_dropped += await postgres_store.drop_emptied_periods(
                engine, table, expirer.lock_timeout_ms
            )
    elif any(o.rows_deleted for o in report._all_outcomes()) or await sqlite_store.free_pages(
        engine
    ):
        reclaimed = await sqlite_store.reclaim_space(engine)
        report.pages_reclaimed = reclaimed.pages
        report.converted_to_incremental = reclaimed.converted
    async with unit_of_work(database.sessionmaker) as session:
        await ArchivePolicyRepository(session).mark_applied(now)
    return report
