#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for courier's tests, for CI and developers.
#
#   scripts/postgres.sh run CMD [ARGS...]   start a cluster, run CMD with
#                                           COURIER_POSTGRES_URL and
#                                           COURIER_POSTGRES_PASSWORD set,
#                                           stop the cluster (also on failure)
#   eval "$(scripts/postgres.sh start)"     start one and export its variables
#                                           (COURIER_POSTGRES_DIR too)
#   scripts/postgres.sh stop DIR            stop it and delete DIR
#
# The cluster lives in a new temporary directory, listens on 127.0.0.1 only,
# on a free port, with password (scram-sha-256) authentication over TCP and
# the server's default durability (fsync on, synchronous_commit on).
# PostgreSQL is installed from the Debian archive if it is missing. Run as
# root, the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return
  fi
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/pg_ctl" ]]; then
    echo "$dir"
  fi
}

ensure_installed() {
  if [[ -n "$(find_bin)" ]]; then
    return
  fi
  if [[ "$(id -u)" != 0 ]]; then
    log "PostgreSQL is not installed; run as root to install it, or install the 'postgresql' package"
    exit 1
  fi
  log "installing PostgreSQL from the Debian archive"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  if [[ -z "$(find_bin)" ]]; then
    log "PostgreSQL was installed but pg_ctl is not found"
    exit 1
  fi
}

# Runs a command as the user that owns the cluster.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  ensure_installed
  local bin dir port password
  bin="$(find_bin)"
  dir="$(mktemp -d "${TMPDIR:-/tmp}/courier-postgres.XXXXXX")"
  password="courier-$RANDOM$RANDOM$RANDOM"
  printf '%s\n' "$password" >"$dir/pwfile"
  if [[ "$(id -u)" == 0 ]]; then
    chown -R postgres: "$dir"
  fi
  chmod 700 "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  local started=""
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" && continue
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >&2; then
      started=1
      break
    fi
  done
  if [[ -z "$started" ]]; then
    log "the server did not start:"
    cat "$dir/server.log" >&2 || true
    exit 1
  fi
  log "PostgreSQL running in $dir on 127.0.0.1:$port"
  echo "export COURIER_POSTGRES_DIR='$dir'"
  echo "export COURIER_POSTGRES_URL='postgres://postgres@127.0.0.1:$port/postgres'"
  echo "export COURIER_POSTGRES_PASSWORD='$password'"
  echo "export COURIER_POSTGRES_BIN='$bin'"
}

stop() {
  local dir="$1" bin
  bin="$(find_bin)"
  if [[ -d "$dir/data" ]]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
  fi
  case "$dir" in
    */courier-postgres.*) rm -rf "$dir" ;;
    *) log "not deleting $dir: not a cluster made by this script" ;;
  esac
}

case "${1:-}" in
  start) start ;;
  stop)
    [[ $# -eq 2 ]] || { log "usage: $0 stop DIR"; exit 2; }
    stop "$2"
    ;;
  run)
    shift
    [[ $# -ge 1 ]] || { log "usage: $0 run CMD [ARGS...]"; exit 2; }
    eval "$(start)"
    trap 'stop "$COURIER_POSTGRES_DIR"' EXIT
    "$@"
    ;;
  *)
    log "usage: $0 start | stop DIR | run CMD [ARGS...]"
    exit 2
    ;;
esac
