"""Running the ``perfwatch`` command line in tests: in-process, and checking its one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from typer.testing import CliRunner, Result

from perfwatch.cli import app
from perfwatch.config import get_settings
from tests.support.helpers import SETTINGS_VARIABLES, in_thread


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def invoke(args: list[str], database_url: str, data_dir: Path) -> Result:
    """Run the CLI in-process (CliRunner), in a worker thread because it calls asyncio.run."""
    env: dict[str, str | None] = dict.fromkeys(SETTINGS_VARIABLES, None)
    env.update(DATABASE_URL=database_url, PERFWATCH_DATA_DIR=str(data_dir))

    def call() -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, args, env=env)
        finally:
            get_settings.cache_clear()

    return in_thread(call)
