//! Settlement: scores every stored prediction of a finished match, once, and keeps the accuracy
//! of each strategy and model version over time for `GET /api/admin/stats`.
//!
//! Each prediction gets the ranked probability score (outcomes ordered home < draw < away), the
//! Brier score, the log loss ([`crate::engine::metrics`], the same functions the backtests use)
//! and whether its most likely outcome happened. Scores are written with
//! `INSERT ... ON CONFLICT (prediction_id) DO NOTHING`, so two runs (or two overlapping ones,
//! should the lock ever fail) write each score once, and metrics are emitted only for the rows
//! this run inserted. Work goes in batches of predictions ordered by id, behind a checkpoint
//! (the last id seen), so a run stopped by its deadline resumes where it stopped; a complete pass
//! clears the checkpoint so the next run looks again from the start (matches finish in any order).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{
    Services,
    engine::{Outcome, metrics},
    jobs::{self, Deadline, JobContext, JobError, JobReport, WorkDone},
    metrics::MetricValue,
};

pub const JOB: &str = "settle";
const SCOPE: &str = "all";

/// The `settle` job's input (the schedule's payload). Every field is optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SettleInput {
    /// Predictions per batch, 1 to 5000 (default 500).
    pub batch_size: Option<u32>,
    /// Stop after this many batches (drills and tests); the next run resumes.
    pub max_batches: Option<u32>,
}

impl SettleInput {
    pub fn batch_size(&self) -> Result<i64, JobError> {
        match self.batch_size {
            None => Ok(500),
            Some(n @ 1..=5000) => Ok(i64::from(n)),
            Some(n) => Err(JobError::Permanent(format!("batch_size must be between 1 and 5000, got {n}"))),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Checkpoint {
    after_id: i64,
}

/// Runs the job: lock, run record, batches until done or the deadline.
pub async fn run(services: &Services, input: &SettleInput, deadline: Deadline) -> Result<JobReport, JobError> {
    let batch_size = input.batch_size()?;
    let pool = services.db.pool().await?.clone();
    jobs::run(services, JOB, deadline.with_max_batches(input.max_batches), |ctx| async move {
        settle_pending(&pool, &ctx, batch_size).await
    })
    .await
}

/// Scores pending predictions batch by batch while `ctx` allows.
pub async fn settle_pending(pool: &PgPool, ctx: &JobContext, batch_size: i64) -> Result<WorkDone, JobError> {
    let mut cp: Checkpoint = jobs::load_checkpoint(pool, JOB, SCOPE).await?.unwrap_or_default();
    let mut scanned = 0u64;
    let mut settled = 0u64;
    loop {
        if !ctx.next_batch() {
            let counts = serde_json::json!({"scanned": scanned, "settled": settled, "batches": ctx.batches(), "resume_after_id": cp.after_id});
            return Ok(WorkDone::partial(counts));
        }
        let batch = settle_batch(pool, cp.after_id, batch_size).await?;
        scanned += batch.scanned as u64;
        settled += batch.inserted.len() as u64;
        emit_metrics(&batch.inserted);
        if batch.scanned < batch_size as usize {
            jobs::clear_checkpoint(pool, JOB, SCOPE).await?;
            let counts = serde_json::json!({"scanned": scanned, "settled": settled, "batches": ctx.batches()});
            return Ok(WorkDone::complete(counts));
        }
        cp.after_id = batch.last_id;
        jobs::save_checkpoint(pool, JOB, SCOPE, &cp).await?;
    }
}

/// One settled prediction's score.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Score {
    pub prediction_id: i64,
    pub strategy_type: String,
    pub model_version: String,
    pub rps: f64,
    pub brier: f64,
    pub log_loss: f64,
    pub correct: bool,
}

/// What one batch did.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Unscored predictions of finished matches read.
    pub scanned: usize,
    /// The highest prediction id read.
    pub last_id: i64,
    /// The scores this call wrote (not those another run wrote first).
    pub inserted: Vec<Score>,
}

struct Pending {
    id: i64,
    match_id: i64,
    strategy_type: String,
    model_version: String,
    p_home: f64,
    p_draw: f64,
    p_away: f64,
    home_goals: i16,
    away_goals: i16,
}

/// The scores of `p = [home, draw, away]` for `outcome`: (rps, brier, log loss, correct).
pub fn score(p: [f64; 3], outcome: Outcome) -> (f64, f64, f64, bool) {
    let p = p.map(|x| x.clamp(0.0, 1.0));
    let best = (0..3).fold(0, |b, i| if p[i] > p[b] { i } else { b });
    (
        metrics::rps(p, outcome).clamp(0.0, 1.0),
        metrics::brier(p, outcome).clamp(0.0, 2.0),
        metrics::log_loss(p, outcome).max(0.0),
        best == outcome.index(),
    )
}

/// Scores up to `limit` unscored predictions of finished matches with ids above `after_id`.
pub async fn settle_batch(pool: &PgPool, after_id: i64, limit: i64) -> Result<Batch, JobError> {
    // A finished match has both scores (the `both_scores_or_neither` and
    // `a_finished_match_has_a_score` constraints): `!` says so to the macro.
    let pending = sqlx::query_as!(
        Pending,
        r#"SELECT p.id, p.match_id, p.strategy_type, p.model_version, p.p_home, p.p_draw, p.p_away,
                m.home_goals AS "home_goals!", m.away_goals AS "away_goals!"
         FROM predictions p JOIN matches m ON m.id = p.match_id
         WHERE p.id > $1 AND m.status = 'FINISHED' AND m.home_goals IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM prediction_scores s WHERE s.prediction_id = p.id)
         ORDER BY p.id LIMIT $2"#,
        after_id,
        limit,
    )
    .fetch_all(pool)
    .await?;
    let mut batch = Batch { scanned: pending.len(), last_id: after_id, inserted: Vec::new() };
    if pending.is_empty() {
        return Ok(batch);
    }
    batch.last_id = pending.iter().map(|p| p.id).max().unwrap_or(after_id);
    let n = pending.len();
    let (mut ids, mut matches, mut strategies, mut versions, mut outcomes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut rps, mut brier, mut log_loss, mut correct) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for p in &pending {
        let outcome = Outcome::from_goals(p.home_goals.clamp(0, 255) as u8, p.away_goals.clamp(0, 255) as u8);
        let (r, b, l, c) = score([p.p_home, p.p_draw, p.p_away], outcome);
        ids.push(p.id);
        matches.push(p.match_id);
        strategies.push(p.strategy_type.as_str());
        versions.push(p.model_version.as_str());
        outcomes.push(match outcome {
            Outcome::Home => "home",
            Outcome::Draw => "draw",
            Outcome::Away => "away",
        });
        rps.push(r);
        brier.push(b);
        log_loss.push(l);
        correct.push(c);
    }
    // The text arrays are `&str` slices: `as &[&str]` overrides the macro's `&[String]`.
    batch.inserted = sqlx::query_as!(
        Score,
        "INSERT INTO prediction_scores (prediction_id, match_id, strategy_type, model_version, outcome, rps, brier, log_loss, correct)
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[], $9::bool[])
         ON CONFLICT (prediction_id) DO NOTHING
         RETURNING prediction_id, strategy_type, model_version, rps, brier, log_loss, correct",
        &ids,
        &matches,
        &strategies as &[&str],
        &versions as &[&str],
        &outcomes as &[&str],
        &rps,
        &brier,
        &log_loss,
        &correct,
    )
    .fetch_all(pool)
    .await?;
    Ok(batch)
}

/// EMF lines per strategy: every settled prediction's `prediction_rps`, `prediction_brier`,
/// `prediction_log_loss` and `prediction_correct` (0/1) as value arrays (CloudWatch takes up to
/// 100 values per line, so averages over any period are exact), and `predictions_settled_total`.
pub fn emf_lines(scores: &[Score]) -> Vec<String> {
    let mut by_strategy: BTreeMap<&str, Vec<&Score>> = BTreeMap::new();
    for s in scores {
        by_strategy.entry(s.strategy_type.as_str()).or_default().push(s);
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut lines = Vec::new();
    for (strategy, rows) in by_strategy {
        for chunk in rows.chunks(100) {
            let line = crate::metrics::render(
                &[("strategy", strategy)],
                &[
                    ("prediction_rps", MetricValue::None(0.0)),
                    ("prediction_brier", MetricValue::None(0.0)),
                    ("prediction_log_loss", MetricValue::None(0.0)),
                    ("prediction_correct", MetricValue::None(0.0)),
                    ("predictions_settled_total", MetricValue::Count(chunk.len() as f64)),
                ],
                now,
            );
            let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            doc["prediction_rps"] = chunk.iter().map(|s| s.rps).collect();
            doc["prediction_brier"] = chunk.iter().map(|s| s.brier).collect();
            doc["prediction_log_loss"] = chunk.iter().map(|s| s.log_loss).collect();
            doc["prediction_correct"] = chunk.iter().map(|s| if s.correct { 1.0 } else { 0.0 }).collect();
            lines.push(doc.to_string());
        }
    }
    lines
}

fn emit_metrics(scores: &[Score]) {
    for line in emf_lines(scores) {
        println!("{line}");
    }
}

/// Accuracy of one strategy and model version over the settled predictions.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ModelAccuracy {
    pub strategy_type: String,
    pub model_version: String,
    pub predictions: i64,
    pub mean_rps: f64,
    pub mean_brier: f64,
    pub mean_log_loss: f64,
    /// Share of predictions whose most likely outcome happened.
    pub accuracy: f64,
    pub first_settled_at: chrono::DateTime<chrono::Utc>,
    pub last_settled_at: chrono::DateTime<chrono::Utc>,
}

/// Accuracy per strategy and model version (for `GET /api/admin/stats`).
pub async fn accuracy_by_model(pool: &PgPool) -> Result<Vec<ModelAccuracy>, sqlx::Error> {
    // Aggregates of a non-empty group of NOT NULL columns: never null.
    sqlx::query_as!(
        ModelAccuracy,
        r#"SELECT strategy_type, model_version, count(*) AS "predictions!", avg(rps) AS "mean_rps!",
                avg(brier) AS "mean_brier!", avg(log_loss) AS "mean_log_loss!",
                avg(correct::int)::float8 AS "accuracy!",
                min(settled_at) AS "first_settled_at!", max(settled_at) AS "last_settled_at!"
         FROM prediction_scores GROUP BY strategy_type, model_version
         ORDER BY strategy_type, min(settled_at), model_version"#,
    )
    .fetch_all(pool)
    .await
}

/// Accuracy of one strategy and model version over the matches of one week.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AccuracyPoint {
    /// Monday of the week the matches kicked off.
    pub week: chrono::NaiveDate,
    pub strategy_type: String,
    pub model_version: String,
    pub predictions: i64,
    pub mean_rps: f64,
    pub mean_brier: f64,
    pub mean_log_loss: f64,
    pub accuracy: f64,
}

/// Weekly accuracy (by the matches' kick-off) since `since`, oldest first: the curve of each
/// strategy and model version over time.
pub async fn accuracy_over_time(
    pool: &PgPool,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<AccuracyPoint>, sqlx::Error> {
    sqlx::query_as!(
        AccuracyPoint,
        r#"SELECT date_trunc('week', m.kickoff_at AT TIME ZONE 'UTC')::date AS "week!", s.strategy_type,
                s.model_version, count(*) AS "predictions!", avg(s.rps) AS "mean_rps!",
                avg(s.brier) AS "mean_brier!", avg(s.log_loss) AS "mean_log_loss!",
                avg(s.correct::int)::float8 AS "accuracy!"
         FROM prediction_scores s JOIN matches m ON m.id = s.match_id
         WHERE m.kickoff_at >= $1
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"#,
        since
    )
    .fetch_all(pool)
    .await
}

/// Bands of the reliability diagrams of `GET /api/admin/stats`.
pub const CALIBRATION_BINS: usize = 10;

/// Calibration of each strategy's settled predictions (all model versions): reliability bins for
/// home, draw and away and the expected calibration error, counted in SQL.
pub async fn calibration_by_strategy(
    pool: &PgPool,
) -> Result<BTreeMap<String, crate::engine::calibration::Calibration>, sqlx::Error> {
    let rows: Vec<(String, String, i32, i64, f64, f64)> = sqlx::query!(
        r#"SELECT s.strategy_type, k.outcome AS "outcome!",
                LEAST(GREATEST(width_bucket(k.p, 0.0, 1.0, $1), 1), $1) - 1 AS "bin!",
                count(*) AS "count!", sum(k.p) AS "sum_p!", sum((s.outcome = k.outcome)::int)::float8 AS "sum_hits!"
         FROM prediction_scores s JOIN predictions p ON p.id = s.prediction_id
         CROSS JOIN LATERAL (VALUES ('home', p.p_home), ('draw', p.p_draw), ('away', p.p_away)) AS k(outcome, p)
         GROUP BY 1, 2, 3"#,
        CALIBRATION_BINS as i32
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.strategy_type, r.outcome, r.bin, r.count, r.sum_p, r.sum_hits))
    .collect();
    type BinSums = Vec<(Outcome, usize, u64, f64, f64)>;
    let mut by: BTreeMap<String, BinSums> = BTreeMap::new();
    for (strategy, outcome, bin, count, sp, so) in rows {
        let o = match outcome.as_str() {
            "home" => Outcome::Home,
            "draw" => Outcome::Draw,
            _ => Outcome::Away,
        };
        by.entry(strategy).or_default().push((o, bin.max(0) as usize, count.max(0) as u64, sp, so));
    }
    Ok(by
        .into_iter()
        .map(|(strategy, sums)| {
            // Every forecast is counted once per outcome: the home rows count the forecasts.
            let n = sums.iter().filter(|s| s.0 == Outcome::Home).map(|s| s.2).sum();
            (strategy, crate::engine::calibration::Calibration::from_sums(n, CALIBRATION_BINS, sums))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_the_engine_metrics() {
        let (r, b, l, c) = score([0.5, 0.25, 0.25], Outcome::Home);
        assert!((r - 0.15625).abs() < 1e-12);
        assert!((b - (0.25 + 0.0625 + 0.0625)).abs() < 1e-12);
        assert!((l - -(0.5f64).ln()).abs() < 1e-12);
        assert!(c);
        let (_, _, _, c) = score([0.5, 0.25, 0.25], Outcome::Away);
        assert!(!c);
    }

    #[test]
    fn emf_lines_carry_every_value_by_strategy() {
        let s = |id, strategy: &str, rps| Score {
            prediction_id: id,
            strategy_type: strategy.into(),
            model_version: "v".into(),
            rps,
            brier: 0.5,
            log_loss: 1.0,
            correct: true,
        };
        let lines = emf_lines(&[s(1, "statistical", 0.1), s(2, "statistical", 0.3), s(3, "ml_model", 0.2)]);
        assert_eq!(lines.len(), 2);
        let stat: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(stat["strategy"], "statistical");
        assert_eq!(stat["prediction_rps"], serde_json::json!([0.1, 0.3]));
        assert_eq!(stat["predictions_settled_total"], 2.0);
    }
}
