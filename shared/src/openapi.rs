//! The OpenAPI 3 document of every route of every function, generated from the code with utoipa:
//! the schemas of the catalog and prediction routes are derived from the very types the handlers
//! serialise ([`crate::catalog`], [`crate::predictions`]); the routes of the other functions
//! (health, auth, admin) are described here from DESIGN.md section 3, with schemas for their
//! bodies. Served by the health function at `GET /openapi.json`.

#![allow(dead_code)] // the functions below exist only to carry their `#[utoipa::path]`

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{catalog, predictions};

/// The error body of every 4xx and 5xx.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorObject,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorObject {
    /// snake_case: `invalid_input`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `unprocessable`, `too_many_requests`, `service_unavailable`, `internal_error`...
    #[schema(example = "invalid_input")]
    pub code: String,
    /// For a person; for a 400 it names the field (`limit: expected an integer from 1 to 100`).
    pub message: String,
    pub request_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthCheck {
    /// `ok` or `down`.
    pub status: String,
    pub latency_ms: f64,
    /// The kind of failure (`timed out`, `unreachable`), never a host.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthChecks {
    pub database: HealthCheck,
    pub cache: HealthCheck,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthReport {
    /// `ok`, `degraded` (cache down) or `unavailable` (database down, with a 503).
    pub status: String,
    pub version: String,
    pub environment: String,
    pub checks: HealthChecks,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3 to 32 of `a-z`, `0-9`, `_`.
    pub username: String,
    pub password: String,
    pub email: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
    /// Seconds, 1800.
    pub expires_in: u64,
    pub refresh_token: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct User {
    #[schema(example = "user_7")]
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    /// `user` or `admin`.
    pub role: String,
    pub is_active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UpdateUser {
    /// `user` or `admin`.
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StrategyAccuracy {
    pub strategy_type: String,
    pub model_version: Option<String>,
    pub settled: u64,
    pub accuracy: Option<f64>,
    pub mean_rps: Option<f64>,
    pub mean_brier: Option<f64>,
    pub mean_log_loss: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobRun {
    pub job: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub outcome: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminStats {
    /// Row counts: users, competitions, teams, matches, predictions...
    pub counts: BTreeMap<String, i64>,
    pub accuracy: Vec<StrategyAccuracy>,
    pub last_job_runs: Vec<JobRun>,
}

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "ok or degraded", body = HealthReport),
              (status = 503, description = "the database is unreachable", body = HealthReport)))]
fn health() {}

#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "alive; touches no dependency", body = Liveness)))]
fn health_live() {}

#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "this document", content_type = "application/json")))]
fn openapi_json() {}

#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = User), (status = 400, body = ErrorResponse),
              (status = 409, description = "username taken", body = ErrorResponse),
              (status = 429, body = ErrorResponse)))]
fn register() {}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 400, body = ErrorResponse),
              (status = 401, description = "bad credentials", body = ErrorResponse),
              (status = 429, body = ErrorResponse)))]
fn login() {}

#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "a rotated pair", body = TokenPair), (status = 401, body = ErrorResponse)))]
fn refresh() {}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "the refresh token family is revoked"), (status = 401, body = ErrorResponse)))]
fn logout() {}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorResponse)))]
fn me() {}

#[utoipa::path(get, path = "/api/competitions", tag = "matches", security(("bearer" = [])),
    responses((status = 200, body = catalog::CompetitionList), (status = 401, body = ErrorResponse),
              (status = 503, body = ErrorResponse)))]
fn competitions() {}

#[utoipa::path(get, path = "/api/teams", tag = "matches", security(("bearer" = [])), params(catalog::TeamsQuery),
    responses((status = 200, body = catalog::TeamList), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 404, description = "unknown competition", body = ErrorResponse)))]
fn teams() {}

#[utoipa::path(get, path = "/api/matches", tag = "matches", security(("bearer" = [])), params(catalog::MatchesQuery),
    responses((status = 200, description = "one page, by kick-off", body = catalog::MatchPage),
              (status = 400, description = "a parameter is invalid; the message names it", body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn matches() {}

#[utoipa::path(get, path = "/api/matches/{id}", tag = "matches", security(("bearer" = [])),
    params(("id" = String, Path, description = "match id", example = "match_9")),
    responses((status = 200, body = catalog::MatchDetail), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
fn match_by_id() {}

#[utoipa::path(post, path = "/api/predictions", tag = "predictions", security(("bearer" = [])),
    request_body = predictions::CreatePrediction,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "the same key and body within 24 h returns the first response; another body is a 422")),
    responses((status = 201, body = predictions::Prediction),
              (status = 400, description = "bad match_id or strategy_type", body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 404, description = "unknown match", body = ErrorResponse),
              (status = 409, description = "the same Idempotency-Key is in progress", body = ErrorResponse),
              (status = 422, description = "Idempotency-Key reused with another body", body = ErrorResponse),
              (status = 503, body = ErrorResponse)))]
fn create_prediction() {}

#[utoipa::path(get, path = "/api/predictions/{id}", tag = "predictions", security(("bearer" = [])),
    params(("id" = String, Path, description = "prediction id", example = "pred_1")),
    responses((status = 200, body = predictions::Prediction), (status = 401, body = ErrorResponse),
              (status = 404, description = "unknown, or another user's", body = ErrorResponse)))]
fn prediction_by_id() {}

#[utoipa::path(get, path = "/api/predictions", tag = "predictions", security(("bearer" = [])),
    params(predictions::PredictionsQuery),
    responses((status = 200, description = "the caller's predictions, newest first", body = predictions::PredictionPage),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
fn list_predictions() {}

#[utoipa::path(get, path = "/api/admin/stats", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = AdminStats), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse)))]
fn admin_stats() {}

#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])),
    params(("limit" = Option<String>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = UserPage), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
fn admin_users() {}

#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, example = "user_7")), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
fn admin_update_user() {}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "football-prediction", description = "Football match predictions: the HTTP API of every function."),
    paths(
        health, health_live, openapi_json,
        register, login, refresh, logout, me,
        competitions, teams, matches, match_by_id,
        create_prediction, prediction_by_id, list_predictions,
        admin_stats, admin_users, admin_update_user,
    ),
    components(schemas(ErrorResponse)),
    modifiers(&BearerAuth),
    tags((name = "health"), (name = "auth"), (name = "matches"), (name = "predictions"), (name = "admin")),
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The document as JSON.
pub fn json() -> serde_json::Value {
    serde_json::to_value(document()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes of DESIGN.md section 3, as written there.
    const CONTRACT: &[(&str, &str)] = &[
        ("GET", "/health"),
        ("GET", "/health/live"),
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/logout"),
        ("GET", "/api/auth/me"),
        ("GET", "/api/competitions"),
        ("GET", "/api/teams"),
        ("GET", "/api/matches"),
        ("GET", "/api/matches/{id}"),
        ("POST", "/api/predictions"),
        ("GET", "/api/predictions/{id}"),
        ("GET", "/api/predictions"),
        ("GET", "/api/admin/stats"),
        ("GET", "/api/admin/users"),
        ("PATCH", "/api/admin/users/{id}"),
        ("GET", "/openapi.json"),
    ];

    fn documented() -> Vec<(String, String)> {
        let doc = json();
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                out.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
        out
    }

    /// `METHOD /path` pairs of the table in DESIGN.md section 3 (`GET /a, POST /b` cells too).
    fn design_routes(text: &str) -> Vec<(String, String)> {
        let section = text.split("## 3.").nth(1).and_then(|s| s.split("\n## ").next()).unwrap_or_default();
        let mut out = Vec::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cell = line.split('|').nth(1).unwrap_or_default();
            for part in cell.split(',') {
                let words: Vec<&str> = part.trim().trim_matches('`').split_whitespace().collect();
                let (method, path) = match words.as_slice() {
                    [m, p, ..] if m.chars().all(|c| c.is_ascii_uppercase()) => (m.to_string(), *p),
                    [p, ..] if p.starts_with('/') => {
                        (out.last().map(|(m, _): &(String, String)| m.clone()).unwrap_or_default(), *p)
                    }
                    _ => continue,
                };
                let path = path.trim_matches('`').split('?').next().unwrap_or_default().to_string();
                out.push((method, path));
            }
        }
        out
    }

    #[test]
    fn every_contract_route_is_documented_with_the_error_schema() {
        let documented = documented();
        for (method, path) in CONTRACT {
            assert!(documented.contains(&(method.to_string(), path.to_string())), "{method} {path} missing");
        }
        assert_eq!(documented.len(), CONTRACT.len(), "{documented:?}");
        let doc = json();
        assert!(doc["openapi"].as_str().unwrap_or_default().starts_with("3."));
        assert!(doc["components"]["schemas"]["ErrorResponse"].is_object());
        assert!(doc["components"]["schemas"]["Prediction"]["properties"]["probabilities"].is_object());
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        let matches = &doc["paths"]["/api/matches"]["get"];
        let params: Vec<&str> =
            matches["parameters"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
        for p in ["competition", "team", "status", "date_from", "date_to", "limit", "cursor"] {
            assert!(params.contains(&p), "{p}");
        }
    }

    #[test]
    fn design_document_routes_are_all_documented() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/docs/DESIGN.md");
        let Ok(text) = std::fs::read_to_string(path) else {
            // The design brief lives beside the repository; CI checks the CONTRACT copy above.
            return;
        };
        let routes = design_routes(&text);
        assert!(routes.len() >= 17, "parsed {routes:?}");
        let documented = documented();
        for route in &routes {
            assert!(documented.contains(route), "{route:?} of DESIGN.md is not in the OpenAPI document");
            assert!(CONTRACT.contains(&(route.0.as_str(), route.1.as_str())), "{route:?} missing from CONTRACT");
        }
    }
}
