#!/usr/bin/env bash
# Speed of `fp backtest` on one EPL season (2023/24), each strategy, against another fp binary
# (e.g. one built from the commit before issue 14, d481585), runs interleaved so both see the
# same load. Two histories: the criterion benchmark's 3 seasons and all 11 earlier seasons.
# ml_model and market use a saved artifact (training excluded, as in criterion).
# Prints per run the rolling-prediction wall time fp reports and the process CPU time
# (user + sys, what a busy shared machine distorts least), then medians and ratios.
# Usage: infra/bench/backtest_speed.sh NEW_FP OLD_FP [REPS]
#   old binary: git archive d481585 | tar -x -C /tmp/old && (cd /tmp/old &&
#               CARGO_TARGET_DIR=/tmp/old-target cargo build --profile bench -p fp-cli)
set -euo pipefail
cd "$(dirname "$0")/../.."
NEW=$1 OLD=$2 REPS=${3:-3}
D=${FP_DATA_DIR:-../shared/data/football-data-co-uk/E0}
W=$(mktemp -d)
T3=("$D"/E0_{2021,2122,2223}.csv)
TA=("$D"/E0_{1213,1314,1415,1516,1617,1718,1819,1920,2021,2122,2223}.csv)
TEST=$D/E0_2324.csv
for p in 3 all; do
  if [ $p = 3 ]; then T=("${T3[@]}"); else T=("${TA[@]}"); fi
  "$NEW" backtest --strategy ml_model --train "${T[@]}" --test "$TEST" --save-artifact "$W/new_$p.json" >/dev/null 2>&1
  "$OLD" backtest --strategy ml_model --train "${T[@]}" --test "$TEST" --out "$W/o.csv" \
    --save-artifact "$W/old_$p.json" >/dev/null 2>&1
done
run() { # label, command...
  local label=$1 out
  shift
  out=$({ /usr/bin/time -f "CPU %U %S" "$@" >/dev/null; } 2>&1)
  echo "$label wall=$(echo "$out" | sed -n 's/.*predicted in \([0-9.]*\)s/\1/p') cpu=$(echo "$out" | awk '/^CPU/ {printf "%.2f", $2 + $3}')"
}
for _ in $(seq "$REPS"); do
  for p in 3 all; do
    if [ $p = 3 ]; then T=("${T3[@]}"); else T=("${TA[@]}"); fi
    for s in statistical historical ml_model market; do
      a=()
      if [ $s = ml_model ] || [ $s = market ]; then a=(--artifact "$W/new_$p.json"); fi
      run "new $p $s" "$NEW" backtest --strategy $s --train "${T[@]}" --test "$TEST" "${a[@]}"
      [ $s = market ] && continue # the old binary has no market: compared with its ml_model
      a=()
      if [ $s = ml_model ]; then a=(--artifact "$W/old_$p.json"); fi
      run "old $p $s" "$OLD" backtest --strategy $s --train "${T[@]}" --test "$TEST" --out "$W/o.csv" "${a[@]}"
    done
  done
done | tee "$W/runs.txt"
python3 - "$W/runs.txt" <<'PY'
import re, statistics as st, sys
d = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+) (\w+) (\w+) wall=([\d.]+) cpu=([\d.]+)", line)
    if m:
        d.setdefault((m[2], m[3], m[1]), []).append((float(m[4]), float(m[5])))
print("\n| history | strategy | CPU s new | CPU s old | ratio | wall s new | wall s old |")
print("|---|---|---:|---:|---:|---:|---:|")
for p in ("3", "all"):
    for s in ("statistical", "historical", "ml_model", "market"):
        n = d[(p, s, "new")]
        o = d.get((p, s, "old")) or d[(p, "ml_model", "old")]
        nc, oc = st.median(x[1] for x in n), st.median(x[1] for x in o)
        nw, ow = st.median(x[0] for x in n), st.median(x[0] for x in o)
        print(f"| {'3 seasons' if p == '3' else '11 seasons'} | {s} | {nc:.2f} | {oc:.2f} | {nc / oc:.2f} | {nw:.2f} | {ow:.2f} |")
PY
rm -rf "$W"
