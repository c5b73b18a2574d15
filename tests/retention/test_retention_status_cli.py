"""``perfwatch retention status``: the storage status as tables, and as the API's JSON."""

from __future__ import annotations

import json
from pathlib import Path

from perfwatch.db.session import open_database, unit_of_work
from perfwatch.retention.status_schemas import StorageStatusOut
from tests.retention.storage_data import add_archive, add_history
from tests.support.cli import invoke
from tests.support.helpers import make_settings


async def _seed(url: str) -> None:
    async with (
        open_database(make_settings(url)) as database,
        unit_of_work(database.sessionmaker) as session,
    ):
        await add_history(session)


async def test_status_as_text_and_json(fresh_db: str, dialect: str, tmp_path: Path) -> None:
    await _seed(fresh_db)
    add_archive(tmp_path / "archive")  # the default archive directory: <data dir>/archive

    result = invoke(["retention", "status"], fresh_db, tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    dialect_name = "postgresql" if dialect == "postgres" else "sqlite"
    assert lines[0].startswith(f"Database ({dialect_name}): ")
    assert lines[0].endswith("no cap (storage.max_bytes 0)")
    (cpu,) = [line for line in lines if line.split()[:2] == ["cpu", "raw"]]
    assert "2026-09-14 00:00:00Z" in cpu and "3 d, delete (*)" in cpu
    assert ("~25" if dialect == "postgres" else " 25 ") in cpu
    (processes,) = [line for line in lines if line.split()[:2] == ["processes", "raw"]]
    assert "2 d, archive (processes)" in processes
    (memory,) = [line for line in lines if line.split()[:2] == ["memory", "raw"]]
    assert memory.split()[2:4] == ["-", "-"]
    (retention,) = [line for line in lines if line.startswith("retention ")]
    assert "OSError: archive directory is read-only" in retention
    assert lines[-1] == (
        f"Archive {tmp_path / 'archive'}: 2 files, 350 B, 8 rows, 1 unreadable manifests"
    )

    result = invoke(["retention", "status", "--json"], fresh_db, tmp_path)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    status = StorageStatusOut.model_validate(body)
    (cpu_raw,) = [s for s in status.series if (s.metric_type, s.tier) == ("cpu", "raw")]
    assert cpu_raw.rows == 25
    assert [job.name for job in status.jobs] == ["tiers", "retention"]
    assert status.archive.files == 2


def test_status_of_a_database_not_migrated(tmp_path: Path) -> None:
    result = invoke(["retention", "status"], f"sqlite+aiosqlite:///{tmp_path}/empty.db", tmp_path)
    assert result.exit_code == 1
    assert "perfwatch db upgrade" in result.output or "migrat" in result.output
