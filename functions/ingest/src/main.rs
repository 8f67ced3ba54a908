// The job futures (sqlx, the AWS SDK, the lock and run record around the work) nest deeper than
// rustc's default layout query depth.
#![recursion_limit = "256"]

use shared::{Config, Services, ingest::IngestSettings};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    shared::metrics::init("ingest");
    let job = ingest::Job::new(Services::new(Config::from_env()?), IngestSettings::from_env()?);
    lambda_runtime::run(lambda_runtime::service_fn(|event| ingest::handle(&job, event))).await
}
