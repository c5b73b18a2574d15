"""The on-disk spool: order, bound, and surviving a restart or a kill -9 of its writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from perfwatch.contract.metrics import EncodedSnapshot, SnapshotRow, encode_snapshot
from perfwatch.sampler.spool import Spool, SpooledBatch
from tests.support.services import REPO_ROOT

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def rows(start: int, count: int, metric_type: str = "cpu") -> list[EncodedSnapshot]:
    return [
        encode_snapshot(
            SnapshotRow(
                "host-s",
                T0 + timedelta(seconds=i),
                metric_type,
                {"schema_version": 1, "n": i},
            )
        )
        for i in range(start, start + count)
    ]


def numbers(batch: SpooledBatch) -> list[int]:
    """The ``n`` of each spooled document, in the order the spool gave them."""
    return [json.loads(document)["n"] for *_, document in batch.records]


def test_rows_come_back_oldest_first_and_leave_only_when_acknowledged(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append_encoded(rows(0, 5))
    spool.append_encoded(rows(5, 5))
    assert len(spool) == 10

    first = spool.peek(4)
    assert first is not None
    assert [record[1] for record in first.records] == [T0 + timedelta(seconds=i) for i in range(4)]
    assert json.loads(first.records[3][3]) == {"schema_version": 1, "n": 3}
    # Peeking again without acknowledging returns the same rows: nothing is lost on a failure.
    again = spool.peek(4)
    assert again is not None and again.records == first.records

    spool.acknowledge(first)
    assert len(spool) == 6
    rest = spool.peek(100)
    assert rest is not None
    assert numbers(rest) == list(range(4, 10))
    spool.acknowledge(rest)
    assert len(spool) == 0
    assert spool.peek(10) is None
    spool.close()


def test_a_full_spool_drops_the_oldest_and_counts_them_across_restarts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, max_rows=10)
    assert spool.append_encoded(rows(0, 8)) == 0
    assert spool.append_encoded(rows(8, 5)) == 3
    assert len(spool) == 10
    assert spool.dropped == 3
    spool.close()

    reopened = Spool(path, max_rows=10)
    assert len(reopened) == 10
    assert reopened.dropped == 3
    batch = reopened.peek(100)
    assert batch is not None
    # The newest ten survive: 3..12.
    assert numbers(batch) == list(range(3, 13))
    reopened.close()


def test_a_spool_bound_below_one_row_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one row"):
        Spool(tmp_path / "spool.db", max_rows=0)


def test_appended_rows_survive_a_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from datetime import UTC, datetime, timedelta
        from perfwatch.contract.metrics import SnapshotRow, encode_snapshot
        from perfwatch.sampler.spool import Spool
        spool = Spool({str(path)!r})
        t0 = datetime(2026, 11, 1, tzinfo=UTC)
        for i in range(50):
            row = SnapshotRow("h", t0 + timedelta(seconds=i), "memory", {{"n": i}})
            spool.append_encoded([encode_snapshot(row)])
        print("appended", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "backend")}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr
    assert "appended" in completed.stdout

    spool = Spool(path)
    assert len(spool) == 50
    batch = spool.peek(100)
    assert batch is not None
    assert numbers(batch) == list(range(50))
    spool.close()


def test_an_unwritable_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    from perfwatch.sampler.spool import SpoolUnavailableError

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    with pytest.raises(SpoolUnavailableError, match="PERFWATCH_DATA_DIR must be a writable"):
        Spool(blocker / "spool.db")
