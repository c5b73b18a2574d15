"""Run Alembic programmatically (CLI, ``perfwatch serve``, tests)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

from perfwatch.config import Settings, get_settings


def find_alembic_ini() -> Path:
    """``$PERFWATCH_ALEMBIC_INI``, else ``./alembic.ini``, else the one beside the package."""
    candidates = [
        os.environ.get("PERFWATCH_ALEMBIC_INI"),
        Path.cwd() / "alembic.ini",
        Path(__file__).resolve().parents[2] / "alembic.ini",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "alembic.ini not found: run from backend/ or set PERFWATCH_ALEMBIC_INI to its path"
    )


def alembic_config(settings: Settings | None = None, *, configure_logging: bool = False) -> Config:
    """An Alembic config whose env.py reads the URL from ``settings`` (default: the environment)."""
    config = Config(str(find_alembic_ini()))
    config.attributes["configure_logging"] = configure_logging
    if settings is not None:
        config.attributes["settings"] = settings
    return config


def upgrade(revision: str = "head", settings: Settings | None = None) -> None:
    command.upgrade(alembic_config(settings or get_settings()), revision)


def downgrade(revision: str, settings: Settings | None = None) -> None:
    command.downgrade(alembic_config(settings or get_settings()), revision)
