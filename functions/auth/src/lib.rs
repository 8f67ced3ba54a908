//! The `auth` function: `POST /api/auth/register`, `/login`, `/refresh`, `/logout` and
//! `GET /api/auth/me`. The logic is `shared::auth::session`; this crate parses and answers.

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{Extensions, HeaderMap, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use shared::{
    Services,
    auth::{
        AuthUser, SourceIp,
        session::{self, LOGIN_MAX_USERNAME, LoginRequest, RefreshRequest, RegisterRequest},
    },
    http::{ApiError, ApiJson},
    users::{self, PASSWORD_MAX},
};

/// The routes, as tests and local tools call them.
pub fn router(services: Services) -> Router {
    shared::http::finish(
        Router::new()
            .route("/api/auth/register", post(register))
            .route("/api/auth/login", post(login))
            .route("/api/auth/refresh", post(refresh))
            .route("/api/auth/logout", post(logout))
            .route("/api/auth/me", get(me))
            .route_layer(middleware::from_fn_with_state(services.clone(), shared::flags::maintenance_guard))
            .with_state(services),
    )
}

/// The routes behind API Gateway: the caller's address comes from the request context
/// (`requestContext.http.sourceIp`), which a client cannot forge, not from a header.
pub fn lambda_router(services: Services) -> Router {
    router(services).layer(middleware::from_fn(source_ip_from_lambda_context))
}

async fn source_ip_from_lambda_context(mut request: Request, next: Next) -> Response {
    use lambda_http::request::RequestContext;
    let ip = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    };
    request.extensions_mut().insert(SourceIp(ip.unwrap_or_else(|| "unknown".into())));
    next.run(request).await
}

async fn register(
    State(services): State<Services>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let user = session::register(&services, body.into()).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

async fn login(
    State(services): State<Services>,
    extensions: Extensions,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    if body.username.is_empty() {
        return Err(ApiError::invalid_field("username", "must not be empty"));
    }
    if body.username.chars().count() > LOGIN_MAX_USERNAME {
        return Err(ApiError::invalid_field("username", format!("at most {LOGIN_MAX_USERNAME} characters")));
    }
    if body.password.expose().is_empty() {
        return Err(ApiError::invalid_field("password", "must not be empty"));
    }
    if body.password.expose().chars().count() > PASSWORD_MAX {
        return Err(ApiError::invalid_field("password", format!("at most {PASSWORD_MAX} characters")));
    }
    let ip = SourceIp::of(&extensions, &headers);
    let pair = session::login(&services, &body.username, body.password, &ip).await?;
    Ok(no_store(Json(pair)))
}

async fn refresh(
    State(services): State<Services>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let pair = session::refresh(&services, &body.token()?).await?;
    Ok(no_store(Json(pair)))
}

async fn logout(
    State(services): State<Services>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    session::logout(&services, &body.token()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(services): State<Services>, caller: AuthUser) -> Result<Response, ApiError> {
    let pool = services.db.pool().await?;
    let user = users::get(pool, caller.id).await?.ok_or_else(|| ApiError::Unauthorized("invalid token".into()))?;
    Ok(no_store(Json(user)))
}

/// Tokens and account data must not be cached by a browser or a proxy.
fn no_store(body: impl IntoResponse) -> Response {
    ([("cache-control", "no-store")], body).into_response()
}
