"""The ``perfwatch`` command line: the root app and where each command lives. Each command is a
thin shell over services and repositories."""

from __future__ import annotations

import sys

import typer

from perfwatch.cli.bootstrap import init, seed
from perfwatch.cli.config import config_app
from perfwatch.cli.db import db_app
from perfwatch.cli.serve import check, sampler_command, serve, wait
from perfwatch.cli.users import user_app
from perfwatch.config import SettingsError

app = typer.Typer(help="PerfWatch: self-hosted system-performance monitor.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(config_app, name="config")
app.command("init")(init)
app.command("seed")(seed)
app.command("check")(check)
app.command("wait")(wait)
app.command("sampler")(sampler_command)
app.command("serve")(serve)


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
