//! Training: refits `statistical` and `historical` and retrains `ml_model` on every finished
//! match, evaluates on the most recent matches the new model did not train on, and publishes
//! versioned artifacts.
//!
//! - The evaluation set is the last `holdout_matches` finished matches (whole match days); every
//!   model is scored on it by the engine's rolling backtest (each match predicted from the matches
//!   known before its day) with the ranked probability score.
//! - `ml_model`: a new artifact is trained on the matches before the evaluation set, scored on it,
//!   and compared with the active version scored on the same matches (when that version was
//!   trained before them; otherwise its recorded RPS is the bar). It is published only when its
//!   RPS is not worse (`<= current + max_rps_regression`): the artifact goes to S3 under
//!   `models/ml_model/<version>.json`, a row with its key and SHA-256 goes into `model_versions`,
//!   active. The previous version stays, inactive, to roll back to ([`activate`]).
//! - `statistical` and `historical` have no trained weights: their refit on all finished matches
//!   is published the same way (snapshot in S3, row in `model_versions`) with its evaluation.
//!
//! Predictions load the active `ml_model` with [`active_ml_artifact`].

use chrono::{NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::{
    Services,
    engine::{EngineConfig, FittedModel, MatchRecord, MlArtifact, MlTrainConfig, Strategy, backtest, ml_model},
    history::{self, HistoryQuery},
    jobs::{self, Deadline, JobError, JobReport, WorkDone},
    metrics::{self, MetricValue},
};

pub const JOB: &str = "train";

/// The `train` job's input. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainInput {
    /// Size of the evaluation set: the most recent finished matches (default 380, a season).
    pub holdout_matches: Option<usize>,
    /// How much worse (in RPS) a new `ml_model` may be and still be published (default 0).
    pub max_rps_regression: Option<f64>,
    /// `ml_model` training settings (seed, folds, L2 grid, burn-in), default the engine's.
    pub ml: Option<MlTrainConfig>,
    /// Which strategies to (re)fit, default all four.
    pub strategies: Option<Vec<Strategy>>,
}

/// What happened to one strategy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StrategyResult {
    pub strategy: Strategy,
    pub version: String,
    /// `published`, `refused` (worse than the active version) or `unchanged` (the same artifact
    /// is already published).
    pub decision: String,
    pub rps: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_rps: Option<f64>,
}

/// Runs the job under the lock.
pub async fn run(services: &Services, input: &TrainInput, deadline: Deadline) -> Result<JobReport, JobError> {
    let input = input.clone();
    validate(&input)?;
    let s = services.clone();
    jobs::run(services, JOB, deadline, |ctx| async move {
        // Boxed: the training future is deep, and a Lambda handler's future must stay shallow.
        let results = Box::pin(train(&s, &input, &ctx.deadline)).await?;
        let complete = results.len() == input.strategies.as_ref().map_or(Strategy::ALL.len(), Vec::len);
        let counts = serde_json::json!({ "strategies": results });
        Ok(if complete { WorkDone::complete(counts) } else { WorkDone::partial(counts) })
    })
    .await
}

fn validate(input: &TrainInput) -> Result<(), JobError> {
    if let Some(n) = input.holdout_matches
        && !(20..=5000).contains(&n)
    {
        return Err(JobError::Permanent(format!("holdout_matches must be between 20 and 5000, got {n}")));
    }
    if let Some(r) = input.max_rps_regression
        && !(0.0..=0.1).contains(&r)
    {
        return Err(JobError::Permanent(format!("max_rps_regression must be between 0 and 0.1, got {r}")));
    }
    Ok(())
}

/// Trains, evaluates and publishes; stops between strategies when the deadline has passed.
pub async fn train(
    services: &Services,
    input: &TrainInput,
    deadline: &Deadline,
) -> Result<Vec<StrategyResult>, JobError> {
    let pool = services.db.pool().await?;
    let history = load_history(pool).await?;
    let holdout_n = input.holdout_matches.unwrap_or(380);
    if history.len() < holdout_n + 200 {
        return Err(JobError::Permanent(format!(
            "{} finished matches: training needs at least holdout_matches + 200 = {}",
            history.len(),
            holdout_n + 200
        )));
    }
    // Whole match days: the evaluation set starts at midnight of the day of its first match.
    let split: NaiveDateTime = history[history.len() - holdout_n].date.and_time(NaiveTime::MIN);
    let (train_set, holdout): (Vec<MatchRecord>, Vec<MatchRecord>) =
        history.iter().cloned().partition(|m| m.kickoff() < split);
    let strategies = input.strategies.clone().unwrap_or_else(|| Strategy::ALL.to_vec());
    let mut results = Vec::new();
    for strategy in strategies {
        if deadline.passed() {
            break;
        }
        let result = match strategy {
            Strategy::MlModel => train_ml(services, input, &history, &train_set, &holdout, split).await?,
            Strategy::Market => publish_market(services, &train_set, &holdout, split).await?,
            other => refit(services, other, &history, &train_set, &holdout).await?,
        };
        metrics::emit(
            &[("strategy", strategy.as_str()), ("decision", result.decision.as_str())],
            &[
                ("model_evaluation_rps", MetricValue::None(result.rps)),
                ("model_trainings_total", MetricValue::Count(1.0)),
            ],
        );
        results.push(result);
    }
    Ok(results)
}

fn engine_err(e: impl std::fmt::Display) -> JobError {
    JobError::Permanent(format!("engine: {e}"))
}

async fn train_ml(
    services: &Services,
    input: &TrainInput,
    history: &[MatchRecord],
    train_set: &[MatchRecord],
    holdout: &[MatchRecord],
    split: NaiveDateTime,
) -> Result<StrategyResult, JobError> {
    let config = input.ml.clone().unwrap_or_default();
    let (train_owned, holdout_owned, engine) = (train_set.to_vec(), holdout.to_vec(), EngineConfig::default());
    // CPU-bound: off the async workers.
    let (candidate, rps) =
        tokio::task::spawn_blocking(move || -> Result<(MlArtifact, backtest::BacktestSummary), JobError> {
            let artifact = ml_model::train_artifact(&train_owned, split, &config).map_err(engine_err)?;
            let report =
                backtest::run_backtest(Strategy::MlModel, &train_owned, &holdout_owned, &engine, Some(&artifact))
                    .map_err(engine_err)?;
            Ok((artifact, report.summary))
        })
        .await
        .map_err(|e| JobError::Permanent(format!("training task: {e}")))??;
    let body = candidate.to_json().map_err(engine_err)?;
    let sha = hex::encode(Sha256::digest(body.as_bytes()));
    let version = format!("{}-{}", candidate.model_version, &sha[..12]);

    let pool = services.db.pool().await?;
    let current = active_version(pool, Strategy::MlModel).await?;
    let mut current_rps = None;
    if let Some(cur) = &current {
        if cur.version == version {
            return Ok(StrategyResult {
                strategy: Strategy::MlModel,
                version,
                decision: "unchanged".into(),
                rps: rps.rps,
                current_version: Some(cur.version.clone()),
                current_rps: cur.rps(),
            });
        }
        current_rps = match load_artifact(services, cur).await {
            Ok(Some(artifact)) if artifact.trained_until < split => {
                let (t, h, engine) = (train_set.to_vec(), holdout.to_vec(), EngineConfig::default());
                let summary = tokio::task::spawn_blocking(move || {
                    backtest::run_backtest(Strategy::MlModel, &t, &h, &engine, Some(&artifact)).map(|r| r.summary)
                })
                .await
                .map_err(|e| JobError::Permanent(format!("evaluation task: {e}")))?;
                match summary {
                    Ok(s) => Some(s.rps),
                    Err(e) => {
                        tracing::warn!(error = %e, version = %cur.version, "the active ml_model cannot be evaluated");
                        cur.rps()
                    }
                }
            }
            // Trained on (part of) the evaluation set: its own recorded evaluation is the bar.
            Ok(Some(_)) => cur.rps(),
            Ok(None) => cur.rps(),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, version = %cur.version, "the active ml_model artifact is unreadable");
                None
            }
        };
    }
    let tolerance = input.max_rps_regression.unwrap_or(0.0);
    if let Some(bar) = current_rps
        && rps.rps > bar + tolerance
    {
        tracing::warn!(candidate = %version, rps = rps.rps, current_rps = bar, "new ml_model is worse: not published");
        return Ok(StrategyResult {
            strategy: Strategy::MlModel,
            version,
            decision: "refused".into(),
            rps: rps.rps,
            current_version: current.map(|c| c.version),
            current_rps,
        });
    }
    let metrics = serde_json::json!({
        "rps": rps.rps, "log_loss": rps.log_loss, "brier": rps.brier, "matches": rps.matches,
        "bookmaker_rps": rps.bookmaker_rps, "evaluated_from": split, "trained_until": candidate.trained_until,
        "replaced": current.as_ref().map(|c| &c.version), "replaced_rps": current_rps,
    });
    let decision =
        publish(services, Strategy::MlModel, &version, body.into_bytes(), &sha, metrics, train_set.len() as i32)
            .await?;
    let _ = history;
    Ok(StrategyResult {
        strategy: Strategy::MlModel,
        version,
        decision,
        rps: rps.rps,
        current_version: current.map(|c| c.version),
        current_rps,
    })
}

async fn refit(
    services: &Services,
    strategy: Strategy,
    history: &[MatchRecord],
    train_set: &[MatchRecord],
    holdout: &[MatchRecord],
) -> Result<StrategyResult, JobError> {
    let (all, t, h) = (history.to_vec(), train_set.to_vec(), holdout.to_vec());
    let last = history.iter().map(|m| m.kickoff()).max().unwrap_or_default();
    let as_of = last + chrono::Duration::days(1);
    let (model, summary) = tokio::task::spawn_blocking(move || -> Result<_, JobError> {
        let engine = EngineConfig::default();
        let summary = backtest::run_backtest(strategy, &t, &h, &engine, None).map_err(engine_err)?.summary;
        let model = FittedModel::fit(strategy, &all, as_of, &engine, None).map_err(engine_err)?;
        Ok((model, summary))
    })
    .await
    .map_err(|e| JobError::Permanent(format!("refit task: {e}")))??;
    let body = serde_json::to_vec(&model).map_err(JobError::permanent)?;
    let sha = hex::encode(Sha256::digest(&body));
    let version = format!("{}-{}-{}", strategy.as_str(), last.format("%Y%m%d"), &sha[..12]);
    let metrics = serde_json::json!({
        "rps": summary.rps, "log_loss": summary.log_loss, "brier": summary.brier, "matches": summary.matches,
        "bookmaker_rps": summary.bookmaker_rps, "fitted_as_of": as_of,
    });
    let pool = services.db.pool().await?;
    let current = active_version(pool, strategy).await?;
    let decision = publish(services, strategy, &version, body, &sha, metrics, history.len() as i32).await?;
    Ok(StrategyResult {
        strategy,
        version,
        decision,
        rps: summary.rps,
        current_version: current.as_ref().map(|c| c.version.clone()),
        current_rps: current.and_then(|c| c.rps()),
    })
}

/// `market` has no weights beyond the `ml_model` artifact's combination (`market_blend`): it is
/// evaluated on the same matches with the active `ml_model` artifact (just published, or kept)
/// and published as its own version, a copy of that artifact, so that its evaluation and history
/// show beside the others'. Predictions use the active `ml_model` artifact for both.
async fn publish_market(
    services: &Services,
    train_set: &[MatchRecord],
    holdout: &[MatchRecord],
    split: NaiveDateTime,
) -> Result<StrategyResult, JobError> {
    let pool = services.db.pool().await?;
    let ml = match active_version(pool, Strategy::MlModel).await? {
        Some(v) => load_artifact(services, &v).await?.map(|a| (v.version, a)),
        None => None,
    };
    let (ml_version, artifact) = match ml {
        Some((v, a)) if a.trained_until < split => (v, a),
        // No usable ml_model (none published, or trained on the evaluation matches): train one
        // on the matches before them, as ml_model's own training does.
        _ => {
            let t = train_set.to_vec();
            let a = tokio::task::spawn_blocking(move || ml_model::train_or_prior(&t, split, &MlTrainConfig::default()))
                .await
                .map_err(|e| JobError::Permanent(format!("training task: {e}")))?
                .map_err(engine_err)?;
            (a.model_version.clone(), a)
        }
    };
    let body = artifact.to_json().map_err(engine_err)?;
    let (t, h) = (train_set.to_vec(), holdout.to_vec());
    let summary = tokio::task::spawn_blocking(move || {
        backtest::run_backtest(Strategy::Market, &t, &h, &EngineConfig::default(), Some(&artifact)).map(|r| r.summary)
    })
    .await
    .map_err(|e| JobError::Permanent(format!("evaluation task: {e}")))?
    .map_err(engine_err)?;
    let sha = hex::encode(Sha256::digest(body.as_bytes()));
    let version: String = format!("market-{ml_version}").chars().take(100).collect();
    let metrics = serde_json::json!({
        "rps": summary.rps, "log_loss": summary.log_loss, "brier": summary.brier, "matches": summary.matches,
        "bookmaker_rps": summary.bookmaker_rps, "evaluated_from": split, "ml_model_version": ml_version,
    });
    let current = active_version(pool, Strategy::Market).await?;
    let decision =
        publish(services, Strategy::Market, &version, body.into_bytes(), &sha, metrics, train_set.len() as i32).await?;
    Ok(StrategyResult {
        strategy: Strategy::Market,
        version,
        decision,
        rps: summary.rps,
        current_version: current.as_ref().map(|c| c.version.clone()),
        current_rps: current.and_then(|c| c.rps()),
    })
}

/// The S3 key of a version's artifact.
pub fn artifact_key(strategy: Strategy, version: &str) -> String {
    format!("models/{}/{version}.json", strategy.as_str())
}

/// Uploads the artifact, then records the version as the active one (the previous one stays,
/// inactive). `unchanged` when that version already exists.
async fn publish(
    services: &Services,
    strategy: Strategy,
    version: &str,
    body: Vec<u8>,
    sha: &str,
    metrics: serde_json::Value,
    trained_matches: i32,
) -> Result<String, JobError> {
    let pool = services.db.pool().await?;
    let exists: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM model_versions WHERE strategy_type = $1 AND version = $2) AS "exists!""#,
        strategy.as_str(),
        version
    )
    .fetch_one(pool)
    .await?;
    if exists {
        return Ok("unchanged".into());
    }
    let key = artifact_key(strategy, version);
    services
        .aws
        .s3()
        .await
        .put_object()
        .bucket(&services.config.aws.backup_bucket)
        .key(&key)
        .content_type("application/json")
        .body(body.into())
        .send()
        .await
        .map_err(|e| JobError::Retryable(format!("S3 put {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e))))?;
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "UPDATE model_versions SET is_active = false WHERE strategy_type = $1 AND is_active",
        strategy.as_str()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO model_versions (strategy_type, version, artifact_key, artifact_sha256, metrics, trained_matches, is_active)
         VALUES ($1, $2, $3, $4, $5, $6, true)",
        strategy.as_str(),
        version,
        key,
        sha,
        metrics,
        trained_matches,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(strategy = strategy.as_str(), version, key, "model version published");
    Ok("published".into())
}

/// A row of `model_versions`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ModelVersion {
    pub id: i64,
    pub strategy_type: String,
    pub version: String,
    pub artifact_key: Option<String>,
    pub artifact_sha256: Option<String>,
    pub metrics: serde_json::Value,
    pub trained_matches: Option<i32>,
    pub is_active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl ModelVersion {
    /// The RPS recorded by its evaluation.
    pub fn rps(&self) -> Option<f64> {
        self.metrics.get("rps").and_then(serde_json::Value::as_f64)
    }
}

/// The active version of `strategy`.
pub async fn active_version(pool: &PgPool, strategy: Strategy) -> Result<Option<ModelVersion>, JobError> {
    Ok(sqlx::query_as!(
        ModelVersion,
        "SELECT id, strategy_type, version, artifact_key, artifact_sha256, metrics, trained_matches, is_active, created_at
         FROM model_versions WHERE strategy_type = $1 AND is_active",
        strategy.as_str()
    )
    .fetch_optional(pool)
    .await?)
}

/// Every version of `strategy`, newest first.
pub async fn versions(pool: &PgPool, strategy: Strategy) -> Result<Vec<ModelVersion>, JobError> {
    Ok(sqlx::query_as!(
        ModelVersion,
        "SELECT id, strategy_type, version, artifact_key, artifact_sha256, metrics, trained_matches, is_active, created_at
         FROM model_versions WHERE strategy_type = $1 ORDER BY created_at DESC, id DESC",
        strategy.as_str()
    )
    .fetch_all(pool)
    .await?)
}

/// Makes `version` the active one of `strategy` (roll back or forward). False when unknown.
pub async fn activate(pool: &PgPool, strategy: Strategy, version: &str) -> Result<bool, JobError> {
    let mut tx = pool.begin().await?;
    let known: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM model_versions WHERE strategy_type = $1 AND version = $2) AS "exists!""#,
        strategy.as_str(),
        version
    )
    .fetch_one(&mut *tx)
    .await?;
    if !known {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE model_versions SET is_active = false WHERE strategy_type = $1 AND is_active",
        strategy.as_str()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE model_versions SET is_active = true WHERE strategy_type = $1 AND version = $2",
        strategy.as_str(),
        version
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Reads a version's artifact from S3, checking its SHA-256. `None` when it has no artifact.
pub async fn load_artifact_bytes(services: &Services, v: &ModelVersion) -> Result<Option<Vec<u8>>, JobError> {
    let Some(key) = &v.artifact_key else { return Ok(None) };
    let out =
        match services.aws.s3().await.get_object().bucket(&services.config.aws.backup_bucket).key(key).send().await {
            Ok(out) => out,
            // Gone for good (deleted by hand, a bucket restored without it): retrying cannot bring it
            // back, so the version counts as having no readable artifact.
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => {
                tracing::warn!(key, version = %v.version, "model artifact missing from S3");
                return Ok(None);
            }
            Err(e) => {
                return Err(JobError::Retryable(format!(
                    "S3 get {key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )));
            }
        };
    let bytes = out.body.collect().await.map_err(|e| JobError::Retryable(format!("S3 read {key}: {e}")))?.to_vec();
    if let Some(expected) = &v.artifact_sha256 {
        let actual = hex::encode(Sha256::digest(&bytes));
        if &actual != expected {
            return Err(JobError::Permanent(format!("artifact {key}: SHA-256 {actual}, expected {expected}")));
        }
    }
    Ok(Some(bytes))
}

async fn load_artifact(services: &Services, v: &ModelVersion) -> Result<Option<MlArtifact>, JobError> {
    match load_artifact_bytes(services, v).await? {
        None => Ok(None),
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(JobError::permanent)?;
            MlArtifact::from_json(&text).map(Some).map_err(engine_err)
        }
    }
}

/// The active `ml_model` version and its artifact (what predictions use).
pub async fn active_ml_artifact(services: &Services) -> Result<Option<(String, MlArtifact)>, JobError> {
    let pool = services.db.pool().await?;
    let Some(v) = active_version(pool, Strategy::MlModel).await? else { return Ok(None) };
    Ok(load_artifact(services, &v).await?.map(|a| (v.version, a)))
}

/// Every finished match with its odds, in kick-off order, as the engine's records.
pub async fn load_history(pool: &PgPool) -> Result<Vec<MatchRecord>, JobError> {
    Ok(history::load(pool, HistoryQuery { with_odds: true, ..HistoryQuery::default() }).await?)
}
