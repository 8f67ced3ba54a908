use shared::{Config, Services};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    shared::metrics::init("auth");
    let services = Services::new(Config::from_env()?);
    api_gateway::run(auth::lambda_router(services)).await
}
