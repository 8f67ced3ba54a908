//! The `health` function: `GET /health` (readiness: database and cache, each checked with its
//! own timeout), `GET /health/live` (liveness: touches nothing) and `GET /openapi.json` (the API's
//! OpenAPI 3 document; this function also owns the catch-all, so unknown paths get the JSON 404).

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use shared::{
    Services,
    config::Environment,
    health::{
        CACHE_CHECK_TIMEOUT, Checks, DATABASE_CHECK_TIMEOUT, HealthReport, Liveness, OverallStatus, check_cache,
        check_database,
    },
};

pub fn router(services: Services) -> Router {
    let mut routes = Router::new()
        .route("/health", get(readiness))
        .route("/health/live", get(liveness))
        .route("/openapi.json", get(openapi));
    // `GET /health/panic` panics, to prove on the shipped (release) binary that a panic is the
    // contract's JSON 500 and that the process goes on serving (`make drills`). It exists only
    // when `ENVIRONMENT=local`, which no deployed stack sets (the template says dev, staging or
    // prod): the same binary, no cargo feature, and no such route in AWS.
    if services.config.environment == Environment::Local {
        routes = routes.route("/health/panic", get(panic_on_purpose));
    }
    shared::http::finish(routes.with_state(services))
}

async fn panic_on_purpose() -> &'static str {
    panic!("GET /health/panic: a panic on purpose (ENVIRONMENT=local only)")
}

async fn readiness(State(services): State<Services>) -> impl IntoResponse {
    // Both checks run at once: the answer comes within the longer of the two timeouts.
    let (database, cache) = tokio::join!(
        check_database(&services.db, DATABASE_CHECK_TIMEOUT),
        check_cache(&services.cache, CACHE_CHECK_TIMEOUT),
    );
    let status = OverallStatus::of(&database, &cache);
    let code = if status == OverallStatus::Unavailable { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
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
    ([("cache-control", "no-store")], Json(Liveness::ok()))
}
