#!/usr/bin/env python3
"""What one warm invocation of an API function costs, counted by callgrind (instructions: the same
figure on a quiet or a loaded machine) or by the kernel (CPU ms), on the routes of the guide's mix.

It plays the Lambda Runtime API on 127.0.0.1 (as ../shared/tools/lambda-coldstart does), starts the
function's `bootstrap` as Lambda would, and hands it the same API Gateway event (from events/) again
and again. Under callgrind it runs the binary twice, with WARMUP and WARMUP + COUNT invocations:
the difference of the two totals, divided by COUNT, is the cost of one warm invocation, without
the cold start and the first (connecting) invocations. The per-function difference of the two
profiles (callgrind_annotate, inclusive) says where it goes.

  infra/bench/warm.py --scenario matches [--tool callgrind|cpu|none] [--count 200] [--warmup 20]
                      [--env-file .local/stack.env] [--bin-dir target/lambda] [--out DIR]
                      [--top 40] [--no-gzip]

Scenarios (the guide's Locust mix, ../shared/tools/seedstack/locustfile.py, route by route; a
token of test_user / test_admin from a login through the auth function first):
  hello            hello-world lambda_http, GET /health/live (the baseline)
  health_live      health, GET /health/live
  health           health, GET /health (database and cache checks)
  matches          matches, GET /api/matches (cached page after the first)
  predict          predictions, POST /api/predictions (a new prediction each time, statistical)
  prediction_get   predictions, GET /api/predictions/{id} of one created first
  admin_stats      admin, GET /api/admin/stats (as test_admin)
  auth_me          auth, GET /api/auth/me (the account behind the token)
Prints one JSON object: per warm invocation `ir` (instructions) or `cpu_ms`, and the top functions.
"""
import argparse
import base64
import copy
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PREFIX = "/2018-06-01/runtime"
TOKEN_PLACEHOLDER = "<access token from POST /api/auth/login>"

SCENARIOS = {
    # name: (function, event file, admin?)
    "hello": ("hello-world", "health-live.json", None),
    "health_live": ("health", "health-live.json", None),
    "health": ("health", "health.json", None),
    "matches": ("matches", "matches-list.json", "test_user"),
    "predict": ("predictions", "predictions-create.json", "test_user"),
    "prediction_get": ("predictions", "predictions-get.json", "test_user"),
    "admin_stats": ("admin", "admin-stats.json", "test_admin"),
    "auth_me": ("auth", "auth-me.json", "test_user"),
}


class Runtime:
    """A fake Runtime API: hands out the queued events one by one, collects the responses."""

    def __init__(self):
        self.events = queue.Queue()
        self.responses = queue.Queue()
        rt = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _reply(self, code, body=b"{}", headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != PREFIX + "/invocation/next":
                    return self._reply(404)
                event = rt.events.get()
                self._reply(200, event, {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": str(uuid.uuid4()),
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 600_000),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-1:000000000000:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                })

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts[:2] == ["init", "error"]:
                    rt.responses.put(("init-error", body))
                elif len(parts) == 3 and parts[0] == "invocation":
                    rt.responses.put((parts[2], body))
                self._reply(202)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.server.server_address[1]


def read_env_file(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def invoke(binary, events, env, prefix=(), timeout=600, cpu_after=None):
    """Runs `binary` (under `prefix`, e.g. valgrind) on `events`; returns the decoded responses and,
    with `cpu_after=k`, the process's CPU seconds spent on the events after the k-th."""
    rt = Runtime()
    full_env = dict(os.environ)
    full_env.update(env)
    full_env.update({
        "AWS_LAMBDA_RUNTIME_API": rt.address,
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(os.path.dirname(binary)),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "_HANDLER": "bootstrap",
    })
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(list(prefix) + [binary], env=full_env, stdout=subprocess.DEVNULL, stderr=err)
    out = []
    cpu0 = None
    try:
        for i, ev in enumerate(events):
            if cpu_after is not None and i == cpu_after:
                cpu0 = cpu_seconds(proc.pid)
            rt.events.put(ev)
            kind, body = rt.responses.get(timeout=timeout)
            if kind != "response":
                raise RuntimeError("%s: %s" % (kind, body[:300].decode(errors="replace")))
            out.append(json.loads(body))
        cpu = cpu_seconds(proc.pid) - cpu0 if cpu0 is not None else None
    except queue.Empty:
        err.seek(0)
        raise RuntimeError("no answer from %s: %s" % (binary, err.read()[-2000:].decode(errors="replace")))
    finally:
        # let the process ask for the next event (its last response fully handled), then end it
        time.sleep(0.2 if not prefix else 1.0)
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        rt.server.shutdown()
        err.close()
    return out, cpu


def body_of(response):
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body)
        if body[:2] == b"\x1f\x8b":
            import gzip
            body = gzip.decompress(body)
        body = body.decode()
    return json.loads(body) if body else None


def load_event(name):
    return json.load(open(os.path.join(ROOT, "events", name)))


def with_headers(event, token=None, gzip=True, drop=()):
    ev = copy.deepcopy(event)
    h = ev.setdefault("headers", {})
    for k in drop:
        h.pop(k, None)
    if token:
        h["authorization"] = "Bearer " + token
    elif h.get("authorization", "").endswith(TOKEN_PLACEHOLDER):
        h.pop("authorization")
    if gzip:
        # what the Locust users (python-requests) send
        h["accept-encoding"] = "gzip, deflate"
        h["accept"] = "*/*"
    return ev


def login(bins, env, username):
    ev = load_event("auth-login.json")
    ev["body"] = json.dumps({"username": username, "password": "test_password"})
    (res,), _ = invoke(os.path.join(bins, "auth", "bootstrap"), [json.dumps(ev).encode()], env)
    if res.get("statusCode") != 200:
        raise RuntimeError("login of %s failed: %s" % (username, res))
    return body_of(res)["access_token"]


def scenario_events(name, bins, env, gzip):
    fn, event_file, user = SCENARIOS[name]
    ev = load_event(event_file)
    token = login(bins, env, user) if user else None
    if name == "matches":
        # the mix's GET /api/matches: no query
        ev["rawQueryString"] = ""
        ev.pop("queryStringParameters", None)
    if name in ("predict", "prediction_get"):
        # a match still to be played, from the catalog
        mev = with_headers(load_event("matches-list.json"), token, gzip=False)
        mev["rawQueryString"] = "status=TIMED&limit=50"
        mev["queryStringParameters"] = {"status": "TIMED", "limit": "50"}
        (res,), _ = invoke(os.path.join(bins, "matches", "bootstrap"), [json.dumps(mev).encode()], env)
        match_id = body_of(res)["items"][0]["id"]
        ev["body"] = json.dumps({"match_id": match_id, "strategy_type": "statistical"})
        ev["headers"].pop("idempotency-key", None)
        if name == "prediction_get":
            cev = load_event("predictions-create.json")
            cev["body"] = ev["body"]
            cev = with_headers(cev, token, gzip=False, drop=("idempotency-key",))
            (res,), _ = invoke(os.path.join(bins, "predictions", "bootstrap"), [json.dumps(cev).encode()], env)
            pred = body_of(res)["id"]
            ev = load_event(event_file)
            ev["rawPath"] = ev["requestContext"]["http"]["path"] = "/api/predictions/" + pred
            ev.setdefault("pathParameters", {})["id"] = pred
    ev = with_headers(ev, token, gzip=gzip, drop=("idempotency-key",))
    return os.path.join(bins, fn, "bootstrap"), json.dumps(ev).encode()


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*?):(.*?)(?: \[(.*)\])?$")


def annotate(path, inclusive):
    """(file, function, object) -> Ir of a callgrind profile, self or inclusive."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=" + ("yes" if inclusive else "no"), "--threshold=100", "--auto=no",
                          path], capture_output=True, text=True).stdout
    costs = {}
    started = False
    for line in out.splitlines():
        if "file:function" in line:
            started = True
            continue
        m = LINE.match(line) if started else None
        if m and not m.group(2).startswith("=>"):
            key = (m.group(2), m.group(3), os.path.basename(m.group(4) or ""))
            costs[key] = costs.get(key, 0) + int(m.group(1).replace(",", ""))
    return costs


def crate_of(file, obj):
    """Where instructions come from: the crate of the source file (inlined code counts where it was
    written), the standard library's crate, or the system library."""
    m = re.search(r"/registry/src/[^/]+/([A-Za-z0-9_\-]+?)-\d+\.\d+\.\d+[^/]*/", file)
    if m:
        return m.group(1)
    m = re.search(r"/library/(\w+)/", file)
    if m and file.startswith("/rustc/"):
        return m.group(1)
    m = re.search(r"(?:^|/)(shared|api-gateway|functions/\w+|infra/coldstart/hello-world)/src/", file)
    if m:
        return m.group(1)
    if obj.startswith("libc"):
        part = file.lstrip("./").split("/")[0] if file != "???" else "?"
        return "libc:" + part
    return obj or file


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--tool", default="callgrind", choices=["callgrind", "cpu", "none"])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--env-file", default=os.path.join(ROOT, ".local", "stack.env"))
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "lambda"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".local", "bench", "callgrind"))
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--no-gzip", action="store_true", help="no Accept-Encoding: gzip in the event")
    ap.add_argument("--env", action="append", default=[], help="K=V added to the function's environment")
    a = ap.parse_args()

    env = read_env_file(a.env_file)
    # as deployed (template.yaml): JSON log lines at INFO
    env.setdefault("AWS_LAMBDA_LOG_FORMAT", "JSON")
    env.setdefault("AWS_LAMBDA_LOG_LEVEL", "INFO")
    env.update(dict(kv.split("=", 1) for kv in a.env))
    binary, event = scenario_events(a.scenario, a.bin_dir, env, not a.no_gzip)
    result = {"scenario": a.scenario, "binary": binary, "count": a.count, "warmup": a.warmup}

    if a.tool == "none":
        out, _ = invoke(binary, [event] * 3, env)
        result["response"] = {"statusCode": out[-1].get("statusCode"), "body": str(body_of(out[-1]))[:300]}
    elif a.tool == "cpu":
        out, cpu = invoke(binary, [event] * (a.warmup + a.count), env, cpu_after=a.warmup)
        result["cpu_ms"] = round(cpu * 1000 / a.count, 4)
        result["status"] = out[-1].get("statusCode")
    else:
        os.makedirs(a.out, exist_ok=True)
        files = {}
        for n in (a.warmup, a.warmup + a.count):
            f = os.path.join(a.out, "%s.%d.out" % (a.scenario, n))
            if os.path.exists(f):
                os.remove(f)
            prefix = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + f, "--separate-threads=no",
                      "--dump-instr=no", "--compress-strings=no"]
            out, _ = invoke(binary, [event] * n, env, prefix=prefix)
            result["status"] = out[-1].get("statusCode")
            for _ in range(100):
                if os.path.exists(f) and os.path.getsize(f) > 0:
                    break
                time.sleep(0.1)
            files[n] = f
        lo, hi = (callgrind_total(files[n]) for n in (a.warmup, a.warmup + a.count))
        result["ir"] = round((hi - lo) / a.count)
        # self cost by crate: a partition of the invocation's instructions
        s_lo, s_hi = annotate(files[a.warmup], False), annotate(files[a.warmup + a.count], False)
        by_crate = {}
        for key, v in s_hi.items():
            c = crate_of(key[0], key[2])
            by_crate[c] = by_crate.get(c, 0) + (v - s_lo.get(key, 0)) / a.count
        result["self_by_crate"] = [{"crate": c, "ir": round(v), "pct": round(100 * v / max(1, result["ir"]), 1)}
                                   for c, v in sorted(by_crate.items(), key=lambda kv: -kv[1])[: a.top] if v > 0]
        # inclusive cost by function name (the largest of its parts)
        i_lo, i_hi = annotate(files[a.warmup], True), annotate(files[a.warmup + a.count], True)
        incl = {}
        for key, v in i_hi.items():
            d = (v - i_lo.get(key, 0)) / a.count
            incl[key[1]] = max(incl.get(key[1], 0), d)
        top = sorted(((v, k) for k, v in incl.items() if v > 0), reverse=True)[: a.top]
        result["top_inclusive"] = [{"ir": round(v), "pct": round(100 * v / max(1, result["ir"]), 1), "fn": k[:160]}
                                   for v, k in top]
        result["files"] = files
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(json.dumps({"error": str(e)}))
        sys.exit(1)
