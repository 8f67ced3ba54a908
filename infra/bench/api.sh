#!/usr/bin/env bash
# `make bench-api` (issue 13): requests per server CPU-second of the release functions under the
# guide's Locust mix, closed loop, and CPU ms per request route by route; the same for the FastAPI
# design (../shared/tools/seedstack) in the same run, and the ratio.
#
# A stack of its own under .local/bench (STACK_STATE): a project-local PostgreSQL, Redis and AWS
# emulator on free ports, so that the CPU counted is this benchmark's only. The functions are the
# `cargo lambda build` binaries (target/lambda/<fn>/bootstrap), served as Lambda runs them
# (infra/local/serve-release.sh: BENCH_INSTANCES processes per function polling `cargo lambda watch
# --only-lambda-apis`, which stands in for API Gateway), logging JSON as deployed.
#
# Measured with ../shared/tools/sidebyside: locust_closed.py (the mix of seedstack's locustfile.py,
# no think time) and locust_route.py (one route), under cpu_meter.py, which counts the CPU of each
# process tree while Locust runs. Server CPU = the function processes + PostgreSQL + Redis (the
# router and the emulator are reported apart, not counted), as sidebyside/run.sh counts it.
#
#   make bench-api                                  build (BENCH_PROFILE, default release) and run
#   BENCH_NO_BUILD=1 make bench-api                 reuse target/lambda/*/bootstrap
#   BENCH_PROFILE=profiling                         `cargo lambda build --profile profiling` (thin LTO)
#   USERS=20 SECONDS=60 WARMUP=10                   the mix: users, measured seconds, warm-up seconds
#   ROUTE_USERS=8 ROUTE_SECONDS=20                  each route alone (ROUTES="health_live health ...")
#   BENCH_INSTANCES=4                               instances per function
#   BENCH_SEEDSTACK=auto|start|0                    auto: measure seedstack when it answers on :8100;
#                                                   start: run its run.sh first when it does not; 0: never
#   BENCH_FP=path/to/fp                             fp for migrations and demo data (else built, profiling)
#   BENCH_KEEP=1                                    leave the benchmark's stack running afterwards
# Results: .local/bench/results/{project,seedstack}.*.json and a summary on stdout
# (.local/bench/results/summary.json). Not part of `make test`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
STATE="$ROOT/.local/bench"
OUT="$STATE/results"
FUNCTIONS=(health auth matches predictions admin)
USERS="${USERS:-20}"
# SECONDS is bash's own clock: read the caller's value from the environment, before it ticks
SECONDS_="$(printenv SECONDS || true)"; SECONDS_="${BENCH_SECONDS:-${SECONDS_:-60}}"
WARMUP="${WARMUP:-10}"
ROUTE_USERS="${ROUTE_USERS:-8}"
ROUTE_SECONDS="${ROUTE_SECONDS:-20}"
ROUTES="${ROUTES:-health_live health matches predict prediction_get}"
INSTANCES="${BENCH_INSTANCES:-4}"
PROFILE="${BENCH_PROFILE:-release}"
SEEDSTACK_MODE="${BENCH_SEEDSTACK:-auto}"
SEEDSTACK_DIR="${SEEDSTACK_DIR:-/tmp/seedstack}"
SEED_URL=http://127.0.0.1:8100
log() { printf '[bench] %s\n' "$*" >&2; }

# ../shared/tools from the main checkout or from a worktree under wt/
TOOLS="${SHARED_TOOLS:-}"
for d in "$ROOT/../shared/tools" "$ROOT/../../shared/tools"; do
  [[ -z "$TOOLS" && -d "$d/sidebyside" ]] && TOOLS="$(cd "$d" && pwd)"
done
[[ -n "$TOOLS" ]] || { log "../shared/tools not found (SHARED_TOOLS=...)"; exit 1; }
SBS="$TOOLS/sidebyside"
SEEDSTACK="$TOOLS/seedstack"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
PORT="${BENCH_PORT:-$(free_port)}"
BASE="http://127.0.0.1:$PORT"
mkdir -p "$STATE" "$OUT"

cleanup() {
  if [[ "${BENCH_KEEP:-0}" != 1 ]]; then
    infra/local/serve-release.sh stop "$STATE" 2>/dev/null || true
    STACK_STATE="$STATE" infra/local/stack.sh stop 2>/dev/null || true
  fi
}
trap cleanup EXIT

# 1. Locust (and psutil, which cpu_meter.py needs): the venv of seedstack, else one of ours.
VENV="${BENCH_VENV:-}"
if [[ -z "$VENV" ]]; then
  if [[ -x "$SEEDSTACK_DIR/venv/bin/locust" ]]; then VENV="$SEEDSTACK_DIR/venv"; else VENV="$STATE/venv"; fi
fi
if [[ ! -x "$VENV/bin/locust" ]]; then
  log "installing Locust ($SEEDSTACK/requirements-load.txt) into $VENV"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$SEEDSTACK/requirements-load.txt"
fi

# 2. The stack: our own PostgreSQL, Redis and emulator; schema and demo data.
env -u DATABASE_URL -u REDIS_URL STACK_STATE="$STATE" LOCAL_DB_NAME=football_bench infra/local/stack.sh services
set -a; . "$STATE/stack.env"; set +a
FP="${BENCH_FP:-}"
if [[ -z "$FP" ]]; then
  cargo build --quiet --profile profiling -p fp-cli
  FP="${CARGO_TARGET_DIR:-$ROOT/target}/profiling/fp"
fi
"$FP" db migrate >&2
"$FP" db seed-demo >&2
{ cat "$STATE/stack.env"; echo "AWS_LAMBDA_LOG_FORMAT=JSON"; echo "AWS_LAMBDA_LOG_LEVEL=INFO"; } > "$STATE/functions.env"

# 3. The functions, built as they ship (or with the profiling profile), served as Lambda runs them.
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
  if [[ "$PROFILE" == release ]]; then
    infra/local/serve-release.sh build "${FUNCTIONS[@]}"
  else
    PATH="$ROOT/.venv/bin:$PATH" .venv/bin/cargo-lambda lambda build --profile "$PROFILE" \
      $(printf -- '--package %s ' "${FUNCTIONS[@]}") >&2
  fi
fi
infra/local/serve-release.sh stop "$STATE" 2>/dev/null || true
infra/local/serve-release.sh start "$STATE" "$STATE/functions.env" "$PORT" "$INSTANCES" "${FUNCTIONS[@]}"
for _ in $(seq 60); do curl -fsS -o /dev/null "$BASE/health" && break; sleep 1; done
curl -fsS "$BASE/health" >&2; echo >&2

# 4. Seedstack: up already, or started by its own run.sh when asked.
seed_up() { curl -fsS -m 2 -o /dev/null "$SEED_URL/health/live" 2>/dev/null; }
SEED=0
if [[ "$SEEDSTACK_MODE" != 0 ]]; then
  if seed_up; then SEED=1
  elif [[ "$SEEDSTACK_MODE" == start ]]; then
    log "starting seedstack ($SEEDSTACK/run.sh)"; "$SEEDSTACK/run.sh" >&2 && SEED=1
  else
    log "seedstack is not answering on $SEED_URL: project only (BENCH_SEEDSTACK=start to start it)"
  fi
fi

project_roots() { # [function...]: one root per instance, PostgreSQL, Redis (+ router, emulator)
  local fn pid roots=()
  for fn in "$@"; do
    for pid in $(infra/local/serve-release.sh pids "$STATE" "$fn"); do roots+=(--root "fn:$fn:$pid=$pid"); done
  done
  roots+=(--root "pg=$(head -1 "$STATE/pg/data/postmaster.pid")")
  roots+=(--root "redis=$(cat "$STATE/redis/redis.pid")")
  roots+=(--root "router=$(cat "$STATE/release/watch.pid")")
  roots+=(--root "emulator=$(cat "$STATE/moto/moto.pid")")
  printf '%s\n' "${roots[@]}"
}
seed_roots() {
  printf '%s\n' --root "fn:uvicorn=$(cat "$SEEDSTACK_DIR/uvicorn.pid")" \
    --root "pg=$(head -1 "$SEEDSTACK_DIR/pg/data/postmaster.pid")" --root "redis=$(cat "$SEEDSTACK_DIR/redis.pid")"
}

# measure NAME HOST LOCUSTFILE USERS SECONDS ROOTS...: a warm-up, then Locust under cpu_meter.py
measure() {
  local name="$1" host="$2" file="$3" users="$4" secs="$5"; shift 5
  (cd "$OUT" && "$VENV/bin/locust" -f "$file" --headless -u "$users" -r "$users" -t "${WARMUP}s" -H "$host" \
     --only-summary > /dev/null 2>&1) || true
  (cd "$OUT" && "$VENV/bin/python" "$SBS/cpu_meter.py" "$@" -- sh -c "'$VENV/bin/locust' -f '$file' --headless \
     -u $users -r $users -t ${secs}s -H $host --csv $name --only-summary > $name.locust.txt 2>&1") > "$OUT/$name.cpu.json"
  log "$name: $(cat "$OUT/$name.cpu.json")"
}

# 5. The mix, then each route alone; the project, then seedstack.
mapfile -t ROOTS < <(project_roots "${FUNCTIONS[@]}")
measure project.mix "$BASE" "$SBS/locust_closed.py" "$USERS" "$SECONDS_" "${ROOTS[@]}"
if [[ "$SEED" == 1 ]]; then
  mapfile -t SROOTS < <(seed_roots)
  measure seedstack.mix "$SEED_URL" "$SBS/locust_closed.py" "$USERS" "$SECONDS_" "${SROOTS[@]}"
fi
declare -A ROUTE_FN=([health_live]=health [health]=health [matches]=matches [predict]=predictions [prediction_get]=predictions)
for route in $ROUTES; do
  mapfile -t ROOTS < <(project_roots "${ROUTE_FN[$route]}")
  export ROUTE="$route"
  measure "project.route.$route" "$BASE" "$SBS/locust_route.py" "$ROUTE_USERS" "$ROUTE_SECONDS" "${ROOTS[@]}"
  if [[ "$SEED" == 1 ]]; then
    measure "seedstack.route.$route" "$SEED_URL" "$SBS/locust_route.py" "$ROUTE_USERS" "$ROUTE_SECONDS" "${SROOTS[@]}"
  fi
done

# 6. The figures.
"$VENV/bin/python" "$ROOT/infra/bench/summary.py" "$OUT" "$SEED" $ROUTES | tee "$OUT/summary.txt"
