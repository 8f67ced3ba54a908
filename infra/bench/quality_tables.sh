#!/usr/bin/env bash
# The prediction-quality tables of the README (issue 14), every figure from `fp backtest`:
#   epl      EPL 2021/22-2023/24, each season from all earlier seasons (2012/13 on)
#   leagues  D1, I1, SP1, F1 2020/21-2022/23, each season from the league's earlier seasons,
#            pooled over the 12 league-seasons, against Pinnacle's closing odds on the same matches
#   half     each of those leagues' 2022/23, second half (from the median date) from the first
#            half only: a new competition with half a season of history
# ml_model and market learn their weights from the other leagues' earlier seasons too (--other:
# only matches before each test season); in `half` they use the built-in prior artifact.
# Usage: infra/bench/quality_tables.sh [epl|leagues|half|all] [path/to/fp]
#   (default all; builds fp with the bench profile, thin LTO, into target/release, unless a
#   binary is given)
# STRATEGIES=statistical,historical,ml_model,market by default; FP_ARGS: more fp backtest
# arguments (e.g. --config JSON). JSON lines go to $OUT_DIR (default target/quality), the tables
# to stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
WHAT=${1:-all}
FP=${2:-}
if [ -z "$FP" ]; then
  cargo build --profile bench -p fp-cli --quiet
  FP=target/release/fp # cargo writes the bench profile to target/release
fi
DATA=${FP_DATA_ROOT:-../shared/data/football-data-co-uk}
OUT=${OUT_DIR:-target/quality}
STRATEGIES=${STRATEGIES:-statistical,historical,ml_model,market}
read -r -a EXTRA <<<"${FP_ARGS:-}"
mkdir -p "$OUT"
SEASONS=(1213 1314 1415 1516 1617 1718 1819 1920 2021 2122 2223 2324)

others() { # every season of the leagues other than $1: what ml_model and market also learn from
  local l x
  for x in E0 D1 I1 SP1 F1; do
    [ "$x" = "$1" ] && continue
    for l in "$DATA/$x"/"$x"_*.csv; do echo "$l"; done
  done
}

files() { # league, first index, last index (inclusive)
  local l=$1 i
  for ((i = $2; i <= $3; i++)); do echo "$DATA/$l/${l}_${SEASONS[$i]}.csv"; done
}

table() { # jsonl file, title
  python3 - "$1" "$2" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"\n{sys.argv[2]}\n")
seasons = sorted({r["season"] for r in rows if r["season"] != "all"})
strategies = list(dict.fromkeys(r["strategy"] for r in rows))
print("| predictor | " + " | ".join(seasons) + " | all |")
print("|---|" + "---|" * (len(seasons) + 1))
for s in strategies:
    by = {r["season"]: r for r in rows if r["strategy"] == s}
    print(f"| {s} | " + " | ".join(f"{by[x]['rps']:.4f}" if x in by else "" for x in seasons)
          + (f" | {by['all']['rps']:.4f} |" if "all" in by else " | |"))
first = [r for r in rows if r["strategy"] == strategies[0]]
by = {r["season"]: r for r in first}
for key, name in (("opening_rps", "opening odds"), ("bookmaker_rps", "Pinnacle closing odds")):
    if all(key in by.get(x, {}) for x in seasons + ["all"]):
        print(f"| {name} | " + " | ".join(f"{by[x][key]:.4f}" for x in seasons) + f" | {by['all'][key]:.4f} |")
EOF
}

pooled() { # jsonl files... : pooled RPS per strategy over the leagues' seasons vs closing
  python3 - "$@" <<'EOF'
import json, sys
agg = {}
for path in sys.argv[1:]:
    for line in open(path):
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r["season"] == "all":
            continue
        a = agg.setdefault(r["strategy"], [0, 0.0, 0.0, 0.0])
        a[0] += r["matches"]; a[1] += r["rps"] * r["matches"]
        a[2] += r["bookmaker_rps"] * r["matches"]; a[3] += r.get("opening_rps", float("nan")) * r["matches"]
print("\n| strategy | matches | RPS | Pinnacle closing | difference | opening odds |")
print("|---|---:|---:|---:|---:|---:|")
for s, (n, rps, book, opening) in agg.items():
    print(f"| {s} | {n} | {rps/n:.4f} | {book/n:.4f} | {rps/n - book/n:+.4f} | {opening/n:.4f} |")
EOF
}

if [ "$WHAT" = epl ] || [ "$WHAT" = all ]; then
  f=$OUT/epl.jsonl
  # shellcheck disable=SC2046
  "$FP" backtest --strategy "$STRATEGIES" --train $(files E0 0 8) --test $(files E0 9 11) \
    --other $(others E0) --report "$OUT/report_epl" ${EXTRA[@]+"${EXTRA[@]}"} >"$f"
  table "$f" "EPL, each season from all earlier ones (fp backtest --report $OUT/report_epl)"
fi

if [ "$WHAT" = leagues ] || [ "$WHAT" = all ]; then
  outs=()
  for l in D1 I1 SP1 F1; do
    f=$OUT/league_$l.jsonl
    # shellcheck disable=SC2046
    "$FP" backtest --strategy "$STRATEGIES" --train $(files "$l" 0 7) --test $(files "$l" 8 10) \
      --other $(others "$l") --report "$OUT/report_$l" ${EXTRA[@]+"${EXTRA[@]}"} >"$f"
    outs+=("$f")
  done
  echo; echo "D1, I1, SP1, F1 2020/21-2022/23, each season from the league's earlier ones, pooled"
  pooled "${outs[@]}"
fi

if [ "$WHAT" = half ] || [ "$WHAT" = all ]; then
  echo; echo "2022/23, second half from the first half only"
  echo; echo "| league | strategy | matches | RPS | vs statistical | Pinnacle closing |"
  echo "|---|---|---:|---:|---:|---:|"
  for l in D1 I1 SP1 F1; do
    f=$OUT/half_$l.jsonl
    "$FP" backtest --strategy "$STRATEGIES" --test "$DATA/$l/${l}_2223.csv" --from median ${EXTRA[@]+"${EXTRA[@]}"} >"$f"
    python3 - "$f" "$l" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
stat = next(r["rps"] for r in rows if r["strategy"] == "statistical")
for r in rows:
    print(f"| {sys.argv[2]} | {r['strategy']} | {r['matches']} | {r['rps']:.4f} | {r['rps'] - stat:+.4f} | {r.get('bookmaker_rps', float('nan')):.4f} |")
EOF
  done
fi
