//! `probe`: synthetic checks of the public API and the cache cluster. The work is
//! [`shared::probe`]; this crate reads the input and the probe's configuration.

use lambda_runtime::{Diagnostic, LambdaEvent};
use shared::{
    Services,
    jobs::{self, JobError},
    probe::{self, ProbeConfig, ProbeInput, ProbeReport},
};

pub async fn handle(services: Services, event: LambdaEvent<serde_json::Value>) -> Result<ProbeReport, Diagnostic> {
    run(&services, event.payload).await.map_err(diagnostic)
}

pub async fn run(services: &Services, payload: serde_json::Value) -> Result<ProbeReport, JobError> {
    let input: ProbeInput = jobs::parse_input(payload)?;
    let config = ProbeConfig::from_env(services.config.environment)?;
    probe::run(services, &config, &input).await
}

/// The Lambda error: its type says whether retrying can help.
pub fn diagnostic(e: JobError) -> Diagnostic {
    Diagnostic { error_type: e.kind().into(), error_message: e.to_string() }
}
