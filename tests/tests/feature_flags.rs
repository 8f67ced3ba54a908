//! Feature flags change behaviour without a deploy: an admin's `PATCH /api/admin/flags` through
//! the admin function reaches other functions' warm instances (each with its own Services and its
//! own flag cache, as separate Lambda instances are) within their cache TTL. The flags live in a
//! DynamoDB table of this test's own in the emulator, so no other test sees them.

use std::time::{Duration, Instant};

use axum::{Router, body::Body, http::Request};
use chrono::Utc;
use shared::{Services, auth::Role, users};
use test_support::{TestDatabase, TestResponse, fresh_table, send, services_with};

const TTL: Duration = Duration::from_secs(2);

async fn call(router: &Router, method: &str, uri: &str, token: Option<&str>, body: &str) -> TestResponse {
    let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    send(router, req.body(Body::from(body.to_string())).unwrap()).await
}

async fn account(services: &Services, db: &TestDatabase, name: &str, role: Role) -> String {
    let hash = shared::auth::password::hash(&shared::Secret::new("a long password")).unwrap();
    let user = users::create(&db.pool, name, None, &hash, role).await.unwrap().unwrap();
    services.token_keys().await.unwrap().issue(user.id, role, 0, Utc::now()).0
}

fn register_body(name: &str) -> String {
    format!(r#"{{"username":"{name}","password":"a long password for {name}"}}"#)
}

/// Calls `probe` until `done` holds of its answer; how long that took. Fails after `limit`.
async fn until<F, Fut>(limit: Duration, mut probe: F, done: impl Fn(&TestResponse) -> bool) -> (Duration, TestResponse)
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = TestResponse>,
{
    let started = Instant::now();
    let mut i = 0;
    loop {
        let res = probe(i).await;
        if done(&res) {
            return (started.elapsed(), res);
        }
        assert!(started.elapsed() < limit, "not applied within {limit:?}: last answer {} {}", res.status, res.text);
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_flag_changed_through_the_api_applies_to_other_instances_within_the_ttl() {
    let db = TestDatabase::new().await;
    let table = fresh_table().await;
    let instance = |db: &TestDatabase| services_with(db, &table, |c| c.flags_cache_ttl = TTL);
    let (admin_fn, auth_fn, predictions_fn) = (instance(&db), instance(&db), instance(&db));
    let admin_token = account(&admin_fn, &db, "boss", Role::Admin).await;
    let user_token = account(&admin_fn, &db, "pleb", Role::User).await;
    let admin = admin::router(admin_fn.clone());
    let auth = auth::router(auth_fn.clone());
    let predictions = predictions::router(predictions_fn.clone());

    // Defaults before any change, shown in the stats; the other instances warm their caches.
    let stats = call(&admin, "GET", "/api/admin/stats", Some(&admin_token), "").await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.body["flags"]["registration_open"], true);
    assert_eq!(stats.body["flags"]["version"], 0);
    let res = call(&auth, "POST", "/api/auth/register", None, &register_body("early_bird")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let prediction = r#"{"match_id":"match_999999","strategy_type":"ml_model"}"#;
    let res = call(&predictions, "POST", "/api/predictions", Some(&user_token), prediction).await;
    assert_eq!(res.status, 404, "enabled: the strategy runs and finds no match: {}", res.text);

    // Only an admin changes flags, with a body that names at least one known flag.
    let change = r#"{"registration_open":false,"strategies":{"ml_model":false}}"#;
    let res = call(&admin, "PATCH", "/api/admin/flags", Some(&user_token), change).await;
    assert_eq!(res.status, 403, "{}", res.text);
    let res = call(&admin, "PATCH", "/api/admin/flags", None, change).await;
    assert_eq!(res.status, 401, "{}", res.text);
    for bad in [
        "{}",
        r#"{"strategies":{}}"#,
        r#"{"strategies":{"elo":false}}"#,
        r#"{"maintenance":true}"#,
        r#"{"maintenance_mode":"yes"}"#,
        "",
    ] {
        let res = call(&admin, "PATCH", "/api/admin/flags", Some(&admin_token), bad).await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text);
    }

    let changed_at = Instant::now();
    let res = call(&admin, "PATCH", "/api/admin/flags", Some(&admin_token), change).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["registration_open"], false);
    assert_eq!(res.body["strategies"]["ml_model"], false);
    assert_eq!(res.body["strategies"]["statistical"], true, "flags the body does not name keep their value");
    assert_eq!(res.body["version"], 1);
    assert!(res.body["updated_by"].as_str().unwrap().starts_with("user_"), "{}", res.text);
    let stats = call(&admin, "GET", "/api/admin/stats", Some(&admin_token), "").await;
    assert_eq!(stats.body["flags"]["registration_open"], false, "the changing instance sees it at once");

    // The auth instance: registration closes within its TTL, with no deploy and no restart.
    let (waited, res) = until(
        TTL + Duration::from_secs(3),
        |i| {
            let auth = auth.clone();
            async move { call(&auth, "POST", "/api/auth/register", None, &register_body(&format!("late_{i}"))).await }
        },
        |res| res.status == 403,
    )
    .await;
    assert_eq!(res.body["error"]["message"], "registration is closed");
    assert!(changed_at.elapsed() <= TTL + Duration::from_secs(3), "took {waited:?}");
    // The predictions instance: the strategy is refused before any work, the others still run.
    let (_, res) = until(
        TTL + Duration::from_secs(3),
        |_| {
            let p = predictions.clone();
            let token = user_token.clone();
            async move { call(&p, "POST", "/api/predictions", Some(&token), prediction).await }
        },
        |res| res.status == 403,
    )
    .await;
    assert!(res.text.contains("ml_model") && res.text.contains("turned off"), "{}", res.text);
    let other = r#"{"match_id":"match_999999","strategy_type":"statistical"}"#;
    assert_eq!(call(&predictions, "POST", "/api/predictions", Some(&user_token), other).await.status, 404);

    // Maintenance: writes answer 503 with Retry-After; reads and sign-in go on; the flag's own
    // PATCH stays open so it can be turned off again.
    let res = call(&admin, "PATCH", "/api/admin/flags", Some(&admin_token), r#"{"maintenance_mode":true}"#).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["registration_open"], false, "an earlier change is kept");
    let (_, res) = until(
        TTL + Duration::from_secs(3),
        |_| {
            let p = predictions.clone();
            let token = user_token.clone();
            async move { call(&p, "POST", "/api/predictions", Some(&token), other).await }
        },
        |res| res.status == 503,
    )
    .await;
    assert_eq!(res.body["error"]["code"], "maintenance");
    assert_eq!(res.headers["retry-after"], "30");
    let res = call(&admin, "PATCH", "/api/admin/users/user_1", Some(&admin_token), r#"{"is_active":true}"#).await;
    assert_eq!(res.status, 503, "admin writes too: {}", res.text);
    let res = call(&predictions, "GET", "/api/predictions", Some(&user_token), "").await;
    assert_eq!(res.status, 200, "reads go on: {}", res.text);
    let login = r#"{"username":"early_bird","password":"a long password for early_bird"}"#;
    let res = call(&auth, "POST", "/api/auth/login", None, login).await;
    assert_eq!(res.status, 200, "sign-in goes on: {}", res.text);
    let res = call(
        &admin,
        "PATCH",
        "/api/admin/flags",
        Some(&admin_token),
        r#"{"maintenance_mode":false,"registration_open":true}"#,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["version"], 3);
    let (_, res) = until(
        TTL + Duration::from_secs(3),
        |i| {
            let auth = auth.clone();
            async move { call(&auth, "POST", "/api/auth/register", None, &register_body(&format!("back_{i}"))).await }
        },
        |res| res.status != 503 && res.status != 403,
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
}
