"""``perfwatch init``: idempotent and safe to run from several processes at once.

Each object is created only if missing. Concurrent runs are serialised by an advisory lock on
PostgreSQL; uniqueness constraints back that up, and a lost race is reported as "skipped".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from perfwatch.bootstrap.defaults import DEFAULT_POLICIES
from perfwatch.config import Environment, Settings
from perfwatch.config_store.repository import ConfigRepository
from perfwatch.contract.runtime_config import CATALOGUE
from perfwatch.errors import ConflictError, ValidationFailedError
from perfwatch.models import UserRole
from perfwatch.retention.repository import ArchivePolicyRepository
from perfwatch.users.passwords import check_password_strength, generate_password
from perfwatch.users.repository import UserRepository
from perfwatch.users.service import UserService

INIT_LOCK_KEY = 0x5046_494E_4954  # "PFINIT"


@dataclass
class InitReport:
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    generated_admin_password: str | None = None


async def initialise(session: AsyncSession, settings: Settings) -> InitReport:
    """Create what is missing. The caller's unit of work commits."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INIT_LOCK_KEY})
    elif dialect == "sqlite":
        # SQLite's BEGIN is deferred: a run that reads first and writes later fails with
        # "database is locked" when another run wrote in between. A write as the first statement
        # takes the write lock up front, so concurrent runs wait (busy_timeout) instead.
        await session.execute(text("DELETE FROM config_entries WHERE 1 = 0"))
    report = InitReport()
    await _ensure_admin(session, settings, report)
    await _ensure_config(session, report)
    await _ensure_policies(session, report)
    return report


async def _ensure_admin(session: AsyncSession, settings: Settings, report: InitReport) -> None:
    username = settings.admin_username
    label = f"admin user {username!r}"
    if await UserRepository(session).get_by_username(username, include_deleted=True) is not None:
        report.skipped.append(f"{label} (exists)")
        return
    password = settings.admin_password
    if password is None:
        password = generate_password()
        generated = True
    else:
        generated = False
        try:
            check_password_strength(password)
        except ValidationFailedError as exc:
            if settings.environment is Environment.PRODUCTION:
                raise ValidationFailedError(
                    f"ADMIN_PASSWORD refused in production: {exc}"
                ) from None
    try:
        await UserService(session).create_user(
            username=username,
            password=password,
            role=UserRole.ADMIN,
            email=settings.admin_email,
            full_name="Administrator",
            check_strength=False,
        )
    except ConflictError:
        report.skipped.append(f"{label} (created concurrently)")
        return
    report.created.append(label)
    if generated:
        report.generated_admin_password = password


async def _ensure_config(session: AsyncSession, report: InitReport) -> None:
    config = ConfigRepository(session)
    for default in CATALOGUE:
        label = f"config {default.key}"
        if await config.get(default.key) is not None:
            report.skipped.append(f"{label} (exists)")
            continue
        try:
            await config.create(
                key=default.key,
                value=default.default,
                description=default.description,
                updated_by="init",
            )
        except ConflictError:
            report.skipped.append(f"{label} (created concurrently)")
            continue
        report.created.append(label)


async def _ensure_policies(session: AsyncSession, report: InitReport) -> None:
    policies = ArchivePolicyRepository(session)
    for default in DEFAULT_POLICIES:
        label = f"archive policy {default.metric_type!r}"
        if await policies.get_by_metric_type(default.metric_type) is not None:
            report.skipped.append(f"{label} (exists)")
            continue
        try:
            await policies.create(
                metric_type=default.metric_type,
                raw_days=default.raw_days,
                minute_days=default.minute_days,
                retention_days=default.retention_days,
                action=default.action,
                enabled=True,
            )
        except ConflictError:
            report.skipped.append(f"{label} (created concurrently)")
            continue
        report.created.append(label)
