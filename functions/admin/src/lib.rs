//! The `admin` function (admin role only): `GET /api/admin/stats`, `GET /api/admin/users`
//! (cursor-paginated) and `PATCH /api/admin/users/{id}` (role, active).

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::{get, patch},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::{
    Services,
    auth::{AdminUser, Role},
    http::{ApiError, ApiJson, ApiPath, ApiQuery},
    ids::UserId,
    users::{self, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, UserChange},
};

pub fn router(services: Services) -> Router {
    shared::http::finish(
        Router::new()
            .route("/api/admin/stats", get(stats))
            .route("/api/admin/users", get(list_users))
            .route("/api/admin/users/{id}", patch(update_user))
            .with_state(services),
    )
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Stats {
    pub users: UserCounts,
    pub matches: Counts,
    pub predictions: Counts,
    /// Per strategy, from settled predictions; empty until a prediction has been settled.
    pub accuracy: BTreeMap<String, Accuracy>,
    /// The last run of each job.
    pub jobs: BTreeMap<String, JobRun>,
    pub generated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserCounts {
    pub total: i64,
    pub active: i64,
    pub admins: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Counts {
    pub total: i64,
    /// Matches by status, predictions by strategy.
    pub by: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow)]
pub struct Accuracy {
    pub settled: i64,
    /// Share of settled predictions whose most likely outcome happened.
    pub accuracy: f64,
    pub mean_rps: f64,
    pub mean_brier: f64,
    pub mean_log_loss: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct JobRun {
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: String,
    pub counts: serde_json::Value,
    pub error: Option<String>,
}

async fn grouped(pool: &sqlx::PgPool, sql: &str) -> Result<Counts, ApiError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(pool).await?;
    Ok(Counts { total: rows.iter().map(|(_, n)| n).sum(), by: rows.into_iter().collect() })
}

async fn stats(State(services): State<Services>, _admin: AdminUser) -> Result<Response, ApiError> {
    let pool = services.db.pool().await?;
    let users = async {
        let (total, active, admins): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE is_active), count(*) FILTER (WHERE role = 'admin' AND is_active)
             FROM users",
        )
        .fetch_one(pool)
        .await?;
        Ok::<_, ApiError>(UserCounts { total, active, admins })
    };
    let matches = grouped(pool, "SELECT status, count(*) FROM matches GROUP BY status");
    let predictions = grouped(pool, "SELECT strategy_type, count(*) FROM predictions GROUP BY strategy_type");
    let accuracy = async {
        let rows: Vec<(String, i64, f64, f64, f64, f64)> = sqlx::query_as(
            "SELECT strategy_type, count(*), avg(correct::int)::float8, avg(rps), avg(brier), avg(log_loss)
             FROM prediction_scores GROUP BY strategy_type",
        )
        .fetch_all(pool)
        .await?;
        Ok::<_, ApiError>(
            rows.into_iter()
                .map(|(s, settled, accuracy, mean_rps, mean_brier, mean_log_loss)| {
                    (s, Accuracy { settled, accuracy, mean_rps, mean_brier, mean_log_loss })
                })
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let jobs = async {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            String,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            String,
            serde_json::Value,
            Option<String>,
        )> = sqlx::query_as(
            "SELECT DISTINCT ON (job) job, started_at, finished_at, outcome, counts, error
                 FROM job_runs ORDER BY job, started_at DESC, id DESC",
        )
        .fetch_all(pool)
        .await?;
        Ok::<_, ApiError>(
            rows.into_iter()
                .map(|(job, started_at, finished_at, outcome, counts, error)| {
                    (job, JobRun { started_at, finished_at, outcome, counts, error })
                })
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let (users, matches, predictions, accuracy, jobs) = tokio::try_join!(users, matches, predictions, accuracy, jobs)?;
    let body = Stats { users, matches, predictions, accuracy, jobs, generated_at: Utc::now() };
    Ok(([("cache-control", "no-store")], Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list_users(
    State(services): State<Services>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(LIST_LIMIT_DEFAULT);
    if !(1..=LIST_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid_field("limit", format!("must be between 1 and {LIST_LIMIT_MAX}")));
    }
    let after = q.cursor.as_deref().map(UserId::parse).transpose().map_err(|e| ApiError::invalid_field("cursor", e))?;
    let pool = services.db.pool().await?;
    let page = users::list(pool, after, limit).await?;
    Ok(([("cache-control", "no-store")], Json(page)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    is_active: Option<bool>,
}

async fn update_user(
    State(services): State<Services>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<Response, ApiError> {
    let id = UserId::parse(&id).map_err(|e| ApiError::invalid_field("id", e))?;
    if body.role.is_none() && body.is_active.is_none() {
        return Err(ApiError::bad_request("nothing to change: give `role` and/or `is_active`"));
    }
    let pool = services.db.pool().await?;
    let user = users::update(pool, id, UserChange { role: body.role, is_active: body.is_active }).await?;
    tracing::info!(
        admin_id = %admin.id,
        user_id = %user.id,
        role = user.role.as_str(),
        is_active = user.is_active,
        "account changed by an admin"
    );
    Ok(([("cache-control", "no-store")], Json(user)).into_response())
}
