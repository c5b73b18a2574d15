#!/bin/sh
# Backend container start-up: wait for PostgreSQL and Redis, migrate (advisory-locked, so
# replicas starting together migrate once), initialise, then exec the server so that SIGTERM
# reaches uvicorn directly and shuts it down gracefully.
#
#   WAIT_TIMEOUT=60     seconds to wait for the database and Redis before giving up (exit 1)
#   RUN_MIGRATIONS=1    0 on extra replicas that must not migrate
#   RUN_INIT=1          0 to skip `perfwatch init` (admin user, default config and policies)
set -eu

log() { echo "entrypoint: $*" >&2; }

if [ "$#" -eq 0 ]; then
    set -- perfwatch serve --host 0.0.0.0 --port "${PERFWATCH_PORT:-8000}" --no-migrate
fi

# Anything other than the server (a shell, `alembic …`, `perfwatch …`) runs as asked.
case "$*" in
    "perfwatch serve"*) ;;
    *) exec "$@" ;;
esac

# No SECRET_KEY given: generate one on first start and keep it in the data volume, where the
# settings find it (also for `docker compose exec backend alembic …`).
data_dir="${PERFWATCH_DATA_DIR:-/var/lib/perfwatch}"
if [ -z "${SECRET_KEY:-}" ] && [ ! -s "$data_dir/secret_key" ]; then
    log "SECRET_KEY not set: generating one in $data_dir/secret_key"
    # Replicas sharing the volume may race here: mv -n lets the first key win for everyone.
    (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(48))' >"$data_dir/.secret_key.$$")
    mv -n "$data_dir/.secret_key.$$" "$data_dir/secret_key"
    rm -f "$data_dir/.secret_key.$$"
fi

log "waiting up to ${WAIT_TIMEOUT:-60} s for the database and Redis"
perfwatch wait --timeout "${WAIT_TIMEOUT:-60}"

if [ "${RUN_MIGRATIONS:-1}" != "0" ]; then
    log "alembic upgrade head"
    alembic upgrade head
else
    log "RUN_MIGRATIONS=0: not migrating"
fi

if [ "${RUN_INIT:-1}" != "0" ]; then
    perfwatch init
fi

log "starting: $*"
exec "$@"
