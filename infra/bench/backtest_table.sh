#!/usr/bin/env bash
# The RPS table of the README: every strategy, EPL 2021/22, 2022/23 and 2023/24, each season
# predicted by `fp backtest` (rolling, refit once per match date) from all earlier seasons in the
# data directory (2012/13 on). Prints the nine JSON summary lines, then a markdown table.
# Usage: infra/bench/backtest_table.sh [path/to/fp]   (default: builds target/release/fp)
set -euo pipefail
cd "$(dirname "$0")/../.."
FP=${1:-}
if [ -z "$FP" ]; then
  cargo build --release -p fp-cli --quiet
  FP=target/release/fp
fi
D=${FP_DATA_DIR:-../shared/data/football-data-co-uk/E0}
OUT=${OUT_DIR:-target/backtest}
mkdir -p "$OUT"
SEASONS=(1213 1314 1415 1516 1617 1718 1819 1920 2021 2122 2223 2324)
declare -A RPS BOOK
for strategy in statistical historical ml_model; do
  for t in 9 10 11; do
    test=${SEASONS[$t]}
    train=()
    for ((i = 0; i < t; i++)); do train+=("$D/E0_${SEASONS[$i]}.csv"); done
    line=$("$FP" backtest --strategy "$strategy" --train "${train[@]}" --test "$D/E0_$test.csv" \
      --out "$OUT/predictions_${strategy}_$test.csv" 2>/dev/null | tail -n 1)
    echo "$line"
    RPS[$strategy,$test]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rps"])' "$line")
    BOOK[$test]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["bookmaker_rps"])' "$line")
  done
done
echo
echo "| predictor | 2021/22 | 2022/23 | 2023/24 | mean |"
echo "|---|---|---|---|---|"
row() {
  python3 -c 'import sys; v=[float(x) for x in sys.argv[2:]]; print("| %s | %s | %.4f |" % (sys.argv[1], " | ".join("%.4f" % x for x in v), sum(v)/len(v)))' "$@"
}
for strategy in statistical historical ml_model; do
  row "$strategy" "${RPS[$strategy,2122]}" "${RPS[$strategy,2223]}" "${RPS[$strategy,2324]}"
done
row "Pinnacle closing odds" "${BOOK[2122]}" "${BOOK[2223]}" "${BOOK[2324]}"
