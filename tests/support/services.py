"""Real services for the test run: a throwaway PostgreSQL 16 and Redis unless the environment
names existing ones (TEST_DATABASE_URL / TEST_REDIS_URL).

With PERFWATCH_REQUIRE_SERVICES=1 (set by CI) a service that cannot be provided fails the run
instead of skipping the tests that need it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PG16_SCRIPT = REPO_ROOT / "scripts" / "pg16.sh"
# Parallel runs (e.g. two developers on one server) can pick distinct names.
TEST_DATABASE_NAME = os.environ.get("PERFWATCH_TEST_DB", "perfwatch_test")


def services_required() -> bool:
    return os.environ.get("PERFWATCH_REQUIRE_SERVICES", "") not in ("", "0", "false")


def unavailable(reason: str) -> None:
    """Skip, or fail when CI requires every service."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """The admin URL of a server; tests get databases of their own on it."""

    admin_url: str
    started_here: bool = False
    problem: str | None = None

    def url_for(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def stop(self) -> None:
        if self.started_here:
            subprocess.run([str(PG16_SCRIPT), "stop"], check=False, capture_output=True)


def start_postgres() -> PostgresServer:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return PostgresServer(admin_url=explicit)
    already_running = (
        subprocess.run([str(PG16_SCRIPT), "status"], capture_output=True, check=False).returncode
        == 0
    )
    try:
        subprocess.run(
            [str(PG16_SCRIPT), "start"], check=True, capture_output=True, text=True, timeout=300
        )
        url = subprocess.run(
            [str(PG16_SCRIPT), "url"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return PostgresServer(
            admin_url="", problem=f"could not start PostgreSQL 16: {detail.strip()}"
        )
    # A server that was already up (another run, a developer) is left running afterwards.
    return PostgresServer(admin_url=url, started_here=not already_running)


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen[bytes] | None = None
    problem: str | None = None
    port: int = 0
    argv: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the server (tests use this to simulate an outage)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def start(self) -> None:
        """(Re)start a server this run launched, on the same port."""
        if not self.argv:
            raise RuntimeError("only a Redis started by the test run can be restarted")
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _wait_for_port(self.port)


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def start_redis() -> RedisServer:
    explicit = os.environ.get("TEST_REDIS_URL")
    if explicit:
        return RedisServer(url=explicit)
    binary = shutil.which("redis-server")
    if binary is None:
        return RedisServer(
            url="", problem="redis-server is not installed (apt-get install redis-server)"
        )
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port, argv=argv)
    try:
        server.start()
    except (OSError, TimeoutError) as exc:
        return RedisServer(url="", problem=f"could not start redis-server: {exc}")
    return server


def start_private_redis() -> RedisServer:
    """A redis-server of the calling test's own (the test stops and restarts it at will)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    server = RedisServer(
        url=f"redis://127.0.0.1:{port}/0",
        port=port,
        argv=[binary or "", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
    )
    server.start()
    return server
