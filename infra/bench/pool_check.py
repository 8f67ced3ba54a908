#!/usr/bin/env python3
"""Offline checks on `fp backtest --out` predictions (issue 14, fifth pass), in-sample upper
bounds of what a fixed combination could gain:
  pool_check.py DIR pool OTHER [BASE]   logit pool p ∝ p_base^(1-w) p_other^w for a grid of w
  pool_check.py DIR temperature [BASE]  p ∝ p_base^(1/T) (the scores divided by T)
  pool_check.py DIR market [BASE]       the market strategy's form with the match's opening odds q
                                        (the open_p_* columns): p ∝ exp(a ln p_base + b ln q + c),
                                        a, b, c at their in-sample log-loss optimum (sixth pass)
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
            q = [float(r[k]) for k in ("open_p_home", "open_p_draw", "open_p_away")] if r.get("open_p_home") else None
            out[(season, r["date"], r["home_team"], r["away_team"])] = (p, r["result"], q)
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


def blend(t, p, q):
    """p ∝ exp(t0 ln p + t1 ln q + (t2, t3, 0)): the market strategy's combination."""
    s = [t[0] * math.log(max(p[i], 1e-9)) + t[1] * math.log(max(q[i], 1e-9)) + (t[2], t[3], 0.0)[i] for i in range(3)]
    m = max(s)
    e = [math.exp(v - m) for v in s]
    return [v / sum(e) for v in e]


def nelder_mead(f, x0, step=0.1, iterations=400):
    """Minimises f from x0 (a small simplex method: enough for the blend's four weights)."""
    pts = [list(x0)] + [[x + (step if i == j else 0.0) for j, x in enumerate(x0)] for i in range(len(x0))]
    vals = [f(p) for p in pts]
    for _ in range(iterations):
        order = sorted(range(len(pts)), key=lambda i: vals[i])
        pts, vals = [pts[i] for i in order], [vals[i] for i in order]
        centre = [sum(p[j] for p in pts[:-1]) / (len(pts) - 1) for j in range(len(x0))]
        towards = lambda c: [centre[j] + c * (pts[-1][j] - centre[j]) for j in range(len(x0))]
        r = towards(-1.0)
        fr = f(r)
        if fr < vals[0]:
            e = towards(-2.0)
            fe = f(e)
            pts[-1], vals[-1] = (e, fe) if fe < fr else (r, fr)
        elif fr < vals[-2]:
            pts[-1], vals[-1] = r, fr
        else:
            c = towards(0.5)
            fc = f(c)
            if fc < vals[-1]:
                pts[-1], vals[-1] = c, fc
            else:
                pts = [pts[0]] + [[pts[0][j] + 0.5 * (p[j] - pts[0][j]) for j in range(len(x0))] for p in pts[1:]]
                vals = [vals[0]] + [f(p) for p in pts[1:]]
    return pts[min(range(len(pts)), key=lambda i: vals[i])]


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
            report(f"T={t:4.2f}", [(k[0].split("_")[0], rps(geometric([p], [1 / t]), res)) for k, (p, res, _) in a.items()])
    elif what == "market":
        a = load(d, sys.argv[3] if len(sys.argv) > 3 else "ml_model")
        rows = [(k[0].split("_")[0], p, q, res) for k, (p, res, q) in a.items() if q]
        print(f"{len(rows)} matches with opening odds (of {len(a)})")
        report("model alone ", [(lg, rps(p, res)) for lg, p, q, res in rows])
        report("opening odds", [(lg, rps(q, res)) for lg, p, q, res in rows])
        theta = nelder_mead(lambda t: sum(-math.log(blend(t, p, q)["HDA".index(res)]) for _, p, q, res in rows) / len(rows),
                            [0.2, 0.8, 0.0, 0.0])
        report("in-sample best blend " + " ".join(f"{x:+.3f}" for x in theta),
               [(lg, rps(blend(theta, p, q), res)) for lg, p, q, res in rows])
    else:
        sys.exit(__doc__)


main()
