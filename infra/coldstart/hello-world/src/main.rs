//! Baseline for cold-start comparisons: the least a lambda_http function can do.
use lambda_http::{Body, Error, Request, Response, run, service_fn};

async fn hello(_: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder().status(200).header("content-type", "application/json").body(r#"{"status":"ok"}"#.into())?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(hello)).await
}
