#!/usr/bin/env bash
# `make drills`: the failure drills of docs/operations.md against the release build.
#
# Brings up a stack of its own under .local/drills (STACK_STATE): a project-local PostgreSQL that
# checks passwords (SCRAM) and that the drills stop, a project-local Redis and AWS emulator, each
# on a free port of its own, never the machine's shared servers. Migrates and seeds the demo data
# as `postgres`; the functions connect as a login user of the least-privilege roles whose
# credentials are a secret in the emulator (DATABASE_SECRET_ARN), so that a rotation is real.
# Builds the functions with `cargo lambda build --release` and serves those binaries
# (infra/local/serve-release.sh), then runs infra/drills/drills.py and prints its table.
#
#   infra/drills/run.sh                      everything (DRILLS=panic,redis-stopped,... for some)
#   DRILL_NO_BUILD=1 infra/drills/run.sh     reuse target/lambda/*/bootstrap
#   DRILL_KEEP=1 infra/drills/run.sh         leave the stack running afterwards
#   DRILL_FP=path/to/fp infra/drills/run.sh  use that fp for the migrations and demo data
#   DRILL_ARGS='--kill-after 0.05'          more options of drills.py
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
STATE="$ROOT/.local/drills"
FUNCTIONS=(health auth matches predictions admin backup ingest)
DB_USER=football_drill
mkdir -p "$STATE"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
PORT="${DRILL_PORT:-$(free_port)}"
FAKE_PORT="$(free_port)"

cleanup() {
  if [[ "${DRILL_KEEP:-0}" != 1 ]]; then
    infra/local/serve-release.sh stop "$STATE" || true
    STACK_STATE="$STATE" infra/local/stack.sh stop || true
  fi
}
trap cleanup EXIT

# 1. The stack: our own PostgreSQL (SCRAM), Redis and emulator.
env -u DATABASE_URL -u REDIS_URL STACK_STATE="$STATE" STACK_PG_AUTH=scram LOCAL_DB_NAME=football_drills \
  infra/local/stack.sh services
set -a; . "$STATE/stack.env"; set +a
PG_BIN="$(dirname "$(command -v psql)")"
[[ -x /usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -1)/bin/pg_ctl ]] \
  && PG_BIN="/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -1)/bin"

# 2. Schema and demo data as the admin; the functions' login user with its secret.
FP="${DRILL_FP:-}"   # an fp binary already built (DRILL_FP=path), else the debug build
if [[ -z "$FP" ]]; then cargo build --quiet -p fp-cli; FP=./target/debug/fp; fi
"$FP" db migrate
"$FP" db seed-demo
PASSWORD="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
psql "$DATABASE_URL" -qtAc "select 1 from pg_roles where rolname = '$DB_USER'" | grep -q 1 \
  || psql "$DATABASE_URL" -qc "create role $DB_USER login"
# the API's DML and the backup job's reads (one user serves every function here) and CREATEDB
# for the restore drill's scratch database
psql "$DATABASE_URL" -qc "alter role $DB_USER with login createdb password '$PASSWORD'" \
  -c "grant football_app, football_backup to $DB_USER"
PG_PORT="$(cat "$STATE/pg/port")"
SECRET_NAME=football-prediction/local/database
.venv/bin/python - "$SECRET_NAME" "$DB_USER" "$PASSWORD" "$PG_PORT" "${DATABASE_URL##*/}" <<'PY'
import json, os, sys
import boto3
name, user, password, port, db = sys.argv[1:]
sm = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
value = json.dumps({"username": user, "password": password, "host": "127.0.0.1", "port": int(port), "dbname": db})
try:
    sm.create_secret(Name=name, SecretString=value)
except sm.exceptions.ResourceExistsException:
    sm.put_secret_value(SecretId=name, SecretString=value)
PY
{
  grep -v '^DATABASE_URL=' "$STATE/stack.env"
  echo "DATABASE_SECRET_ARN=$SECRET_NAME"
  echo "DATABASE_SSL_MODE=disable"
  echo "FOOTBALL_DATA_BASE_URL=http://127.0.0.1:$FAKE_PORT"
  echo "FOOTBALL_DATA_TOKEN=drill-token"
  echo "JOB_LOCAL_BUDGET_SECS=30"
  echo "AWS_LAMBDA_LOG_FORMAT=JSON"
} > "$STATE/functions.env"
# the ingest job reads the token secret first when its ARN is set: the fake needs none
sed -i '/^FOOTBALL_DATA_TOKEN_SECRET_ARN=/d' "$STATE/functions.env"

# 3. The release build, served as Lambda runs it.
if [[ "${DRILL_NO_BUILD:-0}" != 1 ]]; then
  infra/local/serve-release.sh build "${FUNCTIONS[@]}"
fi
infra/local/serve-release.sh start "$STATE" "$STATE/functions.env" "$PORT" 2 health auth matches predictions admin
infra/local/serve-release.sh start "$STATE" "$STATE/functions.env" "$PORT" 1 backup ingest
for _ in $(seq 60); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 1; done
curl -sS "http://127.0.0.1:$PORT/health"; echo

# 4. The drills.
.venv/bin/python infra/drills/drills.py --state "$STATE" --port "$PORT" --pg-bin "$PG_BIN" --db-user "$DB_USER" \
  --fake-port "$FAKE_PORT" --only "${DRILLS:-}" --json "$STATE/results.json" ${DRILL_ARGS:-}
