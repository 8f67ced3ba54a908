use shared::{Config, Services};

// One event at a time per instance: a current-thread runtime wakes no second worker per request
// (warm CPU per invocation measured against the multi-thread runtime: docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    shared::metrics::init("auth");
    let services = Services::new(Config::from_env()?);
    api_gateway::run(auth::lambda_router(services)).await
}
