//! `settle`: the scheduled job that scores the predictions of finished matches. The work is
//! [`shared::settlement`]; this crate reads the input and the Lambda deadline and maps errors.

use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent};
use shared::{
    Services,
    jobs::{self, Deadline, JobError, JobReport},
    settlement::{self, SettleInput},
};

/// Time kept back from the Lambda deadline for the batch in flight and the run record.
pub const RESERVE: Duration = Duration::from_secs(20);

pub async fn handle(services: Services, event: LambdaEvent<serde_json::Value>) -> Result<JobReport, Diagnostic> {
    let deadline = Deadline::from_epoch_ms(event.context.deadline, RESERVE);
    tracing::info!(
        deadline_ms = event.context.deadline,
        remaining_ms = deadline.remaining().as_millis() as u64,
        "settle invoked"
    );
    run(&services, event.payload, deadline).await.map_err(diagnostic)
}

pub async fn run(services: &Services, payload: serde_json::Value, deadline: Deadline) -> Result<JobReport, JobError> {
    let input: SettleInput = jobs::parse_input(payload)?;
    settlement::run(services, &input, deadline).await
}

/// The Lambda error: its type says whether retrying can help.
pub fn diagnostic(e: JobError) -> Diagnostic {
    Diagnostic { error_type: e.kind().into(), error_message: e.to_string() }
}
