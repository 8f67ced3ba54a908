#!/usr/bin/env bash
# `make coverage`: line coverage of the workspace's tests (the same tests as `make unit`, against
# the real PostgreSQL, Redis and emulator of .local/stack.env), measured with cargo-llvm-cov
# (prebuilt, pinned in infra/local/requirements.txt) and the LLVM tools of the LLVM that rustc uses
# (Debian's llvm-22: rustup cannot download the llvm-tools component here).
#
# Prints line coverage per crate and the total, writes target/coverage/{lcov.info,summary.txt,html/},
# and fails when the lines of a crate with a floor (COVERAGE_FLOORS) fall below it.
# Instrumented builds live in target/llvm-cov-target: the normal debug build is not touched.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# The floors: per crate (the directory under the workspace), % of lines. Raise them, never lower.
COVERAGE_FLOORS="${COVERAGE_FLOORS:-shared=91}"

llvm_major="$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
LLVM_BIN="/usr/lib/llvm-$llvm_major/bin"
if [[ ! -x "$LLVM_BIN/llvm-cov" ]]; then
  echo "[coverage] installing llvm-$llvm_major (llvm-cov, llvm-profdata) from Debian" >&2
  if [[ $(id -u) == 0 ]]; then apt-get install -y -qq "llvm-$llvm_major" >/dev/null
  else sudo apt-get install -y -qq "llvm-$llvm_major" >/dev/null; fi
fi
export LLVM_COV="$LLVM_BIN/llvm-cov" LLVM_PROFDATA="$LLVM_BIN/llvm-profdata"
COV=.venv/bin/cargo-llvm-cov
[[ -x "$COV" ]] || infra/local/stack.sh tools
set -a; . ./.local/stack.env; set +a

OUT=target/coverage
mkdir -p "$OUT"
# Everything the tests exercise, but not the test helpers, benchmarks, load generator or baseline.
IGNORE='(tests/support|infra/|/benches/|/tests/)'
"$COV" llvm-cov --workspace --no-report --no-fail-fast -- --test-threads "${COVERAGE_TEST_THREADS:-2}"
"$COV" llvm-cov report --ignore-filename-regex "$IGNORE" --lcov --output-path "$OUT/lcov.info"
"$COV" llvm-cov report --ignore-filename-regex "$IGNORE" --html --output-dir "$OUT/html" >/dev/null

# Per crate, from the lcov file: lines found (LF) and hit (LH) per source file.
python3 - "$OUT/lcov.info" "$ROOT" "$COVERAGE_FLOORS" <<'PY' | tee "$OUT/summary.txt"
import sys
from collections import defaultdict
lcov, root, floors = sys.argv[1], sys.argv[2].rstrip("/") + "/", sys.argv[3]
found, hit = defaultdict(int), defaultdict(int)
crate = None
for line in open(lcov):
    if line.startswith("SF:"):
        path = line[3:].strip()
        rel = path[len(root):] if path.startswith(root) else path
        parts = rel.split("/")
        crate = "/".join(parts[:2]) if parts[0] in ("functions", "infra", "tests") else parts[0]
    elif line.startswith("LF:"):
        found[crate] += int(line[3:])
    elif line.startswith("LH:"):
        hit[crate] += int(line[3:])
print(f"{'crate':<24} {'lines':>8} {'covered':>8} {'%':>7}")
for c in sorted(found):
    print(f"{c:<24} {found[c]:>8} {hit[c]:>8} {100.0 * hit[c] / max(found[c], 1):>6.1f}%")
tf, th = sum(found.values()), sum(hit.values())
print(f"{'total':<24} {tf:>8} {th:>8} {100.0 * th / max(tf, 1):>6.1f}%")
failed = False
for spec in filter(None, floors.split(",")):
    c, floor = spec.split("=")
    pct = 100.0 * hit[c] / max(found[c], 1)
    ok = pct >= float(floor)
    failed |= not ok
    print(f"[coverage] floor {c}: {pct:.1f}% of lines, floor {floor}%: {'ok' if ok else 'BELOW THE FLOOR'}")
sys.exit(1 if failed else 0)
PY
