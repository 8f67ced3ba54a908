#!/usr/bin/env bash
# Validation seasons of issue 14 (what settings are chosen on; the test seasons of
# quality_tables.sh are reported once): 2017/18, 2018/19 and 2019/20 of each of the five leagues
# (E0, D1, I1, SP1, F1), each predicted rolling from the league's 2012/13-2016/17 and the earlier
# validation seasons; ml_model and market also learn from the other leagues' matches before each
# test season (--other), as in quality_tables.sh.
# Usage: infra/bench/validation.sh path/to/fp [extra fp backtest arguments, e.g. --config JSON]
#   LEAGUES="E0 D1 I1 SP1 F1" STRATEGIES=statistical OUT_DIR=target/validation
# Prints the pooled RPS per strategy over all league-seasons and per league; JSON lines go to
# $OUT_DIR/val_<league>.jsonl.
# HALF=1: the half-season check instead (a new competition, as `quality_tables.sh half` on
# 2022/23): each validation season's second half (from the median date) predicted from its first
# half only; JSON lines to $OUT_DIR/half_<league>_<season>.jsonl, pooled the same way.
set -euo pipefail
cd "$(dirname "$0")/../.."
FP=${1:?usage: validation.sh path/to/fp [fp backtest args]}
shift
DATA=${FP_DATA_ROOT:-../shared/data/football-data-co-uk}
OUT=${OUT_DIR:-target/validation}
STRATEGIES=${STRATEGIES:-statistical,historical,ml_model,market}
LEAGUES=${LEAGUES:-E0 D1 I1 SP1 F1}
mkdir -p "$OUT"
outs=()
for l in $LEAGUES; do
  if [ "${HALF:-0}" = 1 ]; then
    for season in 1718 1819 1920; do
      f=$OUT/half_${l}_$season.jsonl
      "$FP" backtest --strategy "$STRATEGIES" --test "$DATA/$l/${l}_$season.csv" --from median "$@" >"$f"
      outs+=("$f")
    done
    continue
  fi
  others=()
  for x in E0 D1 I1 SP1 F1; do
    [ "$x" = "$l" ] && continue
    for f in "$DATA/$x"/"$x"_*.csv; do others+=("$f"); done
  done
  f=$OUT/val_$l.jsonl
  "$FP" backtest --strategy "$STRATEGIES" \
    --train "$DATA/$l/${l}_"{1213,1314,1415,1516,1617}.csv \
    --test "$DATA/$l/${l}_"{1718,1819,1920}.csv \
    --other "${others[@]}" "$@" >"$f"
  outs+=("$f")
done
python3 - "${outs[@]}" <<'PY'
import json, sys, os
agg, per = {}, {}
for path in sys.argv[1:]:
    league = os.path.basename(path)[:-6].split("_")[1]
    for line in open(path):
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r["season"] == "all":
            continue
        for key in (r["strategy"], (league, r["strategy"])):
            a = (agg if isinstance(key, str) else per).setdefault(key, [0, 0.0, 0.0, 0.0])
            a[0] += r["matches"]; a[1] += r["rps"] * r["matches"]
            a[2] += r.get("opening_rps", float("nan")) * r["matches"]
            a[3] += r.get("bookmaker_rps", float("nan")) * r["matches"]
print("| league | strategy | matches | RPS | opening odds | closing odds |")
print("|---|---|---:|---:|---:|---:|")
for (l, s), (n, x, o, c) in sorted(per.items()):
    print(f"| {l} | {s} | {n} | {x/n:.5f} | {o/n:.5f} | {c/n:.5f} |")
for s, (n, x, o, c) in agg.items():
    print(f"| pooled | {s} | {n} | {x/n:.5f} | {o/n:.5f} | {c/n:.5f} |")
PY
