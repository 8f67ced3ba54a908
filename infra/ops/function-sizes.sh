#!/usr/bin/env bash
# Builds every function crate for Lambda (release, arm64, zip) with cargo-lambda and reports the
# zip size of each; fails when one is over the limit (default 10 MB). Prints a Markdown table.
#   infra/ops/function-sizes.sh [--no-build]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
LIMIT_BYTES="${LIMIT_BYTES:-10485760}"
CARGO_LAMBDA="${CARGO_LAMBDA:-$(command -v cargo-lambda || echo .venv/bin/cargo-lambda)}"
functions=()
for manifest in functions/*/Cargo.toml; do functions+=("$(basename "$(dirname "$manifest")")"); done

if [[ "${1:-}" != "--no-build" ]]; then
  # cargo-lambda cross-compiles with zig (the ziglang wheel it brings from PyPI): no Docker, no
  # aarch64 toolchain. One invocation builds all the binaries, sharing the dependency graph.
  PATH="$(pwd)/.venv/bin:$PATH" "$CARGO_LAMBDA" lambda build --release --arm64 --output-format zip \
    $(printf -- '--package %s ' "${functions[@]}")
fi

over=0
echo "| function | zip (bytes) | zip (MB) | bootstrap (MB) |"
echo "|---|---:|---:|---:|"
for f in "${functions[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  [[ -f "$zip" ]] || { echo "| $f | missing | | |"; over=1; continue; }
  bytes=$(stat -c %s "$zip")
  raw=$(unzip -l "$zip" | awk '/bootstrap$/ {print $1}')
  printf '| %s | %d | %.2f | %.2f |\n' "$f" "$bytes" "$(echo "$bytes/1048576" | bc -l)" "$(echo "${raw:-0}/1048576" | bc -l)"
  if (( bytes > LIMIT_BYTES )); then echo "OVER THE LIMIT: $f ($bytes > $LIMIT_BYTES bytes)" >&2; over=1; fi
done
exit "$over"
