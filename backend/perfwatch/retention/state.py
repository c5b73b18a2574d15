"""``maintenance_state``: what each maintenance job last did, one row per job. Written by the
process holding the maintenance lock only, so get-then-write cannot race; the columns a job
owns itself (the tier job's ``watermark``) are never touched here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from perfwatch.kit.repository import Repository
from perfwatch.metrics.tiers.repository import JOB_NAME
from perfwatch.models import MaintenanceState

TIERS_JOB = JOB_NAME  # the tier job's row; its watermark is that job's own
RETENTION_JOB = "retention"
ERROR_CHARS = 2000  # a traceback's last line is enough; the log has the rest


class MaintenanceStateRepository(Repository[MaintenanceState]):
    model = MaintenanceState
    sortable_fields: ClassVar[frozenset[str]] = frozenset({"name"})
    default_sort = ("name",)

    def _primary_key(self) -> InstrumentedAttribute[Any]:
        return MaintenanceState.name

    async def for_names(self, names: Iterable[str]) -> dict[str, MaintenanceState]:
        query = select(MaintenanceState).where(MaintenanceState.name.in_(list(names)))
        return {row.name: row for row in (await self.session.execute(query)).scalars()}

    async def watermark(self, name: str) -> datetime | None:
        query = select(MaintenanceState.watermark).where(MaintenanceState.name == name)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def record(self, name: str, **values: Any) -> MaintenanceState:
        """Set ``values`` on job ``name``'s row, creating it if needed."""
        row = await self.get(name)
        if row is None:
            return await self.create(name=name, **values)
        return await self.update(row, **values)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
