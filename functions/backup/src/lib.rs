//! `backup`: the scheduled backup (`{}`), the restore (`{"mode":"restore","backup_id":...}`) and
//! the restore drill (`{"mode":"verify"}`). The work is [`shared::backup`].

use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent};
use shared::{
    Services,
    backup::{self, BackupInput},
    jobs::{self, Deadline, JobError, JobReport},
};

/// Time kept back from the Lambda deadline.
pub const RESERVE: Duration = Duration::from_secs(30);

pub async fn handle(services: Services, event: LambdaEvent<serde_json::Value>) -> Result<JobReport, Diagnostic> {
    let deadline = Deadline::from_epoch_ms(event.context.deadline, RESERVE);
    run(&services, event.payload, deadline).await.map_err(diagnostic)
}

pub async fn run(services: &Services, payload: serde_json::Value, deadline: Deadline) -> Result<JobReport, JobError> {
    let input: BackupInput = jobs::parse_input(payload)?;
    backup::run(services, &input, deadline).await
}

/// The Lambda error: its type says whether retrying can help.
pub fn diagnostic(e: JobError) -> Diagnostic {
    Diagnostic { error_type: e.kind().into(), error_message: e.to_string() }
}
