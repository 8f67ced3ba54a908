#!/usr/bin/env python3
"""Offline checks on `fp backtest --out` predictions (issue 14, fifth pass), in-sample upper
bounds of what a fixed combination could gain:
  pool_check.py DIR pool OTHER [BASE]   logit pool p ∝ p_base^(1-w) p_other^w for a grid of w
  pool_check.py DIR temperature [BASE]  p ∝ p_base^(1/T) (the scores divided by T)
DIR holds pred_<strategy>_<league>_<season>.csv (validation.sh ... --out 'DIR/pred_{strategy}_{season}.csv').
Prints the mean RPS pooled, per league and without E0."""
import csv, glob, math, os, sys

ONE_HOT = {"H": (1, 0, 0), "D": (0, 1, 0), "A": (0, 0, 1)}


def load(d, s):
    out = {}
    for f in glob.glob(f"{d}/pred_{s}_*.csv"):
        season = os.path.basename(f)[len(f"pred_{s}_"):-4]
        for r in csv.DictReader(open(f)):
            p = [float(r["p_home"]), float(r["p_draw"]), float(r["p_away"])]
            out[(season, r["date"], r["home_team"], r["away_team"])] = (p, r["result"])
    return out


def rps(p, res):
    o = ONE_HOT[res]
    c1, c2 = p[0] - o[0], p[0] + p[1] - o[0] - o[1]
    return (c1 * c1 + c2 * c2) / 2


def geometric(ps, ws):
    logs = [sum(w * math.log(p[i]) for p, w in zip(ps, ws)) for i in range(3)]
    m = max(logs)
    e = [math.exp(v - m) for v in logs]
    return [v / sum(e) for v in e]


def report(label, scored):
    tot = {}
    for league, v in scored:
        for key in ("all", league, None if league == "E0" else "noE0"):
            if key:
                t = tot.setdefault(key, [0, 0.0])
                t[0] += 1
                t[1] += v
    print(label + " " + " ".join(f"{k}={t[1] / t[0]:.5f}" for k, t in sorted(tot.items())))


def main():
    d, what = sys.argv[1], sys.argv[2]
    if what == "pool":
        other, base = sys.argv[3], (sys.argv[4] if len(sys.argv) > 4 else "ml_model")
        a, b = load(d, base), load(d, other)
        keys = sorted(k for k in a if k in b)
        print(f"{len(keys)} matches")
        for w in (-0.2, -0.1, 0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0):
            report(f"w={w:5.2f}", [(k[0].split("_")[0], rps(geometric([a[k][0], b[k][0]], [1 - w, w]), a[k][1])) for k in keys])
    elif what == "temperature":
        a = load(d, sys.argv[3] if len(sys.argv) > 3 else "ml_model")
        print(f"{len(a)} matches")
        for t in (0.9, 0.95, 1.0, 1.03, 1.05, 1.08, 1.1, 1.15):
            report(f"T={t:4.2f}", [(k[0].split("_")[0], rps(geometric([p], [1 / t]), res)) for k, (p, res) in a.items()])
    else:
        sys.exit(__doc__)


main()
