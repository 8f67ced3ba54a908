//! `train`: the scheduled job that refits and retrains the models and publishes versioned
//! artifacts. The work is [`shared::training`]; this crate reads the input and the deadline.

use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent};
use shared::{
    Services,
    jobs::{self, Deadline, JobError, JobReport},
    training::{self, TrainInput},
};

/// Time kept back from the Lambda deadline: training stops between strategies after it.
pub const RESERVE: Duration = Duration::from_secs(60);

pub async fn handle(services: Services, event: LambdaEvent<serde_json::Value>) -> Result<JobReport, Diagnostic> {
    let deadline = Deadline::from_epoch_ms(event.context.deadline, RESERVE);
    run(&services, event.payload, deadline).await.map_err(diagnostic)
}

pub async fn run(services: &Services, payload: serde_json::Value, deadline: Deadline) -> Result<JobReport, JobError> {
    let input: TrainInput = jobs::parse_input(payload)?;
    Box::pin(training::run(services, &input, deadline)).await
}

/// The Lambda error: its type says whether retrying can help.
pub fn diagnostic(e: JobError) -> Diagnostic {
    Diagnostic { error_type: e.kind().into(), error_message: e.to_string() }
}
