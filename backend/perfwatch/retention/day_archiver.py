"""Archiving one (metric type, UTC day) of raw snapshots before retention drops it: one verified
file per host (``retention/archive``), and proof that every row read is in it.

The rows are read in keyset pages (``raw_days.py``) and compressed in a worker thread (a busy
host-day takes seconds of CPU, and the server's event loop must keep answering); the thread
asks the loop for the next page when it needs one, so one page at a time is in memory.

:func:`~perfwatch.retention.archive.write_day` ends by re-reading its file against the manifest;
a merged file may hold more rows than were read (an earlier run's, a restored day's), so that
alone does not prove the rows read are in it. The archiver keeps each row's time (8 bytes) and
a digest of the rows it handed over, re-reads the file once more, and checks that a row of every
one of those times is there with the very document read. Only then may the day be dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from array import array
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.retention.archive import (
    ArchiveVerificationError,
    Manifest,
    archive_path,
    read_rows,
    write_day,
)
from perfwatch.retention.raw_days import PAGE_ROWS, day_pages, host_day, hosts_with_rows

logger = logging.getLogger("perfwatch.retention")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class DayArchive:
    """The verified files of one (type, day), one per host, and the rows read into them (a
    merged file may hold more: ``sum(file.rows) >= rows``)."""

    files: list[Manifest]
    rows: int

    @property
    def size_bytes(self) -> int:
        return sum(manifest.size_bytes for manifest in self.files)


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """What :meth:`DayArchiver.archive` would write for one host: ``rows`` rows captured from
    ``first`` to ``last`` into ``path``, merged with the file already there when ``exists``."""

    host: str
    metric_type: str
    day: date
    rows: int
    first: datetime
    last: datetime
    path: Path
    exists: bool


class DayArchiver:
    """Writes archive files under ``archive_dir``; one archiver at a time per directory (the
    maintenance runner's lock), since a file is merged and replaced in place."""

    def __init__(self, archive_dir: Path, *, page_rows: int = PAGE_ROWS) -> None:
        self.archive_dir = archive_dir
        self.page_rows = page_rows

    async def plan(self, session: AsyncSession, metric_type: str, day: date) -> list[PlannedFile]:
        """The files :meth:`archive` would write (the dry run): reads counts, writes nothing."""
        planned = []
        for host in await hosts_with_rows(session, metric_type, day):
            summary = await host_day(session, host, metric_type, day)
            if summary is None:  # deleted since the host was listed
                continue
            path = archive_path(self.archive_dir, host, metric_type, day)
            planned.append(
                PlannedFile(
                    host,
                    metric_type,
                    day,
                    summary.rows,
                    summary.first,
                    summary.last,
                    path,
                    path.exists(),
                )
            )
        return planned

    async def archive(self, session: AsyncSession, metric_type: str, day: date) -> DayArchive:
        """Archive every host's ``metric_type`` snapshots of the UTC ``day`` (read in
        ``session``'s transaction), each file verified and checked to hold every row read.
        Raises :class:`ArchiveVerificationError` (or the writer's ``ValueError``, or an
        ``OSError``) when any file cannot be trusted: the day must then be kept. A day without
        rows gives no files."""
        files = []
        rows = 0
        for host in await hosts_with_rows(session, metric_type, day):
            manifest, read = await self._archive_host(session, host, metric_type, day)
            files.append(manifest)
            rows += read
            logger.info(
                "archived %s %s %s: %d rows read, %d in %s (%d bytes)",
                host,
                metric_type,
                day,
                read,
                manifest.rows,
                archive_path(self.archive_dir, host, metric_type, day),
                manifest.size_bytes,
            )
        return DayArchive(files, rows)

    async def _archive_host(
        self, session: AsyncSession, host: str, metric_type: str, day: date
    ) -> tuple[Manifest, int]:
        loop = asyncio.get_running_loop()
        pages = day_pages(session, host, metric_type, day, self.page_rows)
        handed = _Handed()

        def rows() -> Iterator[EncodedSnapshot]:
            # In the worker thread: each page is fetched on the loop, which is free meanwhile.
            while True:
                page = asyncio.run_coroutine_threadsafe(_next(pages), loop).result()
                if page is None:
                    return
                for row in page:
                    handed.add(row)
                    yield row

        try:
            manifest = await asyncio.to_thread(
                write_day, self.archive_dir, host, metric_type, day, rows()
            )
        finally:
            await pages.aclose()
        path = archive_path(self.archive_dir, host, metric_type, day)
        await asyncio.to_thread(handed.check_in, path)
        return manifest, len(handed.times)


async def _next(pages: AsyncIterator[list[EncodedSnapshot]]) -> list[EncodedSnapshot] | None:
    return await anext(pages, None)


class _Handed:
    """The rows handed to the writer: their times and a digest of (time, document) in order."""

    def __init__(self) -> None:
        self.times = array("q")
        self.digest = hashlib.sha256()

    def add(self, row: EncodedSnapshot) -> None:
        moment = _microseconds(row.captured_at)
        self.times.append(moment)
        self.digest.update(_row_bytes(moment, row.document))

    def check_in(self, path: Path) -> None:
        """Raise :class:`ArchiveVerificationError` unless ``path`` holds a row at each handed
        time with the handed document (both sequences are in time order: one merge walk)."""
        found = hashlib.sha256()
        index = 0
        for row in read_rows(path):
            if index == len(self.times):
                break
            moment = _microseconds(row.captured_at)
            if moment > self.times[index]:
                break  # the handed row at times[index] is missing
            if moment == self.times[index]:
                found.update(_row_bytes(moment, row.document))
                index += 1
        if index < len(self.times):
            missing = _EPOCH + self.times[index] * _MICROSECOND
            raise ArchiveVerificationError(
                f"{path}: the row captured at {missing.isoformat()} was read from the database "
                "but is not in the archive"
            )
        if found.digest() != self.digest.digest():
            raise ArchiveVerificationError(
                f"{path}: documents differ from the {len(self.times)} rows read from the database"
            )


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _row_bytes(moment: int, document: str) -> bytes:
    data = document.encode()
    return moment.to_bytes(8, "big", signed=True) + len(data).to_bytes(8, "big") + data
