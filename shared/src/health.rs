//! Readiness checks of the service's dependencies, each bounded by its own timeout.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{cache::Cache, db::Database};

/// How long a check may take before its dependency counts as down.
pub const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_millis(1200);
pub const CACHE_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Down,
}

/// One dependency's state: `{"status":"ok","latency_ms":0.4}` (plus `error` when down: the kind of
/// failure, never connection details).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    pub status: CheckStatus,
    #[schema(example = 0.4)]
    pub latency_ms: f64,
    /// Only when down: the kind of failure (`timed out`, `unreachable`), never a host.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(example = "timed out")]
    pub error: Option<String>,
}

/// `ok`: everything is up; `degraded`: the cache is down (answers stay correct, only slower).
/// A database outage is a 503 with status `unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverallStatus {
    Ok,
    Degraded,
    Unavailable,
}

impl OverallStatus {
    /// The status of the service given the state of the database and the cache.
    pub fn of(database: &Check, cache: &Check) -> Self {
        match (database.is_ok(), cache.is_ok()) {
            (true, true) => Self::Ok,
            (true, false) => Self::Degraded,
            (false, _) => Self::Unavailable,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Checks {
    pub database: Check,
    pub cache: Check,
}

/// The body of `GET /health` (200 when `ok` or `degraded`, 503 when `unavailable`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthReport {
    pub status: OverallStatus,
    #[schema(example = "0.1.0")]
    pub version: String,
    #[schema(example = "local")]
    pub environment: String,
    pub checks: Checks,
}

/// The body of `GET /health/live`: always `{"status":"ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "ok")]
    pub status: String,
}

impl Liveness {
    pub fn ok() -> Self {
        Self { status: "ok".into() }
    }
}

impl Check {
    fn from_result(started: Instant, result: Result<(), String>) -> Self {
        let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        match result {
            Ok(()) => Self { status: CheckStatus::Ok, latency_ms, error: None },
            Err(error) => Self { status: CheckStatus::Down, latency_ms, error: Some(error) },
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == CheckStatus::Ok
    }
}

/// `SELECT 1` on the database.
pub async fn check_database(db: &Database, limit: Duration) -> Check {
    let started = Instant::now();
    // Boxed: sqlx's future is large, and `timeout` (and the caller's `join!`) would move it by
    // value (a memcpy of its whole state at each move, 33% of a warm `GET /health` before).
    let result = tokio::time::timeout(
        limit,
        Box::pin(async {
            let pool = db.pool().await.map_err(|e| {
                tracing::warn!(error = %e, "database check: no connection");
                match e {
                    crate::db::DatabaseError::Connect(sqlx::Error::PoolTimedOut) => "timed out".to_string(),
                    crate::db::DatabaseError::Connect(sqlx::Error::Io(_)) => "unreachable".to_string(),
                    crate::db::DatabaseError::Connect(_) => "connection refused".to_string(),
                    _ => "credentials unavailable".to_string(),
                }
            })?;
            sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(pool).await.map_err(|e| {
                tracing::warn!(error = %e, "database check failed");
                match e {
                    sqlx::Error::PoolTimedOut => "timed out".to_string(),
                    sqlx::Error::Io(_) => "unreachable".to_string(),
                    _ => "query failed".to_string(),
                }
            })?;
            Ok(())
        }),
    )
    .await
    .unwrap_or_else(|_| Err("timed out".to_string()));
    if result.is_err() {
        crate::metrics::dependency_error("database");
    }
    Check::from_result(started, result)
}

/// `PING` on the cache.
pub async fn check_cache(cache: &Cache, limit: Duration) -> Check {
    let started = Instant::now();
    let result =
        tokio::time::timeout(limit, Box::pin(cache.ping())).await.map_err(|_| "timed out".to_string()).and_then(|r| {
            r.map(|_| ()).map_err(|e| {
                tracing::warn!(error = %e, "cache check failed");
                match e {
                    crate::cache::CacheError::Timeout(_) => "timed out".to_string(),
                    _ => "unreachable".to_string(),
                }
            })
        });
    if result.is_err() {
        crate::metrics::dependency_error("cache");
    }
    Check::from_result(started, result)
}
