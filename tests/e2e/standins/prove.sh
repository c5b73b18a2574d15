#!/usr/bin/env bash
# tests/e2e/standins/prove.sh - smoke-test the stand-in images built by build.sh.
#
#   tests/e2e/standins/prove.sh [postgres] [redis] [python] [compose]   (default: all)
#
# postgres: POSTGRES_PASSWORD=secret + an initdb.d .sql (creates a role), .sh (records that
#           it ran) and .sql.gz; psql from another container on a user-defined network with a password
#           (and a wrong password must fail); version() says 16; `docker stop` must exit 0
#           with "database system is shut down"; a new container on the same volume must
#           skip initialization (init scripts not re-run). Also POSTGRES_USER/POSTGRES_DB.
# redis:    redis-cli ping from another container, with the default command and with a
#           compose-style `redis-server --maxmemory ...` command.
# python:   sys.version is 3.12, ssl imports, `pip download --no-deps six` from the index,
#           `python -m venv` + pip install inside the venv.
# compose:  `docker compose up --wait` of a small stack (postgres + redis with healthchecks
#           and an app built FROM the python stand-in), then down -v.
# Everything it creates is named pwsi-<pid>-* and removed at exit.
set -euo pipefail

NS=perfwatch-standin
ID=pwsi-$$
NET=$ID-net
VOL=$ID-pgdata
TMP=$(mktemp -d /tmp/$ID.XXXX)
FAILS=0 PASSES=0
WANT=("$@")
((${#WANT[@]})) || WANT=(postgres redis python compose)

ok() { PASSES=$((PASSES + 1)); printf 'ok   - %s\n' "$*"; }
bad() { FAILS=$((FAILS + 1)); printf 'FAIL - %s\n' "$*"; }
check() { # check DESCRIPTION CMD... : passes when CMD exits 0
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
cleanup() {
	local c
	for c in $(docker ps -aq --filter "name=^$ID-"); do docker rm -f "$c" >/dev/null 2>&1 || true; done
	if [[ -f $TMP/compose/compose.yaml ]]; then
		docker compose -p "$ID" -f "$TMP/compose/compose.yaml" down -v --rmi local >/dev/null 2>&1 || true
	fi
	docker network rm "$NET" >/dev/null 2>&1 || true
	docker volume rm "$VOL" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# wait_for SECONDS CMD...
wait_for() {
	local n=$(($1 * 2))
	shift
	while ((n-- > 0)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}

docker network create "$NET" >/dev/null

prove_postgres() {
	echo "# postgres ($NS/postgres:16)"
	local init=$TMP/initdb
	mkdir -p "$init"
	cat >"$init/10-role.sql" <<-'EOF'
		CREATE ROLE app_user LOGIN PASSWORD 'app-secret';
		CREATE TABLE init_runs (at timestamptz NOT NULL DEFAULT now());
	EOF
	cat >"$init/20-record.sh" <<-'EOF'
		#!/bin/bash
		set -e
		psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c 'INSERT INTO init_runs DEFAULT VALUES'
	EOF
	printf '%s\n' 'CREATE TABLE from_gz (i int);' | gzip >"$init/30-gz.sql.gz"
	chmod 755 "$TMP" "$init" "$init/20-record.sh"
	chmod 644 "$init/10-role.sql" "$init/30-gz.sql.gz"

	local run=(docker run -d --network "$NET" -e POSTGRES_PASSWORD=secret
		-v "$VOL:/var/lib/postgresql/data" -v "$init:/docker-entrypoint-initdb.d:ro" "$NS/postgres:16")
	local t0=$SECONDS
	"${run[@]:0:2}" --name "$ID-pg" "${run[@]:2}" >/dev/null
	# TCP check from another container: only true once the real server (not the socket-only
	# init server) is up.
	local cli=(docker run --rm --network "$NET" -e PGPASSWORD=secret "$NS/postgres:16")
	if wait_for 60 "${cli[@]}" pg_isready -q -h "$ID-pg" -U postgres; then
		ok "first start (initdb + init scripts) ready over the network in $((SECONDS - t0))s"
	else
		bad "postgres not ready within 60s"; docker logs "$ID-pg" 2>&1 | tail -n 30; return
	fi
	local v
	v=$("${cli[@]}" psql -h "$ID-pg" -U postgres -d postgres -Atc 'SELECT version()')
	echo "     version(): $v"
	check "SELECT version() says PostgreSQL 16" grep -q '^PostgreSQL 16\.' <<<"$v"
	check "role from initdb.d logs in with its password (scram)" \
		docker run --rm --network "$NET" -e PGPASSWORD=app-secret "$NS/postgres:16" \
		psql -h "$ID-pg" -U app_user -d postgres -Atc 'SELECT current_user'
	# shellcheck disable=SC2016 # $1..$4 are expanded by the inner bash
	check "wrong password is rejected" \
		bash -c '! docker run --rm --network "$1" -e PGPASSWORD=wrong "$2" psql -h "$3" -U postgres -d postgres -c "SELECT 1" 2>"$4/wrongpw.err"' \
		_ "$NET" "$NS/postgres:16" "$ID-pg" "$TMP"
	if grep -q 'password authentication failed' "$TMP/wrongpw.err"; then
		ok "  ... with 'password authentication failed'"
	else
		bad "  ... unexpected error: $(cat "$TMP/wrongpw.err")"
	fi
	check "remote connections use scram-sha-256 (pg_hba)" bash -c \
		"docker exec $ID-pg psql -U postgres -Atc \"SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND address = 'all'\" | grep -qx scram-sha-256"
	check "server runs as user postgres, listens on *" bash -c \
		"[[ \$(docker exec $ID-pg psql -U postgres -Atc 'SHOW listen_addresses') = '*' ]] && docker exec $ID-pg sh -c 'cat /proc/1/status' | grep -q '^Uid:[[:space:]]*70[[:space:]]'"
	check "psql/pg_isready on PATH in the image" docker exec "$ID-pg" sh -c 'command -v psql && command -v pg_isready && psql --version | grep -q " 16\."'
	check "*.sql.gz init script ran" bash -c \
		"[[ \$(docker exec $ID-pg psql -U postgres -Atc \"SELECT to_regclass('from_gz')\") = from_gz ]]"
	check "init scripts ran once" bash -c \
		"[[ \$(docker exec $ID-pg psql -U postgres -Atc 'SELECT count(*) FROM init_runs') = 1 ]]"

	t0=$SECONDS
	docker stop "$ID-pg" >/dev/null
	local code
	code=$(docker inspect -f '{{.State.ExitCode}}' "$ID-pg")
	echo "     docker stop took $((SECONDS - t0))s, exit code $code; last log lines:"
	docker logs "$ID-pg" 2>&1 | tail -n 4 | sed 's/^/       /'
	check "docker stop: exit code 0" test "$code" = 0
	check "docker stop: log says 'database system is shut down'" bash -c \
		"docker logs $ID-pg 2>&1 | tail -n 3 | grep -q 'database system is shut down'"
	check "fast shutdown (SIGINT), not killed" bash -c "docker logs $ID-pg 2>&1 | grep -q 'received fast shutdown request'"

	docker rm "$ID-pg" >/dev/null
	"${run[@]:0:2}" --name "$ID-pg2" "${run[@]:2}" >/dev/null
	if wait_for 60 "${cli[@]}" pg_isready -q -h "$ID-pg2" -U postgres; then
		ok "second container on the same volume is ready"
	else
		bad "second start not ready"; docker logs "$ID-pg2" 2>&1 | tail -n 30; return
	fi
	check "second start skipped initialization" bash -c \
		"docker logs $ID-pg2 2>&1 | grep -q 'Skipping initialization' && ! docker logs $ID-pg2 2>&1 | grep -q 'running /docker-entrypoint-initdb.d'"
	check "init scripts NOT re-run (init_runs still 1 row)" bash -c \
		"[[ \$(docker exec $ID-pg2 psql -U postgres -Atc 'SELECT count(*) FROM init_runs') = 1 ]]"
	docker stop "$ID-pg2" >/dev/null

	# POSTGRES_USER / POSTGRES_DB, fresh anonymous volume
	docker run -d --name "$ID-pg3" --network "$NET" -e POSTGRES_USER=perfwatch -e POSTGRES_PASSWORD=pw \
		-e POSTGRES_DB=perfwatch_db "$NS/postgres:16" >/dev/null
	if wait_for 60 docker run --rm --network "$NET" "$NS/postgres:16" pg_isready -q -h "$ID-pg3" -U perfwatch -d perfwatch_db; then
		check "POSTGRES_USER/POSTGRES_DB: superuser perfwatch owns database perfwatch_db" bash -c \
			"[[ \$(docker run --rm --network $NET -e PGPASSWORD=pw $NS/postgres:16 psql -h $ID-pg3 -U perfwatch -d perfwatch_db -Atc 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user') = t ]]"
	else
		bad "POSTGRES_USER/POSTGRES_DB container not ready"; docker logs "$ID-pg3" 2>&1 | tail -n 20
	fi
	check "no POSTGRES_PASSWORD: refuses to initialize (like the official image)" bash -c \
		"! docker run --rm $NS/postgres:16 >$TMP/nopw.log 2>&1 && grep -q 'superuser password is not specified' $TMP/nopw.log"
	docker rm -f -v "$ID-pg3" >/dev/null
}

prove_redis() {
	echo "# redis ($NS/redis:7)"
	docker run -d --name "$ID-redis" --network "$NET" "$NS/redis:7" >/dev/null
	local cli=(docker run --rm --network "$NET" "$NS/redis:7" redis-cli)
	wait_for 20 "${cli[@]}" -h "$ID-redis" ping || true
	local r
	r=$("${cli[@]}" -h "$ID-redis" ping 2>&1)
	check "redis-cli ping from another container (default CMD): $r" test "$r" = PONG
	check "redis-server runs as user redis" bash -c "docker exec $ID-redis grep -q '^Uid:[[:space:]]*999[[:space:]]' /proc/1/status"
	docker run -d --name "$ID-redis2" --network "$NET" "$NS/redis:7" \
		redis-server --maxmemory 64mb --maxmemory-policy allkeys-lru --appendonly yes >/dev/null
	wait_for 20 "${cli[@]}" -h "$ID-redis2" ping || true
	r=$("${cli[@]}" -h "$ID-redis2" ping 2>&1)
	check "compose-style command (redis-server --maxmemory ...): ping = $r" test "$r" = PONG
	check "  ... maxmemory-policy applied" bash -c \
		"${cli[*]} -h $ID-redis2 config get maxmemory-policy | grep -qx allkeys-lru"
	check "  ... appendonly data in /data" bash -c "sleep 1; docker exec $ID-redis2 ls /data | grep -q appendonly"
	docker rm -f -v "$ID-redis" "$ID-redis2" >/dev/null
}

prove_python() {
	echo "# python ($NS/python:3.12)"
	local v
	v=$(docker run --rm "$NS/python:3.12" python -c 'import sys, ssl; print(sys.version)')
	echo "     sys.version: $v"
	check "python -c 'import sys, ssl' is 3.12" grep -q '^3\.12\.' <<<"$v"
	check "python, python3, pip, pip3 on PATH" docker run --rm "$NS/python:3.12" sh -c \
		'command -v python && command -v python3 && command -v pip && command -v pip3 && pip --version'
	check "pip download --no-deps six -d /tmp (package index over TLS)" \
		docker run --rm "$NS/python:3.12" sh -c 'pip download -q --no-deps six -d /tmp && ls /tmp/six-*.whl'
	check "python -m venv + pip install inside the venv" docker run --rm "$NS/python:3.12" sh -c \
		'python -m venv /tmp/v && /tmp/v/bin/pip install -q six && /tmp/v/bin/python -c "import six"'
}

prove_compose() {
	echo "# compose ($(docker compose version 2>&1))"
	local d=$TMP/compose
	mkdir -p "$d/app"
	cat >"$d/app/Dockerfile" <<-EOF
		FROM $NS/python:3.12
		RUN pip install -q --no-cache-dir six
		CMD ["python", "-c", "import six, time; print('app up', flush=True); time.sleep(3600)"]
	EOF
	cat >"$d/compose.yaml" <<-EOF
		services:
		  db:
		    image: $NS/postgres:16
		    environment: {POSTGRES_USER: perfwatch, POSTGRES_PASSWORD: perfwatch, POSTGRES_DB: perfwatch}
		    healthcheck:
		      test: ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U perfwatch -d perfwatch"]
		      interval: 1s
		      timeout: 3s
		      retries: 60
		  redis:
		    image: $NS/redis:7
		    command: redis-server --maxmemory 64mb --maxmemory-policy allkeys-lru
		    healthcheck:
		      test: ["CMD", "redis-cli", "ping"]
		      interval: 1s
		      timeout: 3s
		      retries: 30
		  app:
		    build: ./app
		    depends_on:
		      db: {condition: service_healthy}
		      redis: {condition: service_healthy}
		    healthcheck:
		      test: ["CMD", "python", "-c", "import socket; socket.create_connection(('db', 5432), 2); socket.create_connection(('redis', 6379), 2)"]
		      interval: 1s
		      timeout: 3s
		      retries: 30
	EOF
	local t0=$SECONDS
	if docker compose -p "$ID" -f "$d/compose.yaml" up -d --build --wait >"$TMP/compose.log" 2>&1; then
		ok "docker compose up --build --wait: all healthy in $((SECONDS - t0))s"
	else
		bad "docker compose up --wait failed"; tail -n 30 "$TMP/compose.log"
		docker compose -p "$ID" -f "$d/compose.yaml" logs 2>&1 | tail -n 30
	fi
	docker compose -p "$ID" -f "$d/compose.yaml" ps --format '{{.Service}}\t{{.Status}}' 2>/dev/null | sed 's/^/     /'
	check "docker compose down -v" docker compose -p "$ID" -f "$d/compose.yaml" down -v --rmi local -t 20 >/dev/null 2>&1
}

for w in "${WANT[@]}"; do "prove_$w"; done
echo "$PASSES passed, $FAILS failed"
((FAILS == 0))
