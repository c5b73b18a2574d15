"""Drive the real docker-compose.yml with the locally built stand-in images."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.services import REPO_ROOT, free_port

STANDINS = REPO_ROOT / "tests" / "e2e" / "standins"
STANDIN_IMAGES = {
    "POSTGRES_IMAGE": "perfwatch-standin/postgres:16",
    "REDIS_IMAGE": "perfwatch-standin/redis:7",
    "PYTHON_IMAGE": "perfwatch-standin/python:3.12",
}


def build_standins() -> None:
    """Install/start Docker if needed and build the stand-ins (cached: seconds when built)."""
    subprocess.run([str(STANDINS / "build.sh")], check=True, timeout=1800)


@dataclass
class Stack:
    """One compose project, isolated by its name, its ports and an empty env file."""

    project: str = field(default_factory=lambda: f"perfwatch-e2e-{uuid.uuid4().hex[:8]}")
    port: int = field(default_factory=free_port)
    env_file: Path = REPO_ROOT / ".cache" / "e2e-empty.env"
    extra_files: list[Path] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    # time.monotonic() when the test's `up` began (for "within N s of up" checks).
    up_started: float = 0.0

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # The developer's own compose settings must not leak into the test stack.
            if not key.startswith(("POSTGRES_", "REDIS_", "PERFWATCH_", "COMPOSE_", "ADMIN_"))
            and key not in {"DATABASE_URL", "SECRET_KEY", "ENVIRONMENT", "BACKEND_IMAGE"}
        }
        env.update(STANDIN_IMAGES)
        env.update(
            {
                # The stand-in PostgreSQL ships without pg_stat_statements.
                "POSTGRES_PRELOAD_LIBRARIES": "",
                "PERFWATCH_PORT": str(self.port),
                "BACKEND_IMAGE": "perfwatch-backend:e2e",
                "COMPOSE_PROJECT_NAME": self.project,
            }
        )
        env.update(self.variables)
        return env

    def command(self, *args: str) -> list[str]:
        files = ["-f", str(REPO_ROOT / "docker-compose.yml")]
        for extra in self.extra_files:
            files += ["-f", str(extra)]
        return [
            "docker", "compose", "--project-directory", str(REPO_ROOT),
            "--env-file", str(self.env_file), *files, *args,
        ]  # fmt: skip

    def run(
        self, *args: str, check: bool = True, timeout: float = 600, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        self.env_file.parent.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text("")
        result = subprocess.run(
            self.command(*args),
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
            )
        return result

    def run_docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A plain ``docker`` command (e.g. ``docker top``), failing the test on an error."""
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            command = " ".join(args)
            raise AssertionError(f"docker {command} exited {result.returncode}: {result.stderr}")
        return result

    def containers(self) -> list[dict[str, Any]]:
        output = self.run("ps", "--all", "--format", "json").stdout.strip()
        if not output:
            return []
        # Compose prints either one JSON array or one object per line, depending on version.
        if output.startswith("["):
            return list(json.loads(output))
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def health(self) -> dict[str, str]:
        return {c["Service"]: c.get("Health") or c.get("State", "") for c in self.containers()}

    def wait_healthy(self, services: set[str], timeout: float) -> float:
        """Seconds until every service in ``services`` is healthy; AssertionError on timeout."""
        started = time.monotonic()
        while True:
            health = self.health()
            if all(health.get(service) == "healthy" for service in services):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                logs = self.run("logs", "--tail", "60", check=False).stdout
                raise AssertionError(f"not healthy after {timeout} s: {health}\n{logs[-4000:]}")
            time.sleep(1)

    def psql(self, sql: str) -> str:
        return self.run(
            "exec", "-T", "db", "psql", "-U", "perfwatch", "-d", "perfwatch",
            "-v", "ON_ERROR_STOP=1", "-At", "-c", sql,
        ).stdout.strip()  # fmt: skip

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def http_get(url: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """Status and JSON body; (0, {}) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except OSError:
        return 0, {}


def wait_for_status(url: str, status: int, timeout: float) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    while True:
        code, body = http_get(url, timeout=3)
        if code == status:
            return time.monotonic() - started, body
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{url} answered {code} {body}, not {status}, for {timeout} s")
        time.sleep(0.5)
