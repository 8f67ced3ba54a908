//! The `predictions` function: `POST /api/predictions` (computed with the chosen strategy from the
//! data known before kick-off, `Idempotency-Key` aware), `GET /api/predictions/{id}` (owner or
//! admin) and `GET /api/predictions` (the caller's). The model state lives in [`ModelCache`] for
//! the life of the warm instance, and in Redis (`shared::predictions`).

// The handler's future nests the idempotency, model-cache and tracing layers deeper than the
// default limit lets rustc compute its layout.
#![recursion_limit = "256"]

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{FromRef, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use shared::{
    Services,
    auth::{AuthUser, UncheckedUser},
    http::{ApiError, ApiJson, ApiPath, ApiQuery},
    idempotency,
    ids::PredictionId,
    predictions::{self, CreatePrediction, Created, ModelCache, Prediction, PredictionPage, PredictionsQuery},
};

/// The function's state: the services and this instance's model-state cache.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub models: Arc<ModelCache>,
}

impl FromRef<AppState> for Services {
    fn from_ref(state: &AppState) -> Services {
        state.services.clone()
    }
}

pub fn router(services: Services) -> Router {
    router_with(services, Arc::new(ModelCache::new()))
}

/// The router around a given model cache (tests look at its fit counter).
pub fn router_with(services: Services, models: Arc<ModelCache>) -> Router {
    shared::http::finish(
        Router::new()
            .route("/api/predictions", get(list).post(create))
            .route("/api/predictions/{id}", get(by_id))
            .route_layer(axum::middleware::from_fn_with_state(services.clone(), shared::flags::maintenance_guard))
            .with_state(AppState { services, models }),
    )
}

/// The caller's account is checked in [`predictions::prefetch`]'s Redis round trip, with the data
/// version and the match's cached context (issue 13), not by the `AuthUser` extractor.
async fn create(
    State(state): State<AppState>,
    caller: UncheckedUser,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreatePrediction>,
) -> Result<Response, ApiError> {
    let key = idempotency::key_from_headers(&headers)?;
    match predictions::create_idempotent(&state.services, &state.models, caller, key.as_deref(), &request).await? {
        Created::New(prediction, timings) => {
            let mut response = (StatusCode::CREATED, Json(prediction)).into_response();
            if let Ok(v) = HeaderValue::from_str(&timings.header()) {
                response.headers_mut().insert("server-timing", v);
            }
            Ok(response)
        }
        Created::Replayed { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED);
            let mut response = (status, Json(body)).into_response();
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
    }
}

async fn by_id(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Prediction>, ApiError> {
    let id = PredictionId::parse(&id).map_err(|e| ApiError::invalid_field("id", e))?;
    Ok(Json(predictions::get(&state.services, &user, id).await?))
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<PredictionsQuery>,
) -> Result<Json<PredictionPage>, ApiError> {
    Ok(Json(predictions::list(&state.services, &user, &query).await?))
}
