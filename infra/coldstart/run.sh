#!/usr/bin/env bash
# Cold start of each function against the hello-world lambda_http baseline, both built exactly as
# they ship: `cargo lambda build --release` (what `sam build` runs; the release profile of Cargo.toml
# with cargo-lambda's own additions), for this machine's architecture. Measured side by side
# (A B A B ...) by ../shared/tools/lambda-coldstart, which prints init_ms, warm_ms, warm_cpu_ms and
# the ratios to the baseline.
#   infra/coldstart/run.sh [function ...]     (default: every function under functions/)
#   RUNS=20 WARM=300 COLDSTART_NO_BUILD=1     (runs per binary, warm invocations, reuse the build)
# Needs the local stack's environment (.local/stack.env) so that the functions' config is valid;
# cold start touches no dependency, the event does (warm figures include its work).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TOOL="${COLDSTART_TOOL:-$ROOT/../shared/tools/lambda-coldstart}"
RUNS="${RUNS:-20}"
WARM="${WARM:-300}"
fns=("$@")
[[ ${#fns[@]} -gt 0 ]] || fns=($(ls functions))
set -a; . ./.local/stack.env; set +a
if [[ "${COLDSTART_NO_BUILD:-0}" != 1 ]]; then
  infra/local/serve-release.sh build hello-world "${fns[@]}"
fi
envs=()
for k in ENVIRONMENT DATABASE_URL REDIS_URL AWS_ENDPOINT_URL AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY TABLE_NAME BACKUP_BUCKET JWT_SECRET_ARN; do
  envs+=(--env "$k=${!k}")
done
mkdir -p .local/coldstart
for f in "${fns[@]}"; do
  event="events/$f.json"; [[ -f "$event" ]] || event="$(ls events/$f*.json 2>/dev/null | head -1)"
  [[ -n "$event" ]] || { echo "no event for $f" >&2; continue; }
  echo "== $f ($event)"
  python3 "$TOOL" --runs "$RUNS" --warm "$WARM" "${envs[@]}" --vs target/lambda/hello-world/bootstrap \
    "target/lambda/$f/bootstrap" "$event" | tee ".local/coldstart/$f.json"
done
