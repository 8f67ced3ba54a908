//! `fp-load`: the load test of `make load`, a small closed-loop generator (tokio + reqwest) in the
//! spirit of the old project's Locust file.
//!
//! Each *user* logs in once (`POST /api/auth/login`), then loops until the deadline over
//! list matches 3 : create prediction 2 : get prediction 1 : health 1 (weighted at random).
//! Each *admin* logs in once and alternates `GET /api/admin/stats` and `GET /api/admin/users`.
//! It only talks to a loopback address, stops at `--duration` or `--max-requests`, and reports
//! throughput, latency percentiles per route, errors by status, and where prediction requests spent
//! their time (the `Server-Timing` header of the predictions function).

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

#[derive(Parser, Debug, Clone)]
#[command(about = "Load test of the local stack (make up)")]
struct Args {
    /// Base URL of the stack; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    base_url: String,
    /// Concurrent users.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Concurrent admins (the second kind of user); default users/10, at least 1.
    #[arg(long)]
    admins: Option<usize>,
    /// Test length in seconds (at most 600).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Stop after this many requests in all.
    #[arg(long, default_value_t = 500_000)]
    max_requests: u64,
    /// Pause between two requests of one user, in milliseconds.
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    #[arg(long, default_value = "test_user")]
    username: String,
    #[arg(long, default_value = "test_admin")]
    admin_username: String,
    #[arg(long, default_value = "test_password")]
    password: String,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<String>,
}

#[derive(Default)]
struct RouteStats {
    latencies_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Stats {
    routes: Mutex<BTreeMap<&'static str, RouteStats>>,
    /// Server-Timing parts of prediction requests: name -> (sum ms, count).
    timing: Mutex<BTreeMap<String, (f64, u64)>>,
    model_sources: Mutex<BTreeMap<String, u64>>,
    requests: AtomicU64,
}

impl Stats {
    fn record(&self, route: &'static str, elapsed: Duration, error: Option<String>) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let r = routes.entry(route).or_default();
        r.latencies_us.push(elapsed.as_micros() as u64);
        if let Some(e) = error {
            *r.errors.entry(e).or_default() += 1;
        }
    }

    fn server_timing(&self, header: &str) {
        let mut timing = self.timing.lock().unwrap_or_else(|p| p.into_inner());
        for part in header.split(',') {
            let mut fields = part.trim().split(';');
            let Some(name) = fields.next() else { continue };
            for f in fields {
                if let Some(v) = f.strip_prefix("dur=").and_then(|v| v.parse::<f64>().ok()) {
                    let e = timing.entry(name.to_string()).or_default();
                    e.0 += v;
                    e.1 += 1;
                }
                if let Some(d) = f.strip_prefix("desc=") {
                    *self
                        .model_sources
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(d.trim_matches('"').to_string())
                        .or_default() += 1;
                }
            }
        }
    }
}

struct Ctx {
    client: reqwest::Client,
    base: String,
    stats: Stats,
    deadline: Instant,
    args: Args,
}

impl Ctx {
    fn running(&self) -> bool {
        Instant::now() < self.deadline && self.stats.requests.load(Ordering::Relaxed) < self.args.max_requests
    }

    /// One request; records latency and any error (non-2xx or transport). Returns status and body.
    async fn call(
        &self,
        route: &'static str,
        req: reqwest::RequestBuilder,
        expect: u16,
    ) -> Option<(u16, Value, reqwest::header::HeaderMap)> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = async {
            let res = req.send().await?;
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            let body = res.bytes().await?;
            Ok::<_, reqwest::Error>((status, serde_json::from_slice(&body).unwrap_or(Value::Null), headers))
        }
        .await;
        let elapsed = started.elapsed();
        match result {
            Ok((status, body, headers)) => {
                let error = (status != expect).then(|| format!("HTTP {status}"));
                self.stats.record(route, elapsed, error);
                Some((status, body, headers))
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                self.stats.record(route, elapsed, Some(kind.to_string()));
                None
            }
        }
    }

    async fn login(&self, username: &str) -> Option<String> {
        for _ in 0..20 {
            let req = self
                .client
                .post(format!("{}/api/auth/login", self.base))
                .json(&json!({"username": username, "password": self.args.password}));
            match self.call("POST /api/auth/login", req, 200).await {
                Some((200, body, _)) => return body["access_token"].as_str().map(str::to_string),
                Some((429, _, headers)) => {
                    let wait = headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(1);
                    tokio::time::sleep(Duration::from_secs(wait.min(10))).await;
                }
                _ => return None,
            }
        }
        None
    }
}

async fn user_loop(ctx: Arc<Ctx>, seed: u64) {
    let Some(token) = ctx.login(&ctx.args.username).await else { return };
    let auth = format!("Bearer {token}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut upcoming: Vec<String> = Vec::new();
    let mut mine: Vec<String> = Vec::new();
    let strategies = ["statistical", "historical", "ml_model"];
    while ctx.running() {
        let pick = rng.random_range(0..7);
        match pick {
            0..=2 => {
                let query = match rng.random_range(0..3) {
                    0 => "status=TIMED,SCHEDULED&limit=20",
                    1 => "status=FINISHED&limit=20",
                    _ => "limit=50",
                };
                let req = ctx.client.get(format!("{}/api/matches?{query}", ctx.base)).header("authorization", &auth);
                if let Some((200, body, _)) = ctx.call("GET /api/matches", req, 200).await
                    && let Some(items) = body["items"].as_array()
                {
                    for m in items {
                        if m["status"] != "FINISHED"
                            && let Some(id) = m["id"].as_str()
                            && !upcoming.iter().any(|u| u == id)
                        {
                            upcoming.push(id.to_string());
                        }
                    }
                }
            }
            3 | 4 => {
                let Some(match_id) =
                    (!upcoming.is_empty()).then(|| upcoming[rng.random_range(0..upcoming.len())].clone())
                else {
                    continue;
                };
                let strategy = strategies[rng.random_range(0..strategies.len())];
                let req = ctx
                    .client
                    .post(format!("{}/api/predictions", ctx.base))
                    .header("authorization", &auth)
                    .json(&json!({"match_id": match_id, "strategy_type": strategy}));
                if let Some((201, body, headers)) = ctx.call("POST /api/predictions", req, 201).await {
                    if let Some(t) = headers.get("server-timing").and_then(|v| v.to_str().ok()) {
                        ctx.stats.server_timing(t);
                    }
                    if let Some(id) = body["id"].as_str() {
                        mine.push(id.to_string());
                    }
                }
            }
            5 => {
                let Some(id) = (!mine.is_empty()).then(|| mine[rng.random_range(0..mine.len())].clone()) else {
                    continue;
                };
                let req = ctx.client.get(format!("{}/api/predictions/{id}", ctx.base)).header("authorization", &auth);
                ctx.call("GET /api/predictions/{id}", req, 200).await;
            }
            _ => {
                let req = ctx.client.get(format!("{}/health", ctx.base));
                ctx.call("GET /health", req, 200).await;
            }
        }
        if ctx.args.think_ms > 0 {
            tokio::time::sleep(Duration::from_millis(ctx.args.think_ms)).await;
        }
    }
}

async fn admin_loop(ctx: Arc<Ctx>) {
    let Some(token) = ctx.login(&ctx.args.admin_username).await else { return };
    let auth = format!("Bearer {token}");
    let mut i = 0u64;
    while ctx.running() {
        let (route, path) = if i.is_multiple_of(2) {
            ("GET /api/admin/stats", "/api/admin/stats")
        } else {
            ("GET /api/admin/users", "/api/admin/users")
        };
        let req = ctx.client.get(format!("{}{path}", ctx.base)).header("authorization", &auth);
        ctx.call(route, req, 200).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(ctx.args.think_ms.max(50))).await;
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = url::Url::parse(&args.base_url).context("--base-url")?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if !loopback {
        bail!("--base-url must be a loopback address (this tool only loads the local stack)");
    }
    if args.duration == 0 || args.duration > 600 || args.users == 0 || args.users > 1000 {
        bail!("--duration must be 1..=600 s and --users 1..=1000");
    }
    let admins = args.admins.unwrap_or((args.users / 10).max(1));
    // reqwest is built without a crypto provider of its own: hand it a rustls configuration with
    // the workspace's one provider, aws-lc-rs (without one, building a client panics even for http).
    let tls =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.users + admins)
        .build()?;
    let base = args.base_url.trim_end_matches('/').to_string();
    println!("[load] {} users + {admins} admins against {base} for {} s", args.users, args.duration);
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        client,
        base,
        stats: Stats::default(),
        deadline: started + Duration::from_secs(args.duration),
        args: args.clone(),
    });
    let mut tasks = Vec::new();
    for i in 0..args.users {
        tasks.push(tokio::spawn(user_loop(ctx.clone(), i as u64 + 1)));
    }
    for _ in 0..admins {
        tasks.push(tokio::spawn(admin_loop(ctx.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = started.elapsed().as_secs_f64();
    report(&ctx, wall, args.users, admins)
}

fn report(ctx: &Ctx, wall: f64, users: usize, admins: usize) -> anyhow::Result<()> {
    let routes = ctx.stats.routes.lock().unwrap_or_else(|p| p.into_inner());
    let mut total = 0u64;
    let mut total_errors = 0u64;
    let mut rows = Vec::new();
    println!(
        "\n{:<28} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "route", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for (route, r) in routes.iter() {
        let mut lat = r.latencies_us.clone();
        lat.sort_unstable();
        let n = lat.len() as u64;
        let errors: u64 = r.errors.values().sum();
        total += n;
        total_errors += errors;
        let (p50, p95, p99, max) =
            (percentile(&lat, 50.0), percentile(&lat, 95.0), percentile(&lat, 99.0), percentile(&lat, 100.0));
        println!("{route:<28} {n:>8} {errors:>8} {:>9.1} {p50:>9.2} {p95:>9.2} {p99:>9.2} {max:>9.2}", n as f64 / wall);
        for (kind, count) in &r.errors {
            println!("    error {kind}: {count}");
        }
        rows.push(json!({"route": route, "requests": n, "errors": r.errors, "rps": n as f64 / wall,
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "max_ms": max}));
    }
    println!("{:<28} {total:>8} {total_errors:>8} {:>9.1}", "TOTAL", total as f64 / wall);
    println!(
        "[load] {users} users + {admins} admins, {wall:.1} s, {:.1} req/s, {total_errors} errors",
        total as f64 / wall
    );
    let timing = ctx.stats.timing.lock().unwrap_or_else(|p| p.into_inner());
    let sources = ctx.stats.model_sources.lock().unwrap_or_else(|p| p.into_inner());
    if !timing.is_empty() {
        let parts: Vec<String> =
            timing.iter().map(|(k, (sum, n))| format!("{k} {:.2} ms", sum / (*n).max(1) as f64)).collect();
        println!("[load] POST /api/predictions server-side mean: {} ; model from {:?}", parts.join(", "), *sources);
    }
    if let Some(path) = &ctx.args.json {
        let doc = json!({"users": users, "admins": admins, "seconds": wall, "requests": total, "errors": total_errors,
            "rps": total as f64 / wall, "routes": rows,
            "prediction_timing_mean_ms": timing.iter().map(|(k, (s, n))| (k.clone(), s / (*n).max(1) as f64)).collect::<BTreeMap<_, _>>(),
            "model_sources": *sources});
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}
