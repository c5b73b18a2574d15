"""Writing the archive of one host, type and UTC day, merging with the file already there.

A second write for the same day (a run killed after the file was written but before the raw
rows were dropped; a day restored and archived again) does not add a second file: the new file
holds the union of the rows already archived and the given ones, one row per captured_at, the
given row winning a tie (it is the database's current text of that snapshot). The union is
streamed (both inputs are in captured_at order), written beside the old file, renamed over it,
then its manifest, and read back by :func:`~perfwatch.retention.archive.reader.verify`.

The rows already archived are taken from the data file itself, not its manifest: a run killed
between the two renames leaves a complete new data file beside the old manifest, and that file
holds every row. A data file that cannot be read entirely (damaged, truncated) stops the write
with :class:`ArchiveVerificationError` rather than being replaced: rows only it holds would be
lost. One writer per archive directory at a time (the maintenance runner's lock).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import zstandard

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.retention.archive.errors import ArchiveVerificationError
from perfwatch.retention.archive.files import make_directories, write_atomically
from perfwatch.retention.archive.lines import count_values, encode_line, line_head
from perfwatch.retention.archive.manifest import Manifest, manifest_json
from perfwatch.retention.archive.paths import archive_path, manifest_path
from perfwatch.retention.archive.reader import read_rows, verify

# zstd level, measured on a busy host's day (bench/archive_bench.py, docs/benchmarks.md).
LEVEL = 9
# Uncompressed bytes handed to the compressor at once.
WRITE_CHUNK = 1 << 20


def write_day(
    archive_dir: Path,
    host: str,
    metric_type: str,
    day: date,
    rows: Iterable[EncodedSnapshot],
    *,
    level: int = LEVEL,
) -> Manifest:
    """Archive ``rows`` (``host``'s ``metric_type`` snapshots captured on ``day`` UTC, in
    strictly increasing captured_at order) under ``archive_dir``, merged with the day's existing
    file as the module docstring says; the verified manifest. ``ValueError`` when a row does not
    belong to the file, is out of order, or its document is not one line of JSON, and when there
    is no row at all; :class:`ArchiveVerificationError` when the existing file is unreadable."""
    path = archive_path(archive_dir, host, metric_type, day)
    sidecar = manifest_path(path)
    if sidecar.exists() and not path.exists():
        raise ArchiveVerificationError(f"{sidecar}: its data file is missing")
    old = _existing(path, host, metric_type) if path.exists() else iter(())
    merged = _union(old, _checked(rows, host, metric_type, day))
    first = next(merged, None)
    if first is None:
        raise ValueError(f"no rows to archive for {host} {metric_type} {day}")
    tally = _Tally(line_head(host, metric_type))
    make_directories(path.parent)
    digest, size = write_atomically(
        path, _compressed(map(tally.line, itertools.chain([first], merged)), level)
    )
    assert tally.first is not None and tally.last is not None  # at least ``first`` was written
    manifest = Manifest(
        host=host,
        metric_type=metric_type,
        day=day,
        rows=tally.rows,
        first=tally.first,
        last=tally.last,
        sha256=digest,
        size_bytes=size,
        values=tally.values,
    )
    write_atomically(sidecar, [manifest_json(manifest)])
    return verify(path)


class _Tally:
    """Encodes the rows of one file and counts what its manifest says about them."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.rows = self.values = 0
        self.first: datetime | None = None
        self.last: datetime | None = None

    def line(self, row: EncodedSnapshot) -> bytes:
        encoded = encode_line(row, self.head)
        self.values += count_values(row.document)  # also refuses a document that is not JSON
        self.rows += 1
        self.first = self.first or row.captured_at
        self.last = row.captured_at
        return encoded


def _checked(
    rows: Iterable[EncodedSnapshot], host: str, metric_type: str, day: date
) -> Iterator[EncodedSnapshot]:
    previous: datetime | None = None
    for row in rows:
        if row.host != host or row.metric_type != metric_type:
            raise ValueError(f"a row of {row.host} {row.metric_type} in {host} {metric_type}")
        if row.captured_at.tzinfo is None or row.captured_at.astimezone(UTC).date() != day:
            raise ValueError(f"a row captured at {row.captured_at} is not of {day} (UTC)")
        if previous is not None and row.captured_at <= previous:
            raise ValueError(f"rows out of captured_at order at {row.captured_at}")
        previous = row.captured_at
        yield row


def _existing(path: Path, host: str, metric_type: str) -> Iterator[EncodedSnapshot]:
    for row in read_rows(path):
        if (row.host, row.metric_type) != (host, metric_type):
            # Two names sharing one path: a case-insensitive file system, or a moved file.
            raise ArchiveVerificationError(
                f"{path} holds {row.host} {row.metric_type}, not {host} {metric_type}"
            )
        yield row


def _union(
    old: Iterator[EncodedSnapshot], new: Iterator[EncodedSnapshot]
) -> Iterator[EncodedSnapshot]:
    """Both streams merged by captured_at; on a tie the row of ``new``."""
    left, right = next(old, None), next(new, None)
    while left is not None and right is not None:
        if left.captured_at < right.captured_at:
            yield left
            left = next(old, None)
        else:
            if left.captured_at == right.captured_at:
                left = next(old, None)
            yield right
            right = next(new, None)
    if left is not None:
        yield left
        yield from old
    if right is not None:
        yield right
        yield from new


def _compressed(lines: Iterable[bytes], level: int) -> Iterator[bytes]:
    """One plain zstd frame with a content checksum: no dictionary, no long-distance matching,
    so ``zstdcat`` reads it."""
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True).compressobj()
    buffer = bytearray()
    for line in lines:
        buffer += line
        if len(buffer) >= WRITE_CHUNK:
            yield compressor.compress(bytes(buffer))
            buffer.clear()
    yield compressor.compress(bytes(buffer))
    yield compressor.flush()
