"""``perfwatch.retention.archive``: the archive files of raw snapshots (JSONL + zstd, one file per
host, type and UTC day, a manifest beside it). Pure file work, no database."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import zstandard

from perfwatch.contract.metrics import EncodedSnapshot
from perfwatch.retention.archive import (
    ArchiveVerificationError,
    archive_path,
    list_archives,
    read_rows,
    remove_stale_temp_files,
    verify,
    write_day,
)
from perfwatch.retention.archive.lines import decode_line, encode_line
from perfwatch.retention.archive.paths import manifest_path, path_component

DAY = date(2026, 6, 1)
START = datetime(2026, 6, 1, tzinfo=UTC)
HOST = "web-1"
TYPE = "cpu"
# A host name made to confuse a careless reader: quotes, the line's own ",\"data\":" marker,
# path separators, NUL, a backslash and non-ASCII.
NASTY_HOST = 'evil","data":{"x":1},"host":"/../..\\\x00 ünï'
# Stored texts that a decode/encode round would change (PostgreSQL's jsonb spacing included).
DOCUMENTS = [
    '{"percent": 1.10, "tiny": 1e-7, "big": 123456789012345678901234567890}',
    '{"name":"caf\\u00e9 ☕ 日本","quote":"say \\"hi\\" \\\\ back","empty":{},"list":[]}',
    '{"per_core":[0.50,100.00,-0.0],"flag":true,"none":null,"exp":1E+3}',
    '{"data":"x\\",\\"data\\":1","nested":{"data":{"data":2.50}}}',
]
# How many numbers each holds (true, null and strings are not numbers).
DOCUMENT_VALUES = [3, 0, 4, 1]


def snapshots(
    count: int, *, host: str = HOST, first: int = 0, step: int = 1, text: str | None = None
) -> list[EncodedSnapshot]:
    return [
        EncodedSnapshot(
            host,
            START + timedelta(seconds=first + index * step),
            TYPE,
            text or DOCUMENTS[(first + index) % len(DOCUMENTS)],
        )
        for index in range(count)
    ]


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ----- round trip -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", [HOST, NASTY_HOST])
def test_round_trip_keeps_every_document_byte_for_byte(tmp_path: Path, host: str) -> None:
    rows = snapshots(40, host=host, step=2161)  # spread over the day
    manifest = write_day(tmp_path, host, TYPE, DAY, rows)

    path = archive_path(tmp_path, host, TYPE, DAY)
    assert list(read_rows(path)) == rows
    assert (manifest.host, manifest.metric_type, manifest.day) == (host, TYPE, DAY)
    assert (manifest.rows, manifest.first, manifest.last) == (
        40,
        rows[0].captured_at,
        rows[-1].captured_at,
    )
    assert manifest.values == 10 * sum(DOCUMENT_VALUES)
    raw = path.read_bytes()
    assert manifest.size_bytes == len(raw)
    assert manifest.sha256 == hashlib.sha256(raw).hexdigest()
    assert verify(path) == manifest


def test_the_line_format_exactly(tmp_path: Path) -> None:
    rows = [
        EncodedSnapshot(NASTY_HOST, START + timedelta(microseconds=5), "cpu", DOCUMENTS[0]),
        EncodedSnapshot(NASTY_HOST, START + timedelta(seconds=86_399.5), "cpu", "{}"),
    ]
    write_day(tmp_path, NASTY_HOST, "cpu", DAY, rows)
    text = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress(archive_path(tmp_path, NASTY_HOST, "cpu", DAY).read_bytes())
    )
    host = json.dumps(NASTY_HOST)
    assert (
        text
        == (
            f'{{"host":{host},"metric_type":"cpu","captured_at":"2026-06-01T00:00:00.000005Z",'
            f'"data":{DOCUMENTS[0]}}}\n'
            f'{{"host":{host},"metric_type":"cpu","captured_at":"2026-06-01T23:59:59.500000Z",'
            '"data":{}}\n'
        ).encode()
    )
    for line in text.splitlines():  # plain JSON to any reader
        assert json.loads(line)["host"] == NASTY_HOST


def test_times_are_written_in_utc_whatever_the_rows_offset(tmp_path: Path) -> None:
    plus_two = timezone(timedelta(hours=2))
    row = EncodedSnapshot(HOST, datetime(2026, 6, 1, 1, 30, tzinfo=plus_two), TYPE, "{}")
    write_day(tmp_path, HOST, TYPE, date(2026, 5, 31), [row])
    (back,) = read_rows(archive_path(tmp_path, HOST, TYPE, date(2026, 5, 31)))
    assert back.captured_at == row.captured_at and back.captured_at.tzinfo == UTC


@pytest.mark.skipif(
    shutil.which("zstd") is None or shutil.which("jq") is None, reason="needs zstd and jq"
)
def test_zstd_and_jq_read_the_files(tmp_path: Path) -> None:
    rows = snapshots(8, host=NASTY_HOST)
    write_day(tmp_path, NASTY_HOST, TYPE, DAY, rows)
    path = archive_path(tmp_path, NASTY_HOST, TYPE, DAY)
    result = subprocess.run(
        f"zstd -dc '{path}' | jq -c '[.host, .metric_type, .captured_at, (.data | type)]'",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        [NASTY_HOST, TYPE, f"2026-06-01T00:00:0{index}.000000Z", "object"] for index in range(8)
    ]


def test_the_data_mark_inside_a_host_does_not_split_the_line() -> None:
    row = EncodedSnapshot(NASTY_HOST + ',"data":', START, 'x","data":', DOCUMENTS[3])
    line = encode_line(row)
    assert decode_line(line[:-1]) == row


# ----- verification -----------------------------------------------------------------------------


def written(tmp_path: Path, count: int = 3000) -> Path:
    write_day(tmp_path, HOST, TYPE, DAY, snapshots(count))
    return archive_path(tmp_path, HOST, TYPE, DAY)


def test_a_corrupted_byte_is_detected(tmp_path: Path) -> None:
    path = written(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveVerificationError, match=r"2026-06-01\.jsonl\.zst"):
        verify(path)
    with pytest.raises(ArchiveVerificationError):
        list(read_rows(path))  # the frame's own checksum, without the manifest


def test_a_truncated_file_is_detected(tmp_path: Path) -> None:
    path = written(tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ArchiveVerificationError):
        verify(path)
    with pytest.raises(ArchiveVerificationError, match="truncated"):
        list(read_rows(path))


def test_bytes_after_the_frame_are_detected(tmp_path: Path) -> None:
    path = written(tmp_path, 10)
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(ArchiveVerificationError, match="after the zstd frame"):
        list(read_rows(path))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("rows", 11, "rows is 10"),
        ("values", 1, "values is"),
        ("last", "2026-06-01T00:00:10.000000Z", "last is"),
        ("sha256", "0" * 64, "sha256 is"),
        ("format_version", 2, "format_version 2"),
        ("day", "2026-06-02", "the manifest is for"),
    ],
)
def test_a_manifest_that_disagrees_is_detected(
    tmp_path: Path, key: str, value: object, message: str
) -> None:
    path = written(tmp_path, 10)
    sidecar = manifest_path(path)
    manifest = json.loads(sidecar.read_bytes())
    sidecar.write_text(json.dumps({**manifest, key: value}))
    with pytest.raises(ArchiveVerificationError, match=message):
        verify(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b'"big"', b'"big" 1', "line 1: data"),  # the document is not JSON
        (b'{"host":"web-1"', b'{"host": "web-1"', "line 1: not in the canonical spelling"),
        (b'"percent": ', b'"percent":\r', "line 1: not in the canonical spelling"),
        (b"00:00:00.000000Z", b"00:00:00Z", "line 1: time"),
        (b',"data":', b',"dat":', "line 1: not an archive line"),
        (b"2026-06-01T00:00:01", b"2026-06-02T00:00:01", "line 2: captured on another day"),
        (b"2026-06-01T00:00:01", b"2026-06-01T00:00:00", "line 2: not after the line before"),
    ],
)
def test_a_line_not_as_written_is_detected(
    tmp_path: Path, old: bytes, new: bytes, message: str
) -> None:
    path = written(tmp_path, 2)
    text = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    assert old in text
    path.write_bytes(zstandard.ZstdCompressor().compress(text.replace(old, new, 1)))
    with pytest.raises(ArchiveVerificationError, match=message):
        verify(path)


# ----- unfinished writes ------------------------------------------------------------------------


def test_a_data_file_without_manifest_is_not_listed(tmp_path: Path) -> None:
    path = written(tmp_path, 5)
    write_day(
        tmp_path, HOST, "memory", DAY, [r._replace(metric_type="memory") for r in snapshots(2)]
    )
    manifest_path(path).unlink()
    assert [(m.host, m.metric_type) for m in list_archives(tmp_path)] == [(HOST, "memory")]
    with pytest.raises(ArchiveVerificationError, match="no manifest"):
        verify(path)


def test_list_archives_is_sorted_and_skips_misplaced_manifests(tmp_path: Path) -> None:
    for host in ("b", "a", NASTY_HOST):
        for day in (date(2026, 6, 2), DAY):
            first = int((day - DAY).total_seconds())
            write_day(tmp_path, host, TYPE, day, snapshots(1, host=host, first=first))
    assert [(m.host, m.day) for m in list_archives(tmp_path)] == [
        (host, day) for host in sorted(("a", "b", NASTY_HOST)) for day in (DAY, date(2026, 6, 2))
    ]
    moved = archive_path(tmp_path, "a", "memory", DAY)
    moved.parent.mkdir()
    shutil.move(manifest_path(archive_path(tmp_path, "a", TYPE, DAY)), manifest_path(moved))
    shutil.move(archive_path(tmp_path, "a", TYPE, DAY), moved)
    assert ("a", DAY) not in [(m.host, m.day) for m in list_archives(tmp_path)]
    assert list_archives(tmp_path / "nowhere") == []


def test_a_failed_write_leaves_nothing_visible(tmp_path: Path) -> None:
    path = archive_path(tmp_path, HOST, TYPE, DAY)

    def rows() -> Iterator[EncodedSnapshot]:
        for row in snapshots(20_000, text=DOCUMENTS[0]):
            assert not path.exists()  # the data file appears only once complete
            yield row
        yield EncodedSnapshot(HOST, START + timedelta(hours=20), TYPE, '{"cut": ')

    with pytest.raises(ValueError, match="Expecting value"):
        write_day(tmp_path, HOST, TYPE, DAY, rows())
    assert files_in(path.parent) == []


def test_a_failed_rewrite_keeps_the_old_archive(tmp_path: Path) -> None:
    path = written(tmp_path, 10)
    before = verify(path)
    bad = [*snapshots(3, first=100), EncodedSnapshot(HOST, START, TYPE, "{}")]  # out of order
    with pytest.raises(ValueError, match="order"):
        write_day(tmp_path, HOST, TYPE, DAY, bad)
    assert verify(path) == before
    assert files_in(path.parent) == ["2026-06-01.jsonl.zst", "2026-06-01.manifest.json"]


def test_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    directory = archive_path(tmp_path, HOST, TYPE, DAY).parent
    directory.mkdir(parents=True)
    old = directory / ".2026-06-01.jsonl.zst.abc123.tmp"
    fresh = directory / ".2026-06-01.manifest.json.def456.tmp"
    kept = directory / "2026-06-01.jsonl.zst"
    for path in (old, fresh, kept):
        path.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(kept, (hour_ago, hour_ago))
    assert remove_stale_temp_files(tmp_path) == [old]
    assert files_in(directory) == [fresh.name, kept.name]


# ----- re-archiving the same day ----------------------------------------------------------------


def test_archiving_a_day_again_keeps_the_union(tmp_path: Path) -> None:
    first = snapshots(10)  # seconds 0..9
    write_day(tmp_path, HOST, TYPE, DAY, first)
    again = snapshots(10, first=5, text='{"again": 2.50}')  # seconds 5..14, 5..9 rewritten
    manifest = write_day(tmp_path, HOST, TYPE, DAY, again)

    rows = list(read_rows(archive_path(tmp_path, HOST, TYPE, DAY)))
    assert rows == first[:5] + again
    assert (manifest.rows, manifest.first, manifest.last) == (
        15,
        first[0].captured_at,
        again[-1].captured_at,
    )
    # Nothing new at all: the same file again (a re-run after a kill before the drop).
    assert (
        write_day(tmp_path, HOST, TYPE, DAY, first[:3]).sha256
        == write_day(tmp_path, HOST, TYPE, DAY, []).sha256
    )


def test_a_rewrite_killed_between_the_renames_is_completed(tmp_path: Path) -> None:
    path = written(tmp_path, 10)
    old_manifest = manifest_path(path).read_bytes()
    write_day(tmp_path, HOST, TYPE, DAY, snapshots(5, first=100))
    manifest_path(path).write_bytes(old_manifest)  # the new data file, the old manifest
    with pytest.raises(ArchiveVerificationError, match="sha256"):
        verify(path)

    manifest = write_day(tmp_path, HOST, TYPE, DAY, snapshots(1, first=200))
    assert manifest.rows == 16


def test_a_damaged_archive_is_never_replaced(tmp_path: Path) -> None:
    path = written(tmp_path)
    damaged = path.read_bytes()[:-50]
    path.write_bytes(damaged)
    with pytest.raises(ArchiveVerificationError, match="truncated"):
        write_day(tmp_path, HOST, TYPE, DAY, snapshots(1, first=50_000))
    assert path.read_bytes() == damaged
    assert files_in(path.parent) == ["2026-06-01.jsonl.zst", "2026-06-01.manifest.json"]


def test_a_manifest_without_its_data_file_stops_the_write(tmp_path: Path) -> None:
    path = written(tmp_path, 3)
    path.unlink()
    with pytest.raises(ArchiveVerificationError, match="data file is missing"):
        write_day(tmp_path, HOST, TYPE, DAY, snapshots(3))


# ----- what write_day refuses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no rows"),
        (snapshots(1, host="other"), "a row of other"),
        ([EncodedSnapshot(HOST, START, "memory", "{}")], "a row of web-1 memory"),
        ([EncodedSnapshot(HOST, START - timedelta(microseconds=1), TYPE, "{}")], "not of"),
        ([EncodedSnapshot(HOST, START.replace(tzinfo=None), TYPE, "{}")], "not of"),
        (snapshots(2, step=0), "order"),
        ([EncodedSnapshot(HOST, START, TYPE, '{\n"a": 1}')], "line break"),
        ([EncodedSnapshot(HOST, START, TYPE, '{"a": 1} x')], "Extra data"),
    ],
)
def test_write_day_refuses(tmp_path: Path, rows: list[EncodedSnapshot], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_day(tmp_path, HOST, TYPE, DAY, rows)
    assert not archive_path(tmp_path, HOST, TYPE, DAY).exists()


# ----- path components --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "component"),
    [
        ("web-1.example.com", "web-1.example.com"),
        ("a/b", "a%2Fb"),
        ("..", "%2E."),
        (".", "%2E"),
        (".hidden", "%2Ehidden"),
        ("a\x00b", "a%00b"),
        ("50%", "50%25"),
        ("hôte", "h%C3%B4te"),
        ("C:\\x y", "C%3A%5Cx%20y"),
    ],
)
def test_path_components(name: str, component: str) -> None:
    assert path_component(name) == component


def test_long_names_are_hashed_and_stay_distinct() -> None:
    one, two = "h" * 300 + "1", "h" * 300 + "2"
    assert path_component(one) != path_component(two)
    assert len(path_component("é" * 255)) <= 200
    assert path_component(one) == path_component(one)
    with pytest.raises(ValueError):
        path_component("")
