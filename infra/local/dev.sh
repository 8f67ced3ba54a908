#!/usr/bin/env bash
# `make dev`: tools and services, one build of every binary, the database, then every function under
# `cargo lambda watch` in the foreground. When /health first answers it prints how long each phase
# took (the figures of the README's "First run" table).
#   infra/local/dev.sh <address> <port> <concurrency>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ADDR="${1:-127.0.0.1}" PORT="${2:-9000}" CONCURRENCY="${3:-4}"
mkdir -p .local
TIMES=.local/dev-times.txt
: > "$TIMES"
t0=$(date +%s)
phase() { # name command...
  local name="$1" start; shift
  start=$(date +%s)
  "$@"
  echo "$name $(( $(date +%s) - start ))" >> "$TIMES"
}
phase "tools, PostgreSQL, Redis, AWS emulator" infra/local/stack.sh services
phase "cargo build (fp and every function)" make --no-print-directory bins
load_env() { set -a; . ./.local/stack.env; set +a; }
phase "migrations and demo data" bash -c 'set -a; . ./.local/stack.env; set +a; ./target/debug/fp db migrate && ./target/debug/fp db seed-demo'
load_env
# Report the phases once /health answers (the watcher runs in the foreground below).
(
  start=$(date +%s)
  for _ in $(seq 300); do curl -fsS -o /dev/null "http://$ADDR:$PORT/health" 2>/dev/null && break; sleep 1; done
  echo "functions up, first /health $(( $(date +%s) - start ))" >> "$TIMES"
  {
    echo "[dev] ready in $(( $(date +%s) - t0 )) s (http://$ADDR:$PORT/health):"
    while read -r line; do printf '[dev]   %-45s %5s s\n' "${line% *}" "${line##* }"; done < "$TIMES"
  } >&2
) &
exec .venv/bin/cargo-lambda lambda watch --invoke-address "$ADDR" --invoke-port "$PORT" --concurrency "$CONCURRENCY" \
  --env-file .local/stack.env
