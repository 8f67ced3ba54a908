use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use migrate::{MigrateEvent, Migrator};
use shared::{Config, Services};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    shared::metrics::init("migrate");
    let services = Services::new(Config::from_env()?);
    let migrator = Arc::new(Migrator::new(services, std::env::var("FIRST_ADMIN_SECRET_ARN").ok()));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<MigrateEvent>| {
        let migrator = migrator.clone();
        // Boxed: the job's future is deep (migrations, SDK calls), too deep to nest unboxed.
        Box::pin(async move { migrator.handle(event.payload).await.map_err(lambda_runtime::Error::from) })
    }))
    .await
}
