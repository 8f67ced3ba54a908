use shared::{Config, Services};

// One event at a time per instance: a current-thread runtime wakes no second worker per request
// (warm CPU per invocation about 0.6x the multi-thread runtime's: docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    shared::metrics::init("predictions");
    let services = Services::new(Config::from_env()?);
    api_gateway::run(predictions::router(services)).await
}
