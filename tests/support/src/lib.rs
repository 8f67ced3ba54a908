//! Test helpers. Everything here talks to real services: the PostgreSQL and Redis of this machine
//! (or those named by `TEST_DATABASE_URL` / `TEST_REDIS_URL`) and the AWS emulator named by
//! `AWS_ENDPOINT_URL` (started by `make test` / `.ci/run`).

pub mod proxy;
pub mod scram;

use axum::{Router, body::Body, http::Request};
use http_body_util::BodyExt;
use shared::{Config, Services};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tower::ServiceExt;

/// The server that test databases are created on.
pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A database of its own for one test, with every migration applied.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let admin = admin_database_url();
        let name = format!("fp_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.expect("PostgreSQL for tests is not reachable");
        conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await.expect("create test database");
        conn.close().await.ok();
        let url = replace_database(&admin, &name);
        let pool = PgPool::connect(&url).await.expect("connect to the test database");
        shared::db::MIGRATOR.run(&pool).await.expect("migrations apply");
        Self { name, url, pool }
    }
}

/// `url` with its database name replaced.
pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// The configuration of a local function, pointing at `database_url` and `redis_url`.
pub fn config(database_url: &str, redis_url: &str) -> Config {
    let vars = [
        ("ENVIRONMENT", "local".to_string()),
        ("DATABASE_URL", database_url.to_string()),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "800".to_string()),
        ("REDIS_URL", redis_url.to_string()),
        ("TABLE_NAME", std::env::var("TABLE_NAME").unwrap_or_else(|_| "football-prediction-test".into())),
        ("BACKUP_BUCKET", std::env::var("BACKUP_BUCKET").unwrap_or_else(|_| "football-prediction-test".into())),
        ("JWT_SECRET", "test-signing-key-test-signing-key-0123456789".to_string()),
        ("SERVICE_VERSION", "test".to_string()),
    ];
    Config::from_lookup(|k| vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone())).expect("test config")
}

/// Services for a test database and the test Redis.
pub fn services(db: &TestDatabase) -> Services {
    Services::with_pool(config(&db.url, &redis_url()), db.pool.clone())
}

/// A DynamoDB table of its own in the emulator (the key schema of the service's table), for a
/// test that writes items every other test would see, such as the feature flags.
pub async fn fresh_table() -> String {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let name = format!("fp-test-{}", uuid::Uuid::new_v4().simple());
    let aws = shared::aws::AwsClients::new();
    let attribute = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().expect("key");
    aws.dynamodb()
        .await
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .expect("create a DynamoDB table in the emulator (AWS_ENDPOINT_URL)");
    name
}

/// Services like [`services`], on their own DynamoDB table, with `adjust` applied to the config.
pub fn services_with(db: &TestDatabase, table: &str, adjust: impl FnOnce(&mut Config)) -> Services {
    let mut config = config(&db.url, &redis_url());
    config.aws.table_name = table.to_string();
    adjust(&mut config);
    Services::with_pool(config, db.pool.clone())
}

/// A response, read whole.
pub struct TestResponse {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: serde_json::Value,
    pub text: String,
}

/// Sends one request through a router, as API Gateway would hand it to the function.
pub async fn send(router: &Router, request: Request<Body>) -> TestResponse {
    let response = router.clone().oneshot(request).await.expect("router is infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    TestResponse { status, headers, body, text }
}

pub async fn get(router: &Router, uri: &str) -> TestResponse {
    send(router, Request::get(uri).body(Body::empty()).expect("request")).await
}

/// What a writer (ingestion, import) does after changing data: bump the data version of every
/// competition in a transaction, commit, then publish the version to Redis.
pub async fn bump_and_publish(services: &Services, db: &TestDatabase) {
    let mut tx = db.pool.begin().await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM competitions").fetch_all(&mut *tx).await.unwrap();
    for id in ids {
        shared::ingest::store::bump_data_version(&mut tx, id).await.unwrap();
    }
    tx.commit().await.unwrap();
    shared::catalog::publish_data_version(services).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(replace_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            replace_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
