"""End-to-end: the real docker-compose.yml, brought up with stand-in images (no registry here).

The tests run in file order against one stack: each step builds on the state the previous one
left, as an operator's session would.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from perfwatch.bootstrap.defaults import DEFAULT_POLICIES
from perfwatch.contract.metrics import METRIC_TYPES
from perfwatch.contract.runtime_config import KNOWN_KEYS
from tests.e2e.compose import Stack, build_standins, http_get, wait_for_status
from tests.support.services import REPO_ROOT, free_port

SERVICES = {"db", "redis", "backend"}
APP_TABLES = {"users", "metric_snapshots", "config_entries", "archive_policies", "alembic_version"}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    build_standins()
    stack = Stack()
    stack.run("build", timeout=1200)
    try:
        yield stack
    finally:
        stack.run("down", "-v", "--remove-orphans", check=False, timeout=300)


def test_compose_config_is_valid_without_env_and_defaults_to_public_images() -> None:
    build_standins()  # installs Docker and the compose plugin on a fresh machine
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run(
        ["docker", "compose", "--env-file", "/dev/null", "config", "--format", "json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert services["db"]["image"] == "postgres:16-alpine"
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["backend"]["build"]["args"]["PYTHON_IMAGE"] == "python:3.12-slim"
    # Nothing is published beyond loopback by default; db and redis are not published at all.
    assert [p["host_ip"] for p in services["backend"]["ports"]] == ["127.0.0.1"]
    assert "ports" not in services["db"] and "ports" not in services["redis"]


def test_all_containers_healthy_within_90_seconds_of_up(stack: Stack) -> None:
    stack.up_started = time.monotonic()
    stack.run("up", "-d")
    elapsed = stack.wait_healthy(SERVICES, timeout=90)
    assert elapsed <= 90


def test_snapshots_of_every_type_within_15_seconds_of_up(stack: Stack) -> None:
    query = "SELECT DISTINCT metric_type FROM metric_snapshots"
    while True:
        types = set(stack.psql(query).split())
        elapsed = time.monotonic() - stack.up_started
        if types >= set(METRIC_TYPES) or elapsed > 60:
            break
        time.sleep(0.5)
    assert types >= set(METRIC_TYPES), f"only {sorted(types)} after {elapsed:.0f} s"
    assert elapsed <= 15, f"every type took {elapsed:.1f} s after `up` (images already built)"


def test_the_sampler_observes_the_host_not_its_container(stack: Stack) -> None:
    backend_id = stack.run("ps", "-q", "backend").stdout.strip()
    # Host PIDs of the backend container's own processes.
    top = stack.run_docker("top", backend_id, "-eo", "pid").stdout.split()[1:]
    own_pids = {int(pid) for pid in top}
    document = json.loads(
        stack.psql(
            "SELECT metric_data FROM metric_snapshots WHERE metric_type = 'processes' "
            "ORDER BY captured_at DESC LIMIT 1"
        )
    )
    listed = {entry["pid"] for entry in document["top_memory"] + document["top_cpu"]}
    assert listed - own_pids, f"only the container's own processes listed: {document}"
    names = {entry["name"] for entry in document["top_memory"]}
    # The database and Redis live in other containers; top-N by memory shows one of them or
    # host processes; either way the whole host's table was counted.
    assert document["total"] >= len(psutil.pids()) // 2, (document["total"], len(psutil.pids()))
    assert names, document

    network = json.loads(
        stack.psql(
            "SELECT metric_data FROM metric_snapshots WHERE metric_type = 'network' "
            "ORDER BY captured_at DESC LIMIT 1"
        )
    )
    # docker0 exists in the host's network namespace only: the host's interfaces are read.
    assert "docker0" in network["interfaces"], sorted(network["interfaces"])
    disk = json.loads(
        stack.psql(
            "SELECT metric_data FROM metric_snapshots WHERE metric_type = 'disk' "
            "ORDER BY captured_at DESC LIMIT 1"
        )
    )
    mountpoints = {fs["mountpoint"] for fs in disk["usage"]}
    assert "/" in mountpoints or mountpoints, disk["usage"]


def test_admin_password_generated_and_printed_once_in_the_backend_log(stack: Stack) -> None:
    logs = stack.run("logs", "backend").stdout
    assert logs.count("Generated password for 'admin'") == 1


def test_alembic_upgrade_head_in_the_container_changes_nothing(stack: Stack) -> None:
    before = stack.psql("SELECT version_num FROM alembic_version")
    result = stack.run("exec", "-T", "backend", "alembic", "upgrade", "head")
    assert "Running upgrade" not in result.stdout + result.stderr
    assert stack.psql("SELECT version_num FROM alembic_version") == before != ""


def test_tables_init_data_and_init_db_sql(stack: Stack) -> None:
    listing = stack.run("exec", "-T", "db", "psql", "-U", "perfwatch", "-c", r"\dt").stdout
    for table in APP_TABLES:
        assert f" {table} " in listing, listing
    assert stack.psql("SELECT username || ':' || role FROM users WHERE deleted_at IS NULL") == (
        "admin:admin"
    )
    keys = set(stack.psql("SELECT key FROM config_entries").split())
    assert keys == set(KNOWN_KEYS)
    policies = set(stack.psql("SELECT metric_type FROM archive_policies").split())
    assert policies == {policy.metric_type for policy in DEFAULT_POLICIES}
    # init-db.sql: UTC for every session, and a read-only role that can read tables created
    # later by the migrations.
    assert stack.psql("SHOW timezone") == "UTC"
    assert (
        stack.psql(
            "SELECT has_table_privilege('perfwatch_readonly', 'metric_snapshots', 'SELECT'), "
            "has_table_privilege('perfwatch_readonly', 'config_entries', 'INSERT'), "
            "has_table_privilege('perfwatch_readonly', 'users', 'SELECT')"  # no password hashes
        )
        == "t|f|f"
    )


def test_backend_observes_host_processes(stack: Stack) -> None:
    # The redis-server process lives in another container: with the host's PID namespace the
    # backend sees it, which is what the sampler needs to report the host's processes.
    names = stack.run(
        "exec", "-T", "backend", "python", "-c",
        "import psutil; print('\\n'.join(sorted({p.name() for p in psutil.process_iter()})))",
    ).stdout.split()  # fmt: skip
    assert "redis-server" in names
    assert "postgres" in names
    user = stack.run("exec", "-T", "backend", "id", "-u").stdout.strip()
    assert user != "0", "the backend must not run as root"


def test_readiness_answers_200_through_the_published_port(stack: Stack) -> None:
    code, body = http_get(stack.url("/health/ready"))
    assert code == 200, body
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "ok"


def test_login_as_the_init_admin_and_read_the_latest_snapshot(stack: Stack) -> None:
    logs = stack.run("logs", "backend").stdout
    found = re.search(r"Generated password for 'admin' \(shown once, store it now\): (\S+)", logs)
    assert found, logs[-3000:]
    form = urllib.parse.urlencode({"username": "admin", "password": found.group(1)}).encode()
    login = urllib.request.Request(
        stack.url("/api/v1/auth/login"),
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(login, timeout=30) as response:
        token = json.loads(response.read())["access_token"]
    latest = urllib.request.Request(
        stack.url("/api/v1/metrics/latest?type=cpu"), headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(latest, timeout=10) as response:
        assert response.headers["X-Cache"] == "hit"  # the sampler keeps it in Redis
        snapshot = json.loads(response.read())
    assert snapshot["metric_type"] == "cpu"
    assert 0 <= snapshot["data"]["percent"] <= 100
    age = time.time() - datetime.fromisoformat(snapshot["captured_at"]).timestamp()
    assert age < 10, snapshot["captured_at"]


def test_restart_and_down_up_keep_the_data(stack: Stack) -> None:
    started = time.monotonic()
    stack.run("restart", "backend")
    # SIGTERM reached uvicorn (exec'd by the entrypoint), which shut down cleanly rather
    # than being killed at the end of the 20 s grace period.
    assert time.monotonic() - started < 15
    assert "Application shutdown complete" in stack.run("logs", "backend").stdout
    stack.wait_healthy(SERVICES, timeout=90)
    stack.run("exec", "-T", "backend", "perfwatch", "config", "set", "e2e.marker", "42")
    admin_hash = stack.psql("SELECT password_hash FROM users WHERE username = 'admin'")

    stack.run("down")
    stack.run("up", "-d")
    stack.wait_healthy(SERVICES, timeout=90)

    assert stack.psql("SELECT value FROM config_entries WHERE key = 'e2e.marker'") == "42"
    assert stack.psql("SELECT password_hash FROM users WHERE username = 'admin'") == admin_hash
    assert "admin user 'admin' (exists)" in stack.run("logs", "backend").stdout


def test_database_outage_is_reported_and_survived(stack: Stack) -> None:
    backend_id = stack.run("ps", "-q", "backend").stdout.strip()
    stopped_at = stack.psql("SELECT now()")
    stack.run("stop", "db")
    elapsed, body = wait_for_status(stack.url("/health/ready"), 503, timeout=15)
    assert elapsed <= 15
    assert body["failed"] == ["database"]
    time.sleep(8)
    _, body = http_get(stack.url("/health/ready"))
    assert body["sampler"]["spool_rows"] > 0, body["sampler"]  # sampling goes on, to disk
    state = json.loads(
        subprocess.run(
            ["docker", "inspect", "--format", "{{json .State}}", backend_id],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    assert state["Running"] is True and state["Restarting"] is False

    stack.run("start", "db")
    wait_for_status(stack.url("/health/ready"), 200, timeout=60)
    assert stack.run("ps", "-q", "backend").stdout.strip() == backend_id  # same container
    restarted_at = stack.psql("SELECT now()")
    # What was sampled while the database was down arrives once it is back: one cpu snapshot
    # per second of the outage (less a few seconds of slack at both ends).
    outage = float(
        stack.psql(f"SELECT extract(epoch FROM timestamptz '{restarted_at}' - '{stopped_at}')")
    )
    query = (
        "SELECT count(*) FROM metric_snapshots WHERE metric_type = 'cpu' "
        f"AND captured_at BETWEEN '{stopped_at}' AND '{restarted_at}'"
    )
    deadline = time.monotonic() + 30
    while int(stack.psql(query)) < outage - 4 and time.monotonic() < deadline:
        time.sleep(1)
    assert int(stack.psql(query)) >= outage - 4, (stack.psql(query), outage)
    _, body = http_get(stack.url("/health/ready"))
    assert body["sampler"]["spool_rows"] == 0
    assert body["sampler"]["writer"]["replayed"] > 0


def test_an_archive_policy_archives_a_back_dated_day_and_drops_its_partition(
    stack: Stack,
) -> None:
    # Three days of cpu history for a host of its own, then a policy keeping one day of raw
    # cpu and archiving what leaves it: the day before yesterday must end up in the archive
    # volume, verified, and its (day, type) partition gone.
    stack.run(
        "exec", "-T", "backend", "perfwatch", "seed", "--days", "3", "--interval", "60",
        "--host", "e2e-archive", timeout=300,
    )  # fmt: skip
    stack.psql(
        "INSERT INTO archive_policies (id, metric_type, raw_days, minute_days, retention_days, "
        "action, enabled) VALUES (gen_random_uuid(), 'cpu', 1, 30, 730, 'archive', true) "
        "ON CONFLICT (metric_type) DO UPDATE SET raw_days = 1, action = 'archive'"
    )
    day = stack.psql("SELECT to_char((now() AT TIME ZONE 'UTC')::date - 2, 'YYYY-MM-DD')")
    partition = f"metric_snapshots_p{day.replace('-', '')}_cpu"
    assert stack.psql(f"SELECT to_regclass('{partition}') IS NOT NULL") == "t"
    seeded = int(stack.psql(f"SELECT count(*) FROM {partition} WHERE host = 'e2e-archive'"))
    assert seeded > 0

    # A dry run changes nothing (the seeded minutes may still await the tier job: what it
    # lists depends on that, so only "nothing changed" is checked here).
    stack.run("exec", "-T", "backend", "perfwatch", "retention", "run", "--dry-run")
    assert stack.psql(f"SELECT to_regclass('{partition}') IS NOT NULL") == "t"

    # By hand: rolls the seeded history up into the tiers first, then archives and drops.
    ran = stack.run("exec", "-T", "backend", "perfwatch", "retention", "run", timeout=600)
    assert any(line.startswith(f"raw cpu {day}") for line in ran.stdout.splitlines()), ran.stdout
    assert stack.psql(f"SELECT to_regclass('{partition}') IS NULL") == "t"
    listed = json.loads(
        stack.run("exec", "-T", "backend", "perfwatch", "archive", "list", "--json").stdout
    )
    archived = [
        item
        for item in listed
        if item["host"] == "e2e-archive" and item["metric_type"] == "cpu" and item["day"] == day
    ]
    assert len(archived) == 1 and archived[0]["rows"] == seeded, listed
    # The file is in the archive volume and verifies against its manifest, read back anew.
    path = f"/var/lib/perfwatch-archive/e2e-archive/cpu/{day}.jsonl.zst"
    stack.run(
        "exec", "-T", "backend", "python", "-c",
        "from pathlib import Path; from perfwatch.retention.archive import verify; "
        f"print(verify(Path({path!r})).rows)",
    )  # fmt: skip


def test_two_backends_starting_together_migrate_once(stack: Stack, tmp_path: Path) -> None:
    stack.run("down", "-v")
    second_port = free_port()
    override = tmp_path / "second-backend.yml"
    override.write_text(
        "services:\n"
        "  backend2:\n"
        "    extends: {file: docker-compose.yml, service: backend}\n"
        f'    ports: !override ["127.0.0.1:{second_port}:8000"]\n'
    )
    stack.extra_files.append(override)
    try:
        stack.run("up", "-d", "--wait", "db", "redis")
        stack.run("up", "-d", "--no-deps", "backend", "backend2")  # the same moment
        stack.wait_healthy(SERVICES | {"backend2"}, timeout=120)

        migrated = [
            service
            for service in ("backend", "backend2")
            if "Running upgrade  -> " in stack.run("logs", service).stdout
        ]
        assert len(migrated) == 1, migrated
        assert stack.psql("SELECT count(*) FROM alembic_version") == "1"
        assert stack.psql("SELECT count(*) FROM users WHERE role = 'admin'") == "1"
        assert http_get(f"http://127.0.0.1:{second_port}/health/ready")[0] == 200
    finally:
        stack.run("down", "-v", "--remove-orphans")
        stack.extra_files.remove(override)


def test_down_v_leaves_nothing(stack: Stack) -> None:
    stack.run("up", "-d", "--wait")
    stack.run("down", "-v")
    label = f"label=com.docker.compose.project={stack.project}"
    for kind in (["ps", "-a"], ["volume", "ls"], ["network", "ls"]):
        listed = subprocess.run(
            ["docker", *kind, "-q", "--filter", label], capture_output=True, text=True, check=True
        ).stdout.split()
        assert listed == [], f"docker {' '.join(kind)} still lists {listed}"
