//! Synthetic probes of the public API and the cache cluster, with success and latency metrics
//! that alarms watch.
//!
//! Checks, each timed and emitted as EMF `probe_success` (1 or 0) and `probe_latency_ms` with the
//! dimension `check`:
//!
//! | check | passes when |
//! |---|---|
//! | `health` | `GET /health` answers 200 |
//! | `login` | `POST /api/auth/login` with the probe user's credentials answers 200 with a token |
//! | `matches` | `GET /api/matches?limit=1` with that token answers 200 with an `items` array |
//! | `cache_cluster` | the ElastiCache replication group (or cache cluster) is `available` |
//!
//! The probe keeps no state and needs neither the database nor the lock: it must keep reporting
//! while they are down (its schedule and a reserved concurrency of 1 keep runs from piling up).
//!
//! Configuration (environment): `PROBE_BASE_URL` (the API's URL; locally
//! `http://127.0.0.1:9000` by default), `PROBE_USER_SECRET_ARN` (a secret
//! `{"username","password"}`; or `PROBE_USER_SECRET` with that JSON; locally the demo
//! `test_user`), `PROBE_CACHE_REPLICATION_GROUP_ID` or `PROBE_CACHE_CLUSTER_ID` (no cache check
//! without either), `PROBE_TIMEOUT_MS` (each HTTP check, default 5000).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{
    Services,
    config::{Environment, SecretSource},
    jobs::JobError,
    metrics::{self, MetricValue},
    secret::Secret,
};

/// The probe's input: which checks to run (default all).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeInput {
    /// Subset of `health`, `login`, `matches`, `cache_cluster`.
    pub checks: Option<Vec<String>>,
}

const CHECKS: [&str; 4] = ["health", "login", "matches", "cache_cluster"];

/// Where the cache cluster's status is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheTarget {
    ReplicationGroup(String),
    CacheCluster(String),
}

/// The probe's configuration.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub base_url: String,
    /// `{"username","password"}` JSON.
    pub user: SecretSource,
    pub cache: Option<CacheTarget>,
    pub timeout: Duration,
}

impl ProbeConfig {
    pub fn from_env(environment: Environment) -> Result<Self, JobError> {
        Self::from_lookup(environment, |k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    pub fn from_lookup(environment: Environment, get: impl Fn(&str) -> Option<String>) -> Result<Self, JobError> {
        let local = environment == Environment::Local;
        let base_url = match get("PROBE_BASE_URL") {
            Some(u) => u,
            None if local => "http://127.0.0.1:9000".into(),
            None => return Err(JobError::Permanent("environment variable PROBE_BASE_URL is required".into())),
        };
        let parsed = url::Url::parse(&base_url)
            .map_err(|e| JobError::Permanent(format!("environment variable PROBE_BASE_URL is invalid: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(JobError::Permanent("environment variable PROBE_BASE_URL must be http(s)".into()));
        }
        let user = match (get("PROBE_USER_SECRET_ARN"), get("PROBE_USER_SECRET")) {
            (Some(arn), _) => SecretSource::SecretsManager { arn },
            (None, Some(json)) => SecretSource::Plain(Secret::new(json)),
            (None, None) if local => {
                SecretSource::Plain(Secret::new(r#"{"username":"test_user","password":"test_password"}"#))
            }
            (None, None) => {
                return Err(JobError::Permanent("environment variable PROBE_USER_SECRET_ARN is required".into()));
            }
        };
        let cache = match (get("PROBE_CACHE_REPLICATION_GROUP_ID"), get("PROBE_CACHE_CLUSTER_ID")) {
            (Some(g), _) => Some(CacheTarget::ReplicationGroup(g)),
            (None, Some(c)) => Some(CacheTarget::CacheCluster(c)),
            (None, None) => None,
        };
        let timeout_ms = match get("PROBE_TIMEOUT_MS") {
            None => 5000,
            Some(v) => v.parse::<u64>().ok().filter(|n| (100..=60_000).contains(n)).ok_or_else(|| {
                JobError::Permanent(format!("environment variable PROBE_TIMEOUT_MS is invalid: `{v}`"))
            })?,
        };
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            user,
            cache,
            timeout: Duration::from_millis(timeout_ms),
        })
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckResult {
    pub check: String,
    pub success: bool,
    pub latency_ms: f64,
    /// Why it failed, or what it saw (a status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The probe's report (the Lambda's result).
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub success: bool,
    pub checks: Vec<CheckResult>,
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// Runs the checks and emits their metrics. Failing checks are reported, not raised: the metric
/// is the signal; only bad input or configuration is an error.
pub async fn run(services: &Services, config: &ProbeConfig, input: &ProbeInput) -> Result<ProbeReport, JobError> {
    let wanted: Vec<String> = match &input.checks {
        None => CHECKS.iter().map(|c| c.to_string()).collect(),
        Some(list) => {
            if let Some(bad) = list.iter().find(|c| !CHECKS.contains(&c.as_str())) {
                return Err(JobError::Permanent(format!("checks: unknown check {bad:?} (expected one of {CHECKS:?})")));
            }
            list.clone()
        }
    };
    let http = crate::tls::http_client()
        .timeout(config.timeout)
        .user_agent("football-prediction-probe")
        .build()
        .map_err(|e| JobError::Permanent(format!("HTTP client: {e}")))?;
    let mut checks = Vec::new();
    let want = |c: &str| wanted.iter().any(|w| w == c);
    if want("health") {
        checks.push(timed("health", check_health(&http, config)).await);
    }
    if want("login") || want("matches") {
        let started = Instant::now();
        let token = login(services, &http, config).await;
        let login_result = CheckResult {
            check: "login".into(),
            success: token.is_ok(),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            detail: token.as_ref().err().cloned(),
        };
        if want("login") {
            checks.push(login_result);
        }
        if want("matches") {
            checks.push(match token {
                Ok(token) => timed("matches", check_matches(&http, config, &token)).await,
                Err(e) => CheckResult {
                    check: "matches".into(),
                    success: false,
                    latency_ms: 0.0,
                    detail: Some(format!("no token: {e}")),
                },
            });
        }
    }
    if want("cache_cluster")
        && let Some(target) = &config.cache
    {
        checks.push(timed("cache_cluster", check_cache(services, target)).await);
    }
    for c in &checks {
        metrics::emit(
            &[("check", c.check.as_str())],
            &[
                ("probe_success", MetricValue::Count(if c.success { 1.0 } else { 0.0 })),
                ("probe_latency_ms", MetricValue::Milliseconds(c.latency_ms)),
            ],
        );
        if c.success {
            tracing::info!(check = %c.check, latency_ms = c.latency_ms, "probe passed");
        } else {
            tracing::error!(check = %c.check, latency_ms = c.latency_ms, detail = ?c.detail, "probe FAILED");
        }
    }
    Ok(ProbeReport { success: checks.iter().all(|c| c.success), checks })
}

async fn timed(name: &str, check: impl std::future::Future<Output = Result<String, String>>) -> CheckResult {
    let started = Instant::now();
    let result = check.await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(detail) => CheckResult { check: name.into(), success: true, latency_ms, detail: Some(detail) },
        Err(e) => CheckResult { check: name.into(), success: false, latency_ms, detail: Some(e) },
    }
}

// Errors name the kind of failure, never the URL's credentials (there are none in it) or a token.
fn http_err(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "unreachable".into()
    } else {
        format!("request failed: {}", e.without_url())
    }
}

async fn check_health(http: &reqwest::Client, config: &ProbeConfig) -> Result<String, String> {
    let res = http.get(format!("{}/health", config.base_url)).send().await.map_err(http_err)?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    if status.as_u16() != 200 {
        return Err(format!("status {status}"));
    }
    Ok(body.get("status").and_then(|s| s.as_str()).unwrap_or("?").to_string())
}

async fn login(services: &Services, http: &reqwest::Client, config: &ProbeConfig) -> Result<String, String> {
    let raw = services.secrets.resolve(&config.user).await.map_err(|e| format!("probe user secret: {e}"))?;
    let creds: Credentials = serde_json::from_str(raw.expose())
        .map_err(|_| "probe user secret is not {\"username\",\"password\"} JSON".to_string())?;
    let res = http
        .post(format!("{}/api/auth/login", config.base_url))
        .json(&serde_json::json!({"username": creds.username, "password": creds.password}))
        .send()
        .await
        .map_err(http_err)?;
    let status = res.status();
    if status.as_u16() != 200 {
        return Err(format!("status {status}"));
    }
    let body: serde_json::Value = res.json().await.map_err(|_| "login answered non-JSON".to_string())?;
    body.get("access_token").and_then(|t| t.as_str()).map(str::to_string).ok_or_else(|| "no access_token".into())
}

async fn check_matches(http: &reqwest::Client, config: &ProbeConfig, token: &str) -> Result<String, String> {
    let res = http
        .get(format!("{}/api/matches?limit=1", config.base_url))
        .bearer_auth(token)
        .send()
        .await
        .map_err(http_err)?;
    let status = res.status();
    if status.as_u16() != 200 {
        return Err(format!("status {status}"));
    }
    let body: serde_json::Value = res.json().await.map_err(|_| "matches answered non-JSON".to_string())?;
    match body.get("items").and_then(|i| i.as_array()) {
        Some(items) => Ok(format!("{} item(s)", items.len())),
        None => Err("no items array".into()),
    }
}

async fn check_cache(services: &Services, target: &CacheTarget) -> Result<String, String> {
    let client = aws_sdk_elasticache::Client::new(services.aws.sdk_config().await);
    let describe = |e: &dyn std::fmt::Display| format!("ElastiCache API: {e}");
    match target {
        CacheTarget::ReplicationGroup(id) => {
            let out = client
                .describe_replication_groups()
                .replication_group_id(id)
                .send()
                .await
                .map_err(|e| describe(&aws_sdk_elasticache::error::DisplayErrorContext(&e)))?;
            let group = out.replication_groups().first().ok_or_else(|| format!("replication group {id} not found"))?;
            let status = group.status().unwrap_or("unknown").to_string();
            if status != "available" {
                return Err(format!("replication group {id} is {status}"));
            }
            let failing: Vec<String> = group
                .node_groups()
                .iter()
                .filter(|g| g.status().is_some_and(|s| s != "available"))
                .map(|g| format!("{}: {}", g.node_group_id().unwrap_or("?"), g.status().unwrap_or("?")))
                .collect();
            if !failing.is_empty() {
                return Err(format!("node groups not available: {}", failing.join(", ")));
            }
            Ok(status)
        }
        CacheTarget::CacheCluster(id) => {
            let out = client
                .describe_cache_clusters()
                .cache_cluster_id(id)
                .send()
                .await
                .map_err(|e| describe(&aws_sdk_elasticache::error::DisplayErrorContext(&e)))?;
            let cluster = out.cache_clusters().first().ok_or_else(|| format!("cache cluster {id} not found"))?;
            let status = cluster.cache_cluster_status().unwrap_or("unknown").to_string();
            if status == "available" { Ok(status) } else { Err(format!("cache cluster {id} is {status}")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_names_what_is_missing() {
        let err = ProbeConfig::from_lookup(Environment::Prod, |_| None).unwrap_err();
        assert!(err.to_string().contains("PROBE_BASE_URL"));
        let err = ProbeConfig::from_lookup(Environment::Prod, |k| {
            (k == "PROBE_BASE_URL").then(|| "https://api.example.com".into())
        })
        .unwrap_err();
        assert!(err.to_string().contains("PROBE_USER_SECRET_ARN"));
        let local = ProbeConfig::from_lookup(Environment::Local, |_| None).unwrap();
        assert_eq!(local.base_url, "http://127.0.0.1:9000");
        assert!(local.cache.is_none());
        let err = ProbeConfig::from_lookup(Environment::Local, |k| (k == "PROBE_BASE_URL").then(|| "ftp://x".into()))
            .unwrap_err();
        assert!(err.to_string().contains("PROBE_BASE_URL"));
    }
}
