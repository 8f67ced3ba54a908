#!/usr/bin/env bash
# Dixon-Coles fit, fp against penaltyblog 1.13.1, side by side in one run.
# Sets up a project-local virtualenv (.venv-bench/, git-ignored) with penaltyblog==1.13.1 (never
# the system Python's site-packages), builds fp in release mode, runs the comparison.
# Usage: infra/bench/penaltyblog_compare.sh [extra arguments of penaltyblog_compare.py]
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-bench
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import penaltyblog, sys; sys.exit(penaltyblog.__version__ != "1.13.1")' 2>/dev/null; then
  "$VENV/bin/pip" install --quiet 'penaltyblog==1.13.1'
fi
cargo build --release -p fp-cli --quiet
exec "$VENV/bin/python" infra/bench/penaltyblog_compare.py \
  --fp target/release/fp --data "${FP_DATA_DIR:-../shared/data/football-data-co-uk/E0}" "$@"
