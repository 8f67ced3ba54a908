#!/usr/bin/env python3
"""The figures of infra/bench/api.sh from its results directory: summary.py OUT SEED(0|1) ROUTE...

Per stack, the mix: requests, failures, p50/p99, CPU seconds per process group, requests per
server CPU-second (function processes + PostgreSQL + Redis; the router, standing in for API
Gateway, and the AWS emulator apart) and the ratio project / seedstack. Per route: function (app)
CPU ms and PostgreSQL CPU ms per request. Writes summary.json beside the results."""
import csv
import json
import os
import sys

SETUP_NAMES = {"login", "setup", "/api/matches?filter", "/api/auth/login"}


def load(out, name):
    cpu_file, stats_file = os.path.join(out, name + ".cpu.json"), os.path.join(out, name + "_stats.csv")
    if not (os.path.exists(cpu_file) and os.path.exists(stats_file)):
        return None
    cpu = json.load(open(cpu_file))["cpu_s"]
    rows = list(csv.DictReader(open(stats_file)))
    groups = {"functions": 0.0, "pg": 0.0, "redis": 0.0, "router": 0.0, "emulator": 0.0}
    per_fn = {}
    for k, v in cpu.items():
        if k.startswith("fn:"):
            groups["functions"] += v
            fn = k.split(":")[1].split("=")[0]
            per_fn[fn] = round(per_fn.get(fn, 0) + v, 3)
        else:
            groups[k] = groups.get(k, 0) + v
    return rows, groups, per_fn


def mix(out, stack):
    got = load(out, stack + ".mix")
    if not got:
        return None
    rows, g, per_fn = got
    agg = [r for r in rows if r["Name"] == "Aggregated"][0]
    n, f = int(agg["Request Count"]), int(agg["Failure Count"])
    server = g["functions"] + g["pg"] + g["redis"]
    return {
        "requests": n, "failures": f, "rps": round(float(agg["Requests/s"]), 1), "p50_ms": agg["50%"],
        "p99_ms": agg["99%"], "cpu_s": {k: round(v, 3) for k, v in g.items()}, "cpu_s_per_function": per_fn,
        "server_cpu_s": round(server, 3), "req_per_server_cpu_s": round(n / max(server, 1e-9), 1),
        "routes": {r["Type"] + " " + r["Name"]: {"requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                                                 "p50_ms": r["50%"], "p99_ms": r["99%"]}
                   for r in rows if r["Name"] != "Aggregated"},
    }


def route(out, stack, name):
    got = load(out, "%s.route.%s" % (stack, name))
    if not got:
        return None
    rows, g, _ = got
    measured = [r for r in rows if r["Name"] not in SETUP_NAMES and r["Name"] != "Aggregated"]
    n = sum(int(r["Request Count"]) for r in measured)
    f = sum(int(r["Failure Count"]) for r in measured)
    if not n:
        return {"requests": 0}
    return {"requests": n, "failures": f, "fn_cpu_ms": round(1000 * g["functions"] / n, 3),
            "pg_cpu_ms": round(1000 * g["pg"] / n, 3), "redis_cpu_ms": round(1000 * g["redis"] / n, 3),
            "p50_ms": measured[0]["50%"], "p99_ms": measured[0]["99%"]}


def main():
    out, seed, routes = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
    stacks = ["project"] + (["seedstack"] if seed else [])
    result = {s: {"mix": mix(out, s), "routes": {r: route(out, s, r) for r in routes}} for s in stacks}
    p, s = result["project"]["mix"], (result.get("seedstack") or {}).get("mix")
    if p and s:
        result["ratio_req_per_server_cpu_s"] = round(p["req_per_server_cpu_s"] / s["req_per_server_cpu_s"], 2)
    json.dump(result, open(os.path.join(out, "summary.json"), "w"), indent=1)

    for st in stacks:
        m = result[st]["mix"]
        if m:
            print("%-9s mix: %d requests, %d failures, %.1f req/s, p50 %s ms, p99 %s ms; CPU s %s; "
                  "%.1f requests per server CPU-second" % (st, m["requests"], m["failures"], m["rps"], m["p50_ms"],
                                                           m["p99_ms"], json.dumps(m["cpu_s"]), m["req_per_server_cpu_s"]))
    if "ratio_req_per_server_cpu_s" in result:
        print("ratio project / seedstack (requests per server CPU-second): %.2f" % result["ratio_req_per_server_cpu_s"])
    print()
    print("| route | project fn CPU ms/req | project PG ms/req | seedstack app CPU ms/req | seedstack PG ms/req |")
    print("|---|---:|---:|---:|---:|")
    for r in routes:
        a = result["project"]["routes"][r] or {}
        b = (result.get("seedstack") or {}).get("routes", {}).get(r) or {}
        print("| %s | %s | %s | %s | %s |" % (r, a.get("fn_cpu_ms", "-"), a.get("pg_cpu_ms", "-"),
                                            b.get("fn_cpu_ms", "-"), b.get("pg_cpu_ms", "-")))


if __name__ == "__main__":
    main()
