//! Helpers of the auth function's test binaries: a stack (fresh database, real Redis and the
//! DynamoDB emulator) and requests. Each binary uses some of them.
#![allow(dead_code)]

use axum::{Router, body::Body, http::Request};
use shared::{Config, Secret, Services, auth::TokenKeys, config::SecretSource};
use test_support::{TestDatabase, TestResponse, send};

pub const PASSWORD: &str = "correct horse battery";

pub struct Stack {
    pub router: Router,
    pub db: TestDatabase,
    pub config: Config,
}

pub async fn stack_with(change: impl FnOnce(&mut Config)) -> Stack {
    let db = TestDatabase::new().await;
    let mut config = test_support::config(&db.url, &test_support::redis_url());
    change(&mut config);
    let services = Services::with_pool(config.clone(), db.pool.clone());
    Stack { router: auth::router(services), db, config }
}

pub async fn stack() -> Stack {
    stack_with(|_| {}).await
}

pub fn random_name() -> String {
    format!("u_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub fn random_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", b[0], b[1], b[2])
}

pub async fn post(router: &Router, path: &str, body: &str, ip: &str) -> TestResponse {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .header("x-forwarded-for", ip)
        .body(Body::from(body.to_string()))
        .unwrap();
    send(router, req).await
}

pub async fn get_with(router: &Router, path: &str, authorization: Option<&str>) -> TestResponse {
    let mut req = Request::get(path);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    send(router, req.body(Body::empty()).unwrap()).await
}

pub async fn me(router: &Router, token: &str) -> TestResponse {
    get_with(router, "/api/auth/me", Some(&format!("Bearer {token}"))).await
}

pub async fn register(router: &Router, username: &str) -> TestResponse {
    let body =
        serde_json::json!({"username": username, "password": PASSWORD, "email": format!("{username}@example.com")});
    post(router, "/api/auth/register", &body.to_string(), &random_ip()).await
}

pub async fn login(router: &Router, username: &str, password: &str, ip: &str) -> TestResponse {
    post(router, "/api/auth/login", &serde_json::json!({"username": username, "password": password}).to_string(), ip)
        .await
}

pub fn refresh_body(token: &str) -> String {
    serde_json::json!({ "refresh_token": token }).to_string()
}

pub fn keys(config: &Config) -> (Secret, TokenKeys) {
    let SecretSource::Plain(key) = &config.jwt.signing_key else { panic!("tests use a plain key") };
    let keys = TokenKeys::new(key, &config.jwt.issuer, &config.jwt.audience).unwrap();
    (key.clone(), keys)
}
