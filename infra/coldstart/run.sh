#!/usr/bin/env bash
# Cold start of each function's release binary against the hello-world lambda_http baseline, built
# with the same profile, measured side by side (A B A B ...) by ../shared/tools/lambda-coldstart.
#   infra/coldstart/run.sh [function ...]     (default: every function under functions/)
# Needs the local stack's environment (.local/stack.env) so that the functions' config is valid;
# cold start touches no dependency, the health event does (warm figures include the checks).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TOOL="${COLDSTART_TOOL:-$ROOT/../shared/tools/lambda-coldstart}"
RUNS="${RUNS:-20}"
fns=("$@")
[[ ${#fns[@]} -gt 0 ]] || fns=($(ls functions))
set -a; . ./.local/stack.env; set +a
cargo build --release -p hello-world $(printf -- '-p %s ' "${fns[@]}") >&2
envs=()
for k in ENVIRONMENT DATABASE_URL REDIS_URL AWS_ENDPOINT_URL AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY TABLE_NAME BACKUP_BUCKET JWT_SECRET_ARN; do
  envs+=(--env "$k=${!k}")
done
for f in "${fns[@]}"; do
  event="events/$f.json"; [[ -f "$event" ]] || event="$(ls events/$f*.json 2>/dev/null | head -1)"
  [[ -n "$event" ]] || { echo "no event for $f" >&2; continue; }
  echo "== $f ($event)"
  python3 "$TOOL" --runs "$RUNS" --warm 20 "${envs[@]}" --vs target/release/hello-world "target/release/$f" "$event"
done
