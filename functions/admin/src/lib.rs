//! The `admin` function (admin role only): `GET /api/admin/stats`, `GET /api/admin/users`
//! (cursor-paginated), `PATCH /api/admin/users/{id}` (role, active) and `PATCH /api/admin/flags`
//! (the feature flags). The logic is `shared::admin`, `shared::users` and `shared::flags`; this
//! crate parses and answers.

use axum::{
    Json, Router,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
    routing::{get, patch},
};
use shared::{
    Services, admin,
    auth::{AdminUser, UncheckedUser},
    flags::FlagsChange,
    http::{ApiError, ApiJson, ApiPath, ApiQuery},
    ids::UserId,
    users::{self, UserChange, UsersQuery},
};

pub fn router(services: Services) -> Router {
    shared::http::finish(
        Router::new()
            .route("/api/admin/stats", get(stats))
            .route("/api/admin/users", get(list_users))
            .route("/api/admin/users/{id}", patch(update_user))
            .route("/api/admin/flags", patch(update_flags))
            .route_layer(axum::middleware::from_fn_with_state(services.clone(), shared::flags::maintenance_guard))
            .with_state(services),
    )
}

/// The caller's account and role are checked in [`admin::cached_stats`]'s Redis round trip (with
/// the data version and the stored statistics), not by the `AdminUser` extractor.
async fn stats(
    State(services): State<Services>,
    caller: UncheckedUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let body = admin::cached_stats(&services, caller, shared::http::wants_fresh(&headers)).await?;
    Ok(([("cache-control", "no-store")], body).into_response())
}

async fn list_users(
    State(services): State<Services>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<UsersQuery>,
) -> Result<Response, ApiError> {
    let (limit, after) = q.validate()?;
    let pool = services.db.pool().await?;
    let page = users::list(pool, after, limit).await?;
    Ok(([("cache-control", "no-store")], Json(page)).into_response())
}

async fn update_user(
    State(services): State<Services>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(change): ApiJson<UserChange>,
) -> Result<Response, ApiError> {
    let id = UserId::parse(&id).map_err(|e| ApiError::invalid_field("id", e))?;
    change.validate()?;
    let pool = services.db.pool().await?;
    let user = users::update(pool, admin.id, id, change).await?;
    // The new role, active flag and token version apply at the caller's next request.
    services.publish_account_state(id).await;
    admin::forget_stats(&services).await;
    tracing::info!(
        admin_id = %admin.id,
        user_id = %user.id,
        role = user.role.as_str(),
        is_active = user.is_active,
        "account changed by an admin"
    );
    Ok(([("cache-control", "no-store")], Json(user)).into_response())
}

/// Changes the flags named in the body; the change is logged with the admin who made it, and
/// every instance applies it within the flags' cache TTL (at most 30 s).
async fn update_flags(
    State(services): State<Services>,
    AdminUser(admin): AdminUser,
    ApiJson(change): ApiJson<FlagsChange>,
) -> Result<Response, ApiError> {
    change.assignments()?;
    let client = services.aws.dynamodb().await;
    let before = services.flag_store.read(client, &services.config.aws.table_name).await?;
    let flags = services
        .flag_store
        .update(client, &services.config.aws.table_name, &change, admin.id, chrono::Utc::now())
        .await?;
    admin::forget_stats(&services).await;
    tracing::info!(
        admin_id = %admin.id,
        change = %serde_json::to_string(&change).unwrap_or_default(),
        before = %serde_json::to_string(&before).unwrap_or_default(),
        after = %serde_json::to_string(&flags).unwrap_or_default(),
        version = flags.version,
        "feature flags changed by an admin"
    );
    Ok(([("cache-control", "no-store")], Json(flags)).into_response())
}
