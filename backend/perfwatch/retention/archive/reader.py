"""Reading archive files back: rows for a restore, full verification against the manifest, the
list of finished archives."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path

import zstandard

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.retention.archive.errors import ArchiveVerificationError
from perfwatch.retention.archive.lines import count_values, decode_line, encode_line
from perfwatch.retention.archive.manifest import Manifest, parse_manifest
from perfwatch.retention.archive.paths import (
    MANIFEST_SUFFIX,
    archive_path,
    data_path,
    day_of,
    manifest_path,
)

logger = logging.getLogger("perfwatch.retention")

READ_CHUNK = 1 << 18


def read_rows(path: Path) -> Iterator[EncodedSnapshot]:
    """The snapshots of the archive file ``path`` in captured_at order, each document exactly
    as archived. Checks the file's own consistency as it goes (complete zstd frame and checksum,
    line shape, one host and type, the day of the name, order) and raises
    :class:`ArchiveVerificationError` at the first fault, possibly after yielding rows: call
    :func:`verify` first to know the whole file is sound before acting on any row."""
    for _, row in _rows(path, None):
        yield row


def verify(path: Path) -> Manifest:
    """Re-read the archive file ``path`` entirely and check it against its manifest: SHA-256 and
    size of the compressed bytes, rows, first, last and values, host, type and day of every line
    (and of the file's location), each line in its one canonical spelling with a document that
    parses as JSON. The manifest when all hold, else :class:`ArchiveVerificationError`."""
    manifest = read_manifest(path)
    if len(path.parents) < 3 or path != archive_path(
        path.parents[2], manifest.host, manifest.metric_type, manifest.day
    ):
        raise ArchiveVerificationError(
            f"{path}: the manifest is for {manifest.host} {manifest.metric_type} {manifest.day}"
        )
    digest = hashlib.sha256()
    size = rows = values = 0

    def on_chunk(chunk: bytes) -> None:
        nonlocal size
        digest.update(chunk)
        size += len(chunk)

    first = last = None
    for line, row in _rows(path, on_chunk):
        rows += 1
        if row.host != manifest.host or row.metric_type != manifest.metric_type:
            raise ArchiveVerificationError(f"{path}, line {rows}: not {manifest.host}'s rows")
        # The writer never writes a carriage return (nor any other spelling of a line).
        if b"\r" in line or encode_line(row) != line + b"\n":
            raise ArchiveVerificationError(f"{path}, line {rows}: not in the canonical spelling")
        try:
            values += count_values(row.document)
        except ValueError as error:
            raise ArchiveVerificationError(f"{path}, line {rows}: data: {error}") from error
        first = first or row.captured_at
        last = row.captured_at
    found = (digest.hexdigest(), size, rows, first, last, values)
    expected = (
        manifest.sha256,
        manifest.size_bytes,
        manifest.rows,
        manifest.first,
        manifest.last,
        manifest.values,
    )
    for name, got, want in zip(
        ("sha256", "bytes", "rows", "first", "last", "values"), found, expected, strict=True
    ):
        if got != want:
            raise ArchiveVerificationError(f"{path}: {name} is {got}, the manifest says {want}")
    return manifest


def read_manifest(path: Path) -> Manifest:
    """The manifest of the data file ``path``, parsed; :class:`ArchiveVerificationError` when it
    is missing or malformed."""
    sidecar = manifest_path(path)
    try:
        return parse_manifest(sidecar.read_bytes())
    except FileNotFoundError as error:
        raise ArchiveVerificationError(f"{path}: no manifest (an unfinished write)") from error
    except (ValueError, KeyError) as error:
        raise ArchiveVerificationError(f"{sidecar}: {error}") from error


def list_archives(archive_dir: Path) -> list[Manifest]:
    """The finished archives under ``archive_dir`` (a data file and its manifest), sorted by host,
    type and day, from their manifests alone (nothing is decompressed). Manifests that cannot
    be read, lie elsewhere than their content says, or lack their data file are logged and left
    out; data files without a manifest are unfinished writes and ignored."""
    found = []
    for sidecar in sorted(archive_dir.glob(f"*/*/*{MANIFEST_SUFFIX}")):
        data = data_path(sidecar)
        try:
            manifest = read_manifest(data)
        except ArchiveVerificationError as error:
            logger.warning("archive manifest skipped: %s", error)
            continue
        if data != archive_path(archive_dir, manifest.host, manifest.metric_type, manifest.day):
            logger.warning("archive manifest skipped: %s is not where its content belongs", sidecar)
        elif not data.is_file():
            logger.warning("archive manifest skipped: %s has no data file", sidecar)
        else:
            found.append(manifest)
    return sorted(found, key=lambda manifest: (manifest.host, manifest.metric_type, manifest.day))


def _rows(
    path: Path, on_chunk: Callable[[bytes], None] | None
) -> Iterator[tuple[bytes, EncodedSnapshot]]:
    """(line without its newline, row) of ``path``, checked as :func:`read_rows` says."""
    try:
        day = day_of(path)
    except ValueError as error:
        raise ArchiveVerificationError(f"{path}: {error}") from error
    previous: EncodedSnapshot | None = None
    for number, line in enumerate(_lines(path, on_chunk), start=1):
        try:
            row = decode_line(line)
        except ValueError as error:
            raise ArchiveVerificationError(f"{path}, line {number}: {error}") from error
        if row.captured_at.astimezone(UTC).date() != day:
            raise ArchiveVerificationError(f"{path}, line {number}: captured on another day")
        if previous is not None:
            if (row.host, row.metric_type) != (previous.host, previous.metric_type):
                raise ArchiveVerificationError(f"{path}, line {number}: another host or type")
            if row.captured_at <= previous.captured_at:
                raise ArchiveVerificationError(f"{path}, line {number}: not after the line before")
        yield line, row
        previous = row


def _lines(path: Path, on_chunk: Callable[[bytes], None] | None) -> Iterator[bytes]:
    """The lines (without newlines) of the one zstd frame in ``path``, read in chunks, each
    compressed chunk handed to ``on_chunk`` first."""
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    pending = b""
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            if on_chunk is not None:
                on_chunk(chunk)
            if decompressor.eof:
                raise ArchiveVerificationError(f"{path}: bytes after the zstd frame")
            try:
                text = decompressor.decompress(chunk)
            except zstandard.ZstdError as error:
                raise ArchiveVerificationError(f"{path}: {error}") from error
            if decompressor.unused_data:
                raise ArchiveVerificationError(f"{path}: bytes after the zstd frame")
            *complete, pending = (pending + text).split(b"\n")
            yield from complete
    if not decompressor.eof:
        raise ArchiveVerificationError(f"{path}: truncated (the zstd frame does not end)")
    if pending:
        raise ArchiveVerificationError(f"{path}: the last line does not end")
