//! Readiness checks of the service's dependencies, each bounded by its own timeout.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{cache::Cache, db::Database};

/// How long a check may take before its dependency counts as down.
pub const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_millis(1200);
pub const CACHE_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Down,
}

/// One dependency's state: `{"status":"ok","latency_ms":0.4}` (plus `error` when down: the kind of
/// failure, never connection details).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub status: CheckStatus,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
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
    let result = tokio::time::timeout(limit, async {
        let pool = db.pool().await.map_err(|e| {
            tracing::warn!(error = %e, "database check: no pool");
            "credentials unavailable".to_string()
        })?;
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool).await.map_err(|e| {
            tracing::warn!(error = %e, "database check failed");
            match e {
                sqlx::Error::PoolTimedOut => "timed out".to_string(),
                sqlx::Error::Io(_) => "unreachable".to_string(),
                _ => "query failed".to_string(),
            }
        })?;
        Ok(())
    })
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
    let result = tokio::time::timeout(limit, cache.ping()).await.map_err(|_| "timed out".to_string()).and_then(|r| {
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
