//! The auth function against the real PostgreSQL, Redis and the DynamoDB emulator (the throttle
//! table of `TABLE_NAME`). Usernames and source addresses are random per test: the DynamoDB table
//! is shared by every test and every run.

mod common;

use std::time::{Duration, Instant};

use axum::{body::Body, http::Request};
use chrono::Utc;
use common::*;
use shared::{
    Secret, Services,
    auth::{Role, TokenKeys},
    ids::UserId,
};
use test_support::{TestDatabase, send};

#[tokio::test]
async fn register_login_me_refresh_with_rotation_reuse_detection_and_logout() {
    let s = stack().await;
    let name = random_name();

    let res = register(&s.router, &name).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert!(res.body["id"].as_str().unwrap().starts_with("user_"));
    assert_eq!(res.body["username"], name);
    assert_eq!(res.body["role"], "user");
    assert_eq!(res.body["is_active"], true);
    assert!(!res.text.contains("argon2") && !res.text.contains("password"), "{}", res.text);
    assert_eq!(register(&s.router, &name).await.status, 409);

    let ip = random_ip();
    let res = login(&s.router, &name, PASSWORD, &ip).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["token_type"], "bearer");
    assert_eq!(res.body["expires_in"], 1800);
    assert_eq!(res.headers["cache-control"], "no-store");
    let access1 = res.body["access_token"].as_str().unwrap().to_string();
    let refresh1 = res.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(refresh1.len(), 43);

    let res = me(&s.router, &access1).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["username"], name);
    assert!(res.body["last_login_at"].is_string());

    // Only the hash of a refresh token is stored.
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT token_hash FROM refresh_tokens").fetch_all(&s.db.pool).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], refresh1.as_bytes());

    // Rotation: a new pair, and the old refresh token is spent.
    let res = post(&s.router, "/api/auth/refresh", &refresh_body(&refresh1), &ip).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let access2 = res.body["access_token"].as_str().unwrap().to_string();
    let refresh2 = res.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh1);
    assert_eq!(me(&s.router, &access2).await.status, 200);

    // Reuse of the rotated token: 401, and the whole family (refresh2 too) is revoked.
    let res = post(&s.router, "/api/auth/refresh", &refresh_body(&refresh1), &ip).await;
    assert_eq!(res.status, 401, "{}", res.text);
    let res = post(&s.router, "/api/auth/refresh", &refresh_body(&refresh2), &ip).await;
    assert_eq!(res.status, 401, "{}", res.text);
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(live, 0);

    // Logout ends a session; its refresh token no longer works; logging out twice is fine.
    let refresh3 = login(&s.router, &name, PASSWORD, &ip).await.body["refresh_token"].as_str().unwrap().to_string();
    let res = post(&s.router, "/api/auth/logout", &refresh_body(&refresh3), &ip).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(post(&s.router, "/api/auth/refresh", &refresh_body(&refresh3), &ip).await.status, 401);
    assert_eq!(post(&s.router, "/api/auth/logout", &refresh_body(&refresh3), &ip).await.status, 204);
    // An unknown or malformed refresh token is a 401.
    let unknown = "A".repeat(43);
    assert_eq!(post(&s.router, "/api/auth/refresh", &refresh_body(&unknown), &ip).await.status, 401);
    assert_eq!(post(&s.router, "/api/auth/logout", &refresh_body("nope"), &ip).await.status, 401);
}

#[tokio::test]
async fn every_bad_token_is_a_401() {
    let s = stack().await;
    let name = random_name();
    let user_id = UserId::parse(register(&s.router, &name).await.body["id"].as_str().unwrap()).unwrap();
    let (key, keys) = keys(&s.config);
    let (good, _) = keys.issue(user_id, Role::User, 0, Utc::now());
    assert_eq!(me(&s.router, &good).await.status, 200);

    let other_key = TokenKeys::new(
        &Secret::new("another-key-another-key-another-key-000"),
        &s.config.jwt.issuer,
        &s.config.jwt.audience,
    )
    .unwrap();
    let (wrong_signature, _) = other_key.issue(user_id, Role::User, 0, Utc::now());
    let payload = good.split('.').nth(1).unwrap();
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let (expired, _) = keys.issue(user_id, Role::User, 0, Utc::now() - chrono::Duration::hours(2));
    let (wrong_aud, _) =
        TokenKeys::new(&key, &s.config.jwt.issuer, "someone-else").unwrap().issue(user_id, Role::User, 0, Utc::now());
    let (wrong_iss, _) =
        TokenKeys::new(&key, "someone-else", &s.config.jwt.audience).unwrap().issue(user_id, Role::User, 0, Utc::now());
    let (unknown_user, _) = keys.issue(UserId(999_999), Role::Admin, 0, Utc::now());

    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty bearer", Some("Bearer ".into())),
        ("no scheme", Some(good.clone())),
        ("basic", Some("Basic dXNlcjpwYXNz".into())),
        ("garbage", Some("Bearer not.a.token".into())),
        ("wrong signature", Some(format!("Bearer {wrong_signature}"))),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        ("expired", Some(format!("Bearer {expired}"))),
        ("wrong audience", Some(format!("Bearer {wrong_aud}"))),
        ("wrong issuer", Some(format!("Bearer {wrong_iss}"))),
        ("deleted user", Some(format!("Bearer {unknown_user}"))),
    ];
    for (what, header) in cases {
        let res = get_with(&s.router, "/api/auth/me", header.as_deref()).await;
        assert_eq!(res.status, 401, "{what}: {}", res.text);
        assert_eq!(res.body["error"]["code"], "unauthorized", "{what}");
    }
    // A header that is not valid UTF-8 / visible ASCII is a 401 too, never a panic.
    let req = Request::get("/api/auth/me")
        .header("authorization", axum::http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap())
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&s.router, req).await.status, 401);

    // A deactivated account's token stops working at the next request (the change is published
    // to the cache the request reads, as the admin function does).
    let services = Services::with_pool(s.config.clone(), s.db.pool.clone());
    let change = shared::users::UserChange { role: None, is_active: Some(false) };
    shared::users::update(&s.db.pool, UserId(0), user_id, change).await.unwrap();
    services.publish_account_state(user_id).await;
    let res = me(&s.router, &good).await;
    assert_eq!(res.status, 401, "{}", res.text);
    // And it cannot log in: the same answer as a wrong password.
    let res = login(&s.router, &name, PASSWORD, &random_ip()).await;
    assert_eq!(res.status, 401, "{}", res.text);
    assert_eq!(res.body["error"]["message"], "invalid username or password");
}

#[tokio::test]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer_in_about_the_same_time() {
    let s = stack().await;
    let name = random_name();
    register(&s.router, &name).await;
    let (mut unknown_total, mut wrong_total) = (Duration::ZERO, Duration::ZERO);
    let mut answers = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let a = login(&s.router, &random_name(), "some wrong password", &random_ip()).await;
        unknown_total += started.elapsed();
        let started = Instant::now();
        let b = login(&s.router, &name, "some wrong password", &random_ip()).await;
        wrong_total += started.elapsed();
        answers.push((a.status, a.body["error"]["message"].clone(), b.status, b.body["error"]["message"].clone()));
    }
    for (sa, ma, sb, mb) in answers {
        assert_eq!((sa, &ma), (sb, &mb));
        assert_eq!(sa, 401);
    }
    // Both paths run one argon2id verification; neither may be much faster.
    let ratio = unknown_total.as_secs_f64() / wrong_total.as_secs_f64();
    assert!((0.5..2.0).contains(&ratio), "unknown {unknown_total:?} vs wrong password {wrong_total:?}");
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after_even_for_the_right_password() {
    let s = stack().await;
    let name = random_name();
    register(&s.router, &name).await;

    let ip = random_ip();
    for i in 0..5 {
        let res = login(&s.router, &name, "wrong password!", &ip).await;
        assert_eq!(res.status, 401, "attempt {i}: {}", res.text);
    }
    let res = login(&s.router, &name, "wrong password!", &ip).await;
    assert_eq!(res.status, 429, "{}", res.text);
    assert_eq!(res.body["error"]["code"], "too_many_requests");
    let retry: u64 = res.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // The right password is refused too from that address while the pair is throttled...
    let res = login(&s.router, &name, PASSWORD, &ip).await;
    assert_eq!(res.status, 429, "{}", res.text);
    assert!(res.headers.contains_key("retry-after"));
    // ...but not from another address: the guesser cannot lock the owner out.
    let res = login(&s.router, &name, PASSWORD, &random_ip()).await;
    assert_eq!(res.status, 200, "{}", res.text);
}

/// Statuses of `n` logins sent at once.
async fn concurrent_logins(
    router: &axum::Router,
    n: usize,
    name: &str,
    password: &str,
    ip: impl Fn(usize) -> String,
) -> Vec<u16> {
    let calls = (0..n).map(|i| {
        let (router, name, password, ip) = (router.clone(), name.to_string(), password.to_string(), ip(i));
        tokio::spawn(async move { login(&router, &name, &password, &ip).await.status })
    });
    let mut statuses = Vec::new();
    for c in calls.collect::<Vec<_>>() {
        statuses.push(c.await.unwrap());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_wrong_logins_get_at_most_five_401s() {
    let s = stack().await;
    let name = random_name();
    register(&s.router, &name).await;
    let ip = random_ip();
    let statuses = concurrent_logins(&s.router, 20, &name, "wrong password!", |_| ip.clone()).await;
    println!(
        "20 concurrent wrong logins, one source: {} x 401, {} x 429",
        count(&statuses, 401),
        count(&statuses, 429)
    );
    // At most the limit; a reservation that keeps losing races is refused rather than let through.
    assert!((1..=5).contains(&count(&statuses, 401)), "{statuses:?}");
    assert_eq!(count(&statuses, 401) + count(&statuses, 429), 20, "{statuses:?}");
    // A fresh username that does not exist is counted the same way.
    let statuses = concurrent_logins(&s.router, 20, &random_name(), "wrong password!", |_| ip.clone()).await;
    assert!(count(&statuses, 401) <= 5, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_from_many_sources_are_paced_per_account_not_blocked() {
    let s = stack_with(|c| {
        c.auth.login_account_budget = 5;
        c.auth.login_account_backoff = Duration::from_secs(2);
    })
    .await;
    let name = random_name();
    register(&s.router, &name).await;
    let statuses = concurrent_logins(&s.router, 20, &name, "wrong password!", |_| random_ip()).await;
    // The budget, plus at most the one paced slot.
    let failures = count(&statuses, 401);
    println!("20 concurrent wrong logins, 20 sources, budget 5: {failures} x 401, {} x 429", count(&statuses, 429));
    assert!((1..=6).contains(&failures), "{statuses:?}");
    assert_eq!(failures + count(&statuses, 429), 20, "{statuses:?}");
    let res = login(&s.router, &name, PASSWORD, &random_ip()).await;
    if res.status == 429 {
        let retry: u64 = res.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry <= 2, "paced, not blocked: retry after {retry}");
        tokio::time::sleep(Duration::from_secs(retry)).await;
        assert_eq!(login(&s.router, &name, PASSWORD, &random_ip()).await.status, 200);
    } else {
        assert_eq!(res.status, 200, "{}", res.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_still_logs_in_from_a_second_source_while_the_first_is_hammered() {
    let s = stack().await;
    let name = random_name();
    register(&s.router, &name).await;
    sqlx::query("UPDATE users SET role = 'admin' WHERE username = $1").bind(&name).execute(&s.db.pool).await.unwrap();
    let attacker = random_ip();
    let hammer = {
        let (router, name, attacker) = (s.router.clone(), name.clone(), attacker.clone());
        tokio::spawn(
            async move { concurrent_logins(&router, 40, &name, "guess-guess-guess", |_| attacker.clone()).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let res = login(&s.router, &name, PASSWORD, &random_ip()).await;
    assert_eq!(res.status, 200, "the admin from elsewhere: {}", res.text);
    let statuses = hammer.await.unwrap();
    assert!(count(&statuses, 401) <= 5, "{statuses:?}");
    // The attacker's address is refused even with the right password; the admin's is not.
    assert_eq!(login(&s.router, &name, PASSWORD, &attacker).await.status, 429);
    assert_eq!(login(&s.router, &name, PASSWORD, &random_ip()).await.status, 200);
}

#[tokio::test]
async fn logout_ends_the_access_token_at_once() {
    let s = stack().await;
    let name = random_name();
    register(&s.router, &name).await;
    let res = login(&s.router, &name, PASSWORD, &random_ip()).await;
    let access = res.body["access_token"].as_str().unwrap().to_string();
    let refresh = res.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(me(&s.router, &access).await.status, 200);
    assert_eq!(post(&s.router, "/api/auth/logout", &refresh_body(&refresh), &random_ip()).await.status, 204);
    let res = me(&s.router, &access).await;
    assert_eq!(res.status, 401, "{}", res.text);
    // A new login works, and its token is not the old one's version.
    let res = login(&s.router, &name, PASSWORD, &random_ip()).await;
    assert_eq!(me(&s.router, res.body["access_token"].as_str().unwrap()).await.status, 200);
}

/// Is any of these tokens still good? (a refresh token that refreshes, an access token that reads
/// `/api/auth/me`)
async fn live_tokens(router: &axum::Router, access: &[String], refresh: &[String]) -> Vec<String> {
    let mut live = Vec::new();
    for a in access {
        if me(router, a).await.status == 200 {
            live.push(format!("access {}", &a[a.len() - 8..]));
        }
    }
    // Newest first: presenting an older, rotated one would revoke the family and hide a live one.
    for r in refresh.iter().rev() {
        if post(router, "/api/auth/refresh", &refresh_body(r), "10.0.0.1").await.status == 200 {
            live.push(format!("refresh {}", &r[..8]));
        }
    }
    live
}

fn rounds() -> usize {
    std::env::var("RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_racing_logout_never_leaves_a_live_token() {
    let s = stack().await;
    let name = random_name();
    register(&s.router, &name).await;
    let (mut refreshed, mut survived) = (0, 0);
    for round in 0..rounds() {
        let res = login(&s.router, &name, PASSWORD, &random_ip()).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let access = res.body["access_token"].as_str().unwrap().to_string();
        let refresh = res.body["refresh_token"].as_str().unwrap().to_string();
        let (r, l) = tokio::join!(
            tokio::spawn({
                let (router, body) = (s.router.clone(), refresh_body(&refresh));
                async move { post(&router, "/api/auth/refresh", &body, "10.0.0.1").await }
            }),
            tokio::spawn({
                let (router, body) = (s.router.clone(), refresh_body(&refresh));
                async move { post(&router, "/api/auth/logout", &body, "10.0.0.1").await }
            }),
        );
        let (r, l) = (r.unwrap(), l.unwrap());
        assert_eq!(l.status, 204, "round {round}: {}", l.text);
        let mut access_tokens = vec![access];
        let mut refresh_tokens = vec![refresh];
        if r.status == 200 {
            refreshed += 1;
            access_tokens.push(r.body["access_token"].as_str().unwrap().to_string());
            refresh_tokens.push(r.body["refresh_token"].as_str().unwrap().to_string());
        } else {
            assert_eq!(r.status, 401, "round {round}: {}", r.text);
        }
        let live = live_tokens(&s.router, &access_tokens, &refresh_tokens).await;
        if !live.is_empty() {
            survived += 1;
        }
    }
    println!("refresh vs logout: {} rounds, refresh won {refreshed}, a live token after {survived}", rounds());
    assert_eq!(survived, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_racing_refresh_never_leaves_a_live_token() {
    let s = stack().await;
    let name = random_name();
    register(&s.router, &name).await;
    let (mut both, mut survived) = (0, 0);
    for round in 0..rounds() {
        let res = login(&s.router, &name, PASSWORD, &random_ip()).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let refresh = res.body["refresh_token"].as_str().unwrap().to_string();
        let call = |router: axum::Router, body: String| {
            tokio::spawn(async move { post(&router, "/api/auth/refresh", &body, "10.0.0.1").await })
        };
        let (a, b) = tokio::join!(
            call(s.router.clone(), refresh_body(&refresh)),
            call(s.router.clone(), refresh_body(&refresh))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        if a.status == 200 && b.status == 200 {
            both += 1;
        }
        let mut access_tokens = vec![res.body["access_token"].as_str().unwrap().to_string()];
        let mut refresh_tokens = vec![refresh];
        for r in [&a, &b] {
            if r.status == 200 {
                access_tokens.push(r.body["access_token"].as_str().unwrap().to_string());
                refresh_tokens.push(r.body["refresh_token"].as_str().unwrap().to_string());
            } else {
                assert_eq!(r.status, 401, "round {round}: {}", r.text);
            }
        }
        if !live_tokens(&s.router, &access_tokens, &refresh_tokens).await.is_empty() {
            survived += 1;
        }
    }
    println!("refresh vs refresh: {} rounds, both succeeded {both}, a live token after {survived}", rounds());
    assert_eq!(both, 0);
    assert_eq!(survived, 0);
}

#[tokio::test]
async fn a_success_resets_the_username_counter() {
    let s = stack().await;
    let name = random_name();
    register(&s.router, &name).await;
    for _ in 0..2 {
        for _ in 0..4 {
            assert_eq!(login(&s.router, &name, "wrong password!", &random_ip()).await.status, 401);
        }
        assert_eq!(login(&s.router, &name, PASSWORD, &random_ip()).await.status, 200);
    }
}

#[tokio::test]
async fn failures_from_one_address_are_throttled_across_usernames() {
    let s = stack_with(|c| c.auth.login_max_failures_per_ip = 3).await;
    let ip = random_ip();
    for _ in 0..3 {
        assert_eq!(login(&s.router, &random_name(), "wrong password!", &ip).await.status, 401);
    }
    assert_eq!(login(&s.router, &random_name(), "wrong password!", &ip).await.status, 429);
    // Another address is not affected.
    assert_eq!(login(&s.router, &random_name(), "wrong password!", &random_ip()).await.status, 401);
}

#[tokio::test]
async fn behind_api_gateway_the_address_comes_from_the_request_context_not_a_header() {
    use lambda_http::{aws_lambda_events::apigw::ApiGatewayV2httpRequestContext, request::RequestContext};
    let db = TestDatabase::new().await;
    let mut config = test_support::config(&db.url, &test_support::redis_url());
    config.auth.login_max_failures_per_ip = 2;
    let router = auth::lambda_router(Services::with_pool(config, db.pool.clone()));
    let real_ip = random_ip();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.http.source_ip = Some(real_ip.clone());
        let body = serde_json::json!({"username": random_name(), "password": "wrong password!"}).to_string();
        let req = Request::post("/api/auth/login")
            .header("content-type", "application/json")
            .header("x-forwarded-for", random_ip()) // forged, different every time
            .extension(RequestContext::ApiGatewayV2(ctx))
            .body(Body::from(body))
            .unwrap();
        statuses.push(send(&router, req).await.status);
    }
    assert_eq!(statuses, [401, 401, 429]);
}

#[tokio::test]
async fn login_fails_closed_with_503_when_the_throttle_store_is_unavailable() {
    let s = stack_with(|c| c.aws.table_name = format!("no-such-table-{}", uuid::Uuid::new_v4().simple())).await;
    let name = random_name();
    register(&s.router, &name).await;
    let res = login(&s.router, &name, PASSWORD, &random_ip()).await;
    assert_eq!(res.status, 503, "{}", res.text);
    assert_eq!(res.body["error"]["code"], "service_unavailable");
    assert!(res.text.contains("dynamodb"), "{}", res.text);
    assert!(!res.text.contains("no-such-table"), "{}", res.text);
}

#[tokio::test]
async fn malformed_bodies_are_400s_naming_the_field() {
    let s = stack().await;
    let ip = random_ip();
    let long = "a".repeat(33);
    let cases: Vec<(&str, String, &str)> = vec![
        ("/api/auth/register", r#"{"username":"ann_smith"}"#.into(), "password"),
        ("/api/auth/register", r#"{"password":"long enough pass"}"#.into(), "username"),
        ("/api/auth/register", r#"{"username":5,"password":"long enough pass"}"#.into(), "username"),
        ("/api/auth/register", r#"{"username":"ann_smith","password":["x"]}"#.into(), "password"),
        ("/api/auth/register", format!(r#"{{"username":"{long}","password":"long enough pass"}}"#), "username"),
        ("/api/auth/register", format!(r#"{{"username":"ann_smith","password":"{}"}}"#, "p".repeat(129)), "password"),
        ("/api/auth/register", r#"{"username":"ann_smith","password":"short"}"#.into(), "password"),
        ("/api/auth/register", r#"{"username":"ann_smith_x","password":"ann_smith_x"}"#.into(), "password"),
        ("/api/auth/register", r#"{"username":"Ann Smith","password":"long enough pass"}"#.into(), "username"),
        (
            "/api/auth/register",
            format!(r#"{{"username":"ann_smith","password":"long enough pass","email":"{}@x.com"}}"#, "e".repeat(250)),
            "email",
        ),
        (
            "/api/auth/register",
            r#"{"username":"ann_smith","password":"long enough pass","email":"nope"}"#.into(),
            "email",
        ),
        (
            "/api/auth/register",
            r#"{"username":"ann_smith","password":"long enough pass","role":"admin"}"#.into(),
            "role",
        ),
        ("/api/auth/login", r#"{"username":"ann_smith"}"#.into(), "password"),
        ("/api/auth/login", r#"{"username":true,"password":"x"}"#.into(), "username"),
        ("/api/auth/login", format!(r#"{{"username":"{}","password":"x"}}"#, "a".repeat(65)), "username"),
        ("/api/auth/login", format!(r#"{{"username":"ann","password":"{}"}}"#, "p".repeat(129)), "password"),
        ("/api/auth/login", r#"{"username":"","password":"x"}"#.into(), "username"),
        ("/api/auth/refresh", "{}".into(), "refresh_token"),
        ("/api/auth/refresh", r#"{"refresh_token":42}"#.into(), "refresh_token"),
        ("/api/auth/refresh", format!(r#"{{"refresh_token":"{}"}}"#, "r".repeat(300)), "refresh_token"),
        ("/api/auth/logout", r#"{"refresh_token":null}"#.into(), "refresh_token"),
    ];
    for (path, body, field) in cases {
        let res = post(&s.router, path, &body, &ip).await;
        assert_eq!(res.status, 400, "{path} {body}: {}", res.text);
        let message = res.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{path} {body}: `{message}` should name {field}");
    }
    for path in ["/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout"] {
        for body in ["", "   ", "username=ann&password=x", "{", r#"{"usern"#, "nul"] {
            let res = post(&s.router, path, body, &ip).await;
            assert_eq!(res.status, 400, "{path} {body:?}: {}", res.text);
            assert_eq!(res.body["error"]["code"], "invalid_body", "{path} {body:?}");
        }
    }
    // Nothing was created by all that.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&s.db.pool).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn registration_can_be_closed_by_configuration() {
    // A table of its own: the configuration is the flag's default only until an admin sets the
    // flag, and the shared table may hold a flag item set through the API.
    let table = test_support::fresh_table().await;
    let s = stack_with(|c| {
        c.auth.registration_open = false;
        c.aws.table_name = table;
    })
    .await;
    let res = register(&s.router, &random_name()).await;
    assert_eq!(res.status, 403, "{}", res.text);
    assert_eq!(res.body["error"]["message"], "registration is closed");
}

fn event(name: &str) -> Request<Body> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let request = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (parts, body) = request.into_parts();
    Request::from_parts(parts, Body::from(body.to_vec()))
}

#[tokio::test]
async fn the_sample_events_are_answered_through_the_lambda_glue() {
    let db = TestDatabase::new().await;
    shared::demo::seed(&db.pool, shared::config::Environment::Local, Utc::now()).await.unwrap();
    let router = auth::lambda_router(test_support::services(&db));
    let res = send(&router, event("auth-register.json")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = send(&router, event("auth-login.json")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    // Placeholders where a real token goes: refused cleanly.
    assert_eq!(send(&router, event("auth-refresh.json")).await.status, 401);
    assert_eq!(send(&router, event("auth-logout.json")).await.status, 401);
    assert_eq!(send(&router, event("auth-me.json")).await.status, 401);
}

/// A body that is not UTF-8 reaches a function base64-encoded (`isBase64Encoded`, as API Gateway
/// sends any body it cannot pass as text): a 400 naming the body, never a 5xx. (`cargo lambda
/// watch` answers such a body with a 500 of its own before any function runs; `make contract`
/// leaves that case out locally for this reason.)
#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_400_through_the_lambda_glue() {
    let db = TestDatabase::new().await;
    let router = auth::lambda_router(test_support::services(&db));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/auth-logout.json");
    let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // base64 of the bytes ff fe 7b 22 (not UTF-8)
    event["body"] = "//57Ig==".into();
    event["isBase64Encoded"] = true.into();
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let (parts, body) = request.into_parts();
    assert_eq!(body.to_vec(), vec![0xff, 0xfe, b'{', b'"']);
    let res = send(&router, Request::from_parts(parts, Body::from(body.to_vec()))).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", res.text);
}
