//! Job discipline shared by every scheduled job (settle, train, backup, probe):
//!
//! - a typed input per job (each job's module) and a typed error, [`JobError`], split into
//!   retryable (a dependency failed: run again) and permanent (bad input, a bug, a bad backup);
//! - a lock so two runs of one job never overlap: a DynamoDB item written with a conditional put,
//!   holding a lease that expires by itself when a run dies ([`JobLock`]);
//! - a run record per run in `job_runs` (start, end, outcome, counts, error), which
//!   `GET /api/admin/stats` shows and alarms watch (the `job_runs_total` metric);
//! - bounded batches that stop before the Lambda's deadline ([`JobContext::next_batch`]) and a
//!   checkpoint in `job_checkpoints` so the next run resumes where this one stopped.
//!
//! [`run`] ties them together: take the lock or record a `skipped` run, mark runs left `running`
//! by a dead predecessor as failed, record the run, do the work, record its outcome, release.

pub mod testdata;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Serialize, de::DeserializeOwned};
use sqlx::PgPool;

use crate::{
    Services,
    metrics::{self, MetricValue},
};

/// Why a job failed. `Retryable` errors (a dependency unreachable, a timeout) are worth another
/// attempt; `Permanent` ones (bad input, a corrupt backup, a bug) are not.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn retryable(e: impl std::fmt::Display) -> Self {
        Self::Retryable(e.to_string())
    }

    pub fn permanent(e: impl std::fmt::Display) -> Self {
        Self::Permanent(e.to_string())
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }

    /// `Retryable` or `Permanent`: the Lambda error type, for the dead-letter queue and the logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Retryable(_) => "Retryable",
            Self::Permanent(_) => "Permanent",
        }
    }

    /// Adds what was being done.
    pub fn context(self, what: &str) -> Self {
        match self {
            Self::Retryable(m) => Self::Retryable(format!("{what}: {m}")),
            Self::Permanent(m) => Self::Permanent(format!("{what}: {m}")),
        }
    }
}

impl From<sqlx::Error> for JobError {
    /// Retryable exactly when the API would answer 503 ([`crate::db::is_unavailable`]).
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            Self::Retryable(format!("database: {e}"))
        } else {
            Self::Permanent(format!("database: {e}"))
        }
    }
}

impl From<crate::db::DatabaseError> for JobError {
    fn from(e: crate::db::DatabaseError) -> Self {
        if e.is_unavailable() { Self::Retryable(e.to_string()) } else { Self::Permanent(e.to_string()) }
    }
}

/// A job's input from the invocation payload: `null` or `{}` means every default; an unknown or
/// malformed field is a permanent error that names it.
pub fn parse_input<T: DeserializeOwned + Default>(payload: serde_json::Value) -> Result<T, JobError> {
    if payload.is_null() {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().to_string();
        JobError::Permanent(format!("invalid job input at `{path}`: {}", e.into_inner()))
    })
}

/// How a run ended (`job_runs.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// Stopped at its deadline or batch budget with work left: the next run resumes.
    Partial,
    /// Another run held the lock.
    Skipped,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Partial => "partial",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// The time a run gets when the invocation carries no usable deadline (a local emulator).
pub const LOCAL_BUDGET: Duration = Duration::from_secs(120);

/// When a run must stop starting new batches: the Lambda's deadline less a reserve for the
/// batch in flight and the bookkeeping, and optionally a batch budget (drills and tests).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    max_batches: Option<u32>,
}

impl Deadline {
    /// `remaining` from now.
    pub fn after(remaining: Duration) -> Self {
        Self { at: Instant::now() + remaining, max_batches: None }
    }

    /// From the Lambda context's deadline (milliseconds since the epoch), keeping `reserve` back
    /// (at most a quarter of the time left, so a short local timeout still leaves room to work).
    pub fn from_epoch_ms(deadline_ms: u64, reserve: Duration) -> Self {
        let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
        if deadline_ms <= now_ms {
            // Lambda always gives a deadline ahead; a local emulator may give none usable
            // (`JOB_LOCAL_BUDGET_SECS` then, default 120: the drills use a short one, since a
            // killed run's lock lease is its budget plus a minute).
            let local = std::env::var("JOB_LOCAL_BUDGET_SECS").ok().and_then(|v| v.parse().ok());
            return Self::after(local.map_or(LOCAL_BUDGET, Duration::from_secs));
        }
        let left = Duration::from_millis(deadline_ms - now_ms);
        Self::after(left.saturating_sub(reserve.min(left / 4)))
    }

    /// At most `n` batches in this run.
    pub fn with_max_batches(mut self, n: Option<u32>) -> Self {
        self.max_batches = n;
        self
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }
}

/// What a job's work sees: its run, its deadline and its batch counter.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: String,
    pub run_id: i64,
    pub deadline: Deadline,
    batches: Arc<AtomicU32>,
}

impl JobContext {
    /// Whether another batch may start: false once the deadline has passed or the batch budget
    /// is spent. Counts the batch when it answers true.
    pub fn next_batch(&self) -> bool {
        if self.deadline.passed() {
            return false;
        }
        let done = self.batches.load(Ordering::SeqCst);
        if self.deadline.max_batches.is_some_and(|max| done >= max) {
            return false;
        }
        self.batches.fetch_add(1, Ordering::SeqCst);
        true
    }

    pub fn batches(&self) -> u32 {
        self.batches.load(Ordering::SeqCst)
    }
}

/// What the work of a run returns: whether it finished, what it counted and, for work that went
/// on past some failures, what failed.
#[derive(Debug, Clone, Default)]
pub struct WorkDone {
    pub complete: bool,
    pub counts: serde_json::Value,
    /// Kept in the run record's `error` (the outcome stays `succeeded` or `partial`).
    pub error: Option<String>,
}

impl WorkDone {
    pub fn complete(counts: serde_json::Value) -> Self {
        Self { complete: true, counts, error: None }
    }

    pub fn partial(counts: serde_json::Value) -> Self {
        Self { complete: false, counts, error: None }
    }

    /// Records `error` with the run (e.g. the steps that failed while the rest went on).
    pub fn with_error(mut self, error: Option<String>) -> Self {
        self.error = error;
        self
    }
}

/// The result of a run: what the Lambda returns and `job_runs` keeps.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub job: String,
    pub run_id: Option<i64>,
    pub outcome: Outcome,
    pub counts: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Runs `work` as job `job` under the lock, with a run record. Returns `Ok` with outcome
/// `skipped` when another run holds the lock; the work's error after recording it.
pub async fn run<F, Fut>(services: &Services, job: &str, deadline: Deadline, work: F) -> Result<JobReport, JobError>
where
    F: FnOnce(JobContext) -> Fut,
    Fut: Future<Output = Result<WorkDone, JobError>>,
{
    let started = Instant::now();
    let pool = services.db.pool().await?.clone();
    let dynamodb = services.aws.dynamodb().await.clone();
    // The lease outlives the run's own deadline a little: a dead run frees the lock soon after
    // its Lambda would have been stopped anyway.
    let lease = deadline.remaining() + Duration::from_secs(60);
    // One lock per job and database: the table may serve several databases (tests, drills).
    let database: String =
        sqlx::query_scalar!(r#"SELECT current_database()::text AS "database!""#).fetch_one(&pool).await?;
    let lock = JobLock::new(dynamodb, &services.config.aws.table_name, &format!("{job}#{database}"));
    let Some(guard) = lock.acquire(lease).await? else {
        tracing::info!(job, "another run holds the lock: skipped");
        let run_id = record_finished(&pool, job, Outcome::Skipped, &serde_json::json!({}), None).await.ok();
        emit_run_metrics(job, Outcome::Skipped, started.elapsed());
        return Ok(JobReport {
            job: job.into(),
            run_id,
            outcome: Outcome::Skipped,
            counts: serde_json::json!({}),
            error: None,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    };
    let result = run_locked(&pool, job, deadline, work).await;
    if let Err(e) = guard.release().await {
        tracing::warn!(job, error = %e, "releasing the job lock failed; its lease will expire");
    }
    let elapsed = started.elapsed();
    match result {
        Ok((run_id, done)) => {
            let outcome = if done.complete { Outcome::Succeeded } else { Outcome::Partial };
            emit_run_metrics(job, outcome, elapsed);
            tracing::info!(job, run_id, outcome = outcome.as_str(), counts = %done.counts, "job finished");
            Ok(JobReport {
                job: job.into(),
                run_id: Some(run_id),
                outcome,
                counts: done.counts,
                error: done.error,
                duration_ms: elapsed.as_millis() as u64,
            })
        }
        Err(e) => {
            emit_run_metrics(job, Outcome::Failed, elapsed);
            tracing::error!(job, error = %e, kind = e.kind(), "job failed");
            Err(e)
        }
    }
}

async fn run_locked<F, Fut>(pool: &PgPool, job: &str, deadline: Deadline, work: F) -> Result<(i64, WorkDone), JobError>
where
    F: FnOnce(JobContext) -> Fut,
    Fut: Future<Output = Result<WorkDone, JobError>>,
{
    // We hold the lock: a run still marked running died before it could say so.
    sqlx::query!(
        "UPDATE job_runs SET outcome = 'failed', finished_at = greatest(now(), started_at),
         error = 'did not finish (stopped or timed out before recording its end)'
         WHERE job = $1 AND outcome = 'running'",
        job
    )
    .execute(pool)
    .await?;
    let run_id = start_run(pool, job).await?;
    let ctx = JobContext { job: job.into(), run_id, deadline, batches: Arc::new(AtomicU32::new(0)) };
    match work(ctx).await {
        Ok(done) => {
            let outcome = if done.complete { Outcome::Succeeded } else { Outcome::Partial };
            finish_run(pool, run_id, outcome, &done.counts, done.error.as_deref()).await?;
            Ok((run_id, done))
        }
        Err(e) => {
            if let Err(record) =
                finish_run(pool, run_id, Outcome::Failed, &serde_json::json!({}), Some(&e.to_string())).await
            {
                tracing::warn!(job, error = %record, "could not record the failed run");
            }
            Err(e)
        }
    }
}

/// Opens a `running` record of `job`. [`run`] does this under the lock; this is for work that
/// keeps a run record without one (the CSV import, which `fp import` also runs).
pub async fn start_run(pool: &PgPool, job: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!("INSERT INTO job_runs (job) VALUES ($1) RETURNING id", job).fetch_one(pool).await
}

/// Closes the record [`start_run`] opened with its outcome, counts and error.
pub async fn finish_run(
    pool: &PgPool,
    run_id: i64,
    outcome: Outcome,
    counts: &serde_json::Value,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE job_runs SET outcome = $2, counts = $3, error = $4, finished_at = greatest(now(), started_at)
         WHERE id = $1",
        run_id,
        outcome.as_str(),
        counts,
        error.map(|e| truncate(e, 2000)),
    )
    .execute(pool)
    .await?;
    Ok(())
}

async fn record_finished(
    pool: &PgPool,
    job: &str,
    outcome: Outcome,
    counts: &serde_json::Value,
    error: Option<&str>,
) -> Result<i64, JobError> {
    Ok(sqlx::query_scalar!(
        "INSERT INTO job_runs (job, outcome, counts, error, finished_at) VALUES ($1, $2, $3, $4, now()) RETURNING id",
        job,
        outcome.as_str(),
        counts,
        error,
    )
    .fetch_one(pool)
    .await?)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn emit_run_metrics(job: &str, outcome: Outcome, elapsed: Duration) {
    metrics::emit(
        &[("job", job), ("outcome", outcome.as_str())],
        &[
            ("job_runs_total", MetricValue::Count(1.0)),
            ("job_duration_seconds", MetricValue::Seconds(elapsed.as_secs_f64())),
        ],
    );
}

/// The last runs of every job, newest first (for `GET /api/admin/stats`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRunRecord {
    pub id: i64,
    pub job: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub outcome: String,
    pub counts: serde_json::Value,
    pub error: Option<String>,
}

/// The `per_job` most recent runs of each job.
pub async fn recent_runs(pool: &PgPool, per_job: i64) -> Result<Vec<JobRunRecord>, sqlx::Error> {
    sqlx::query_as!(
        JobRunRecord,
        "SELECT id, job, started_at, finished_at, outcome, counts, error FROM (
           SELECT *, row_number() OVER (PARTITION BY job ORDER BY started_at DESC, id DESC) AS n FROM job_runs
         ) r WHERE n <= $1 ORDER BY job, started_at DESC, id DESC",
        per_job
    )
    .fetch_all(pool)
    .await
}

// ---------------------------------------------------------------------------------------------
// Lock

/// A lease lock on one job, kept in the DynamoDB table as item `pk = job#<name>`, `sk = lock`.
/// Taken with a conditional put that succeeds only when no item exists or its lease has expired
/// (`expires_at`, epoch seconds, also the table's TTL attribute); released with a conditional
/// delete that only removes our own lease.
#[derive(Clone)]
pub struct JobLock {
    client: aws_sdk_dynamodb::Client,
    table: String,
    job: String,
}

/// A lock held by this run; [`LockGuard::release`] frees it (else its lease expires).
pub struct LockGuard {
    lock: JobLock,
    owner: String,
}

impl JobLock {
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str, job: &str) -> Self {
        Self { client, table: table.into(), job: job.into() }
    }

    fn pk(&self) -> String {
        format!("job#{}", self.job)
    }

    /// Takes the lock for `lease`; `None` when another run holds an unexpired lease.
    pub async fn acquire(&self, lease: Duration) -> Result<Option<LockGuard>, JobError> {
        let owner = uuid::Uuid::new_v4().to_string();
        let now = chrono::Utc::now().timestamp();
        let expires = now + lease.as_secs().max(1) as i64;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(self.pk()))
            .item("sk", AttributeValue::S("lock".into()))
            .item("owner", AttributeValue::S(owner.clone()))
            .item("expires_at", AttributeValue::N(expires.to_string()))
            .item("acquired_at", AttributeValue::S(chrono::Utc::now().to_rfc3339()))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Some(LockGuard { lock: self.clone(), owner })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(JobError::Retryable(format!(
                "job lock (DynamoDB): {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ))),
        }
    }
}

impl LockGuard {
    /// Frees the lock if it is still ours.
    pub async fn release(self) -> Result<(), JobError> {
        let res = self
            .lock
            .client
            .delete_item()
            .table_name(&self.lock.table)
            .key("pk", AttributeValue::S(self.lock.pk()))
            .key("sk", AttributeValue::S("lock".into()))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", AttributeValue::S(self.owner.clone()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // Our lease expired and someone else took it: nothing of ours to free.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(JobError::Retryable(format!(
                "job lock release (DynamoDB): {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ))),
        }
    }

    /// Drops the guard without releasing: what a killed run leaves behind (tests).
    pub fn forget(self) {}
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/// The state a job saved for `scope`, if any.
pub async fn load_checkpoint<T: DeserializeOwned>(
    pool: &PgPool,
    job: &str,
    scope: &str,
) -> Result<Option<T>, JobError> {
    let raw: Option<serde_json::Value> =
        sqlx::query_scalar!("SELECT state FROM job_checkpoints WHERE job = $1 AND scope = $2", job, scope)
            .fetch_optional(pool)
            .await?;
    match raw {
        None => Ok(None),
        // An unreadable checkpoint (an older format) means starting over, not failing forever.
        Some(v) => Ok(serde_json::from_value(v).ok()),
    }
}

/// Saves where the job got to for `scope`.
pub async fn save_checkpoint<T: Serialize>(pool: &PgPool, job: &str, scope: &str, state: &T) -> Result<(), JobError> {
    let v = serde_json::to_value(state).map_err(JobError::permanent)?;
    sqlx::query!(
        "INSERT INTO job_checkpoints (job, scope, state, updated_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (job, scope) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
        job,
        scope,
        v,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the checkpoint: the work it tracked is done.
pub async fn clear_checkpoint(pool: &PgPool, job: &str, scope: &str) -> Result<(), JobError> {
    sqlx::query!("DELETE FROM job_checkpoints WHERE job = $1 AND scope = $2", job, scope).execute(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_budget_stops_the_run() {
        let ctx = JobContext {
            job: "t".into(),
            run_id: 1,
            deadline: Deadline::after(Duration::from_secs(60)).with_max_batches(Some(2)),
            batches: Arc::new(AtomicU32::new(0)),
        };
        assert!(ctx.next_batch());
        assert!(ctx.next_batch());
        assert!(!ctx.next_batch());
        assert_eq!(ctx.batches(), 2);
    }

    #[test]
    fn a_passed_deadline_stops_the_run() {
        let ctx = JobContext {
            job: "t".into(),
            run_id: 1,
            deadline: Deadline::after(Duration::ZERO),
            batches: Arc::new(AtomicU32::new(0)),
        };
        assert!(!ctx.next_batch());
    }

    #[test]
    fn errors_say_whether_to_retry() {
        assert!(JobError::from(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!JobError::from(sqlx::Error::RowNotFound).is_retryable());
        // the same classification as the API's 503 (crate::db::is_unavailable)
        for code in ["08006", "53300", "57P01", "57P03", "57014", "40001", "40P01"] {
            assert!(JobError::from(crate::db::tests::server(code)).is_retryable(), "{code}");
        }
        assert!(!JobError::from(crate::db::tests::server("23505")).is_retryable());
        assert_eq!(JobError::permanent("x").context("restore").to_string(), "restore: x");
    }
}
