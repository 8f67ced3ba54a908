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
//!
//! Like settle and train, it answers a [`JobReport`] (its `counts` are the ingestion's or the
//! import's report) and fails with a `Retryable` or `Permanent` error. An ingestion that finds
//! another one running answers outcome `skipped` and does nothing.

use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use shared::{
    Services,
    import::{self, S3Import},
    ingest::{self, IngestRequest, IngestSettings},
    jobs::{self, Deadline, JobError, JobReport, Outcome},
};

/// Time kept back from the Lambda deadline for the step in flight and the run record (the
/// client keeps its own safety margin inside what is left).
pub const RESERVE: Duration = Duration::from_secs(20);

/// The job's typed input.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct JobInput {
    /// Import this S3 object instead of calling football-data.org.
    #[serde(default)]
    pub import: Option<S3Import>,
    #[serde(flatten)]
    pub ingest: IngestRequest,
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

pub async fn handle(job: &Job, event: LambdaEvent<serde_json::Value>) -> Result<JobReport, Diagnostic> {
    let deadline = Deadline::from_epoch_ms(event.context.deadline, RESERVE);
    tracing::info!(
        deadline_ms = event.context.deadline,
        remaining_ms = deadline.remaining().as_millis() as u64,
        "ingest invoked"
    );
    let input: JobInput = jobs::parse_input(event.payload).map_err(diagnostic)?;
    // Boxed: the ingestion's future is deep, and the runtime's own nesting adds to it.
    Box::pin(run(job, input, deadline)).await.map_err(diagnostic)
}

/// One invocation: the `ingest` job (under its lock, see [`ingest::run`]), or the import of an
/// S3 object (recorded as an `import` run).
pub async fn run(job: &Job, input: JobInput, deadline: Deadline) -> Result<JobReport, JobError> {
    if let Some(object) = input.import {
        return Box::pin(import_s3(&job.services, &object)).await;
    }
    let client = ingest::client(&job.settings, &job.services.secrets).await?;
    Box::pin(ingest::run(
        &job.services,
        &client,
        &input.ingest,
        &job.settings.default_competitions,
        deadline,
        chrono::Utc::now(),
    ))
    .await
}

async fn import_s3(services: &Services, object: &S3Import) -> Result<JobReport, JobError> {
    let pool = services.db.pool().await?;
    let s3 = services.aws.s3().await;
    let imported = Box::pin(import::import_s3(pool, s3, object)).await;
    // After the import's commit (or a failure, whatever it committed): the catalog's readers see
    // the new data version at once (within 5 s if Redis cannot be written).
    shared::catalog::publish_data_version(services).await;
    let report = imported.map_err(|e| {
        if e.is_retryable() { JobError::retryable(e) } else { JobError::Permanent(format!("invalid input: {e}")) }
    })?;
    tracing::info!(
        matches_changed = report.matches.changed(),
        odds_changed = report.odds.changed(),
        elapsed_ms = report.elapsed_ms,
        "import done"
    );
    Ok(JobReport {
        job: import::JOB.into(),
        run_id: Some(report.run_id),
        outcome: Outcome::Succeeded,
        counts: serde_json::to_value(&report).map_err(JobError::permanent)?,
        error: None,
        duration_ms: report.elapsed_ms,
    })
}

/// The Lambda error: its type says whether retrying can help.
pub fn diagnostic(e: JobError) -> Diagnostic {
    Diagnostic { error_type: e.kind().into(), error_message: e.to_string() }
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
        let err = jobs::parse_input::<JobInput>(serde_json::json!({"season": "soon"})).unwrap_err();
        // Permanent; `flatten` hides the field's name from the error's path.
        assert!(!err.is_retryable() && err.to_string().contains("expected i32"), "{err}");
    }
}
