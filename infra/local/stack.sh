#!/usr/bin/env bash
# The local stack of football-prediction: PostgreSQL, Redis and the AWS emulator (moto), with the
# bucket, table and secrets the functions expect. Idempotent: running it again reuses what runs.
#
#   infra/local/stack.sh tools      install the pinned Python tools into .venv (cargo-lambda, moto, cfn-lint)
#   infra/local/stack.sh docs       the /docs page's pinned assets (npm ci in functions/health/docs-ui)
#   infra/local/stack.sh services   tools + PostgreSQL + Redis + emulator + AWS resources; writes .local/stack.env
#   infra/local/stack.sh stop       stop what this script started (never a server it did not start)
#   infra/local/stack.sh status
#
# PostgreSQL and Redis: those named by DATABASE_URL / REDIS_URL when given and reachable; otherwise
# project-local ones on free ports, data under .local/ (git-ignored).
#
# STACK_STATE=<dir> keeps a second, independent stack there (`make drills` uses .local/drills: its
# own PostgreSQL, Redis and emulator, which it may stop). STACK_PG_AUTH=scram makes a new
# project-local PostgreSQL check passwords (SCRAM-SHA-256) for every role but `postgres`, so that a
# rotated password really fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${STACK_STATE:-$ROOT/.local}"
VENV="$ROOT/.venv"
ENV_FILE="$STATE/stack.env"
mkdir -p "$STATE"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_open() { # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(0.5)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("open")
except OSError:
    pass
PY
}

# ---------------------------------------------------------------- tools
tools() {
  "$ROOT/infra/local/toolchain.sh"
  local stamp="$VENV/.requirements.sha256"
  local want; want="$(sha256sum "$ROOT/infra/local/requirements.txt" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  command -v python3 >/dev/null || die "python3 is required (Debian: python3 python3-venv)"
  log "installing pinned tools into .venv (cargo-lambda, moto, cfn-lint)"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/infra/local/requirements.txt"
  echo "$want" > "$stamp"
}

# The /docs page's assets (Swagger UI), pinned with integrity hashes in
# functions/health/docs-ui/package-lock.json and compiled into the health function: `npm ci`
# installs exactly those (no install scripts) before any cargo build needs them.
docs_assets() {
  local dir="$ROOT/functions/health/docs-ui"
  local stamp="$dir/node_modules/.lock.sha256"
  local want; want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  command -v npm >/dev/null || die "npm is required for the /docs assets (Debian: npm)"
  log "installing the /docs assets (npm ci in functions/health/docs-ui)"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$stamp"
}

# ---------------------------------------------------------------- PostgreSQL
pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    [[ -x "$d/initdb" ]] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return; }
  die "PostgreSQL server binaries not found (Debian: postgresql)"
}

pg_reachable() { # url
  "$(pg_bin)/psql" "$1" -tAc 'select 1' >/dev/null 2>&1
}

run_as_postgres() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_up() {
  # 1. The server the caller named.
  if [[ -n "${DATABASE_URL:-}" ]] && pg_reachable "$DATABASE_URL"; then
    PG_ADMIN_URL="$DATABASE_URL"
    log "PostgreSQL: using the server of DATABASE_URL"
    return
  fi
  [[ -n "${DATABASE_URL:-}" ]] && log "PostgreSQL: DATABASE_URL is not reachable; starting a project-local server"
  # 2. A project-local server.
  local bin data port_file port
  bin="$(pg_bin)"; data="$STATE/pg/data"; port_file="$STATE/pg/port"
  mkdir -p "$STATE/pg"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    log "PostgreSQL: initdb in .local/pg/data"
    mkdir -p "$data"
    [[ "$(id -u)" == 0 ]] && chown -R postgres:postgres "$STATE/pg"
    if [[ "${STACK_PG_AUTH:-trust}" == scram ]]; then
      run_as_postgres "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
      # the admin (migrations, drills) without a password; every other role must give its own
      printf 'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n' \
        > "$data/pg_hba.conf"
    else
      run_as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
  fi
  port="$(cat "$port_file" 2>/dev/null || true)"
  if [[ -n "$port" ]] && pg_reachable "postgres://postgres@127.0.0.1:$port/postgres"; then
    log "PostgreSQL: project-local server already running on $port"
  else
    port="$(free_port)"; echo "$port" > "$port_file"
    [[ "$(id -u)" == 0 ]] && chown -R postgres:postgres "$STATE/pg"
    run_as_postgres "$bin/pg_ctl" -D "$data" -l "$STATE/pg/server.log" -w -t 30 \
      -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off" start >/dev/null
    log "PostgreSQL: project-local server started on $port"
  fi
  PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# ---------------------------------------------------------------- Redis
redis_up() {
  if [[ -n "${REDIS_URL:-}" ]]; then
    local hp="${REDIS_URL#redis://}"; hp="${hp%%/*}"; hp="${hp##*@}"
    if [[ -n "$(port_open "${hp%%:*}" "${hp##*:}")" ]]; then
      CACHE_URL="$REDIS_URL"; log "Redis: using the server of REDIS_URL"; return
    fi
    log "Redis: REDIS_URL is not reachable; starting a project-local server"
  fi
  command -v redis-server >/dev/null || die "redis-server not found (Debian: redis-server)"
  local port_file="$STATE/redis/port" port
  mkdir -p "$STATE/redis"
  port="$(cat "$port_file" 2>/dev/null || true)"
  if [[ -n "$port" && -n "$(port_open 127.0.0.1 "$port")" ]]; then
    log "Redis: project-local server already running on $port"
  else
    port="$(free_port)"; echo "$port" > "$port_file"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$STATE/redis" --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log"
    for _ in $(seq 50); do [[ -n "$(port_open 127.0.0.1 "$port")" ]] && break; sleep 0.1; done
    log "Redis: project-local server started on $port"
  fi
  CACHE_URL="redis://127.0.0.1:$port"
}

# ---------------------------------------------------------------- AWS emulator
emulator_up() {
  local port_file="$STATE/moto/port" port
  mkdir -p "$STATE/moto"
  port="$(cat "$port_file" 2>/dev/null || true)"
  if [[ -n "$port" && -n "$(port_open 127.0.0.1 "$port")" ]]; then
    log "AWS emulator: already running on $port"
  else
    port="$(free_port)"; echo "$port" > "$port_file"
    # moto, one request at a time: DynamoDB applies a conditional write atomically, moto_server does not
    # (infra/local/aws_emulator.py says why that matters here).
    nohup "$VENV/bin/python" "$ROOT/infra/local/aws_emulator.py" 127.0.0.1 "$port" >"$STATE/moto/moto.log" 2>&1 &
    echo $! > "$STATE/moto/moto.pid"
    for _ in $(seq 100); do [[ -n "$(port_open 127.0.0.1 "$port")" ]] && break; sleep 0.1; done
    [[ -n "$(port_open 127.0.0.1 "$port")" ]] || die "the AWS emulator did not start (see .local/moto/moto.log)"
    log "AWS emulator: moto started on $port"
  fi
  EMULATOR_URL="http://127.0.0.1:$port"
}

# The local database's name: LOCAL_DB_NAME lets two checkouts share one PostgreSQL server.
DB_NAME="${LOCAL_DB_NAME:-football}"
[[ "$DB_NAME" =~ ^[a-z_][a-z0-9_]*$ ]] || die "LOCAL_DB_NAME must be a plain lower-case identifier"

write_env() {
  local db_url="${PG_ADMIN_URL%/*}/$DB_NAME"
  db_url="${db_url%%\?*}"
  cat > "$ENV_FILE" <<ENV
# Written by infra/local/stack.sh: the environment of the local functions and tests.
ENVIRONMENT=local
DATABASE_URL=$db_url
DATABASE_ADMIN_URL=$PG_ADMIN_URL
REDIS_URL=$CACHE_URL
AWS_ENDPOINT_URL=$EMULATOR_URL
AWS_REGION=eu-west-1
AWS_DEFAULT_REGION=eu-west-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
TABLE_NAME=football-prediction-local
BACKUP_BUCKET=football-prediction-backups-local
JWT_SECRET_ARN=football-prediction/local/jwt-signing-key
FIRST_ADMIN_SECRET_ARN=football-prediction/local/first-admin
FOOTBALL_DATA_TOKEN_SECRET_ARN=football-prediction/local/football-data-token
TEST_DATABASE_URL=$PG_ADMIN_URL
TEST_REDIS_URL=$CACHE_URL
ENV
}

services() {
  tools
  docs_assets
  postgres_up
  redis_up
  emulator_up
  write_env
  # The AWS resources the functions expect (the emulator forgets them when it restarts).
  set -a; . "$ENV_FILE"; set +a
  "$VENV/bin/python" "$ROOT/infra/local/bootstrap_aws.py"
  "$(pg_bin)/psql" "$PG_ADMIN_URL" -tAc "select 1 from pg_database where datname='$DB_NAME'" | grep -q 1 \
    || "$(pg_bin)/psql" "$PG_ADMIN_URL" -qc "create database $DB_NAME"
  log "ready: environment in .local/stack.env"
}

stop() {
  if [[ -f "$STATE/moto/moto.pid" ]]; then
    kill "$(cat "$STATE/moto/moto.pid")" 2>/dev/null || true; rm -f "$STATE/moto/moto.pid" "$STATE/moto/port"
    log "AWS emulator stopped"
  fi
  if [[ -f "$STATE/redis/redis.pid" ]]; then
    kill "$(cat "$STATE/redis/redis.pid")" 2>/dev/null || true; rm -f "$STATE/redis/port"
    log "project-local Redis stopped"
  fi
  if [[ -f "$STATE/pg/data/postmaster.pid" ]]; then
    run_as_postgres "$(pg_bin)/pg_ctl" -D "$STATE/pg/data" -m fast stop >/dev/null 2>&1 || true
    rm -f "$STATE/pg/port"
    log "project-local PostgreSQL stopped"
  fi
  if [[ -d "$STATE/release" ]]; then
    "$ROOT/infra/local/serve-release.sh" stop "$STATE" 2>/dev/null || true
  fi
  if [[ -f "$STATE/watch.pid" ]]; then
    kill -- "-$(cat "$STATE/watch.pid")" 2>/dev/null || kill "$(cat "$STATE/watch.pid")" 2>/dev/null || true
    rm -f "$STATE/watch.pid"; log "cargo lambda watch stopped"
  fi
}

status() {
  [[ -f "$ENV_FILE" ]] && cat "$ENV_FILE" || echo "not started"
}

case "${1:-services}" in
  tools) tools ;;
  services) services ;;
  docs) docs_assets ;;
  stop) stop ;;
  status) status ;;
  *) die "unknown command: $1 (tools, services, stop, status)" ;;
esac
