//! The matches function against real PostgreSQL and Redis: filters, keyset pagination under
//! concurrent inserts, match detail with odds, the cache and a cache outage.

use std::collections::HashSet;

use axum::{Router, body::Body, http::Request};
use chrono::{Duration, Utc};
use serde_json::Value;
use shared::{Services, auth::Role, config::Environment, ids::UserId};
use test_support::{TestDatabase, TestResponse, config, proxy::ToggleProxy, send};

async fn seeded() -> TestDatabase {
    let db = TestDatabase::new().await;
    shared::demo::seed(&db.pool, Environment::Local, Utc::now()).await.expect("demo data");
    db
}

async fn token(services: &Services, db: &TestDatabase, username: &str) -> String {
    let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&db.pool)
        .await
        .expect("user");
    let keys = services.token_keys().await.expect("keys");
    keys.issue(UserId(id), Role::User, 0, Utc::now()).0
}

async fn get(router: &Router, uri: &str, token: &str) -> TestResponse {
    send(router, Request::get(uri).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap())
        .await
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().trim_start_matches("match_").parse().unwrap())
        .collect()
}

fn redis_target() -> String {
    test_support::redis_url().trim_start_matches("redis://").trim_end_matches('/').to_string()
}

#[tokio::test]
async fn every_route_needs_a_token() {
    let db = seeded().await;
    let router = matches::router(test_support::services(&db));
    for uri in ["/api/competitions", "/api/teams", "/api/matches", "/api/matches/match_1"] {
        let res = test_support::get(&router, uri).await;
        assert_eq!(res.status, 401, "{uri}");
        assert_eq!(res.body["error"]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn competitions_teams_and_filters() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let t = token(&services, &db, "test_user").await;
    let router = matches::router(services);

    let res = get(&router, "/api/competitions", &t).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["items"][0]["code"], "DEMO");

    let res = get(&router, "/api/teams?competition=demo", &t).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["items"].as_array().unwrap().len(), 20);
    assert!(res.body["items"][0]["id"].as_str().unwrap().starts_with("team_"));
    assert_eq!(get(&router, "/api/teams?competition=XX", &t).await.status, 404);

    // Three past seasons of 380 matches and the current season's first match days, page by page.
    let (mut finished, mut cursor) = (Vec::new(), String::new());
    loop {
        let res = get(&router, &format!("/api/matches?competition=DEMO&status=FINISHED&limit=100{cursor}"), &t).await;
        assert_eq!(res.status, 200, "{}", res.text);
        finished.extend(res.body["items"].as_array().unwrap().iter().cloned());
        match res.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let played_this_season = shared::demo::PLAYED_ROUNDS as usize * 10;
    assert_eq!(finished.len(), 3 * 380 + played_this_season);
    assert!(finished.iter().all(|m| m["score"]["home"].is_number() && m["status"] == "FINISHED"));

    let res = get(&router, "/api/matches?status=TIMED,SCHEDULED&limit=100", &t).await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 100);
    assert!(res.body["items"].as_array().unwrap().iter().all(|m| m["score"].is_null() && m["status"] == "TIMED"));

    let team =
        get(&router, "/api/teams?competition=DEMO", &t).await.body["items"][0]["id"].as_str().unwrap().to_string();
    let res = get(&router, &format!("/api/matches?team={team}&limit=100"), &t).await;
    let items = res.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 100, "each club plays 38 matches a season, four seasons: a full page");
    assert!(items.iter().all(|m| m["home_team"]["id"] == team.as_str() || m["away_team"]["id"] == team.as_str()));

    let today = Utc::now().date_naive();
    let from = (today - Duration::days(15)).to_string();
    let res = get(&router, &format!("/api/matches?date_from={from}&date_to={today}&limit=100"), &t).await;
    let items = res.body["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.len() <= 30, "two or three match days of 10: {}", items.len());

    // Default page size 20, with a cursor.
    let res = get(&router, "/api/matches", &t).await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 20);
    assert!(res.body["next_cursor"].is_string());

    for (query, field) in [
        ("limit=101", "limit"),
        ("limit=0", "limit"),
        ("status=DONE", "status"),
        ("team=65", "team"),
        ("date_from=tomorrow", "date_from"),
        ("cursor=abc", "cursor"),
        ("competition=P%20L", "competition"),
    ] {
        let res = get(&router, &format!("/api/matches?{query}"), &t).await;
        assert_eq!(res.status, 400, "{query}: {}", res.text);
        let message = res.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}:")), "{query}: {message}");
    }
}

#[tokio::test]
async fn pagination_never_repeats_or_skips_a_row_while_rows_are_inserted() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let t = token(&services, &db, "test_user").await;
    let router = matches::router(services);
    let (competition, home, away): (i64, i64, i64) = sqlx::query_as(
        "SELECT competition_id, home_team_id, away_team_id FROM matches ORDER BY kickoff_at, id LIMIT 1",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let before: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM matches ORDER BY kickoff_at, id").fetch_all(&db.pool).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut season = 2100;
    for page in 0.. {
        assert!(page < 50, "pagination does not end");
        let uri = match &cursor {
            Some(c) => format!("/api/matches?limit=100&cursor={c}"),
            None => "/api/matches?limit=100".to_string(),
        };
        let res = get(&router, &uri, &t).await;
        assert_eq!(res.status, 200, "{}", res.text);
        seen.extend(ids(&res.body));
        // Between pages: a row before the position, one at the very same kick-off as the last row
        // returned (a later id), and one far in the future.
        let last_kickoff: Option<chrono::DateTime<Utc>> = match seen.last() {
            Some(id) => sqlx::query_scalar("SELECT kickoff_at FROM matches WHERE id = $1")
                .bind(id)
                .fetch_optional(&db.pool)
                .await
                .unwrap(),
            None => None,
        };
        if let Some(k) = last_kickoff {
            for kickoff in [k - Duration::days(400), k, k + Duration::days(4000)] {
                season += 1;
                sqlx::query(
                    "INSERT INTO matches (competition_id, season, kickoff_at, status, home_team_id, away_team_id)
                     VALUES ($1, $2, $3, 'TIMED', $4, $5)",
                )
                .bind(competition)
                .bind(season)
                .bind(kickoff)
                .bind(home)
                .bind(away)
                .execute(&db.pool)
                .await
                .unwrap();
            }
        }
        cursor = res.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a row was repeated");
    for id in &before {
        assert!(unique.contains(id), "match_{id} was skipped");
    }
    // What was returned is in (kick-off, id) order, inserted rows included.
    let ordered: Vec<i64> = sqlx::query_scalar("SELECT id FROM matches WHERE id = ANY($1) ORDER BY kickoff_at, id")
        .bind(&seen)
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(ordered, seen);
    assert!(seen.len() > before.len(), "rows inserted after the position were returned too");
}

#[tokio::test]
async fn match_detail_has_teams_score_and_odds() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let t = token(&services, &db, "test_user").await;
    let router = matches::router(services);
    let id: i64 = sqlx::query_scalar("SELECT id FROM matches WHERE status = 'FINISHED' ORDER BY id LIMIT 1")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    for (outcome, price) in [("home", 2.1), ("draw", 3.4), ("away", 3.6)] {
        sqlx::query(
            "INSERT INTO match_odds (match_id, bookmaker, market, phase, outcome, price) VALUES ($1, 'pinnacle', '1x2', 'closing', $2, $3)",
        )
        .bind(id)
        .bind(outcome)
        .bind(price)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let res = get(&router, &format!("/api/matches/match_{id}"), &t).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["id"], format!("match_{id}"));
    assert_eq!(res.body["status"], "FINISHED");
    assert!(res.body["score"]["home"].is_number());
    assert!(res.body["home_team"]["name"].is_string());
    let odds = res.body["odds"].as_array().unwrap();
    let pinnacle = odds.iter().find(|o| o["bookmaker"] == "pinnacle").expect("the odds just added");
    assert_eq!(pinnacle["prices"]["draw"], 3.4);
    assert!(odds.iter().any(|o| o["bookmaker"] == "market_average"), "the demo odds: {odds:?}");

    assert_eq!(get(&router, "/api/matches/match_999999", &t).await.status, 404);
    let res = get(&router, "/api/matches/team_1", &t).await;
    assert_eq!(res.status, 400);
    assert!(res.body["error"]["message"].as_str().unwrap().starts_with("id:"));
}

#[tokio::test]
async fn answers_come_from_the_cache_and_stay_correct_when_redis_is_down() {
    let db = seeded().await;
    let redis = ToggleProxy::start(&redis_target()).await;
    let services = Services::with_pool(config(&db.url, &redis.url("redis://", "")), db.pool.clone());
    let t = token(&services, &db, "test_user").await;
    let router = matches::router(services.clone());
    let uri = "/api/matches?competition=DEMO&status=FINISHED&limit=3";
    let first = get(&router, uri, &t).await;
    assert_eq!(first.status, 200);
    let id = first.body["items"][0]["id"].as_str().unwrap().trim_start_matches("match_").parse::<i64>().unwrap();

    // A write that does not bump the data version: the cached page is served (within its TTL).
    sqlx::query("UPDATE matches SET home_goals = 9, away_goals = 9 WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .unwrap();
    let cached = get(&router, uri, &t).await;
    assert_eq!(cached.body, first.body, "served from the cache");

    // Redis down: the answer comes from PostgreSQL, correct and fresh.
    redis.down();
    let started = std::time::Instant::now();
    let res = get(&router, uri, &t).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["items"][0]["score"]["home"], 9);
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    let res = get(&router, &format!("/api/matches/match_{id}"), &t).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["score"]["away"], 9);
    assert_eq!(get(&router, "/api/competitions", &t).await.status, 200);

    // Redis back (once the connection manager has reconnected), and a data version bump as
    // ingestion and import do it (in the writing transaction, published after the commit) makes
    // the old entries unusable at once.
    redis.up();
    for _ in 0..50 {
        if services.cache.ping().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    test_support::bump_and_publish(&services, &db).await;
    let res = get(&router, uri, &t).await;
    assert_eq!(res.body["items"][0]["score"]["home"], 9);
}

async fn set_score(db: &TestDatabase, id: i64, goals: i16) {
    sqlx::query("UPDATE matches SET home_goals = $2, away_goals = $2 WHERE id = $1")
        .bind(id)
        .bind(goals)
        .execute(&db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_or_stale_version_in_redis_falls_back_to_postgresql_within_its_ttl() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let t = token(&services, &db, "test_user").await;
    let router = matches::router(services.clone());
    let uri = "/api/matches?competition=DEMO&status=FINISHED&limit=2";
    let first = get(&router, uri, &t).await;
    assert_eq!(first.status, 200);
    let id = ids(&first.body)[0];
    let version_key = shared::catalog::version_key(&services);
    let published = services.cache.get_bytes(&version_key).await.expect("the reader offered the version");
    assert_eq!(published, shared::catalog::data_version(&db.pool).await.unwrap().into_bytes());

    // A writer that bumped the version and could not publish it, and a missing key: the version
    // is read from PostgreSQL, the old page is a miss.
    set_score(&db, id, 7).await;
    sqlx::query("UPDATE competitions SET data_version = data_version + 1").execute(&db.pool).await.unwrap();
    services.cache.delete(std::slice::from_ref(&version_key)).await;
    let res = get(&router, uri, &t).await;
    assert_eq!(res.body["items"][0]["score"]["home"], 7, "{}", res.text);

    // The same writer with the old version still in Redis: the page it was built from is served
    // until the version key expires (VERSION_TTL), then the next read is fresh.
    set_score(&db, id, 8).await;
    sqlx::query("UPDATE competitions SET data_version = data_version + 1").execute(&db.pool).await.unwrap();
    let started = std::time::Instant::now();
    let stale = get(&router, uri, &t).await;
    let fresh = loop {
        let res = get(&router, uri, &t).await;
        if res.body["items"][0]["score"]["home"] == 8 {
            break res;
        }
        assert!(started.elapsed() < shared::catalog::VERSION_TTL + std::time::Duration::from_secs(2), "still stale");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(stale.body["items"][0]["score"]["home"], 7, "within the bound the cached page may be served");
    assert_eq!(fresh.status, 200);
    assert!(started.elapsed() > std::time::Duration::from_secs(3), "{:?}", started.elapsed());
}

/// Services with a pool of their own (not the test's), so its connections can be found and
/// terminated, with a short statement timeout.
fn own_pool_services(db: &TestDatabase, statement_timeout_ms: u64) -> Services {
    let mut config = config(&db.url, &test_support::redis_url());
    config.database.statement_timeout = std::time::Duration::from_millis(statement_timeout_ms);
    Services::new(config)
}

/// Holds `ACCESS EXCLUSIVE` on `competitions` (every catalog read that the cache cannot answer
/// reads it; the caller's account and the data version are answered from Redis) until dropped.
async fn lock_users(db: &TestDatabase) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE competitions IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
    tx
}

fn assert_503_with_retry_after(res: &TestResponse) {
    assert_eq!(res.status, 503, "{}", res.text);
    assert_eq!(res.body["error"]["code"], "service_unavailable");
    assert_eq!(res.headers["retry-after"], "2");
    assert_eq!(res.body["error"]["request_id"], res.headers["x-request-id"].to_str().unwrap());
}

#[tokio::test]
async fn a_statement_timeout_is_a_503_with_retry_after_then_the_next_request_is_served() {
    let db = seeded().await;
    let services = own_pool_services(&db, 300);
    let router = matches::router(services.clone());
    let token = token(&services, &db, "test_user").await;
    assert_eq!(get(&router, "/api/competitions", &token).await.status, 200);

    let lock = lock_users(&db).await;
    // What Redis holds needs no statement (the account, the data version, the cached list);
    // what it does not hold waits for the lock: 57014 after 300 ms.
    assert_eq!(get(&router, "/api/competitions", &token).await.status, 200, "answered from Redis");
    let res = get(&router, "/api/teams?competition=DEMO", &token).await;
    assert_503_with_retry_after(&res);
    lock.rollback().await.unwrap();
    assert_eq!(get(&router, "/api/teams?competition=DEMO", &token).await.status, 200);
}

#[tokio::test]
async fn a_backend_terminated_mid_query_is_a_503_and_a_terminated_idle_one_costs_nothing() {
    let db = seeded().await;
    let services = own_pool_services(&db, 10_000);
    let router = matches::router(services.clone());
    let token = token(&services, &db, "test_user").await;
    assert_eq!(get(&router, "/api/competitions", &token).await.status, 200);

    // An idle connection killed (a failover, RDS Proxy closing it): the pool's check before
    // handing it out finds it dead and connects again.
    let terminate = "SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity \
                     WHERE datname = current_database() AND application_name = 'football-prediction'";
    let killed: i32 = sqlx::query_scalar(terminate).fetch_one(&db.pool).await.unwrap();
    assert!(killed >= 1, "the function's pool had a connection");
    // (a read the cache cannot answer, so that it needs a connection)
    assert_eq!(get(&router, "/api/teams", &token).await.status, 200);

    // A connection killed while its query runs (57P01 admin shutdown): 503, then served again.
    let lock = lock_users(&db).await;
    let waiting = tokio::spawn({
        let router = router.clone();
        let token = token.clone();
        async move { get(&router, "/api/teams?competition=DEMO", &token).await }
    });
    let blocked = "SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() \
                   AND application_name = 'football-prediction' AND wait_event_type = 'Lock'";
    for _ in 0..100 {
        if sqlx::query_scalar::<_, i32>(blocked).fetch_one(&db.pool).await.unwrap() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let killed: i32 = sqlx::query_scalar(terminate).fetch_one(&db.pool).await.unwrap();
    assert!(killed >= 1);
    assert_503_with_retry_after(&waiting.await.unwrap());
    lock.rollback().await.unwrap();
    assert_eq!(get(&router, "/api/teams?competition=DEMO", &token).await.status, 200);
}
