//! The `health` function: `GET /health` (readiness: database and cache, each checked with its
//! own timeout), `GET /health/live` (liveness: touches nothing), `GET /openapi.json` (the API's
//! OpenAPI 3 document) and `GET /docs` (the interactive page on it, [`docs`]); this function also
//! owns the catch-all, so unknown paths get the JSON 404.

pub mod docs;

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
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs::page))
        .route("/docs/{file}", get(docs::asset))
        // API Gateway sends every request that no route of the HTTP API matches here ($default):
        // a known path with another method is a 405 naming the allowed ones, anything else a 404.
        .route("/{*rest}", axum::routing::any(unmatched));
    // `GET /health/panic` panics, to prove on the shipped (release) binary that a panic is the
    // contract's JSON 500 and that the process goes on serving (`make drills`). It exists only
    // when `ENVIRONMENT=local`, which no deployed stack sets (the template says dev, staging or
    // prod): the same binary, no cargo feature, and no such route in AWS.
    if services.config.environment == Environment::Local {
        routes = routes.route("/health/panic", get(panic_on_purpose));
    }
    shared::http::finish(routes.with_state(services))
}

/// The methods the OpenAPI document has for `path` (its templates' `{name}` match one segment).
pub fn documented_methods(path: &str) -> Vec<String> {
    let doc = shared::openapi::json();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut methods: Vec<String> = doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
        })
        .flat_map(|(_, item)| item.as_object().into_iter().flat_map(|ops| ops.keys().map(|m| m.to_ascii_uppercase())))
        .collect();
    methods.sort();
    methods.dedup();
    methods
}

async fn unmatched(request: axum::extract::Request) -> axum::response::Response {
    let allowed = documented_methods(request.uri().path());
    if allowed.is_empty() || allowed.iter().any(|m| m == request.method().as_str()) {
        return shared::http::ApiError::NotFound("no such route".into()).into_response();
    }
    let mut response = shared::http::ApiError::MethodNotAllowed.into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(axum::http::header::ALLOW, value);
    }
    response
}

async fn panic_on_purpose() -> &'static str {
    panic!("GET /health/panic: a panic on purpose (ENVIRONMENT=local only)")
}

async fn readiness(State(services): State<Services>) -> impl IntoResponse {
    // Both checks run at once: the answer comes within the longer of the two timeouts. Boxed so
    // that `join!` moves two pointers, not the checks' large state machines.
    let (database, cache) = tokio::join!(
        Box::pin(check_database(&services.db, DATABASE_CHECK_TIMEOUT)),
        Box::pin(check_cache(&services.cache, CACHE_CHECK_TIMEOUT)),
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
