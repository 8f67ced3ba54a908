#!/usr/bin/env bash
# Serves the functions exactly as `cargo lambda build --release` builds them (what `sam build` ships,
# built for this machine's architecture): `cargo lambda watch --only-lambda-apis` emulates the
# Lambda runtime API and the HTTP API's routes (Cargo.toml's watch router), and each function runs
# as target/lambda/<function>/bootstrap processes that poll it, as Lambda runs them. `cargo lambda
# watch --release` would instead `cargo run` a plain `cargo build --release` of the host target.
#
#   infra/local/serve-release.sh build <function>...                   cargo lambda build --release
#   infra/local/serve-release.sh start <state-dir> <env-file> <port> <instances> <function>...
#   infra/local/serve-release.sh spawn <state-dir> <env-file> <port> <function>   one more instance
#   infra/local/serve-release.sh pids  <state-dir> <function>          live instances of a function
#   infra/local/serve-release.sh stop  <state-dir>
#
# An instance that exits is not restarted (Lambda would start a new one at the next request): a
# test can see that a panic did not end the process.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CARGO_LAMBDA="${CARGO_LAMBDA:-$ROOT/.venv/bin/cargo-lambda}"

log() { printf '[release] %s\n' "$*" >&2; }

build() {
  PATH="$ROOT/.venv/bin:$PATH" "$CARGO_LAMBDA" lambda build --release $(printf -- '--package %s ' "$@") >&2
}

spawn() { # state env port function
  local state="$1" env_file="$2" port="$3" fn="$4" bin="$ROOT/target/lambda/$4/bootstrap"
  [[ -x "$bin" ]] || { log "$bin is missing: run 'infra/local/serve-release.sh build $fn' first"; exit 1; }
  mkdir -p "$state/release"
  (
    set -a; . "$env_file"; set +a
    export AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt/$fn" AWS_LAMBDA_FUNCTION_NAME="$fn" \
      AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024
    exec "$bin"
  ) >> "$state/release/$fn.log" 2>&1 < /dev/null &
  echo $! > "$state/release/$fn.$!.pid"
  echo $!
}

pids() { # state function
  local f
  for f in "$1"/release/"$2".*.pid; do
    [[ -f "$f" ]] || continue
    if kill -0 "$(cat "$f")" 2>/dev/null; then cat "$f"; else rm -f "$f"; fi
  done
}

start() { # state env port instances functions...
  local state="$1" env_file="$2" port="$3" n="$4"; shift 4
  mkdir -p "$state/release"
  if [[ -f "$state/release/watch.pid" ]] && kill -0 "$(cat "$state/release/watch.pid")" 2>/dev/null; then
    log "runtime API already running"
  else
    setsid "$CARGO_LAMBDA" lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$port" \
      > "$state/release/watch.log" 2>&1 < /dev/null &
    echo $! > "$state/release/watch.pid"
    # listening is enough: a request to / would wait for a function of that name
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  fi
  local fn i
  for fn in "$@"; do
    for ((i = $(pids "$state" "$fn" | wc -l); i < n; i++)); do spawn "$state" "$env_file" "$port" "$fn" > /dev/null; done
  done
  log "serving ${*} (release, $n instance(s) each) on http://127.0.0.1:$port"
}

stop() { # state
  local state="$1" f
  for f in "$state"/release/*.pid; do
    [[ -f "$f" ]] || continue
    if [[ "$(basename "$f")" == watch.pid ]]; then
      kill -- "-$(cat "$f")" 2>/dev/null || kill "$(cat "$f")" 2>/dev/null || true
    else
      kill "$(cat "$f")" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  log "stopped"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  build) build "$@" ;;
  start) start "$@" ;;
  spawn) spawn "$@" ;;
  pids) pids "$@" ;;
  stop) stop "$@" ;;
  *) echo "usage: $0 build|start|spawn|pids|stop ..." >&2; exit 2 ;;
esac
