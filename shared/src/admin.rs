//! The admin statistics of `GET /api/admin/stats`: users, matches by status, predictions per
//! strategy, the accuracy of settled predictions per strategy and model version (totals and a
//! weekly series, from [`crate::settlement`]) and the last run of each job (from [`crate::jobs`]).
//! The admin function only parses the request; [`cached_stats`] checks the caller's account and
//! role and answers.
//!
//! The statistics are kept in Redis for [`STATS_TTL`] (issue 13: seven statements, one of them a
//! count over every prediction, were most of PostgreSQL's work under the benchmark mix), with the
//! data version as the catalog's bodies are: a published data change, an admin's change of an
//! account or of the flags ([`forget_stats`]) and a request with `Cache-Control: no-cache` are
//! answered with new figures; anything else is at most [`STATS_TTL`] old (`generated_at` says
//! when they were computed).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::{
    auth::UncheckedUser,
    catalog::body::{JsonBody, ReadPolicy, cached_read_with, entry_key},
    engine::calibration::Calibration,
    http::ApiError,
    jobs::{self, JobRunRecord},
    services::Services,
    settlement::{self, AccuracyPoint, ModelAccuracy},
};

/// How long computed statistics answer from Redis (under the data version they were computed
/// with).
pub const STATS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The cache key of the statistics (under [`entry_key`]).
const STATS_KEY: &str = "admin:stats";

/// How far back the weekly accuracy series goes (by the matches' kick-off).
pub const ACCURACY_WEEKS: i64 = 26;

/// The body of `GET /api/admin/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdminStats {
    pub users: UserCounts,
    /// Matches by status (`FINISHED`, `TIMED`...).
    pub matches: Counts,
    /// Predictions by strategy (`statistical`, `historical`, `ml_model`).
    pub predictions: Counts,
    /// Per strategy, from settled predictions; a strategy appears once one of its predictions has
    /// been settled (empty until then).
    pub accuracy: BTreeMap<String, StrategyAccuracy>,
    /// Per strategy, from settled predictions: is a 60% really 60%? Reliability bins (ten
    /// equal-width bands of the forecast probability) for home, draw and away with the observed
    /// frequency, and the expected calibration error (lower is better; empty until a prediction
    /// has been settled).
    pub calibration: BTreeMap<String, Calibration>,
    /// The last run of each job, by job name (`ingest`, `settle`, `train`, `backup`...).
    pub jobs: BTreeMap<String, LastJobRun>,
    /// The feature flags in force, as the admin function's instance sees them.
    pub flags: crate::flags::FeatureFlags,
    pub generated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserCounts {
    pub total: i64,
    pub active: i64,
    /// Active admins.
    pub admins: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    pub total: i64,
    pub by: BTreeMap<String, i64>,
}

/// The scores of a set of settled predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Scores {
    /// Settled predictions.
    pub settled: i64,
    /// Share of them whose most likely outcome happened.
    #[schema(example = 0.52)]
    pub accuracy: f64,
    /// Mean ranked probability score (lower is better).
    #[schema(example = 0.2)]
    pub mean_rps: f64,
    /// Mean Brier score (lower is better).
    #[schema(example = 0.58)]
    pub mean_brier: f64,
    /// Mean log loss (lower is better).
    #[schema(example = 0.98)]
    pub mean_log_loss: f64,
}

impl Scores {
    /// The scores of the union of `parts` (means weighted by their counts).
    fn combine(parts: impl IntoIterator<Item = Scores>) -> Scores {
        let mut total = Scores { settled: 0, accuracy: 0.0, mean_rps: 0.0, mean_brier: 0.0, mean_log_loss: 0.0 };
        for p in parts {
            let n = p.settled as f64;
            total.settled += p.settled;
            total.accuracy += p.accuracy * n;
            total.mean_rps += p.mean_rps * n;
            total.mean_brier += p.mean_brier * n;
            total.mean_log_loss += p.mean_log_loss * n;
        }
        if total.settled > 0 {
            let n = total.settled as f64;
            total.accuracy /= n;
            total.mean_rps /= n;
            total.mean_brier /= n;
            total.mean_log_loss /= n;
        }
        total
    }
}

/// The accuracy of one strategy: all its model versions together, then each version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StrategyAccuracy {
    pub settled: i64,
    pub accuracy: f64,
    pub mean_rps: f64,
    pub mean_brier: f64,
    pub mean_log_loss: f64,
    /// Each model version, in the order they were first settled.
    pub models: Vec<ModelVersionAccuracy>,
}

/// The accuracy of one model version of a strategy, in total and week by week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelVersionAccuracy {
    #[schema(example = "dixon-coles-2026-11-30")]
    pub model_version: String,
    pub settled: i64,
    pub accuracy: f64,
    pub mean_rps: f64,
    pub mean_brier: f64,
    pub mean_log_loss: f64,
    pub first_settled_at: DateTime<Utc>,
    pub last_settled_at: DateTime<Utc>,
    /// By the week the matches kicked off (Monday), oldest first, over the last 26 weeks; weeks
    /// without a settled prediction are left out.
    pub weekly: Vec<WeeklyAccuracy>,
}

/// The scores of the predictions of one week's matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WeeklyAccuracy {
    /// Monday of the week.
    #[schema(example = "2026-11-23")]
    pub week: NaiveDate,
    pub settled: i64,
    pub accuracy: f64,
    pub mean_rps: f64,
    pub mean_brier: f64,
    pub mean_log_loss: f64,
}

/// The last run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LastJobRun {
    pub started_at: DateTime<Utc>,
    /// Null while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `failed`, `skipped` or `partial`.
    #[schema(example = "succeeded")]
    pub outcome: String,
    /// What the run did, by the job's own counters (`{"settled": 12, "batches": 1}`).
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
    pub error: Option<String>,
}

impl From<JobRunRecord> for LastJobRun {
    fn from(r: JobRunRecord) -> Self {
        LastJobRun {
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            counts: r.counts,
            error: r.error,
        }
    }
}

/// The accuracy per strategy from the settlement's rows per model version and per week.
pub fn accuracy_view(models: Vec<ModelAccuracy>, weeks: Vec<AccuracyPoint>) -> BTreeMap<String, StrategyAccuracy> {
    let mut weekly: BTreeMap<(String, String), Vec<WeeklyAccuracy>> = BTreeMap::new();
    for p in weeks {
        weekly.entry((p.strategy_type, p.model_version)).or_default().push(WeeklyAccuracy {
            week: p.week,
            settled: p.predictions,
            accuracy: p.accuracy,
            mean_rps: p.mean_rps,
            mean_brier: p.mean_brier,
            mean_log_loss: p.mean_log_loss,
        });
    }
    let mut by_strategy: BTreeMap<String, Vec<ModelVersionAccuracy>> = BTreeMap::new();
    for m in models {
        let mut series = weekly.remove(&(m.strategy_type.clone(), m.model_version.clone())).unwrap_or_default();
        series.sort_by_key(|w| w.week);
        by_strategy.entry(m.strategy_type).or_default().push(ModelVersionAccuracy {
            model_version: m.model_version,
            settled: m.predictions,
            accuracy: m.accuracy,
            mean_rps: m.mean_rps,
            mean_brier: m.mean_brier,
            mean_log_loss: m.mean_log_loss,
            first_settled_at: m.first_settled_at,
            last_settled_at: m.last_settled_at,
            weekly: series,
        });
    }
    by_strategy
        .into_iter()
        .map(|(strategy, models)| {
            let total = Scores::combine(models.iter().map(|m| Scores {
                settled: m.settled,
                accuracy: m.accuracy,
                mean_rps: m.mean_rps,
                mean_brier: m.mean_brier,
                mean_log_loss: m.mean_log_loss,
            }));
            let view = StrategyAccuracy {
                settled: total.settled,
                accuracy: total.accuracy,
                mean_rps: total.mean_rps,
                mean_brier: total.mean_brier,
                mean_log_loss: total.mean_log_loss,
                models,
            };
            (strategy, view)
        })
        .collect()
}

fn grouped(rows: Vec<(String, i64)>) -> Counts {
    Counts { total: rows.iter().map(|(_, n)| n).sum(), by: rows.into_iter().collect() }
}

async fn match_counts(pool: &PgPool) -> Result<Counts, ApiError> {
    let rows = sqlx::query!(r#"SELECT status, count(*) AS "n!" FROM matches GROUP BY status"#).fetch_all(pool).await?;
    Ok(grouped(rows.into_iter().map(|r| (r.status, r.n)).collect()))
}

async fn prediction_counts(pool: &PgPool) -> Result<Counts, ApiError> {
    let rows = sqlx::query!(r#"SELECT strategy_type, count(*) AS "n!" FROM predictions GROUP BY strategy_type"#)
        .fetch_all(pool)
        .await?;
    Ok(grouped(rows.into_iter().map(|r| (r.strategy_type, r.n)).collect()))
}

async fn user_counts(pool: &PgPool) -> Result<UserCounts, ApiError> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "total!", count(*) FILTER (WHERE is_active) AS "active!",
                  count(*) FILTER (WHERE role = 'admin' AND is_active) AS "admins!"
           FROM users"#,
    )
    .fetch_one(pool)
    .await?;
    Ok(UserCounts { total: row.total, active: row.active, admins: row.admins })
}

/// The statistics as of `now`, with the feature flags in force.
#[tracing::instrument(name = "db.admin_stats", skip_all)]
pub async fn stats(
    pool: &PgPool,
    now: DateTime<Utc>,
    flags: crate::flags::FeatureFlags,
) -> Result<AdminStats, ApiError> {
    let since = now - Duration::weeks(ACCURACY_WEEKS);
    let (users, matches, predictions, models, weeks, runs, calibration) = tokio::try_join!(
        user_counts(pool),
        match_counts(pool),
        prediction_counts(pool),
        async { Ok::<_, ApiError>(settlement::accuracy_by_model(pool).await?) },
        async { Ok::<_, ApiError>(settlement::accuracy_over_time(pool, since).await?) },
        async { Ok::<_, ApiError>(jobs::recent_runs(pool, 1).await?) },
        async { Ok::<_, ApiError>(settlement::calibration_by_strategy(pool).await?) },
    )?;
    Ok(AdminStats {
        users,
        matches,
        predictions,
        accuracy: accuracy_view(models, weeks),
        calibration,
        jobs: runs.into_iter().map(|r| (r.job.clone(), LastJobRun::from(r))).collect(),
        flags,
        generated_at: now,
    })
}

/// `GET /api/admin/stats` for `caller`: the account is checked and must be an admin's, then the
/// statistics come from Redis when they were computed under the current data version less than
/// [`STATS_TTL`] ago (and `refresh` is false), else from PostgreSQL, then stored.
pub async fn cached_stats(services: &Services, caller: UncheckedUser, refresh: bool) -> Result<JsonBody, ApiError> {
    let policy = ReadPolicy { admin_only: true, refresh };
    cached_read_with(
        services,
        caller,
        policy,
        "admin_stats",
        STATS_KEY,
        |_| STATS_TTL,
        |pool| async move { stats(pool, Utc::now(), services.flags().await).await },
    )
    .await
}

/// Drops the stored statistics, after an admin's change that they show (an account, the flags):
/// the next read computes them again. A concurrent read that computed them before the change may
/// still store its figures, for at most [`STATS_TTL`].
pub async fn forget_stats(services: &Services) {
    services.cache.delete(&[entry_key(services, STATS_KEY)]).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(strategy: &str, version: &str, n: i64, accuracy: f64, rps: f64) -> ModelAccuracy {
        ModelAccuracy {
            strategy_type: strategy.into(),
            model_version: version.into(),
            predictions: n,
            mean_rps: rps,
            mean_brier: rps * 2.0,
            mean_log_loss: rps * 4.0,
            accuracy,
            first_settled_at: DateTime::UNIX_EPOCH,
            last_settled_at: DateTime::UNIX_EPOCH,
        }
    }

    fn point(week: &str, strategy: &str, version: &str, n: i64) -> AccuracyPoint {
        AccuracyPoint {
            week: week.parse().unwrap(),
            strategy_type: strategy.into(),
            model_version: version.into(),
            predictions: n,
            mean_rps: 0.2,
            mean_brier: 0.4,
            mean_log_loss: 0.8,
            accuracy: 0.5,
        }
    }

    #[test]
    fn strategies_combine_their_model_versions_weighted_by_count() {
        let view = accuracy_view(
            vec![
                model("statistical", "v1", 3, 1.0, 0.1),
                model("statistical", "v2", 1, 0.0, 0.5),
                model("ml_model", "m1", 2, 0.5, 0.2),
            ],
            vec![
                point("2026-11-23", "statistical", "v1", 1),
                point("2026-11-16", "statistical", "v1", 2),
                point("2026-11-23", "ml_model", "m1", 2),
            ],
        );
        let stat = &view["statistical"];
        assert_eq!(stat.settled, 4);
        assert!((stat.accuracy - 0.75).abs() < 1e-12);
        assert!((stat.mean_rps - 0.2).abs() < 1e-12);
        assert!((stat.mean_brier - 0.4).abs() < 1e-12);
        assert!((stat.mean_log_loss - 0.8).abs() < 1e-12);
        assert_eq!(stat.models.iter().map(|m| m.model_version.as_str()).collect::<Vec<_>>(), ["v1", "v2"]);
        let weeks: Vec<String> = stat.models[0].weekly.iter().map(|w| w.week.to_string()).collect();
        assert_eq!(weeks, ["2026-11-16", "2026-11-23"], "oldest first");
        assert!(stat.models[1].weekly.is_empty());
        assert_eq!(view["ml_model"].settled, 2);
        assert!(!view.contains_key("historical"));
    }
}
