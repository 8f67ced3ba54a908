//! The `health` function: `GET /health` (readiness: database and cache, each checked with its
//! own timeout), `GET /health/live` (liveness: touches nothing) and `GET /openapi.json` (the API's
//! OpenAPI 3 document; this function also owns the catch-all, so unknown paths get the JSON 404).

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use serde::{Deserialize, Serialize};
use shared::{
    Services,
    health::{CACHE_CHECK_TIMEOUT, Check, DATABASE_CHECK_TIMEOUT, check_cache, check_database},
};

/// `ok`: everything is up; `degraded`: the cache is down (answers stay correct, only slower).
/// A database outage is a 503 with status `unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverallStatus {
    Ok,
    Degraded,
    Unavailable,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Checks {
    pub database: Check,
    pub cache: Check,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct HealthReport {
    pub status: OverallStatus,
    pub version: String,
    pub environment: String,
    pub checks: Checks,
}

pub fn router(services: Services) -> Router {
    shared::http::finish(
        Router::new()
            .route("/health", get(readiness))
            .route("/health/live", get(liveness))
            .route("/openapi.json", get(openapi))
            .with_state(services),
    )
}

async fn readiness(State(services): State<Services>) -> impl IntoResponse {
    // Both checks run at once: the answer comes within the longer of the two timeouts.
    let (database, cache) = tokio::join!(
        check_database(&services.db, DATABASE_CHECK_TIMEOUT),
        check_cache(&services.cache, CACHE_CHECK_TIMEOUT),
    );
    let (code, status) = match (database.is_ok(), cache.is_ok()) {
        (true, true) => (StatusCode::OK, OverallStatus::Ok),
        (true, false) => (StatusCode::OK, OverallStatus::Degraded),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, OverallStatus::Unavailable),
    };
    let report = HealthReport {
        status,
        version: services.config.service_version.clone(),
        environment: services.config.environment.as_str().to_string(),
        checks: Checks { database, cache },
    };
    (code, [("cache-control", "no-store")], Json(report))
}

/// `GET /openapi.json`: the OpenAPI 3 document of every route of every function.
async fn openapi() -> impl IntoResponse {
    ([("cache-control", "public, max-age=300")], Json(shared::openapi::json()))
}

async fn liveness() -> impl IntoResponse {
    ([("cache-control", "no-store")], Json(serde_json::json!({"status": "ok"})))
}
