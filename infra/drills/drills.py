"""`make drills`: failures injected one at a time into the local stack under a steady load.

Run by infra/drills/run.sh, which brings up a stack of the drills' own (.local/drills: PostgreSQL
with SCRAM passwords, Redis, the AWS emulator, each on its own port, so stopping them touches no
one else) and serves the release binaries of `cargo lambda build --release`. Only the Python
standard library and boto3 (the emulator's virtualenv) are used.

Each API drill: a steady load (threads in a closed loop over /health, the match list, creating a
prediction, a login now and then) runs; after a few quiet seconds the fault is injected, removed,
and the load goes on until everything answers again. Per drill one table row: requests, 2xx, 4xx,
503, other 5xx (must be 0: transport errors count there too), and the seconds from the fault's
removal to the last failed answer. Job drills: the job is killed (SIGKILL of its process) half-way,
then run again; the row says whether the second run completed with nothing lost or doubled.
Exit status 1 when any drill fails.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import boto3

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def log(msg):
    print(f"[drills] {msg}", file=sys.stderr, flush=True)


class Env:
    def __init__(self, path):
        self.vars = {}
        for line in open(path):
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                self.vars[k] = v

    def __getitem__(self, k):
        return self.vars[k]


def http(method, url, body=None, token=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


# ------------------------------------------------------------------------------------------ load

class Load:
    """Closed-loop users; every answer is recorded as (time, route, status); transport errors as 0."""

    def __init__(self, base, users, password):
        self.base = base
        self.users = users
        self.password = password
        self.records = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = []
        self.tokens = []
        self.match_ids = []

    def prepare(self):
        status, body, _ = http("POST", f"{self.base}/api/auth/login", {"username": "test_user", "password": self.password})
        if status != 200:
            raise SystemExit(f"login failed before the drills: {status} {body[:200]!r}")
        token = json.loads(body)["access_token"]
        self.tokens = [token]
        status, body, _ = http("GET", f"{self.base}/api/matches?status=TIMED&limit=20", token=token)
        self.match_ids = [m["id"] for m in json.loads(body)["items"]]
        if not self.match_ids:
            raise SystemExit("no scheduled match to predict")

    def record(self, route, status):
        with self.lock:
            self.records.append((time.monotonic(), route, status))

    def user(self, n):
        token = self.tokens[0]
        i = n
        while not self.stop_flag.is_set():
            i += 1
            kind = i % 10
            try:
                if kind in (0, 1, 2):
                    route, status = "GET /api/matches", http("GET", f"{self.base}/api/matches?limit=10", token=token)[0]
                elif kind in (3, 4):
                    m = self.match_ids[i % len(self.match_ids)]
                    route = "POST /api/predictions"
                    status = http("POST", f"{self.base}/api/predictions", {"match_id": m, "strategy_type": "statistical"}, token=token)[0]
                elif kind in (5, 6):
                    route, status = "GET /api/competitions", http("GET", f"{self.base}/api/competitions", token=token)[0]
                elif kind == 7 and n == 0:
                    route = "POST /api/auth/login"
                    status = http("POST", f"{self.base}/api/auth/login", {"username": "test_user", "password": self.password})[0]
                else:
                    route, status = "GET /health", http("GET", f"{self.base}/health")[0]
            except Exception:  # connection refused or reset, timeout: never a success
                status = 0
            self.record(route, status)
            time.sleep(0.02)

    def start(self):
        self.stop_flag.clear()
        self.threads = [threading.Thread(target=self.user, args=(n,), daemon=True) for n in range(self.users)]
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=60)

    def window(self, t0, t1):
        with self.lock:
            return [r for r in self.records if t0 <= r[0] <= t1]


def summarise(records, restored_at):
    ok = sum(1 for r in records if 200 <= r[2] < 300)
    c4 = sum(1 for r in records if 400 <= r[2] < 500)
    c503 = sum(1 for r in records if r[2] == 503)
    other = [r for r in records if not (200 <= r[2] < 500) and r[2] != 503]
    failed = [r[0] for r in records if not (200 <= r[2] < 500)]
    recover = max(0.0, max(failed) - restored_at) if failed else 0.0
    return {"requests": len(records), "2xx": ok, "4xx": c4, "503": c503, "other_5xx": len(other),
            "recover_s": round(recover, 1),
            "other_detail": sorted({f"{r[1]} -> {r[2]}" for r in other})}


# ------------------------------------------------------------------------------------------ faults

class Stack:
    def __init__(self, args):
        self.args = args
        self.state = args.state
        self.env = Env(os.path.join(self.state, "stack.env"))
        self.fenv = Env(os.path.join(self.state, "functions.env"))
        self.pg_bin = args.pg_bin
        self.data = os.path.join(self.state, "pg", "data")
        self.admin_url = self.env["DATABASE_ADMIN_URL"]
        endpoint = self.env["AWS_ENDPOINT_URL"]
        self.sm = boto3.client("secretsmanager", endpoint_url=endpoint, region_name=self.env["AWS_REGION"])
        self.ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=self.env["AWS_REGION"])
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name=self.env["AWS_REGION"])

    def as_postgres(self, argv):
        return (["runuser", "-u", "postgres", "--"] + argv) if os.geteuid() == 0 else argv

    def psql(self, sql, db=None):
        url = self.admin_url if db is None else self.admin_url.rsplit("/", 1)[0] + "/" + db
        out = subprocess.run([os.path.join(self.pg_bin, "psql"), url, "-tAqc", sql], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.strip()}")
        return out.stdout.strip()

    def pg_stop(self):
        subprocess.run(self.as_postgres([os.path.join(self.pg_bin, "pg_ctl"), "-D", self.data, "-m", "fast", "stop"]),
                       check=True, capture_output=True)

    def pg_start(self):
        port = open(os.path.join(self.state, "pg", "port")).read().strip()
        subprocess.run(self.as_postgres([os.path.join(self.pg_bin, "pg_ctl"), "-D", self.data, "-l",
                                         os.path.join(self.state, "pg", "server.log"), "-w", "-t", "60", "-o",
                                         f"-p {port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off "
                                         "-c full_page_writes=off -c synchronous_commit=off", "start"]),
                       check=True, capture_output=True)

    def terminate_backends(self):
        user = self.args.db_user
        return self.psql(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{user}'")

    def rotate_password(self):
        import secrets as pysecrets
        new = pysecrets.token_hex(16)
        # as RDS's rotation does: the database first (setSecret), then the secret (finishSecret)
        self.psql(f"ALTER ROLE {self.args.db_user} PASSWORD '{new}'")
        arn = self.fenv["DATABASE_SECRET_ARN"]
        value = json.loads(self.sm.get_secret_value(SecretId=arn)["SecretString"])
        value["password"] = new
        self.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(value))

    def redis_pid(self):
        return int(open(os.path.join(self.state, "redis", "redis.pid")).read().strip())

    def redis_stop(self):
        port = open(os.path.join(self.state, "redis", "port")).read().strip()
        subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], capture_output=True)

    def redis_start(self):
        port = open(os.path.join(self.state, "redis", "port")).read().strip()
        d = os.path.join(self.state, "redis")
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", port, "--save", "",
                        "--appendonly", "no", "--dir", d, "--pidfile", os.path.join(d, "redis.pid"),
                        "--logfile", os.path.join(d, "redis.log")], check=True)

    def moto_pid(self):
        return int(open(os.path.join(self.state, "moto", "moto.pid")).read().strip())


def api_drill(name, what, load, inject, restore, quiet=3.0, hold=10.0, settle=15.0):
    log(f"{name}: {what}")
    t0 = time.monotonic()
    time.sleep(quiet)
    inject()
    time.sleep(hold)
    restore()
    restored = time.monotonic()
    # go on until 5 s pass with no failure, at most `settle` + 30 s
    deadline = restored + settle + 30
    while time.monotonic() < deadline:
        time.sleep(1)
        recent = load.window(time.monotonic() - 5, time.monotonic())
        if time.monotonic() - restored >= settle and recent and all(200 <= r[2] < 500 for r in recent):
            break
    t1 = time.monotonic()
    row = summarise(load.window(t0, t1), restored)
    row.update(drill=name, what=what)
    ok_after = [r for r in load.window(t1 - 5, t1)]
    row["recovered"] = bool(ok_after) and all(200 <= r[2] < 500 for r in ok_after)
    row["passed"] = row["other_5xx"] == 0 and row["recovered"]
    log(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'what'})}")
    return row


# ------------------------------------------------------------------------------------------ jobs

def invoke(args, function, payload, timeout=600):
    """Invokes a job through the runtime API, as the scheduler would; returns the Popen."""
    return subprocess.Popen(
        [os.path.join(ROOT, ".venv/bin/cargo-lambda"), "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
         "--invoke-port", str(args.port), "--data-ascii", json.dumps(payload), "--output-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def instances(args, function):
    out = subprocess.run([os.path.join(ROOT, "infra/local/serve-release.sh"), "pids", args.state, function],
                         capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def spawn(args, function):
    subprocess.run([os.path.join(ROOT, "infra/local/serve-release.sh"), "spawn", args.state,
                    os.path.join(args.state, "functions.env"), str(args.port), function], check=True,
                   capture_output=True)


def run_to_end(args, function, payload, stack, lock_key):
    """Runs the job again until it is not `skipped` (a killed run's lease must expire first, as in
    Lambda); returns (report, seconds waited for the lease)."""
    waited = 0.0
    while True:
        p = invoke(args, function, payload)
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"{function} failed: {out} {err}")
        report = json.loads(out)
        if report.get("outcome") != "skipped":
            return report, waited
        item = stack.ddb.get_item(TableName=stack.env["TABLE_NAME"],
                                  Key={"pk": {"S": f"job#{lock_key}"}, "sk": {"S": "lock"}}).get("Item")
        expires = int(item["expires_at"]["N"]) if item else 0
        pause = max(1.0, expires - time.time() + 1)
        log(f"{function}: the killed run's lease holds the lock for {pause:.0f} s more (as in Lambda)")
        time.sleep(pause)
        waited += pause


def job_drill_backup(args, stack):
    name = "backup-killed"
    log(f"{name}: the backup job killed half-way, then run again")
    t0 = time.monotonic()
    db = stack.env["DATABASE_URL"].rsplit("/", 1)[1]
    before = set(o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.env["BACKUP_BUCKET"], Prefix="backups/").get("Contents", []))
    [pid] = instances(args, "backup")[:1]
    p = invoke(args, "backup", {"mode": "backup", "part_size_mib": 5})
    # half-way: once its run record exists and it has started uploading
    killed_while = "?"
    for _ in range(600):
        running = stack.psql("SELECT count(*) FROM job_runs WHERE job = 'backup' AND outcome = 'running'", db)
        if running == "1":
            time.sleep(args.kill_after)
            killed_while = "running" if stack.psql("SELECT count(*) FROM job_runs WHERE job = 'backup' AND outcome = 'running'", db) == "1" else "finished"
            break
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    p.kill()
    log(f"{name}: killed the backup process {pid} ({killed_while})")
    spawn(args, "backup")
    report, waited = run_to_end(args, "backup", {"mode": "backup", "part_size_mib": 5}, stack, f"backup#{db}")
    backup_id = report["counts"].get("backup_id")
    verify, _ = run_to_end(args, "backup", {"mode": "verify", "backup_id": backup_id}, stack, f"verify#{db}")
    after = set(o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.env["BACKUP_BUCKET"], Prefix="backups/").get("Contents", []))
    manifests = [k for k in after - before if k.endswith("manifest.json")]
    rows_db = int(stack.psql("SELECT sum(n_live_tup) FROM pg_stat_user_tables WHERE relname <> '_sqlx_migrations'", db) or 0)
    complete = report.get("outcome") == "succeeded" and verify.get("outcome") == "succeeded" and len(manifests) == 1
    detail = (f"killed while {killed_while}; 2nd run {report.get('outcome')} after waiting {waited:.0f} s for the lease; "
              f"{len(manifests)} new complete backup(s); restore drill {verify.get('outcome')}: "
              f"{verify.get('counts', {}).get('tables')} tables, {verify.get('counts', {}).get('rows')} rows restored and compared")
    row = {"drill": name, "what": "backup job SIGKILLed half-way, then run again", "requests": 0, "2xx": 0, "4xx": 0,
           "503": 0, "other_5xx": 0, "recover_s": round(time.monotonic() - t0, 1), "job": detail,
           "passed": complete}
    log(f"{name}: {detail}")
    return row


class FakeFootballData:
    """football-data.org serving the test fixtures, each answer after `delay` seconds."""

    def __init__(self, port, delay):
        import http.server
        fixtures = os.path.join(ROOT, "tests/fixtures/football-data-org")
        routes = {"/v4/competitions/PL": "competition-PL.json", "/v4/competitions/PL/teams": "teams-PL.json",
                  "/v4/competitions/PL/matches": "matches-PL-1.json"}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                name = routes.get(path)
                time.sleep(delay)
                if not name:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = open(os.path.join(fixtures, name), "rb").read()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("X-Requests-Available-Minute", "9")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def job_drill_ingest(args, stack):
    name = "ingest-killed"
    log(f"{name}: the ingest job killed half-way, then run again")
    t0 = time.monotonic()
    db = stack.env["DATABASE_URL"].rsplit("/", 1)[1]
    payload = {"competitions": ["PL"], "season": 2024}
    count_sql = ("SELECT count(*) || '/' || count(DISTINCT source_id) FROM match_sources "
                 "WHERE source = 'football-data.org'")
    [pid] = instances(args, "ingest")[:1]
    p = invoke(args, "ingest", payload)
    # half-way: the competition step is written, the teams request is in flight
    for _ in range(1200):
        if stack.psql("SELECT count(*) FROM job_checkpoints WHERE job = 'ingest'", db) == "1":
            break
        time.sleep(0.05)
    time.sleep(args.fake_delay * 1.5)
    pending = stack.psql("SELECT state::text FROM job_checkpoints WHERE job = 'ingest'", db)
    os.kill(pid, signal.SIGKILL)
    p.kill()
    log(f"{name}: killed the ingest process {pid}; checkpoint left: {pending[:120]}")
    spawn(args, "ingest")
    second, waited = run_to_end(args, "ingest", payload, stack, "ingest#" + db)
    after_second = stack.psql(count_sql, db)
    third, _ = run_to_end(args, "ingest", payload, stack, "ingest#" + db)
    after_third = stack.psql(count_sql, db)
    c2, c3 = second.get("counts", {}), third.get("counts", {})
    complete = (second.get("outcome") == "succeeded" and c2.get("resumed_steps", 0) >= 1
                and after_second == "4/4" and after_third == "4/4" and c3.get("matches", {}).get("inserted") == 0)
    detail = (f"2nd run {second.get('outcome')} after waiting {waited:.0f} s for the lease, resumed "
              f"{c2.get('resumed_steps')} step(s) of the checkpoint; football-data.org matches stored/distinct "
              f"{after_second}; a 3rd run inserted {c3.get('matches', {}).get('inserted')} (still {after_third})")
    row = {"drill": name, "what": "ingest job SIGKILLed half-way, then run again", "requests": 0, "2xx": 0, "4xx": 0,
           "503": 0, "other_5xx": 0, "recover_s": round(time.monotonic() - t0, 1), "job": detail, "passed": complete}
    log(f"{name}: {detail}")
    return row


# ------------------------------------------------------------------------------------------ panic

def panic_drill(args):
    """GET /health/panic on the release binary: the contract's JSON 500 with a request id, and the
    same process answers the next request."""
    name = "panic"
    log(f"{name}: a handler panics in the release build")
    before = instances(args, "health")
    status, body, headers = http("GET", f"{args.base}/health/panic")
    err = json.loads(body or b"{}").get("error", {})
    rid = headers.get("x-request-id") or headers.get("X-Request-Id")
    time.sleep(0.5)
    after = instances(args, "health")
    nxt = http("GET", f"{args.base}/health/live")[0]
    later = instances(args, "health")
    passed = (status == 500 and err.get("code") == "internal_error" and bool(rid) and err.get("request_id") == rid
              and nxt == 200 and before == after == later)
    detail = (f"{status} {err.get('code')} request_id={err.get('request_id')} (header {rid}); health processes "
              f"before {before}, after {after}; next request {nxt} from {later}")
    log(f"{name}: {detail}")
    return {"drill": name, "what": "GET /health/panic (ENVIRONMENT=local only) on the release build", "requests": 2,
            "2xx": int(nxt == 200), "4xx": 0, "503": 0, "other_5xx": 0 if passed else 1, "recover_s": 0.0,
            "job": detail, "passed": passed}


# ------------------------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pg-bin", required=True)
    ap.add_argument("--db-user", required=True)
    ap.add_argument("--users", type=int, default=6)
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--kill-after", type=float, default=0.0)
    ap.add_argument("--fake-delay", type=float, default=2.0)
    ap.add_argument("--fake-port", type=int, required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    args.base = f"http://127.0.0.1:{args.port}"
    stack = Stack(args)
    only = set(filter(None, args.only.split(",")))
    want = lambda n: not only or n in only

    rows = []
    if want("panic"):
        rows.append(panic_drill(args))

    load = Load(args.base, args.users, "test_password")
    load.prepare()
    load.start()
    time.sleep(5)  # warm
    try:
        if want("postgres-stopped"):
            rows.append(api_drill("postgres-stopped", f"PostgreSQL stopped for {args.hold:.0f} s", load,
                                  stack.pg_stop, stack.pg_start, hold=args.hold))
        if want("backends-terminated"):
            rows.append(api_drill("backends-terminated", "every backend of the functions' user terminated, 3 times 1 s apart",
                                  load, lambda: [stack.terminate_backends(), time.sleep(1), stack.terminate_backends(),
                                                 time.sleep(1), stack.terminate_backends()], lambda: None, hold=0.0))
        if want("password-rotated"):
            rows.append(api_drill("password-rotated", "the database password rotated (role, then secret), then every backend terminated",
                                  load, lambda: [stack.rotate_password(), time.sleep(2), stack.terminate_backends()],
                                  lambda: None, hold=0.0))
        if want("redis-stopped"):
            rows.append(api_drill("redis-stopped", f"Redis stopped for {args.hold:.0f} s", load, stack.redis_stop,
                                  stack.redis_start, hold=args.hold))
        if want("aws-emulator-stopped"):
            pid = stack.moto_pid()
            rows.append(api_drill("aws-emulator-stopped",
                                  f"the AWS emulator stopped (SIGSTOP: S3, DynamoDB, Secrets Manager calls hang) for {args.hold:.0f} s",
                                  load, lambda: os.kill(pid, signal.SIGSTOP), lambda: os.kill(pid, signal.SIGCONT),
                                  hold=args.hold))
    finally:
        load.stop()

    if want("backup-killed"):
        rows.append(job_drill_backup(args, stack))
    if want("ingest-killed"):
        FakeFootballData(args.fake_port, args.fake_delay)
        rows.append(job_drill_ingest(args, stack))

    print("| drill | requests | 2xx | 4xx | 503 | other 5xx | recover s | job second run | result |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['requests']} | {r['2xx']} | {r['4xx']} | {r['503']} | {r['other_5xx']} | "
              f"{r['recover_s']} | {r.get('job', '')} | {'pass' if r['passed'] else 'FAIL'} |")
    for r in rows:
        if r.get("other_detail"):
            print(f"{r['drill']}: other 5xx: {', '.join(r['other_detail'])}")
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=2)
    sys.exit(0 if all(r["passed"] for r in rows) else 1)


if __name__ == "__main__":
    main()
