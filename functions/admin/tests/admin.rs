//! The admin function against the real PostgreSQL: admin-only access, statistics over real rows,
//! the cursor-paginated user list and account changes.

use axum::{Router, body::Body, http::Request};
use chrono::Utc;
use shared::{
    Services,
    auth::{Role, password},
    ids::UserId,
    users,
};
use test_support::{TestDatabase, TestResponse, send};

struct Stack {
    router: Router,
    services: Services,
    db: TestDatabase,
    admin: String,
    user: String,
    user_id: UserId,
    admin_id: UserId,
}

async fn token(services: &Services, id: UserId, role: Role) -> String {
    services.token_keys().await.unwrap().issue(id, role, Utc::now()).0
}

async fn add_user(db: &TestDatabase, name: &str, role: Role) -> UserId {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = HASH.get_or_init(|| password::hash(&shared::Secret::new("a long password")).unwrap());
    users::create(&db.pool, name, None, hash, role).await.unwrap().unwrap().id
}

async fn stack() -> Stack {
    let db = TestDatabase::new().await;
    let services = test_support::services(&db);
    let admin_id = add_user(&db, "boss", Role::Admin).await;
    let user_id = add_user(&db, "pleb", Role::User).await;
    let admin = token(&services, admin_id, Role::Admin).await;
    let user = token(&services, user_id, Role::User).await;
    Stack { router: admin::router(services.clone()), services, db, admin, user, user_id, admin_id }
}

async fn call(router: &Router, method: &str, uri: &str, token: Option<&str>, body: Option<&str>) -> TestResponse {
    let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    send(router, req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap()).await
}

#[tokio::test]
async fn admin_routes_are_401_without_a_token_and_403_for_a_user() {
    let s = stack().await;
    let routes = [
        ("GET", "/api/admin/stats".to_string(), None),
        ("GET", "/api/admin/users".to_string(), None),
        ("PATCH", format!("/api/admin/users/{}", s.user_id), Some(r#"{"role":"admin"}"#)),
    ];
    for (method, uri, body) in &routes {
        let res = call(&s.router, method, uri, None, *body).await;
        assert_eq!(res.status, 401, "{method} {uri}: {}", res.text);
        let res = call(&s.router, method, uri, Some(&s.user), *body).await;
        assert_eq!(res.status, 403, "{method} {uri}: {}", res.text);
        assert_eq!(res.body["error"]["code"], "forbidden");
    }
    // The user was not promoted by the refused PATCH.
    assert_eq!(users::get(&s.db.pool, s.user_id).await.unwrap().unwrap().role, Role::User);
    assert_eq!(call(&s.router, "GET", "/api/admin/stats", Some(&s.admin), None).await.status, 200);
}

#[tokio::test]
async fn stats_count_users_matches_predictions_accuracy_and_last_job_runs() {
    let s = stack().await;
    let res = call(&s.router, "GET", "/api/admin/stats", Some(&s.admin), None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["users"], serde_json::json!({"total": 2, "active": 2, "admins": 1}));
    assert_eq!(res.body["matches"]["total"], 0);
    assert_eq!(res.body["accuracy"], serde_json::json!({}));
    assert_eq!(res.body["jobs"], serde_json::json!({}));

    shared::demo::seed(&s.db.pool, shared::config::Environment::Local, Utc::now()).await.unwrap();
    let pool = &s.db.pool;
    let (finished, match_id): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM matches WHERE status = 'FINISHED'), (SELECT min(id) FROM matches WHERE status = 'FINISHED')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    for strategy in ["statistical", "statistical", "ml_model"] {
        sqlx::query(
            "INSERT INTO predictions (match_id, strategy_type, model_version, p_home, p_draw, p_away,
                 expected_goals_home, expected_goals_away, likely_home_goals, likely_away_goals, p_over_2_5, p_btts)
             VALUES ($1, $2, 'v1', 0.5, 0.3, 0.2, 1.5, 1.0, 1, 0, 0.5, 0.5)",
        )
        .bind(match_id)
        .bind(strategy)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO prediction_scores (prediction_id, match_id, strategy_type, model_version, outcome, rps, brier, log_loss, correct)
         SELECT id, match_id, strategy_type, model_version, 'home', 0.125, 0.38, 0.69, (id % 2 = 0) FROM predictions
         WHERE strategy_type = 'statistical'",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO job_runs (job, started_at, finished_at, outcome) VALUES
         ('ingest', now() - interval '2 hours', now() - interval '2 hours', 'failed'),
         ('ingest', now() - interval '1 hour', now() - interval '1 hour', 'succeeded'),
         ('settle', now() - interval '30 minutes', NULL, 'running')",
    )
    .execute(pool)
    .await
    .unwrap();

    let res = call(&s.router, "GET", "/api/admin/stats", Some(&s.admin), None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let b = &res.body;
    assert_eq!(b["users"]["total"], 4, "two demo users more: {b}");
    assert_eq!(b["matches"]["by"]["FINISHED"], finished);
    assert_eq!(b["matches"]["total"], 56);
    assert_eq!(b["predictions"], serde_json::json!({"total": 3, "by": {"statistical": 2, "ml_model": 1}}));
    assert_eq!(b["accuracy"]["statistical"]["settled"], 2);
    assert_eq!(b["accuracy"]["statistical"]["accuracy"], 0.5);
    assert_eq!(b["accuracy"]["statistical"]["mean_rps"], 0.125);
    assert!(b["accuracy"].get("ml_model").is_none(), "no settled ml_model prediction: {b}");
    assert_eq!(b["jobs"]["ingest"]["outcome"], "succeeded", "the last run: {b}");
    assert_eq!(b["jobs"]["settle"]["outcome"], "running");
    assert!(b["jobs"]["settle"]["finished_at"].is_null());
}

#[tokio::test]
async fn the_user_list_is_cursor_paginated() {
    let s = stack().await;
    for i in 0..5 {
        add_user(&s.db, &format!("member_{i}"), Role::User).await;
    }
    let mut seen = Vec::new();
    let mut uri = "/api/admin/users?limit=3".to_string();
    loop {
        let res = call(&s.router, "GET", &uri, Some(&s.admin), None).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let items = res.body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        for u in items {
            assert!(u.get("password_hash").is_none());
            seen.push(u["username"].as_str().unwrap().to_string());
        }
        match res.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/admin/users?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(&seen[..2], ["boss", "pleb"]);
    for (query, field) in
        [("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"), ("cursor=nope", "cursor")]
    {
        let res = call(&s.router, "GET", &format!("/api/admin/users?{query}"), Some(&s.admin), None).await;
        assert_eq!(res.status, 400, "{query}: {}", res.text);
        assert!(res.body["error"]["message"].as_str().unwrap().contains(field), "{query}: {}", res.text);
    }
}

#[tokio::test]
async fn deactivation_stops_tokens_at_the_next_request_and_revokes_refresh_tokens() {
    let s = stack().await;
    let me = |t: String| {
        let router = s.router.clone();
        async move { call(&router, "GET", "/api/admin/stats", Some(&t), None).await.status }
    };
    // The user's token works (for a user route it would be 200; here 403 proves it authenticated).
    assert_eq!(me(s.user.clone()).await, 403);
    sqlx::query(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) VALUES ($1, gen_random_uuid(), $2, now() + interval '7 days')",
    )
    .bind(s.user_id.0)
    .bind(vec![7u8; 32])
    .execute(&s.db.pool)
    .await
    .unwrap();

    let uri = format!("/api/admin/users/{}", s.user_id);
    let res = call(&s.router, "PATCH", &uri, Some(&s.admin), Some(r#"{"is_active":false}"#)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["is_active"], false);
    assert_eq!(me(s.user.clone()).await, 401);
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(s.user_id.0)
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(live, 0);

    // Reactivated and promoted: the same token is now an admin's, at once.
    let res = call(&s.router, "PATCH", &uri, Some(&s.admin), Some(r#"{"is_active":true,"role":"admin"}"#)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["role"], "admin");
    assert_eq!(me(s.user.clone()).await, 200);
    let _ = &s.services;
}

#[tokio::test]
async fn account_changes_are_validated_and_the_last_admin_is_kept() {
    let s = stack().await;
    let admin_uri = format!("/api/admin/users/{}", s.admin_id);
    let res = call(&s.router, "PATCH", &admin_uri, Some(&s.admin), Some(r#"{"role":"user"}"#)).await;
    assert_eq!(res.status, 409, "{}", res.text);
    let res = call(&s.router, "PATCH", &admin_uri, Some(&s.admin), Some(r#"{"is_active":false}"#)).await;
    assert_eq!(res.status, 409, "{}", res.text);

    let user_uri = format!("/api/admin/users/{}", s.user_id);
    let cases = [
        (user_uri.as_str(), r#"{"role":"root"}"#, 400, "role"),
        (user_uri.as_str(), r#"{"is_active":"no"}"#, 400, "is_active"),
        (user_uri.as_str(), r#"{"password":"x"}"#, 400, "password"),
        (user_uri.as_str(), r#"{}"#, 400, "role"),
        (user_uri.as_str(), "", 400, "empty"),
        ("/api/admin/users/7", r#"{"role":"admin"}"#, 400, "id"),
        ("/api/admin/users/match_7", r#"{"role":"admin"}"#, 400, "id"),
        ("/api/admin/users/user_999999", r#"{"role":"admin"}"#, 404, "no such user"),
    ];
    for (uri, body, status, words) in cases {
        let res = call(&s.router, "PATCH", uri, Some(&s.admin), Some(body)).await;
        assert_eq!(res.status, status, "{uri} {body}: {}", res.text);
        assert!(res.body["error"]["message"].as_str().unwrap().contains(words), "{uri} {body}: {}", res.text);
    }
}

#[tokio::test]
async fn the_sample_events_are_answered() {
    let s = stack().await;
    for name in ["admin-stats.json", "admin-users.json", "admin-users-patch.json"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (mut parts, body) = request.into_parts();
        // The placeholder token replaced by a real admin's.
        parts.headers.insert("authorization", format!("Bearer {}", s.admin).parse().unwrap());
        let res = send(&s.router, Request::from_parts(parts, Body::from(body.to_vec()))).await;
        assert!(res.status == 200 || res.status == 404, "{name}: {}", res.text);
    }
}

#[tokio::test]
async fn the_demo_users_log_in_and_only_test_admin_sees_the_stats() {
    let db = TestDatabase::new().await;
    shared::demo::seed(&db.pool, shared::config::Environment::Local, Utc::now()).await.unwrap();
    let services = test_support::services(&db);
    let router = admin::router(services.clone());
    for (username, expected) in [("test_user", 403), ("test_admin", 200)] {
        let pair =
            shared::auth::session::login(&services, username, shared::Secret::new("test_password"), "192.0.2.10")
                .await
                .unwrap();
        let res = call(&router, "GET", "/api/admin/stats", Some(&pair.access_token), None).await;
        assert_eq!(res.status, expected, "{username}: {}", res.text);
    }
}
