"""``perfwatch user``: accounts, from the shell of the machine that runs PerfWatch."""

from __future__ import annotations

import asyncio

import typer
from redis.exceptions import RedisError

from perfwatch.auth.revocation import revoke_tokens_issued_before
from perfwatch.auth.throttle import unlock
from perfwatch.cache import build_cache
from perfwatch.cli.common import fail, run, settings
from perfwatch.db.session import Database, unit_of_work
from perfwatch.errors import ServiceUnavailableError
from perfwatch.models import UserRole
from perfwatch.users.service import UserService

user_app = typer.Typer(help="User accounts.", no_args_is_help=True)


@user_app.command("create")
def user_create(
    username: str,
    role: UserRole = typer.Option(UserRole.VIEWER, case_sensitive=False),
    email: str | None = typer.Option(None),
    full_name: str | None = typer.Option(None, "--full-name"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="PERFWATCH_NEW_PASSWORD"
    ),
) -> None:
    """Create a user.

    The password is asked for, or read from PERFWATCH_NEW_PASSWORD."""

    async def work(database: Database) -> str:
        async with unit_of_work(database.sessionmaker) as session:
            user = await UserService(session).create_user(
                username=username, password=password, role=role, email=email, full_name=full_name
            )
            return f"created user {user.username!r} ({user.role.value})"

    typer.echo(run(work))


@user_app.command("list")
def user_list(limit: int = typer.Option(100, min=1, max=1000)) -> None:
    """List users."""

    async def work(database: Database) -> list[str]:
        async with unit_of_work(database.sessionmaker) as session:
            page = await UserService(session).list_users(limit=limit)
        lines = [f"{'USERNAME':<24} {'ROLE':<8} {'ACTIVE':<7} {'LAST LOGIN'}"]
        for user in page.items:
            last = (
                user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
            )
            lines.append(
                f"{user.username:<24} {user.role.value:<8} {str(user.is_active).lower():<7} {last}"
            )
        lines.append(f"({page.total} user(s))")
        return lines

    typer.echo("\n".join(run(work)))


@user_app.command("set-password")
def user_set_password(
    username: str,
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="PERFWATCH_NEW_PASSWORD"
    ),
    keep_sessions: bool = typer.Option(
        False,
        "--keep-sessions",
        help="Do not sign the user out (when Redis is away and the password must change anyway).",
    ),
) -> None:
    """Set a user's password; sign out all their sessions."""
    current = settings()
    revoke = bool(current.redis_url) and not keep_sessions

    async def work(database: Database) -> None:
        cache = build_cache(current)
        try:
            async with unit_of_work(database.sessionmaker) as session:
                user = await UserService(session).set_password(username, password)
                if revoke:
                    # Before the commit: with Redis away this fails and the password stays.
                    try:
                        await revoke_tokens_issued_before(cache, current, user.id)
                    except ServiceUnavailableError as exc:
                        raise ServiceUnavailableError(
                            f"{exc.message}; --keep-sessions changes the password without "
                            "signing the user out"
                        ) from exc
        finally:
            await cache.close()

    run(work)
    typer.echo(f"password updated for {username!r}")
    if revoke:
        typer.echo("every token issued to this user before now is revoked")
    elif not current.redis_url:
        # The embedded cache lives inside the server process: this process cannot reach it.
        typer.echo(
            "note: without REDIS_URL the running server cannot be told; tokens already issued "
            f"stay valid until they expire (refresh tokens: {current.refresh_token_days:g} days); "
            "changing SECRET_KEY signs everybody out"
        )


@user_app.command("unlock")
def user_unlock(
    username: str,
    address: str | None = typer.Option(
        None, "--address", help="Also lift the throttle on this client address (any username)."
    ),
) -> None:
    """Lift a user's login throttling, from every address.

    Clears the failed-login counts in the server's Redis (REDIS_URL); the embedded in-process
    cache cannot be reached from here."""
    current = settings()
    if not current.redis_url:
        # The embedded cache lives inside the server process: this process cannot reach it.
        fail(
            "REDIS_URL is not set: the login throttling lives in the server's embedded "
            "in-process cache, which another process cannot reach; restarting the server "
            "clears it (or wait: each count ends 15 minutes after its first failure)"
        )

    async def work() -> int:
        cache = build_cache(current)
        try:
            return await unlock(cache, username, address=address)
        finally:
            await cache.close()

    try:
        failures = asyncio.run(work())
    except (RedisError, OSError) as exc:
        fail(f"cannot reach Redis (REDIS_URL): {exc}")
    lifted = f"{username!r}" + (f" and address {address}" if address else "")
    typer.echo(f"login throttling cleared for {lifted} ({failures} recent failed login(s))")
