use shared::{Config, Services};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    shared::metrics::init("health");
    let services = Services::new(Config::from_env()?);
    api_gateway::run(health::router(services)).await
}
