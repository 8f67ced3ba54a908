//! The OpenAPI 3 document of every route of every function, generated from the code with utoipa.
//! Every schema is derived from the very type a handler deserialises or serialises
//! ([`crate::health`], [`crate::auth::session`], [`crate::users`], [`crate::catalog`],
//! [`crate::predictions`], [`crate::admin`], and [`crate::http::error`] for every error), so the
//! document cannot drift from what the functions send; the routes are those of DESIGN.md section 3.
//! Served by the health function at `GET /openapi.json`.

#![allow(dead_code)] // the functions below exist only to carry their `#[utoipa::path]`

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{
    admin::AdminStats,
    auth::session::{LoginRequest, RefreshRequest, RegisterRequest, TokenPair},
    catalog,
    flags::{FeatureFlags, FlagsChange},
    health::{HealthReport, Liveness},
    http::error::ErrorBody as ErrorResponse,
    predictions,
    users::{User, UserChange, UserPage, UsersQuery},
};

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

#[utoipa::path(get, path = "/docs", tag = "health",
    responses((status = 200, description = "this API's interactive documentation (Swagger UI)", content_type = "text/html")))]
fn docs_page() {}

#[utoipa::path(get, path = "/docs/{file}", tag = "health",
    params(("file" = String, Path, description = "an asset of the /docs page",
            pattern = r"^(swagger-ui-bundle\.js|swagger-ui\.css|favicon-32x32\.png|docs\.js)$")),
    responses((status = 200, description = "the asset: JavaScript, CSS or PNG"),
              (status = 404, description = "no such asset", body = ErrorResponse)))]
fn docs_asset() {}

#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = User), (status = 400, description = "a field is invalid; the message names it", body = ErrorResponse),
              (status = 403, description = "registration is closed (feature flag)", body = ErrorResponse),
              (status = 409, description = "username taken", body = ErrorResponse),
              (status = 429, body = ErrorResponse),
              (status = 503, description = "read-only maintenance (`maintenance`), or a dependency is unavailable", body = ErrorResponse)))]
fn register() {}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 400, body = ErrorResponse),
              (status = 401, description = "bad credentials", body = ErrorResponse),
              (status = 429, description = "too many failed logins for this username or address", body = ErrorResponse),
              (status = 503, description = "the database or the login throttle (DynamoDB) is unavailable", body = ErrorResponse)))]
fn login() {}

#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "a rotated pair", body = TokenPair),
              (status = 400, description = "refresh_token is empty or too long", body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn refresh() {}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "the refresh token family is revoked"),
              (status = 400, description = "refresh_token is empty or too long", body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn logout() {}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn me() {}

#[utoipa::path(get, path = "/api/competitions", tag = "matches", security(("bearer" = [])),
    responses((status = 200, body = catalog::CompetitionList), (status = 401, body = ErrorResponse),
              (status = 503, body = ErrorResponse)))]
fn competitions() {}

#[utoipa::path(get, path = "/api/teams", tag = "matches", security(("bearer" = [])), params(catalog::TeamsQuery),
    responses((status = 200, body = catalog::TeamList), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 404, description = "unknown competition", body = ErrorResponse),
              (status = 503, body = ErrorResponse)))]
fn teams() {}

#[utoipa::path(get, path = "/api/matches", tag = "matches", security(("bearer" = [])), params(catalog::MatchesQuery),
    responses((status = 200, description = "one page, by kick-off", body = catalog::MatchPage),
              (status = 400, description = "a parameter is invalid; the message names it", body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn matches() {}

#[utoipa::path(get, path = "/api/matches/{id}", tag = "matches", security(("bearer" = [])),
    params(("id" = String, Path, description = "match id", example = "match_9", pattern = r"^match_[1-9][0-9]{0,17}$")),
    responses((status = 200, body = catalog::MatchDetail), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn match_by_id() {}

#[utoipa::path(post, path = "/api/predictions", tag = "predictions", security(("bearer" = [])),
    request_body = predictions::CreatePrediction,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$",
            description = "1 to 255 visible ASCII characters; the same key and body within 24 h returns the first response; another body is a 422")),
    responses((status = 201, body = predictions::Prediction),
              (status = 400, description = "bad match_id, strategy_type or Idempotency-Key", body = ErrorResponse),
              (status = 401, body = ErrorResponse),
              (status = 403, description = "the strategy is turned off (feature flag)", body = ErrorResponse),
              (status = 404, description = "unknown match", body = ErrorResponse),
              (status = 409, description = "the same Idempotency-Key is in progress", body = ErrorResponse),
              (status = 422, description = "Idempotency-Key reused with another body", body = ErrorResponse),
              (status = 503, description = "read-only maintenance (`maintenance`), or a dependency is unavailable", body = ErrorResponse)))]
fn create_prediction() {}

#[utoipa::path(get, path = "/api/predictions/{id}", tag = "predictions", security(("bearer" = [])),
    params(("id" = String, Path, description = "prediction id", example = "pred_1", pattern = r"^pred_[1-9][0-9]{0,17}$")),
    responses((status = 200, body = predictions::Prediction), (status = 400, description = "not a prediction id", body = ErrorResponse),
              (status = 401, body = ErrorResponse),
              (status = 404, description = "unknown, or another user's", body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn prediction_by_id() {}

#[utoipa::path(get, path = "/api/predictions", tag = "predictions", security(("bearer" = [])),
    params(predictions::PredictionsQuery),
    responses((status = 200, description = "the caller's predictions, newest first", body = predictions::PredictionPage),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn list_predictions() {}

#[utoipa::path(get, path = "/api/admin/stats", tag = "admin", security(("bearer" = [])),
    params(("Cache-Control" = Option<String>, Header, example = "no-cache",
            description = "`no-cache` (or `max-age=0`): figures computed now; otherwise they may be up to 10 s old (`generated_at`), never older than the last published data change or admin change")),
    responses((status = 200, body = AdminStats), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn admin_stats() {}

#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])),
    params(UsersQuery),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
fn admin_users() {}

#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, example = "user_7", pattern = r"^user_[1-9][0-9]{0,17}$")), request_body = UserChange,
    responses((status = 200, body = User), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 409, description = "the last active admin cannot be demoted or deactivated, nor can an admin demote or deactivate their own account", body = ErrorResponse),
              (status = 503, description = "read-only maintenance (`maintenance`), or a dependency is unavailable", body = ErrorResponse)))]
fn admin_update_user() {}

#[utoipa::path(patch, path = "/api/admin/flags", tag = "admin", security(("bearer" = [])), request_body = FlagsChange,
    responses((status = 200, description = "the flags now in force; every instance applies them within 30 s", body = FeatureFlags),
              (status = 400, description = "no flag given, or an unknown one", body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 503, description = "DynamoDB is unavailable", body = ErrorResponse)))]
fn admin_update_flags() {}

/// `YYYY-MM-DD` or an RFC 3339 date-time (`date_from`, `date_to`).
pub fn date_or_date_time() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
    let string =
        |format| ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)));
    Schema::AnyOf(AnyOfBuilder::new().item(string(KnownFormat::Date)).item(string(KnownFormat::DateTime)).build())
}

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
        health, health_live, openapi_json, docs_page, docs_asset,
        register, login, refresh, logout, me,
        competitions, teams, matches, match_by_id,
        create_prediction, prediction_by_id, list_predictions,
        admin_stats, admin_users, admin_update_user, admin_update_flags,
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
        ("PATCH", "/api/admin/flags"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/{file}"),
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

    /// The parameter `name` of `method path`, its schema.
    fn param(doc: &serde_json::Value, method: &str, path: &str, name: &str) -> serde_json::Value {
        let params = doc["paths"][path][method]["parameters"].as_array().unwrap_or_else(|| panic!("{method} {path}"));
        let p = params.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{method} {path}: no `{name}`"));
        p["schema"].clone()
    }

    #[test]
    fn the_document_states_the_grammars_the_code_parses() {
        use crate::ids::{MatchId, PredictionId, TeamId, UserId};
        let doc = json();
        assert_eq!(param(&doc, "get", "/api/matches/{id}", "id")["pattern"], MatchId::PATTERN);
        assert_eq!(param(&doc, "get", "/api/predictions/{id}", "id")["pattern"], PredictionId::PATTERN);
        assert_eq!(param(&doc, "patch", "/api/admin/users/{id}", "id")["pattern"], UserId::PATTERN);
        assert_eq!(param(&doc, "get", "/api/matches", "team")["pattern"], TeamId::PATTERN);
        assert_eq!(param(&doc, "get", "/api/predictions", "match_id")["pattern"], MatchId::PATTERN);
        assert_eq!(param(&doc, "get", "/api/admin/users", "cursor")["pattern"], UserId::PATTERN);
        for path in ["/api/matches", "/api/predictions"] {
            assert_eq!(param(&doc, "get", path, "cursor")["pattern"], catalog::CURSOR_PATTERN, "{path}");
        }
        for path in ["/api/matches", "/api/predictions", "/api/admin/users"] {
            let limit = param(&doc, "get", path, "limit");
            assert_eq!((limit["minimum"].as_i64(), limit["maximum"].as_i64()), (Some(1), Some(100)), "{path}: {limit}");
        }
        let status = param(&doc, "get", "/api/matches", "status")["pattern"].as_str().unwrap().to_string();
        for s in catalog::STATUSES {
            assert!(status.contains(s), "{s}");
        }
        let body = &doc["components"]["schemas"]["CreatePrediction"]["properties"];
        assert_eq!(body["match_id"]["pattern"], MatchId::PATTERN);
        for s in crate::engine::Strategy::ALL {
            assert!(body["strategy_type"]["pattern"].as_str().unwrap().contains(s.as_str()), "{s}");
        }
        for schema in ["UserChange", "FlagsChange", "StrategyChange"] {
            assert_eq!(doc["components"]["schemas"][schema]["minProperties"], 1, "{schema}: an empty body is a 400");
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

/// The document against reality: real values of the types the handlers send, serialised with
/// serde, checked against the schemas the document declares for their routes (every `required`
/// property present, no property the schema does not declare, JSON types and enums as declared);
/// and the request schemas against the real body types' deserialisers.
#[cfg(test)]
mod conformance {
    use std::collections::BTreeMap;

    use chrono::{DateTime, TimeZone, Utc};
    use serde_json::{Value, json};

    use super::*;
    use crate::{
        admin::{self, LastJobRun},
        auth::Role,
        health::{Check, CheckStatus, Checks, OverallStatus},
        http::ApiError,
        ids::UserId,
        settlement::{AccuracyPoint, ModelAccuracy},
    };

    fn schema_name(reference: &str) -> &str {
        reference.trim_start_matches("#/components/schemas/")
    }

    /// The problems of `value` against `schema` (empty when it conforms).
    fn conform(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let target = &doc["components"]["schemas"][schema_name(r)];
            if target.is_null() {
                problems.push(format!("{at}: unresolved {r}"));
            } else {
                conform(doc, target, value, at, problems);
            }
            return;
        }
        if let Some(alternatives) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array) {
            let fits = alternatives
                .iter()
                .filter(|s| {
                    let mut p = Vec::new();
                    conform(doc, s, value, at, &mut p);
                    p.is_empty()
                })
                .count();
            if fits == 0 {
                problems.push(format!("{at}: {value} fits none of {}", Value::Array(alternatives.clone())));
            }
            return;
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            // One object schema: the union of the parts' properties and required lists.
            let mut merged = json!({"type": "object", "properties": {}, "required": []});
            for part in parts {
                let part = match part.get("$ref").and_then(Value::as_str) {
                    Some(r) => &doc["components"]["schemas"][schema_name(r)],
                    None => part,
                };
                if let Some(props) = part["properties"].as_object() {
                    for (k, v) in props {
                        merged["properties"][k] = v.clone();
                    }
                }
                for r in part["required"].as_array().into_iter().flatten() {
                    merged["required"].as_array_mut().unwrap().push(r.clone());
                }
            }
            conform(doc, &merged, value, at, problems);
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            problems.push(format!("{at}: {value} is not one of {}", Value::Array(allowed.clone())));
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let fits_type = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.is_empty() && !types.iter().any(|t| fits_type(t)) {
            problems.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
        match value {
            Value::Object(fields) => {
                let extra = schema.get("additionalProperties");
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if !fields.contains_key(required) {
                            problems.push(format!("{at}: required `{required}` is missing"));
                        }
                    }
                    for (k, v) in fields {
                        match (props.get(k), extra) {
                            (Some(s), _) => conform(doc, s, v, &format!("{at}.{k}"), problems),
                            (None, Some(s)) if s.is_object() => conform(doc, s, v, &format!("{at}.{k}"), problems),
                            _ => problems.push(format!("{at}: `{k}` is not declared by the schema")),
                        }
                    }
                } else if let Some(s) = extra.filter(|s| s.is_object()) {
                    for (k, v) in fields {
                        conform(doc, s, v, &format!("{at}.{k}"), problems);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(s) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        conform(doc, s, v, &format!("{at}[{i}]"), problems);
                    }
                }
            }
            _ => {}
        }
    }

    /// The JSON schema the document declares for `status` of `method path`.
    fn response_schema(doc: &Value, method: &str, path: &str, status: u16) -> Value {
        let schema =
            &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {path} {status} has no JSON schema");
        schema.clone()
    }

    fn assert_conforms(doc: &Value, method: &str, path: &str, status: u16, value: &impl serde::Serialize) {
        let value = serde_json::to_value(value).unwrap();
        let mut problems = Vec::new();
        conform(doc, &response_schema(doc, method, path, status), &value, "$", &mut problems);
        assert!(problems.is_empty(), "{method} {path} {status}: {problems:#?}\n{value:#}");
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 15, 0, 0).unwrap()
    }

    fn users() -> Vec<User> {
        vec![
            User {
                id: UserId(7),
                username: "ann_99".into(),
                email: Some("ann@example.com".into()),
                role: Role::Admin,
                is_active: true,
                created_at: at(1),
                last_login_at: Some(at(2)),
            },
            User {
                id: UserId(8),
                username: "bob".into(),
                email: None,
                role: Role::User,
                is_active: false,
                created_at: at(3),
                last_login_at: None,
            },
        ]
    }

    fn errors() -> Vec<ApiError> {
        vec![
            ApiError::invalid_field("limit", "must be between 1 and 100"),
            ApiError::bad_request("nothing to change"),
            ApiError::Unauthorized("invalid token".into()),
            ApiError::Forbidden("admin role required".into()),
            ApiError::NotFound("no such user".into()),
            ApiError::Conflict("username is taken".into()),
            ApiError::Unprocessable("idempotency key reused".into()),
            ApiError::TooManyRequests { retry_after_secs: 30 },
            ApiError::unavailable("database", std::io::Error::other("down")),
            ApiError::Maintenance { retry_after_secs: 30 },
            ApiError::internal(std::io::Error::other("bug")),
        ]
    }

    #[test]
    fn every_error_response_of_every_route_is_the_real_error_body() {
        let doc = json();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, _) in op["responses"].as_object().unwrap() {
                    let status: u16 = status.parse().unwrap();
                    if status < 400 || (path == "/health" && status == 503) {
                        continue;
                    }
                    for error in errors() {
                        assert_conforms(&doc, method, path, status, &crate::http::error::ErrorBody::of(&error));
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50, "{checked}");
    }

    #[test]
    fn auth_responses_are_the_real_token_pair_and_user() {
        let doc = json();
        let pair = TokenPair {
            access_token: "eyJhbGciOiJIUzI1NiJ9.e30.sig".into(),
            token_type: "bearer".into(),
            expires_in: crate::auth::token::ACCESS_TOKEN_TTL_SECS,
            refresh_token: "r".repeat(43),
        };
        assert_conforms(&doc, "post", "/api/auth/login", 200, &pair);
        assert_conforms(&doc, "post", "/api/auth/refresh", 200, &pair);
        for user in users() {
            assert_conforms(&doc, "post", "/api/auth/register", 201, &user);
            assert_conforms(&doc, "get", "/api/auth/me", 200, &user);
            assert_conforms(&doc, "patch", "/api/admin/users/{id}", 200, &user);
        }
        let page = UserPage { items: users(), next_cursor: Some("user_8".into()) };
        assert_conforms(&doc, "get", "/api/admin/users", 200, &page);
        assert_conforms(&doc, "get", "/api/admin/users", 200, &UserPage { items: vec![], next_cursor: None });
    }

    #[test]
    fn health_responses_are_the_real_reports() {
        let doc = json();
        let ok = Check { status: CheckStatus::Ok, latency_ms: 0.4, error: None };
        let down = Check { status: CheckStatus::Down, latency_ms: 500.0, error: Some("timed out".into()) };
        let report = |database: &Check, cache: &Check| HealthReport {
            status: OverallStatus::of(database, cache),
            version: "0.1.0".into(),
            environment: "local".into(),
            checks: Checks { database: database.clone(), cache: cache.clone() },
        };
        assert_conforms(&doc, "get", "/health", 200, &report(&ok, &ok));
        assert_conforms(&doc, "get", "/health", 200, &report(&ok, &down));
        assert_conforms(&doc, "get", "/health", 503, &report(&down, &down));
        assert_conforms(&doc, "get", "/health/live", 200, &Liveness::ok());
    }

    #[test]
    fn admin_stats_is_the_real_stats() {
        let doc = json();
        let model = |strategy: &str, version: &str| ModelAccuracy {
            strategy_type: strategy.into(),
            model_version: version.into(),
            predictions: 4,
            mean_rps: 0.2,
            mean_brier: 0.6,
            mean_log_loss: 1.0,
            accuracy: 0.5,
            first_settled_at: at(2),
            last_settled_at: at(9),
        };
        let week = |strategy: &str, version: &str| AccuracyPoint {
            week: at(2).date_naive(),
            strategy_type: strategy.into(),
            model_version: version.into(),
            predictions: 4,
            mean_rps: 0.2,
            mean_brier: 0.6,
            mean_log_loss: 1.0,
            accuracy: 0.5,
        };
        let stats = AdminStats {
            users: admin::UserCounts { total: 3, active: 2, admins: 1 },
            matches: admin::Counts { total: 2, by: BTreeMap::from([("FINISHED".into(), 1), ("TIMED".into(), 1)]) },
            predictions: admin::Counts { total: 8, by: BTreeMap::from([("statistical".into(), 8)]) },
            accuracy: admin::accuracy_view(
                vec![model("statistical", "v1"), model("statistical", "v2"), model("ml_model", "m1")],
                vec![week("statistical", "v1"), week("ml_model", "m1")],
            ),
            calibration: BTreeMap::from([(
                "market".into(),
                crate::engine::calibration::Calibration::of(
                    [([0.5, 0.3, 0.2], crate::engine::Outcome::Home), ([0.2, 0.3, 0.5], crate::engine::Outcome::Draw)],
                    10,
                ),
            )]),
            jobs: BTreeMap::from([
                (
                    "settle".into(),
                    LastJobRun {
                        started_at: at(9),
                        finished_at: None,
                        outcome: "running".into(),
                        counts: json!({}),
                        error: None,
                    },
                ),
                (
                    "ingest".into(),
                    LastJobRun {
                        started_at: at(9),
                        finished_at: Some(at(10)),
                        outcome: "failed".into(),
                        counts: json!({"matches": 3}),
                        error: Some("football-data.org: 429".into()),
                    },
                ),
            ]),
            flags: crate::flags::FeatureFlags {
                updated_at: Some(at(9)),
                updated_by: Some("user_1".into()),
                version: 2,
                ..crate::flags::FeatureFlags::defaults(true)
            },
            generated_at: at(10),
        };
        assert_conforms(&doc, "get", "/api/admin/stats", 200, &stats);
        let empty = AdminStats {
            users: admin::UserCounts { total: 1, active: 1, admins: 1 },
            matches: admin::Counts { total: 0, by: BTreeMap::new() },
            predictions: admin::Counts { total: 0, by: BTreeMap::new() },
            accuracy: BTreeMap::new(),
            calibration: BTreeMap::new(),
            jobs: BTreeMap::new(),
            flags: crate::flags::FeatureFlags::defaults(false),
            generated_at: at(10),
        };
        assert_conforms(&doc, "get", "/api/admin/stats", 200, &empty);
    }

    /// A valid value for every property of the request bodies.
    fn sample(property: &str) -> Value {
        match property {
            "username" => json!("ann_99"),
            "password" => json!("a long password"),
            "email" => json!("ann@example.com"),
            "refresh_token" => json!("r".repeat(43)),
            "role" => json!("admin"),
            "is_active" => json!(true),
            "registration_open" | "maintenance_mode" | "market_comparison" => json!(false),
            "strategies" => json!({"ml_model": false}),
            other => panic!("no sample for `{other}`: add one"),
        }
    }

    /// The body the schema describes, with all its properties, or only the required ones.
    fn body(doc: &Value, method: &str, path: &str, all: bool) -> (Value, Vec<String>) {
        let schema = &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
        let schema = &doc["components"]["schemas"][schema_name(schema["$ref"].as_str().unwrap())];
        let required: Vec<String> =
            schema["required"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(String::from)).collect();
        let mut out = serde_json::Map::new();
        for name in schema["properties"].as_object().unwrap().keys() {
            if all || required.contains(name) {
                out.insert(name.clone(), sample(name));
            }
        }
        (Value::Object(out), required)
    }

    /// The real body type accepts exactly what the schema declares: every property, only the
    /// required ones, but neither a body missing a required property nor an undeclared one.
    fn check_request<T: serde::de::DeserializeOwned>(doc: &Value, method: &str, path: &str) {
        let parse = |v: &Value| serde_json::from_value::<T>(v.clone()).map(|_| ()).map_err(|e| e.to_string());
        let (full, required) = body(doc, method, path, true);
        parse(&full).unwrap_or_else(|e| panic!("{method} {path}: {full} refused: {e}"));
        let (minimal, _) = body(doc, method, path, false);
        parse(&minimal).unwrap_or_else(|e| panic!("{method} {path}: {minimal} refused: {e}"));
        for name in &required {
            let mut missing = full.clone();
            missing.as_object_mut().unwrap().remove(name);
            assert!(parse(&missing).is_err(), "{method} {path}: `{name}` is declared required but may be left out");
        }
        let mut extra = full.clone();
        extra["undeclared"] = json!(1);
        assert!(parse(&extra).is_err(), "{method} {path}: an undeclared property is accepted");
    }

    #[test]
    fn request_schemas_are_the_real_body_types() {
        let doc = json();
        check_request::<RegisterRequest>(&doc, "post", "/api/auth/register");
        check_request::<LoginRequest>(&doc, "post", "/api/auth/login");
        check_request::<RefreshRequest>(&doc, "post", "/api/auth/refresh");
        check_request::<RefreshRequest>(&doc, "post", "/api/auth/logout");
        check_request::<UserChange>(&doc, "patch", "/api/admin/users/{id}");
        check_request::<FlagsChange>(&doc, "patch", "/api/admin/flags");
        assert_conforms(&doc, "patch", "/api/admin/flags", 200, &FeatureFlags::defaults(true));
    }

    #[test]
    fn the_checker_catches_drift() {
        let doc = json();
        let schema = response_schema(&doc, "get", "/api/auth/me", 200);
        let mut user = serde_json::to_value(&users()[0]).unwrap();
        let problems = |v: &Value| {
            let mut p = Vec::new();
            conform(&doc, &schema, v, "$", &mut p);
            p
        };
        assert!(problems(&user).is_empty());
        user["password_hash"] = json!("$argon2id$...");
        assert!(problems(&user)[0].contains("password_hash"), "{:?}", problems(&user));
        user.as_object_mut().unwrap().remove("password_hash");
        user.as_object_mut().unwrap().remove("username");
        assert!(problems(&user)[0].contains("username"), "{:?}", problems(&user));
        user["username"] = json!("ann");
        user["role"] = json!("root");
        assert!(!problems(&user).is_empty());
    }
}
