#!/usr/bin/env python3
"""Side-by-side Dixon-Coles fit: our Rust fitter (`fp fit-dc`) against penaltyblog 1.13.1.

Both fit the same matches with the same time-decay weights (the weights `fp fit-dc` prints are
passed to penaltyblog unchanged), in one run, on the same machine. Prints both timings, the
speed-up ratio and the largest parameter difference (penaltyblog's layout: attacks sum to the
number of teams), then one JSON line.

Usage (see penaltyblog_compare.sh, which sets up .venv-bench/ with penaltyblog==1.13.1):
    .venv-bench/bin/python infra/bench/penaltyblog_compare.py \
        --fp target/release/fp --data ../shared/data/football-data-co-uk/E0 \
        --seasons 2122 2223 2324 --xi 0.0018
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp", default="target/release/fp", help="path to the fp binary")
    ap.add_argument("--data", default="../shared/data/football-data-co-uk/E0")
    ap.add_argument("--seasons", nargs="+", default=["2122", "2223", "2324"])
    ap.add_argument("--xi", type=float, default=0.0018)
    ap.add_argument("--rust-repeat", type=int, default=50)
    ap.add_argument("--pb-repeat", type=int, default=15)
    args = ap.parse_args()

    # One thread for BLAS too, as fp fits on one thread: on a small busy machine numpy's thread
    # pool oversubscribes the cores and makes penaltyblog several times slower than it is.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import numpy as np
    import penaltyblog as pb

    if pb.__version__ != "1.13.1":
        print(f"warning: penaltyblog {pb.__version__}, the reference is 1.13.1", file=sys.stderr)

    files = [str(Path(args.data) / f"E0_{s}.csv") for s in args.seasons]
    cmd = [args.fp, "fit-dc", "--json", "--xi", str(args.xi), "--repeat", str(args.rust_repeat), "--csv", *files]
    rust = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    matches = rust["matches"]
    hg = [m["home_goals"] for m in matches]
    ag = [m["away_goals"] for m in matches]
    ht = [m["home"] for m in matches]
    at = [m["away"] for m in matches]
    w = np.array([m["weight"] for m in matches])

    times = []
    model = None
    for _ in range(args.pb_repeat):
        t0 = time.perf_counter()
        model = pb.models.DixonColesGoalModel(hg, ag, ht, at, w)
        model.fit()
        times.append((time.perf_counter() - t0) * 1e3)
    pb_ms = statistics.median(times)
    params = model.get_params()

    rows = []
    for team, a in rust["params"]["attack"].items():
        rows.append((f"attack {team}", a, params[f"attack_{team}"]))
    for team, d in rust["params"]["defence"].items():
        rows.append((f"defence {team}", d, params[f"defence_{team}"]))
    rows.append(("home advantage", rust["params"]["home_advantage"], params["home_advantage"]))
    rows.append(("rho", rust["params"]["rho"], params["rho"]))
    max_diff = max(abs(r - p) for _, r, p in rows)
    same_3dp = all(round(r, 3) == round(p, 3) for _, r, p in rows)
    diff_3dp = [name for name, r, p in rows if round(r, 3) != round(p, 3)]

    # penaltyblog's default fit (SLSQP with its analytic gradient) stops a few 1e-4 away from the
    # optimum: that gradient is slightly off (e.g. for the home advantage) and the likelihood is
    # flat to 1e-7 there. Refit it once with numerical gradients and a tight tolerance: that is
    # the exact maximum likelihood, which fp should match.
    tight = pb.models.DixonColesGoalModel(hg, ag, ht, at, w)
    tight.fit(minimizer_options={"ftol": 1e-13, "maxiter": 10000}, use_gradient=False)
    ours = np.concatenate([
        [rust["params"]["attack"][t] for t in model.teams],
        [rust["params"]["defence"][t] for t in model.teams],
        [rust["params"]["home_advantage"], rust["params"]["rho"]],
    ])
    loss_default = model._loss_function(model._params)
    loss_tight = tight._loss_function(tight._params)
    loss_fp = model._loss_function(ours)
    tparams = tight.get_params()
    tight_names = {"home advantage": "home_advantage", "rho": "rho"}

    def pb_name(name: str) -> str:
        if name in tight_names:
            return tight_names[name]
        kind, team = name.split(" ", 1)
        return f"{kind}_{team}"

    max_diff_tight = max(abs(r - tparams[pb_name(n)]) for n, r, _ in rows)
    same_3dp_tight = all(round(r, 3) == round(tparams[pb_name(n)], 3) for n, r, _ in rows)

    rust_ms = rust["fit_ms"]["median"]
    print(f"{'parameter':<40} {'fp (Rust)':>10} {'penaltyblog':>12} {'diff':>9}")
    for name, r, p in rows:
        print(f"{name:<40} {r:>10.4f} {p:>12.4f} {r - p:>+9.5f}")
    print()
    print(f"matches: {len(matches)}, xi = {args.xi}/day, same weights")
    print(f"log-likelihood: fp {rust['log_likelihood']:.4f}, penaltyblog {model.loglikelihood:.4f}")
    print(f"fit time (median): fp {rust_ms:.3f} ms ({rust['fit_ms']['runs']} runs), "
          f"penaltyblog {pb_ms:.1f} ms ({args.pb_repeat} runs)")
    print(f"speed-up: {pb_ms / rust_ms:.0f}x")
    print(f"largest parameter difference: {max_diff:.5f}; equal to 3 decimals: {same_3dp}"
          + ("" if same_3dp else f" (differ in the 3rd decimal: {', '.join(diff_3dp)})"))
    print(f"penaltyblog refitted with numerical gradients, ftol=1e-13: largest difference "
          f"{max_diff_tight:.7f}; equal to 3 decimals: {same_3dp_tight}")
    print(f"penaltyblog's own loss: {loss_default:.7f} at its default fit, {loss_tight:.7f} at its "
          f"tight fit, {loss_fp:.7f} at fp's parameters")
    print(json.dumps({
        "matches": len(matches),
        "xi": args.xi,
        "fp_fit_ms_median": round(rust_ms, 4),
        "penaltyblog_fit_ms_median": round(pb_ms, 2),
        "speedup": round(pb_ms / rust_ms, 1),
        "max_param_diff": round(max_diff, 6),
        "equal_to_3_decimals": same_3dp,
        "max_param_diff_vs_exact_penaltyblog": round(max_diff_tight, 7),
        "equal_to_3_decimals_vs_exact_penaltyblog": same_3dp_tight,
        "penaltyblog_loss_default_fit": round(loss_default, 7),
        "penaltyblog_loss_at_fp_params": round(loss_fp, 7),
        "penaltyblog_version": pb.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
