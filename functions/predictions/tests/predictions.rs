//! The predictions function against real PostgreSQL, Redis and the DynamoDB/S3 emulator: every
//! strategy, ownership, no information from after kick-off, the warm model cache, idempotency.

use std::sync::Arc;

use axum::{Router, body::Body, http::Request};
use chrono::Utc;
use serde_json::{Value, json};
use shared::{Services, auth::Role, config::Environment, ids::UserId, predictions::ModelCache};
use test_support::{TestDatabase, TestResponse, config, send};

/// A Redis URL where nothing listens: every cache call fails fast, as in an outage.
const NO_REDIS: &str = "redis://127.0.0.1:1";

async fn seeded() -> TestDatabase {
    let db = TestDatabase::new().await;
    shared::demo::seed(&db.pool, Environment::Local, Utc::now()).await.expect("demo data");
    db
}

async fn token(services: &Services, db: &TestDatabase, username: &str) -> String {
    let (id, role): (i64, String) = sqlx::query_as("SELECT id, role FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&db.pool)
        .await
        .expect("user");
    let role = if role == "admin" { Role::Admin } else { Role::User };
    services.token_keys().await.expect("keys").issue(UserId(id), role, 0, Utc::now()).0
}

async fn add_user(db: &TestDatabase, username: &str) {
    sqlx::query("INSERT INTO users (username, password_hash) VALUES ($1, '$argon2id$v=19$m=19456,t=2,p=1$x$y')")
        .bind(username)
        .execute(&db.pool)
        .await
        .expect("user");
}

async fn post(router: &Router, token: &str, body: Value, key: Option<&str>) -> TestResponse {
    let mut req = Request::post("/api/predictions")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    send(router, req.body(Body::from(body.to_string())).unwrap()).await
}

async fn get(router: &Router, uri: &str, token: &str) -> TestResponse {
    send(router, Request::get(uri).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap())
        .await
}

async fn upcoming_match(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT id FROM matches WHERE status = 'TIMED' ORDER BY kickoff_at, id LIMIT 1")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// The stored model version of a prediction (`pred_<id>`).
async fn res_market_version(db: &TestDatabase, id: &str) -> String {
    let id: i64 = id.trim_start_matches("pred_").parse().unwrap();
    sqlx::query_scalar("SELECT model_version FROM predictions WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// A played match of matchday `n`.
async fn played_match(db: &TestDatabase, matchday: i32) -> i64 {
    sqlx::query_scalar("SELECT id FROM matches WHERE matchday = $1 AND status = 'FINISHED' ORDER BY id LIMIT 1")
        .bind(matchday)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

fn assert_prediction(body: &Value, match_id: i64, strategy: &str) {
    assert!(body["id"].as_str().unwrap().starts_with("pred_"), "{body}");
    assert_eq!(body["match_id"], format!("match_{match_id}"));
    assert_eq!(body["strategy_type"], strategy);
    assert!(!body["model_version"].as_str().unwrap().is_empty());
    let p = &body["probabilities"];
    let sum = p["home"].as_f64().unwrap() + p["draw"].as_f64().unwrap() + p["away"].as_f64().unwrap();
    assert!((sum - 1.0).abs() < 1e-9, "{sum}");
    for v in [&p["home"], &p["draw"], &p["away"], &body["markets"]["over_2_5"], &body["markets"]["btts"]] {
        let v = v.as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{body}");
    }
    assert!(body["expected_goals"]["home"].as_f64().unwrap() > 0.0);
    assert!(body["most_likely_score"]["home"].is_number());
    assert!(body["created_at"].is_string());
}

#[tokio::test]
async fn every_strategy_predicts_an_upcoming_match_and_only_its_owner_or_an_admin_reads_it() {
    let db = seeded().await;
    add_user(&db, "someone_else").await;
    let services = test_support::services(&db);
    let user = token(&services, &db, "test_user").await;
    let other = token(&services, &db, "someone_else").await;
    let admin = token(&services, &db, "test_admin").await;
    let router = predictions::router(services);
    let m = upcoming_match(&db).await;

    let mut ids = Vec::new();
    let mut probabilities = Vec::new();
    for strategy in ["statistical", "historical", "ml_model", "market"] {
        let res =
            post(&router, &user, json!({"match_id": format!("match_{m}"), "strategy_type": strategy}), None).await;
        assert_eq!(res.status, 201, "{strategy}: {}", res.text);
        assert_prediction(&res.body, m, strategy);
        // The demo league prices every match: the market's view and the model's edge beside it.
        let market = &res.body["market"];
        assert_eq!(market["phase"], "opening", "{}", res.text);
        let implied = &market["implied"];
        let sum: f64 = ["home", "draw", "away"].iter().map(|o| implied[o].as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{market}");
        for o in ["home", "draw", "away"] {
            let edge = market["edge"][o].as_f64().unwrap();
            let p = res.body["probabilities"][o].as_f64().unwrap();
            assert!((edge - (p - implied[o].as_f64().unwrap())).abs() < 1e-12, "{market}");
            let ev = market["expected_value"][o].as_f64().unwrap();
            assert!((ev - (p * market["odds"][o].as_f64().unwrap() - 1.0)).abs() < 1e-12, "{market}");
        }
        probabilities.push(res.body["probabilities"].clone());
        assert!(res.headers["server-timing"].to_str().unwrap().contains("model;dur="));
        let id = res.body["id"].as_str().unwrap().to_string();

        let back = get(&router, &format!("/api/predictions/{id}"), &user).await;
        assert_eq!(back.status, 200);
        assert_eq!(back.body, res.body);
        assert_eq!(get(&router, &format!("/api/predictions/{id}"), &other).await.status, 404);
        assert_eq!(get(&router, &format!("/api/predictions/{id}"), &admin).await.status, 200);
        ids.push(id);
    }

    // market reads the opening odds its ml_model does not.
    assert_ne!(probabilities[3], probabilities[2]);
    assert!(res_market_version(&db, &ids[3]).await.starts_with("market-benter-1+"));

    let list = get(&router, "/api/predictions?limit=3", &user).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["items"][0]["id"], ids[3].as_str(), "newest first");
    assert!(list.body["items"][0]["market"]["implied"].is_object(), "{}", list.text);
    let cursor = list.body["next_cursor"].as_str().unwrap().to_string();
    let next = get(&router, &format!("/api/predictions?limit=2&cursor={cursor}"), &user).await;
    assert_eq!(next.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(next.body["items"][0]["id"], ids[0].as_str());
    assert!(next.body["next_cursor"].is_null());
    let filtered = get(&router, "/api/predictions?strategy_type=historical", &user).await;
    assert_eq!(filtered.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(get(&router, "/api/predictions", &other).await.body["items"].as_array().unwrap().len(), 0);
    let bad = get(&router, "/api/predictions?strategy_type=magic", &user).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn bad_requests_are_named() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let user = token(&services, &db, "test_user").await;
    let router = predictions::router(services);
    let m = upcoming_match(&db).await;

    let res = post(&router, &user, json!({"match_id": format!("match_{m}"), "strategy_type": "magic"}), None).await;
    assert_eq!(res.status, 400);
    assert!(res.body["error"]["message"].as_str().unwrap().starts_with("strategy_type:"), "{}", res.text);
    let res = post(&router, &user, json!({"match_id": "9", "strategy_type": "statistical"}), None).await;
    assert_eq!(res.status, 400);
    assert!(res.body["error"]["message"].as_str().unwrap().starts_with("match_id:"), "{}", res.text);
    let res = post(&router, &user, json!({"match_id": "match_999999", "strategy_type": "statistical"}), None).await;
    assert_eq!(res.status, 404, "{}", res.text);
    let res = post(&router, &user, json!({"strategy_type": "statistical"}), None).await;
    assert_eq!(res.status, 400);
    assert!(res.text.contains("match_id"));
    assert_eq!(test_support::get(&router, "/api/predictions").await.status, 401);
    assert_eq!(get(&router, "/api/predictions/match_1", &user).await.status, 400);
    assert_eq!(get(&router, "/api/predictions/pred_999999", &user).await.status, 404);
}

#[tokio::test]
async fn a_warm_request_does_not_refit_and_a_new_result_does() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let user = token(&services, &db, "test_user").await;
    let models = Arc::new(ModelCache::new());
    let router = predictions::router_with(services.clone(), models.clone());
    let m = upcoming_match(&db).await;
    let body = json!({"match_id": format!("match_{m}"), "strategy_type": "statistical"});

    let first = post(&router, &user, body.clone(), None).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(models.fits(), 1);
    let second = post(&router, &user, body.clone(), None).await;
    assert_eq!(second.status, 201);
    assert_eq!(models.fits(), 1, "the warm request refitted");
    assert!(second.headers["server-timing"].to_str().unwrap().contains("desc=\"memory\""));
    assert_eq!(second.body["probabilities"], first.body["probabilities"]);

    // A cold instance finds the model in Redis: no fit either.
    let cold = Arc::new(ModelCache::new());
    let res = post(&predictions::router_with(services.clone(), cold.clone()), &user, body.clone(), None).await;
    assert_eq!(res.status, 201);
    assert_eq!(cold.fits(), 0);
    assert!(res.headers["server-timing"].to_str().unwrap().contains("desc=\"redis\""));

    // A new result before kick-off, published as a writer does: the next request refits.
    sqlx::query(
        "UPDATE matches SET home_goals = home_goals + 3 WHERE id = (SELECT id FROM matches WHERE status = 'FINISHED' ORDER BY kickoff_at DESC, id LIMIT 1)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    test_support::bump_and_publish(&services, &db).await;
    let res = post(&router, &user, body, None).await;
    assert_eq!(res.status, 201);
    assert_eq!(models.fits(), 2);
    assert_ne!(res.body["probabilities"], first.body["probabilities"]);
}

#[tokio::test]
async fn a_played_match_is_predicted_from_earlier_data_only() {
    let db = seeded().await;
    // No Redis and a fresh model cache per request: every prediction is fitted from the database.
    let services = Services::with_pool(config(&db.url, NO_REDIS), db.pool.clone());
    let user = token(&services, &db, "test_user").await;
    let m = played_match(&db, 6).await;
    let predict = |strategy: &'static str| {
        let services = services.clone();
        let user = user.clone();
        async move {
            let router = predictions::router_with(services, Arc::new(ModelCache::new()));
            let res =
                post(&router, &user, json!({"match_id": format!("match_{m}"), "strategy_type": strategy}), None).await;
            assert_eq!(res.status, 201, "{strategy}: {}", res.text);
            assert_prediction(&res.body, m, strategy);
            res.body["probabilities"].clone()
        }
    };
    let mut before = Vec::new();
    for s in ["statistical", "historical", "ml_model"] {
        before.push(predict(s).await);
    }
    // Results of this match and of later matchdays change: the predictions do not.
    sqlx::query("UPDATE matches SET home_goals = 7, away_goals = 0 WHERE matchday >= 6 AND status = 'FINISHED'")
        .execute(&db.pool)
        .await
        .unwrap();
    for (i, s) in ["statistical", "historical", "ml_model"].into_iter().enumerate() {
        assert_eq!(predict(s).await, before[i], "{s} used a result from after kick-off");
    }
    // An earlier result does change them (the test can see a difference).
    sqlx::query("UPDATE matches SET home_goals = 0, away_goals = 6 WHERE matchday <= 3 AND status = 'FINISHED'")
        .execute(&db.pool)
        .await
        .unwrap();
    assert_ne!(predict("statistical").await, before[0]);
}

#[tokio::test]
async fn idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let user = token(&services, &db, "test_user").await;
    let router = predictions::router(services);
    let m = upcoming_match(&db).await;
    let key = format!("key-{}", uuid_like());
    let body = json!({"match_id": format!("match_{m}"), "strategy_type": "historical"});

    let first = post(&router, &user, body.clone(), Some(&key)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = post(&router, &user, body.clone(), Some(&key)).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body, first.body, "the first response is replayed");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM predictions").fetch_one(&db.pool).await.unwrap();
    assert_eq!(rows, 1, "a replay writes nothing");

    let other_body = json!({"match_id": format!("match_{m}"), "strategy_type": "statistical"});
    let res = post(&router, &user, other_body, Some(&key)).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert_eq!(res.body["error"]["code"], "unprocessable");

    // Without a key every request is a new prediction.
    assert_ne!(post(&router, &user, body.clone(), None).await.body["id"], first.body["id"]);
    let res = post(&router, &user, body, Some("bad key with spaces")).await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn predictions_work_while_redis_is_down() {
    let db = seeded().await;
    let services = Services::with_pool(config(&db.url, NO_REDIS), db.pool.clone());
    let user = token(&services, &db, "test_user").await;
    let router = predictions::router(services);
    let m = upcoming_match(&db).await;
    let started = std::time::Instant::now();
    let res =
        post(&router, &user, json!({"match_id": format!("match_{m}"), "strategy_type": "statistical"}), None).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_prediction(&res.body, m, "statistical");
    assert_eq!(ctx_desc(&res), "miss");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
    // Nothing cached anywhere but in this process: the second is read from PostgreSQL as well.
    let started = std::time::Instant::now();
    let res =
        post(&router, &user, json!({"match_id": format!("match_{m}"), "strategy_type": "statistical"}), None).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(ctx_desc(&res), "miss");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
}

fn ctx_desc(res: &TestResponse) -> String {
    let timing = res.headers["server-timing"].to_str().unwrap();
    let ctx = timing.split(", ").find(|e| e.starts_with("ctx;")).unwrap_or_else(|| panic!("{timing}"));
    ctx.rsplit("desc=").next().unwrap().trim_matches('"').to_string()
}

#[tokio::test]
async fn a_warm_prediction_reads_no_table_but_inserts_and_a_published_change_is_seen_at_once() {
    let db = seeded().await;
    // A pool of its own with a short statement timeout: a statement that waits for the lock below
    // fails in 300 ms (a 503) instead of hanging.
    let mut config = config(&db.url, &test_support::redis_url());
    config.database.statement_timeout = std::time::Duration::from_millis(300);
    let services = Services::new(config);
    let user = token(&services, &db, "test_user").await;
    let router = predictions::router(services.clone());
    let m = upcoming_match(&db).await;
    let body = json!({"match_id": format!("match_{m}"), "strategy_type": "statistical"});

    let first = post(&router, &user, body.clone(), None).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(ctx_desc(&first), "miss");
    // The model is warm now; the context is in Redis for 5 s (refilled if the fit took longer).
    let _ = post(&router, &user, body.clone(), None).await;

    // `competitions` locked: the context statement (and the data version's) would wait for it and
    // time out; a warm prediction answers from Redis, and its INSERT (whose foreign keys read
    // `matches` and `users`, not `competitions`) is its only statement.
    let mut lock = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE competitions IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let warm = post(&router, &user, body.clone(), None).await;
    assert_eq!(warm.status, 201, "{}", warm.text);
    assert_eq!(ctx_desc(&warm), "hit");
    assert_eq!(warm.body["market"], first.body["market"]);
    assert_eq!(warm.body["probabilities"], first.body["probabilities"]);
    // Another match has no cached context: it must read PostgreSQL, and waits for the lock.
    let other: i64 = sqlx::query_scalar("SELECT id FROM matches WHERE status = 'TIMED' AND id <> $1 LIMIT 1")
        .bind(m)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let res =
        post(&router, &user, json!({"match_id": format!("match_{other}"), "strategy_type": "statistical"}), None).await;
    assert_eq!(res.status, 503, "{}", res.text);
    lock.rollback().await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM predictions").fetch_one(&db.pool).await.unwrap();
    assert_eq!(rows, 3, "the warm prediction was stored");

    // New opening odds, published as a writer does: the next prediction reads the new context.
    set_odds(
        &db,
        m,
        &[
            ("pinnacle", "1x2", "opening", "home", 1.50),
            ("pinnacle", "1x2", "opening", "draw", 4.20),
            ("pinnacle", "1x2", "opening", "away", 7.00),
        ],
    )
    .await;
    test_support::bump_and_publish(&services, &db).await;
    let res = post(&router, &user, body.clone(), None).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(ctx_desc(&res), "miss");
    assert_eq!(res.body["market"]["bookmaker"], "pinnacle", "{}", res.text);
    assert_eq!(res.body["market"]["odds"]["home"], 1.5, "{}", res.text);
    let again = post(&router, &user, body.clone(), None).await;
    assert_eq!(ctx_desc(&again), "hit");
    assert_eq!(again.body["market"], res.body["market"]);

    // A new result, published: the context (its history checksum) and so the model change.
    sqlx::query(
        "UPDATE matches SET home_goals = home_goals + 4 WHERE id = (SELECT id FROM matches WHERE status = 'FINISHED' ORDER BY kickoff_at DESC, id LIMIT 1)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    test_support::bump_and_publish(&services, &db).await;
    let res = post(&router, &user, body.clone(), None).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(ctx_desc(&res), "miss");
    assert!(res.headers["server-timing"].to_str().unwrap().contains("model;dur="));
    assert_ne!(res.body["probabilities"], again.body["probabilities"], "the new result was used");
}

#[tokio::test]
async fn a_cached_context_of_another_version_or_shape_is_never_used() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let user = token(&services, &db, "test_user").await;
    let router = predictions::router(services.clone());
    let m = upcoming_match(&db).await;
    let body = json!({"match_id": format!("match_{m}"), "strategy_type": "statistical"});
    assert_eq!(post(&router, &user, body.clone(), None).await.status, 201);
    // The model warm: this one is quick, so its context is still in Redis below.
    assert_eq!(post(&router, &user, body.clone(), None).await.status, 201);

    let key = shared::predictions::context_key(&services, shared::ids::MatchId(m));
    let entry = services.cache.get_bytes(&key).await.expect("the context was cached");
    let version = shared::catalog::data_version(&db.pool).await.unwrap();
    assert!(entry.starts_with(format!("{version}\n").as_bytes()), "stored under the version it was read under");
    let ttl = std::time::Duration::from_secs(5);

    // An entry under another version (a writer committed and published in between): a miss.
    let mut stale = b"otherdb:1.1\n".to_vec();
    stale.extend_from_slice(&entry[version.len() + 1..]);
    services.cache.set_bytes(&key, stale, ttl).await;
    let res = post(&router, &user, body.clone(), None).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(ctx_desc(&res), "miss");

    // An entry of the current version that does not decode (another shape): a miss, then refilled.
    let mut garbage = format!("{version}\n").into_bytes();
    garbage.extend_from_slice(b"{\"match_id\": 1}");
    services.cache.set_bytes(&key, garbage, ttl).await;
    let res = post(&router, &user, body.clone(), None).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(ctx_desc(&res), "miss");
    assert_eq!(ctx_desc(&post(&router, &user, body.clone(), None).await), "hit");

    // No data version in Redis (expired): read with the context from PostgreSQL, then offered.
    let version_key = shared::catalog::version_key(&services);
    services.cache.delete(std::slice::from_ref(&version_key)).await;
    let res = post(&router, &user, body.clone(), None).await;
    assert_eq!(ctx_desc(&res), "miss");
    assert_eq!(services.cache.get_bytes(&version_key).await.as_deref(), Some(version.as_bytes()));
    assert_eq!(ctx_desc(&post(&router, &user, body, None).await), "hit");
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

#[tokio::test]
async fn ml_model_for_played_matches_uses_a_stored_artifact_and_the_cache_stays_bounded() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let user = token(&services, &db, "test_user").await;
    let models = Arc::new(ModelCache::new());
    let router = predictions::router_with(services, models.clone());
    // Played matches of many different kick-offs: each would have trained an artifact on request.
    let played: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT ON (kickoff_at) id FROM matches WHERE status = 'FINISHED' ORDER BY kickoff_at DESC, id LIMIT 6",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(played.len(), 6);
    for m in played {
        let res =
            post(&router, &user, json!({"match_id": format!("match_{m}"), "strategy_type": "ml_model"}), None).await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    assert_eq!(models.trainings(), 0, "an artifact was trained on request for a played match");
    let (_, artifacts) = models.held();
    assert!(artifacts <= 16, "{artifacts} artifacts held");
}

/// The opening 1X2 quotes of `match_id` read as the engine read them before they were folded into
/// the context statement: every row of `match_odds`, grouped in Rust by `history::group_odds`.
async fn odds_from_rows(db: &TestDatabase, match_id: i64) -> shared::engine::data::MatchOdds {
    let rows: Vec<(i64, String, String, String, String, f64)> = sqlx::query_as(
        "SELECT match_id, bookmaker, market, phase, outcome, price::float8 FROM match_odds
         WHERE match_id = $1 AND market = '1x2' AND phase = 'opening'",
    )
    .bind(match_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    shared::history::group_odds(rows).remove(&match_id).unwrap_or_default()
}

/// `(bookmaker, market, phase, outcome, price)` of a `match_odds` row.
type Quote = (&'static str, &'static str, &'static str, &'static str, f64);

async fn set_odds(db: &TestDatabase, match_id: i64, quotes: &[Quote]) {
    sqlx::query("DELETE FROM match_odds WHERE match_id = $1").bind(match_id).execute(&db.pool).await.unwrap();
    for (bookmaker, market, phase, outcome, price) in quotes {
        sqlx::query(
            "INSERT INTO match_odds (match_id, bookmaker, market, phase, outcome, price) VALUES ($1, $2, $3, $4, $5, $6::float8)",
        )
        .bind(match_id)
        .bind(bookmaker)
        .bind(market)
        .bind(phase)
        .bind(outcome)
        .bind(price)
        .execute(&db.pool)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn the_opening_odds_read_with_the_context_are_the_rows_the_engine_grouped_before() {
    let db = seeded().await;
    let services = test_support::services(&db);
    let user = token(&services, &db, "test_user").await;
    let router = predictions::router(services.clone());
    let m = upcoming_match(&db).await;

    // Each case: the quotes of the match, and the bookmaker the market view must name.
    let cases: Vec<(Vec<Quote>, Option<&str>)> = vec![
        // The demo's own quotes (left as seeded): checked against the rows below.
        (vec![], None),
        // No preferred bookmaker: the first in byte order (`Zbook` < `bookie`, unlike a linguistic
        // collation), an incomplete quote (`bet365`: no away price) skipped, closing and over/under
        // quotes ignored.
        (
            vec![
                ("bookie", "1x2", "opening", "home", 2.10),
                ("bookie", "1x2", "opening", "draw", 3.30),
                ("bookie", "1x2", "opening", "away", 3.70),
                ("Zbook", "1x2", "opening", "home", 2.05),
                ("Zbook", "1x2", "opening", "draw", 3.40),
                ("Zbook", "1x2", "opening", "away", 3.90),
                ("bet365", "1x2", "opening", "home", 1.90),
                ("bet365", "1x2", "opening", "draw", 3.20),
                ("pinnacle", "1x2", "closing", "home", 1.80),
                ("pinnacle", "1x2", "closing", "draw", 3.60),
                ("pinnacle", "1x2", "closing", "away", 4.80),
                ("pinnacle", "over_under_2_5", "opening", "over", 1.95),
                ("pinnacle", "over_under_2_5", "opening", "under", 1.95),
            ],
            Some("Zbook"),
        ),
        // The preference: the market average before Bet365 and the rest.
        (
            vec![
                ("bet365", "1x2", "opening", "home", 2.00),
                ("bet365", "1x2", "opening", "draw", 3.50),
                ("bet365", "1x2", "opening", "away", 3.80),
                ("market_average", "1x2", "opening", "home", 2.02),
                ("market_average", "1x2", "opening", "draw", 3.45),
                ("market_average", "1x2", "opening", "away", 3.75),
                ("aaa", "1x2", "opening", "home", 2.50),
                ("aaa", "1x2", "opening", "draw", 3.00),
                ("aaa", "1x2", "opening", "away", 3.00),
            ],
            Some("market_average"),
        ),
        // No complete opening quote: no market view, and `market` predicts without odds.
        (vec![("pinnacle", "1x2", "opening", "home", 2.0), ("pinnacle", "1x2", "opening", "draw", 3.0)], None),
    ];
    for (i, (quotes, bookmaker)) in cases.iter().enumerate() {
        if i > 0 {
            set_odds(&db, m, quotes).await;
            test_support::bump_and_publish(&services, &db).await;
        }
        let before = odds_from_rows(&db, m).await;
        let ctx = shared::predictions::models::match_context(&db.pool, m).await.unwrap().expect("the match");
        assert_eq!(ctx.odds, before, "case {i}");
        assert_eq!(ctx.odds.best_pre_match(), before.best_pre_match(), "case {i}");
        if i == 0 {
            assert!(!before.pre_match.is_empty(), "the demo prices every match");
        }

        let res =
            post(&router, &user, json!({"match_id": format!("match_{m}"), "strategy_type": "statistical"}), None).await;
        assert_eq!(res.status, 201, "case {i}: {}", res.text);
        let probabilities: shared::predictions::Probabilities =
            serde_json::from_value(res.body["probabilities"].clone()).unwrap();
        let expected = shared::predictions::MarketView::of(&before, probabilities);
        let expected = expected.map(|v| serde_json::to_value(v).unwrap()).unwrap_or(Value::Null);
        assert_same_market(&res.body["market"], &expected, i);
        if let Some(b) = bookmaker {
            assert_eq!(res.body["market"]["bookmaker"], *b, "case {i}");
        }
        if quotes.len() == 2 {
            assert!(res.body.get("market").is_none(), "case {i}: {}", res.text);
        }
        let id = res.body["id"].as_str().unwrap().to_string();
        let back = get(&router, &format!("/api/predictions/{id}"), &user).await;
        assert_eq!(back.body, res.body, "case {i}");
        let list = get(&router, "/api/predictions?limit=1", &user).await;
        assert_eq!(list.body["items"][0], res.body, "case {i}");
    }
}

/// The market view of a response is `expected`: its names exactly, every number to 1e-12 (the
/// test reads the response back from JSON text, and serde_json's default float parsing may be one
/// ulp off).
fn assert_same_market(actual: &Value, expected: &Value, case: usize) {
    if expected.is_null() {
        assert!(actual.is_null(), "case {case}: {actual}");
        return;
    }
    for field in ["bookmaker", "phase", "method"] {
        assert_eq!(actual[field], expected[field], "case {case}: {field}");
    }
    let close = |a: &Value, e: &Value, what: &str| {
        let (a, e) = (a.as_f64().unwrap(), e.as_f64().unwrap());
        assert!((a - e).abs() < 1e-12, "case {case}: {what} {a} vs {e}");
    };
    close(&actual["overround"], &expected["overround"], "overround");
    for field in ["odds", "implied", "edge", "expected_value"] {
        for o in ["home", "draw", "away"] {
            close(&actual[field][o], &expected[field][o], field);
        }
    }
}
