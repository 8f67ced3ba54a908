//! The admin function against the real PostgreSQL: admin-only access, statistics over real rows,
//! the cursor-paginated user list and account changes.

use axum::{Router, body::Body, http::Request};
use chrono::{DateTime, Datelike, Utc};
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
    services.token_keys().await.unwrap().issue(id, role, 0, Utc::now()).0
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

/// `GET /api/admin/stats` with `Cache-Control: no-cache`: figures computed now, not stored ones.
async fn fresh_stats(router: &Router, token: &str) -> TestResponse {
    let req = Request::get("/api/admin/stats")
        .header("authorization", format!("Bearer {token}"))
        .header("cache-control", "no-cache")
        .body(Body::empty())
        .unwrap();
    send(router, req).await
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
    let finished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM matches WHERE status = 'FINISHED'").fetch_one(pool).await.unwrap();
    let all_matches: i64 = sqlx::query_scalar("SELECT count(*) FROM matches").fetch_one(pool).await.unwrap();
    // The first played match within the weekly series' window and the last one, in different
    // weeks: a home win and a draw; and another one moved back before the window.
    let played: Vec<(i64, DateTime<Utc>)> =
        sqlx::query_as("SELECT id, kickoff_at FROM matches WHERE status = 'FINISHED' ORDER BY kickoff_at, id")
            .fetch_all(pool)
            .await
            .unwrap();
    let window_start = Utc::now() - chrono::Duration::weeks(shared::admin::ACCURACY_WEEKS);
    let recent: Vec<_> = played.iter().filter(|(_, k)| *k > window_start + chrono::Duration::weeks(1)).collect();
    let ((home_win, home_kickoff), (draw, draw_kickoff)) = (*recent[0], *recent[recent.len() - 1]);
    assert_ne!(home_kickoff.iso_week(), draw_kickoff.iso_week());
    let old = recent[1].0;
    sqlx::query("UPDATE matches SET kickoff_at = $2 WHERE id = $1")
        .bind(old)
        .bind(window_start - chrono::Duration::weeks(4))
        .execute(pool)
        .await
        .unwrap();
    for (id, home, away) in [(home_win, 2, 0), (draw, 1, 1), (old, 3, 1)] {
        sqlx::query("UPDATE matches SET home_goals = $2, away_goals = $3 WHERE id = $1")
            .bind(id)
            .bind(home as i16)
            .bind(away as i16)
            .execute(pool)
            .await
            .unwrap();
    }
    let upcoming: i64 =
        sqlx::query_scalar("SELECT min(id) FROM matches WHERE status <> 'FINISHED'").fetch_one(pool).await.unwrap();
    // statistical v1: right about the home win, wrong about the draw; v2: wrong about the home
    // wins (one this season, one too old for the weekly series); ml_model: a match not played
    // yet, so nothing to settle.
    let predictions = [
        (home_win, "statistical", "v1", [0.5, 0.3, 0.2]),
        (draw, "statistical", "v1", [0.5, 0.3, 0.2]),
        (home_win, "statistical", "v2", [0.2, 0.3, 0.5]),
        (old, "statistical", "v2", [0.2, 0.3, 0.5]),
        (upcoming, "ml_model", "m1", [0.4, 0.3, 0.3]),
    ];
    for (match_id, strategy, version, [home, draw, away]) in predictions {
        sqlx::query(
            "INSERT INTO predictions (match_id, strategy_type, model_version, p_home, p_draw, p_away,
                 expected_goals_home, expected_goals_away, likely_home_goals, likely_away_goals, p_over_2_5, p_btts)
             VALUES ($1, $2, $3, $4, $5, $6, 1.5, 1.0, 1, 0, 0.5, 0.5)",
        )
        .bind(match_id)
        .bind(strategy)
        .bind(version)
        .bind(home)
        .bind(draw)
        .bind(away)
        .execute(pool)
        .await
        .unwrap();
    }
    // The settle job's own scoring.
    let batch = shared::settlement::settle_batch(pool, 0, 100).await.unwrap();
    assert_eq!(batch.inserted.len(), 4, "{batch:?}");
    sqlx::query(
        "INSERT INTO job_runs (job, started_at, finished_at, outcome) VALUES
         ('ingest', now() - interval '2 hours', now() - interval '2 hours', 'failed'),
         ('ingest', now() - interval '1 hour', now() - interval '1 hour', 'succeeded'),
         ('settle', now() - interval '30 minutes', NULL, 'running')",
    )
    .execute(pool)
    .await
    .unwrap();

    // Written straight to the database (no writer published a new data version): asked fresh.
    let res = fresh_stats(&s.router, &s.admin).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let b = &res.body;
    assert_eq!(b["users"]["total"], 4, "two demo users more: {b}");
    assert_eq!(b["matches"]["by"]["FINISHED"], finished);
    assert_eq!(b["matches"]["total"], all_matches);
    assert_eq!(b["predictions"], serde_json::json!({"total": 5, "by": {"statistical": 4, "ml_model": 1}}));

    // Home win [0.5, 0.3, 0.2]: RPS ((0.5-1)^2 + (0.8-1)^2)/2 = 0.145, Brier 0.25+0.09+0.04 = 0.38,
    // log loss -ln 0.5. Draw, same forecast: RPS (0.5^2 + 0.2^2)/2 = 0.145, Brier 0.25+0.49+0.04
    // = 0.78, log loss -ln 0.3. Home win [0.2, 0.3, 0.5]: RPS (0.8^2 + 0.5^2)/2 = 0.445, Brier
    // 0.64+0.09+0.25 = 0.98, log loss -ln 0.2.
    let (ll_home, ll_draw, ll_v2) = (-(0.5f64).ln(), -(0.3f64).ln(), -(0.2f64).ln());
    let stat = &b["accuracy"]["statistical"];
    let mean = |xs: [f64; 4]| xs.iter().sum::<f64>() / 4.0;
    assert_scores(
        stat,
        4,
        0.25,
        mean([0.145, 0.145, 0.445, 0.445]),
        mean([0.38, 0.78, 0.98, 0.98]),
        mean([ll_home, ll_draw, ll_v2, ll_v2]),
    );
    let models = stat["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{stat}");
    let (v1, v2) = (&models[0], &models[1]);
    assert_eq!((v1["model_version"].as_str(), v2["model_version"].as_str()), (Some("v1"), Some("v2")));
    assert_scores(v1, 2, 0.5, 0.145, 0.58, (ll_home + ll_draw) / 2.0);
    assert_scores(v2, 2, 0.0, 0.445, 0.98, ll_v2);
    assert!(v1["first_settled_at"].is_string() && v1["last_settled_at"].is_string());
    // Week by week (Monday of the kick-off's week), oldest first.
    let monday = |t: DateTime<Utc>| {
        let d = t.date_naive();
        (d - chrono::Duration::days(d.weekday().num_days_from_monday().into())).to_string()
    };
    let weekly = v1["weekly"].as_array().unwrap();
    assert_eq!(weekly.len(), 2, "{v1}");
    assert_eq!(weekly[0]["week"], monday(home_kickoff));
    assert_scores(&weekly[0], 1, 1.0, 0.145, 0.38, ll_home);
    assert_eq!(weekly[1]["week"], monday(draw_kickoff));
    assert_scores(&weekly[1], 1, 0.0, 0.145, 0.78, ll_draw);
    let weekly = v2["weekly"].as_array().unwrap();
    assert_eq!(weekly.len(), 1, "only the week within the window: {v2}");
    assert_eq!(weekly[0]["week"], monday(home_kickoff));
    assert_scores(&weekly[0], 1, 0.0, 0.445, 0.98, ll_v2);
    assert!(b["accuracy"].get("ml_model").is_none(), "no settled ml_model prediction: {b}");

    assert_eq!(b["jobs"]["ingest"]["outcome"], "succeeded", "the last run: {b}");
    assert_eq!(b["jobs"]["settle"]["outcome"], "running");
    assert!(b["jobs"]["settle"]["finished_at"].is_null());

    // The body is the shared type the OpenAPI document describes.
    let typed: shared::admin::AdminStats = serde_json::from_value(b.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), *b);
}

#[tokio::test]
async fn the_stats_are_kept_briefly_and_computed_again_when_asked_after_a_data_change_or_an_admin_change() {
    let s = stack().await;
    let stats = || call(&s.router, "GET", "/api/admin/stats", Some(&s.admin), None);
    let first = stats().await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["users"]["total"], 2);

    // Someone registers: the stored figures still answer, as of when they were computed...
    add_user(&s.db, "newcomer", Role::User).await;
    let stored = stats().await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    assert_eq!(stored.body["users"]["total"], 2, "{}", stored.text);
    assert_eq!(stored.body["generated_at"], first.body["generated_at"]);
    // ...to admins only: a stored answer still checks who asks.
    let refused = call(&s.router, "GET", "/api/admin/stats", Some(&s.user), None).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(call(&s.router, "GET", "/api/admin/stats", None, None).await.status, 401);

    // Asked for fresh figures: computed now, and stored for the next reader.
    let fresh = fresh_stats(&s.router, &s.admin).await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert_eq!(fresh.body["users"]["total"], 3);
    assert_eq!(stats().await.body["users"]["total"], 3);

    // A writer's published data change is seen at once.
    assert_eq!(fresh.body["matches"]["total"], 0);
    shared::demo::seed(&s.db.pool, shared::config::Environment::Local, Utc::now()).await.unwrap();
    test_support::bump_and_publish(&s.services, &s.db).await;
    let matches: i64 = sqlx::query_scalar("SELECT count(*) FROM matches").fetch_one(&s.db.pool).await.unwrap();
    assert!(matches > 0);
    let after_ingest = stats().await;
    assert_eq!(after_ingest.body["matches"]["total"], matches, "{}", after_ingest.text);

    // An admin's change of an account drops the stored figures.
    let users_now = after_ingest.body["users"].clone();
    let uri = format!("/api/admin/users/{}", s.user_id);
    let res = call(&s.router, "PATCH", &uri, Some(&s.admin), Some(r#"{"is_active":false}"#)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let after_change = stats().await;
    assert_eq!(after_change.body["users"]["total"], users_now["total"]);
    assert_eq!(
        after_change.body["users"]["active"],
        users_now["active"].as_i64().unwrap() - 1,
        "{}",
        after_change.text
    );
}

/// `settled`, `accuracy`, `mean_rps`, `mean_brier` and `mean_log_loss` of a JSON scores object.
#[track_caller]
fn assert_scores(v: &serde_json::Value, settled: i64, accuracy: f64, rps: f64, brier: f64, log_loss: f64) {
    assert_eq!(v["settled"], settled, "{v}");
    for (field, expected) in
        [("accuracy", accuracy), ("mean_rps", rps), ("mean_brier", brier), ("mean_log_loss", log_loss)]
    {
        let got = v[field].as_f64().unwrap_or_else(|| panic!("{field} missing: {v}"));
        assert!((got - expected).abs() < 1e-9, "{field}: {got} != {expected}: {v}");
    }
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

    // Reactivated and promoted: the deactivation ended the old token for good (its token version
    // was bumped); a token of the current version is an admin's, at once.
    let res = call(&s.router, "PATCH", &uri, Some(&s.admin), Some(r#"{"is_active":true,"role":"admin"}"#)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["role"], "admin");
    assert_eq!(me(s.user.clone()).await, 401);
    let version: i64 = sqlx::query_scalar("SELECT token_version FROM users WHERE id = $1")
        .bind(s.user_id.0)
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(version, 1);
    let fresh = s.services.token_keys().await.unwrap().issue(s.user_id, Role::User, version, Utc::now()).0;
    assert_eq!(me(fresh).await, 200, "the role comes from the account, not the token");
}

#[tokio::test]
async fn account_changes_are_validated_and_the_last_admin_is_kept() {
    let s = stack().await;
    let admin_uri = format!("/api/admin/users/{}", s.admin_id);
    let res = call(&s.router, "PATCH", &admin_uri, Some(&s.admin), Some(r#"{"role":"user"}"#)).await;
    assert_eq!(res.status, 409, "{}", res.text);
    let res = call(&s.router, "PATCH", &admin_uri, Some(&s.admin), Some(r#"{"is_active":false}"#)).await;
    assert_eq!(res.status, 409, "{}", res.text);
    // With a second admin, one still cannot demote or deactivate oneself.
    let res = call(
        &s.router,
        "PATCH",
        &format!("/api/admin/users/{}", s.user_id),
        Some(&s.admin),
        Some(r#"{"role":"admin"}"#),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text);
    for body in [r#"{"role":"user"}"#, r#"{"is_active":false}"#] {
        let res = call(&s.router, "PATCH", &admin_uri, Some(&s.admin), Some(body)).await;
        assert_eq!(res.status, 409, "{body}: {}", res.text);
        assert!(res.text.contains("their own account"), "{}", res.text);
    }
    let res = call(&s.router, "PATCH", &admin_uri, Some(&s.admin), Some(r#"{"role":"admin","is_active":true}"#)).await;
    assert_eq!(res.status, 200, "a change that keeps the admin an active admin: {}", res.text);
    let res = call(
        &s.router,
        "PATCH",
        &format!("/api/admin/users/{}", s.user_id),
        Some(&s.admin),
        Some(r#"{"role":"user"}"#),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text);

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
