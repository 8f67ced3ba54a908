//! The `ingest` job: on its schedule (or invoked by hand) it ingests fixtures and results from
//! football-data.org; given an `import` payload it imports a football-data.co.uk CSV from S3.
//! Thin glue around `shared::ingest` and `shared::import`.
//!
//! Input (every field optional; EventBridge's scheduled event, whose fields are ignored, runs the
//! default ingestion):
//!
//! ```json
//! {"competitions": ["PL"], "season": 2024, "dateFrom": "2024-08-01", "dateTo": "2024-08-31"}
//! {"import": {"bucket": "...", "key": "imports/E0_2324.csv", "competition": "PL"}}
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use shared::{
    Services,
    import::{self, ImportReport, S3Import},
    ingest::{self, IngestError, IngestReport, IngestRequest, IngestSettings},
};
use tokio::time::Instant;

/// The job's typed input.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct JobInput {
    /// Import this S3 object instead of calling football-data.org.
    #[serde(default)]
    pub import: Option<S3Import>,
    #[serde(flatten)]
    pub ingest: IngestRequest,
}

/// What a run answers (and logs).
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobOutput {
    Ingest(IngestReport),
    Import(ImportReport),
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Bad input: retrying the same event cannot help.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A dependency (database, S3, Secrets Manager) failed: the invocation may be retried.
    #[error("dependency unavailable: {0}")]
    Unavailable(String),
}

impl From<IngestError> for JobError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid(e) => JobError::Invalid(e.to_string()),
            other => JobError::Unavailable(other.to_string()),
        }
    }
}

impl From<import::ImportError> for JobError {
    fn from(e: import::ImportError) -> Self {
        if e.is_retryable() { JobError::Unavailable(e.to_string()) } else { JobError::Invalid(e.to_string()) }
    }
}

impl From<JobError> for lambda_runtime::Diagnostic {
    fn from(e: JobError) -> Self {
        let error_type = match e {
            JobError::Invalid(_) => "InvalidInput",
            JobError::Unavailable(_) => "DependencyUnavailable",
        };
        lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// The services and settings of a warm function.
pub struct Job {
    pub services: Services,
    pub settings: IngestSettings,
}

impl Job {
    pub fn new(services: Services, settings: IngestSettings) -> Self {
        Self { services, settings }
    }
}

/// The Lambda deadline (milliseconds since the epoch) as an `Instant`.
pub fn deadline_of(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

pub async fn handler(job: &Job, event: LambdaEvent<JobInput>) -> Result<JobOutput, JobError> {
    let deadline = deadline_of(event.context.deadline);
    Box::pin(run(job, event.payload, deadline)).await
}

/// One invocation.
pub async fn run(job: &Job, input: JobInput, deadline: Instant) -> Result<JobOutput, JobError> {
    let pool = job.services.db.pool().await.map_err(|e| JobError::Unavailable(e.to_string()))?;
    if let Some(object) = input.import {
        let s3 = job.services.aws.s3().await;
        let report = Box::pin(import::import_s3(pool, s3, &object)).await?;
        tracing::info!(
            matches_changed = report.matches.changed(),
            odds_changed = report.odds.changed(),
            elapsed_ms = report.elapsed_ms,
            "import done"
        );
        return Ok(JobOutput::Import(report));
    }
    let client = ingest::client(&job.settings, &job.services.secrets).await?;
    // Boxed: the ingestion's future is deep, and the runtime's own nesting adds to it.
    let report = Box::pin(ingest::run(
        pool,
        &client,
        &input.ingest,
        &job.settings.default_competitions,
        deadline,
        chrono::Utc::now(),
    ))
    .await?;
    tracing::info!(
        outcome = report.outcome,
        matches_changed = report.matches.changed(),
        steps_left = report.steps_left,
        "ingest done"
    );
    Ok(JobOutput::Ingest(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_parse() {
        let i: JobInput = serde_json::from_str(r#"{"competitions":["PL"],"season":2024,"dateFrom":"2024-08-01"}"#)
            .expect("ingest input");
        assert_eq!(i.ingest.season, Some(2024));
        assert!(i.import.is_none());
        let i: JobInput = serde_json::from_str(r#"{"import":{"bucket":"b","key":"imports/x.csv","competition":"PL"}}"#)
            .expect("import");
        assert_eq!(i.import.map(|o| o.key), Some("imports/x.csv".to_string()));
        // EventBridge's scheduled event: its fields are ignored, the default run happens.
        let i: JobInput = serde_json::from_str(
            r#"{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","time":"2024-08-01T00:00:00Z","detail":{}}"#,
        )
        .expect("scheduled event");
        assert_eq!(i, JobInput::default());
        assert!(serde_json::from_str::<JobInput>(r#"{"season":"soon"}"#).is_err());
    }
}
