"""What the container start-up relies on: `perfwatch wait`, the generated secret key file,
scripts/write-env.sh and .env.example (the compose stack itself is tested by `make e2e`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from perfwatch.config import SECRET_KEY_FILE, Settings, SettingsError, load_settings
from tests.support.helpers import closed_redis_url, perfwatch, subprocess_env
from tests.support.services import REPO_ROOT, free_port


def test_wait_succeeds_when_database_and_redis_answer(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = subprocess_env(postgres_url, tmp_path / "data", REDIS_URL=redis_url)
    result = perfwatch("wait", "--timeout", "10", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "database and cache are reachable" in result.stdout


def test_wait_gives_up_after_its_timeout_and_names_what_is_unreachable(
    postgres_url: str, tmp_path: Path
) -> None:
    env = subprocess_env(postgres_url, tmp_path / "data", REDIS_URL=closed_redis_url())
    started = time.monotonic()
    result = perfwatch("wait", "--timeout", "3", env=env, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: gave up after 3 s; unreachable: redis (")
    assert "database" not in last  # the database answered
    assert "waiting 0.5 s for: redis" in result.stderr  # it retried with back-off
    assert elapsed < 20


def test_wait_returns_once_a_late_service_comes_up(postgres_url: str, tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is needed (apt-get install redis-server)"
    port = free_port()
    late: list[subprocess.Popen[bytes]] = []
    timer = threading.Timer(
        2.0,
        lambda: late.append(
            subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
                stdout=subprocess.DEVNULL,
            )
        ),
    )
    env = subprocess_env(postgres_url, tmp_path / "data", REDIS_URL=f"redis://127.0.0.1:{port}/0")
    timer.start()
    try:
        result = perfwatch("wait", "--timeout", "30", env=env, cwd=tmp_path)
    finally:
        timer.join()
        for process in late:
            process.terminate()
            process.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    assert "waiting" in result.stderr
    assert "database and cache are reachable" in result.stdout


def test_empty_secret_key_is_read_from_the_data_directory(tmp_path: Path) -> None:
    key = "k" * 48
    (tmp_path / SECRET_KEY_FILE).write_text(key + "\n")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        secret_key="",
        perfwatch_data_dir=tmp_path,
    )
    assert settings.secret_key == key


def test_empty_secret_key_without_a_key_file_is_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY must be set"):
        load_settings(environment="production", secret_key="", perfwatch_data_dir=tmp_path)


def test_write_env_creates_random_secrets_once(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO_ROOT / "scripts" / "write-env.sh", tmp_path / "scripts" / "write-env.sh")
    script = tmp_path / "scripts" / "write-env.sh"

    first = subprocess.run([str(script)], capture_output=True, text=True, check=True)
    assert "wrote .env" in first.stdout
    written = (tmp_path / ".env").read_text()
    values = dict(re.findall(r"^([A-Z_]+)=(.*)$", written, re.MULTILINE))
    assert values["ENVIRONMENT"] == "production"
    assert len(values["SECRET_KEY"]) >= 32
    assert len(values["POSTGRES_PASSWORD"]) >= 32
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0  # readable by its owner only

    second = subprocess.run([str(script)], capture_output=True, text=True, check=True)
    assert "leaving it as it is" in second.stdout
    assert (tmp_path / ".env").read_text() == written

    (tmp_path / ".env").unlink()
    subprocess.run([str(script)], capture_output=True, text=True, check=True)
    again = dict(re.findall(r"^([A-Z_]+)=(.*)$", (tmp_path / ".env").read_text(), re.MULTILINE))
    assert again["SECRET_KEY"] != values["SECRET_KEY"]  # random, not a shipped default


def test_env_example_documents_every_setting() -> None:
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (REPO_ROOT / ".env.example").read_text(), re.M)
    )
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_entrypoint_and_scripts_are_valid_shell() -> None:
    for script in ("docker/backend/entrypoint.sh", "scripts/write-env.sh", "scripts/pg16.sh"):
        shell = "sh" if script.endswith("entrypoint.sh") else "bash"
        result = subprocess.run(
            [shell, "-n", str(REPO_ROOT / script)], capture_output=True, text=True
        )
        assert result.returncode == 0, f"{script}: {result.stderr}"
