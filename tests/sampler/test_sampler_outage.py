"""Nothing is lost when the database goes away: a PostgreSQL 16 server of this module's own is
stopped for 30 s while the sampler samples every second; then the sampler (its own process) is
killed with SIGKILL during an outage and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from perfwatch.cache.memory import MemoryCache
from perfwatch.contract.metrics import METRIC_TYPES
from perfwatch.db.engine import build_engine
from perfwatch.db.session import make_sessionmaker
from perfwatch.sampler.runner import SPOOL_FILE, Sampler
from tests.support.helpers import (
    BIN_DIR,
    make_settings,
    migrate,
    recreate_database,
    run_async,
    subprocess_env,
)
from tests.support.sampling import (
    every_interval,
    running_sampler,
    set_config,
    spooled_keys,
    stored_snapshots,
)
from tests.support.services import PG16_SCRIPT, PostgresServer, unavailable

OUTAGE_SECONDS = 30


def _free_port_below_ephemeral_range() -> int:
    # A port inside the ephemeral range may be taken by a client socket while the server is
    # down, and the restart must get the same port back.
    for port in range(26_000 + os.getpid() % 500, 27_000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 26000-26999")


@dataclass
class StoppablePostgres:
    """A PostgreSQL 16 server of its own (scripts/pg16.sh), that the tests stop and start."""

    port: int
    data_dir: Path

    def _script(self, action: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PG16_PORT": str(self.port), "PG16_DATA": str(self.data_dir)}
        return subprocess.run(
            [str(PG16_SCRIPT), action], env=env, capture_output=True, text=True, timeout=300
        )

    def start(self) -> None:
        result = self._script("start")
        if result.returncode != 0:
            raise RuntimeError(f"pg16.sh start failed: {result.stderr}")

    def stop(self) -> None:
        self._script("stop")

    @property
    def server(self) -> PostgresServer:
        return PostgresServer(admin_url=f"postgresql://postgres@127.0.0.1:{self.port}/postgres")


@pytest.fixture(scope="module")
def stoppable_postgres() -> Iterator[StoppablePostgres]:
    instance = StoppablePostgres(
        port=_free_port_below_ephemeral_range(),
        # Outside pytest's 0700 temp dirs: the server runs as an unprivileged user.
        data_dir=Path(f"/tmp/perfwatch-outage-{uuid.uuid4().hex[:10]}"),
    )
    try:
        instance.start()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        unavailable(f"cannot start a PostgreSQL 16 server of this module's own: {exc}")
    try:
        yield instance
    finally:
        instance.stop()
        subprocess.run(["rm", "-rf", str(instance.data_dir)], check=False)


@pytest.fixture
def outage_db(stoppable_postgres: StoppablePostgres) -> str:
    url = run_async(recreate_database(stoppable_postgres.server, f"outage_{uuid.uuid4().hex[:8]}"))
    return migrate(url)


@pytest.fixture
async def sessionmaker(outage_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    # A short connect timeout: while the server is down every attempt is refused at once anyway.
    engine = build_engine(make_settings(outage_db, db_connect_timeout=2))
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_a_30_s_database_outage_loses_nothing_and_duplicates_nothing(
    stoppable_postgres: StoppablePostgres,
    outage_db: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    await set_config(sessionmaker, {**every_interval(1), "sampler.batch.max_seconds": 1})
    cache = MemoryCache()
    sampler = Sampler(
        sessionmaker=sessionmaker, cache=cache, spool_path=tmp_path / SPOOL_FILE, host="h-outage"
    )
    async with running_sampler(sampler, cache) as recorder:
        await asyncio.sleep(4)
        assert stored_snapshots(outage_db, "h-outage"), "nothing stored before the outage"

        await asyncio.to_thread(stoppable_postgres.stop)
        stopped_at = time.monotonic()
        await asyncio.sleep(OUTAGE_SECONDS)
        assert not sampler.writer.stats.database_available
        spooled_during_outage = len(sampler.writer.spool)
        # ~7 types a second for 30 s went to disk (not to memory).
        assert spooled_during_outage >= 6 * (OUTAGE_SECONDS - 5), spooled_during_outage
        await asyncio.to_thread(stoppable_postgres.start)
        outage = time.monotonic() - stopped_at

        for _ in range(60):  # the replay runs at the writer's next flush
            if not len(sampler.writer.spool):
                break
            await asyncio.sleep(0.5)
        assert len(sampler.writer.spool) == 0, "the spool was not replayed"
        await asyncio.sleep(2)  # sampling goes on after the replay

    produced = recorder.produced
    stored = stored_snapshots(outage_db, "h-outage")
    stored_counts = Counter(stored)
    assert max(stored_counts.values()) == 1  # exactly once
    assert set(stored) == set(produced)  # nothing lost
    by_type = Counter(kind for kind, _ in stored)
    assert set(by_type) == set(METRIC_TYPES)
    for kind in METRIC_TYPES:  # every type at 1 s, through the whole outage
        assert by_type[kind] >= outage + 4, (kind, by_type, outage)
    assert sampler.writer.stats.replayed >= spooled_during_outage
    assert sampler.writer.spool.dropped == 0


def _sampler_process(database_url: str, data_dir: Path, host: str) -> subprocess.Popen[str]:
    env = subprocess_env(
        database_url, data_dir, PERFWATCH_HOSTNAME=host, DB_CONNECT_TIMEOUT="2", LOG_LEVEL="INFO"
    )
    return subprocess.Popen(
        [str(BIN_DIR / "perfwatch"), "sampler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return bool(condition())


def test_snapshots_spooled_before_a_kill_9_arrive_after_the_restart(
    stoppable_postgres: StoppablePostgres, outage_db: str, tmp_path: Path
) -> None:
    host = "h-kill9"
    run_async(_set_fast_batches(outage_db))
    spool_file = tmp_path / SPOOL_FILE
    sampler = _sampler_process(outage_db, tmp_path, host)
    try:
        assert _wait(lambda: len(stored_snapshots(outage_db, host)) >= 7, 20), "no writes"
        stoppable_postgres.stop()
        try:
            assert _wait(lambda: len(spooled_keys(spool_file)) >= 30, 30), "nothing spooled"
            sampler.send_signal(signal.SIGKILL)
            sampler.wait(timeout=10)
            spooled = spooled_keys(spool_file)
        finally:
            stoppable_postgres.start()
        assert len(spooled) >= 30
        stored_before_restart = set(stored_snapshots(outage_db, host))
        assert not set(spooled) & stored_before_restart  # they really were only on disk

        sampler = _sampler_process(outage_db, tmp_path, host)
        assert _wait(lambda: set(spooled) <= set(stored_snapshots(outage_db, host)), 30), (
            "spooled snapshots did not arrive after the restart"
        )
        sampler.send_signal(signal.SIGTERM)
        output, _ = sampler.communicate(timeout=30)
        assert sampler.returncode == 0, output
        assert "sampler stopped" in output
    finally:
        if sampler.poll() is None:
            sampler.kill()
            sampler.wait()
    stored = stored_snapshots(outage_db, host)
    assert max(Counter(stored).values()) == 1
    assert spooled_keys(spool_file) == []  # replayed and acknowledged


async def _set_fast_batches(url: str) -> None:
    engine = build_engine(make_settings(url))
    try:
        await set_config(
            make_sessionmaker(engine), {**every_interval(1), "sampler.batch.max_seconds": 1}
        )
    finally:
        await engine.dispose()
