"""The ``perfwatch`` command line: the root app and where each command lives. Each command is a
thin shell over services and repositories."""

from __future__ import annotations

import sys

import typer

from perfwatch import __version__
from perfwatch.cli.archive import archive_app
from perfwatch.cli.bootstrap import init, seed
from perfwatch.cli.config import config_app
from perfwatch.cli.db import db_app
from perfwatch.cli.retention import retention_app
from perfwatch.cli.retention_status import register as register_retention_status
from perfwatch.cli.serve import check, sampler_command, serve, wait
from perfwatch.cli.users import user_app
from perfwatch.config import SettingsError

# Plain (click) help: typer's rich help labels every flag, --help included, with a bogus `<bool>`
# as if it took a value (typer 0.29); the plain formatter lists flags without a type.
app = typer.Typer(
    help="PerfWatch: self-hosted system-performance monitor.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(config_app, name="config")
register_retention_status(retention_app)
app.add_typer(retention_app, name="retention")
app.add_typer(archive_app, name="archive")
app.command("init")(init)
app.command("seed")(seed)
app.command("check")(check)
app.command("wait")(wait)
app.command("sampler")(sampler_command)
app.command("serve")(serve)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"perfwatch {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Show the version and exit.",
    ),
) -> None:
    pass  # the root has only options; the app's help= describes it


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
