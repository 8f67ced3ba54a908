//! The health function against the real PostgreSQL and Redis, with a proxy in front of each so
//! that a test can take a dependency down and bring it back.

use std::time::{Duration, Instant};

use shared::Services;
use test_support::{
    TestDatabase, config, get,
    proxy::{Blackhole, ToggleProxy},
};

fn redis_target() -> String {
    test_support::redis_url().trim_start_matches("redis://").trim_end_matches('/').to_string()
}

fn pg_target(db: &TestDatabase) -> String {
    // postgres://user@host:port/name -> host:port
    let rest = db.url.split_once('@').map_or(db.url.as_str(), |(_, r)| r);
    rest.split('/').next().unwrap().to_string()
}

struct Stack {
    router: axum::Router,
    pg: ToggleProxy,
    redis: ToggleProxy,
    _db: TestDatabase,
}

async fn stack() -> Stack {
    let db = TestDatabase::new().await;
    let pg = ToggleProxy::start(&pg_target(&db)).await;
    let redis = ToggleProxy::start(&redis_target()).await;
    let db_url = pg.url("postgres://postgres@", &format!("/{}", db.name));
    let services = Services::new(config(&db_url, &redis.url("redis://", "")));
    Stack { router: health::router(services), pg, redis, _db: db }
}

#[tokio::test]
async fn healthy_when_database_and_cache_answer() {
    let s = stack().await;
    let res = get(&s.router, "/health").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "ok");
    assert_eq!(res.body["version"], "test");
    assert_eq!(res.body["checks"]["database"]["status"], "ok");
    assert_eq!(res.body["checks"]["cache"]["status"], "ok");
    assert!(res.body["checks"]["database"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(res.body["checks"]["cache"]["latency_ms"].is_number());
    assert_eq!(res.headers["x-content-type-options"], "nosniff");
    assert!(res.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn degraded_within_a_second_when_the_cache_is_down_then_ok_when_it_returns() {
    let s = stack().await;
    assert_eq!(get(&s.router, "/health").await.body["status"], "ok");

    s.redis.down();
    let started = Instant::now();
    let res = get(&s.router, "/health").await;
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["status"], "degraded");
    assert_eq!(res.body["checks"]["cache"]["status"], "down");
    assert_eq!(res.body["checks"]["database"]["status"], "ok");

    s.redis.up();
    let res = eventually_ok(&s.router).await;
    assert_eq!(res.body["checks"]["cache"]["status"], "ok");
}

#[tokio::test]
async fn unavailable_within_two_seconds_when_the_database_is_down_then_ok_when_it_returns() {
    let s = stack().await;
    assert_eq!(get(&s.router, "/health").await.body["status"], "ok");

    s.pg.down();
    let started = Instant::now();
    let res = get(&s.router, "/health").await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(res.status, 503, "{}", res.text);
    assert_eq!(res.body["checks"]["database"]["status"], "down");
    // A dependency failure never leaks connection details.
    assert!(!res.text.contains("127.0.0.1") && !res.text.contains("postgres://"), "{}", res.text);

    s.pg.up();
    eventually_ok(&s.router).await;
}

#[tokio::test]
async fn both_down_then_both_back_without_a_restart() {
    let s = stack().await;
    s.pg.down();
    s.redis.down();
    let res = get(&s.router, "/health").await;
    assert_eq!(res.status, 503);
    assert_eq!(res.body["checks"]["cache"]["status"], "down");
    s.pg.up();
    s.redis.up();
    eventually_ok(&s.router).await;
}

#[tokio::test]
async fn never_hangs_on_dependencies_that_do_not_answer() {
    let pg = Blackhole::start().await;
    let redis = Blackhole::start().await;
    let services =
        Services::new(config(&format!("postgres://postgres@{}/nothing", pg.addr), &format!("redis://{}", redis.addr)));
    let router = health::router(services);
    let started = Instant::now();
    let res = get(&router, "/health").await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(res.status, 503);
    assert_eq!(res.body["checks"]["database"]["error"], "timed out");
    assert_eq!(res.body["checks"]["cache"]["status"], "down");
}

#[tokio::test]
async fn liveness_touches_no_dependency() {
    // Nothing listens on these ports: liveness must still answer at once.
    let services = Services::new(config("postgres://postgres@127.0.0.1:9/none", "redis://127.0.0.1:9"));
    let router = health::router(services);
    let res = get(&router, "/health/live").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["status"], "ok");
    assert_eq!(res.headers["x-frame-options"], "DENY");
}

#[tokio::test]
async fn the_panic_route_exists_only_locally_and_answers_the_json_500() {
    let local = Services::new(config("postgres://postgres@127.0.0.1:9/none", "redis://127.0.0.1:9"));
    let router = health::router(local);
    let res = get(&router, "/health/panic").await;
    assert_eq!(res.status, 500);
    assert_eq!(res.body["error"]["code"], "internal_error");
    assert_eq!(res.body["error"]["request_id"], res.headers["x-request-id"].to_str().unwrap());
    assert!(!res.text.contains("on purpose"), "the panic message never reaches the client");
    assert_eq!(get(&router, "/health/live").await.status, 200, "the same router goes on serving");

    let mut deployed = config("postgres://postgres@127.0.0.1:9/none", "redis://127.0.0.1:9");
    deployed.environment = shared::config::Environment::Prod;
    let res = get(&health::router(Services::new(deployed)), "/health/panic").await;
    assert_eq!(res.status, 404, "no such route in a deployed stack");
}

#[tokio::test]
async fn unknown_paths_get_the_json_404() {
    let services = Services::new(config("postgres://postgres@127.0.0.1:9/none", "redis://127.0.0.1:9"));
    let router = health::router(services);
    let res = get(&router, "/health/nope").await;
    assert_eq!(res.status, 404);
    assert_eq!(res.body["error"]["code"], "not_found");
    assert_eq!(res.body["error"]["request_id"], res.headers["x-request-id"].to_str().unwrap());
}

#[tokio::test]
async fn a_known_path_with_another_method_is_a_405_naming_the_allowed_ones() {
    let services = Services::new(config("postgres://postgres@127.0.0.1:9/none", "redis://127.0.0.1:9"));
    let router = health::router(services);
    async fn call_with(router: &axum::Router, method: &str, uri: &str) -> test_support::TestResponse {
        let request = axum::http::Request::builder().method(method).uri(uri).body(axum::body::Body::empty()).unwrap();
        test_support::send(router, request).await
    }
    let call = |method: &'static str, uri: &'static str| call_with(&router, method, uri);
    let res = call("DELETE", "/api/matches").await;
    assert_eq!(res.status, 405, "{}", res.text);
    assert_eq!(res.headers["allow"], "GET");
    assert_eq!(res.body["error"]["code"], "method_not_allowed");
    let res = call("PUT", "/api/predictions").await;
    assert_eq!((res.status, res.headers["allow"].to_str().unwrap()), (405, "GET, POST"));
    assert_eq!(call("POST", "/api/matches/match_1").await.headers["allow"], "GET");
    // TRACE reaches this function as the gateway's `$default` route (no route names it): 405 too.
    // (`cargo lambda watch` never answers TRACE locally; see infra/contract/schemathesis.toml.)
    for method in ["TRACE", "QUERY"] {
        let res = call(method, "/api/predictions/prediction_1").await;
        assert_eq!((res.status, res.headers["allow"].to_str().unwrap()), (405, "GET"), "{method}");
    }
    assert_eq!(call("DELETE", "/api/nothing/here").await.status, 404);
    let res = call("GET", "/docs").await;
    assert_eq!(res.status, 200);
    assert!(
        res.text.contains("swagger-ui-bundle.js")
            && res.headers["content-security-policy"].to_str().unwrap().contains("'self'")
    );
    let res = call("GET", "/docs/swagger-ui.css").await;
    assert_eq!((res.status, res.headers["content-type"].to_str().unwrap()), (200, "text/css; charset=utf-8"));
    assert_eq!(call("GET", "/docs/../../etc/passwd").await.status, 404);
}

async fn eventually_ok(router: &axum::Router) -> test_support::TestResponse {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = get(router, "/health").await;
        if res.status == 200 && res.body["status"] == "ok" {
            return res;
        }
        assert!(Instant::now() < deadline, "still not ok after recovery: {}", res.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// RDS's managed rotation changes the password in the database and in the secret; functions keep
/// their open connections and must use the new password for the next one. Against a server that
/// really checks passwords (SCRAM) and the secret in the AWS emulator.
#[tokio::test]
async fn a_rotated_database_password_is_read_again_and_the_next_request_succeeds() {
    use sqlx::{Connection, Executor};
    let server = test_support::scram::ScramServer::start();
    let mut admin = sqlx::PgConnection::connect(&server.admin_url()).await.expect("admin");
    admin.execute("CREATE ROLE fp_rotating LOGIN PASSWORD 'first-password'").await.unwrap();
    let secret = |password: &str| {
        serde_json::json!({"username": "fp_rotating", "password": password, "host": "127.0.0.1",
                           "port": server.port, "dbname": "postgres"})
        .to_string()
    };
    let aws = shared::aws::AwsClients::new();
    let sm = aws.secrets_manager().await;
    let name = format!("football-prediction/test/db-{}", uuid::Uuid::new_v4().simple());
    sm.create_secret().name(&name).secret_string(secret("first-password")).send().await.expect("emulator");

    let mut config = config("postgres://unused@127.0.0.1:9/x", &test_support::redis_url());
    config.database.source = shared::config::SecretSource::SecretsManager { arn: name.clone() };
    config.database.ssl_mode = "disable".into();
    let services = Services::new(config);
    let router = health::router(services.clone());
    let res = get(&router, "/health").await;
    assert_eq!(res.body["checks"]["database"]["status"], "ok", "{}", res.text);

    // The rotation: the database first, then the secret (RDS: setSecret, then finishSecret).
    admin.execute("ALTER ROLE fp_rotating PASSWORD 'second-password'").await.unwrap();
    sm.put_secret_value().secret_id(&name).secret_string(secret("second-password")).send().await.unwrap();
    // The open connection still works (PostgreSQL does not authenticate it again): hold it, so
    // the next request needs a new connection, which the old password can no longer open.
    let pool = services.db.pool().await.unwrap();
    let held = pool.acquire().await.expect("the connection opened before the rotation");
    let res = get(&router, "/health").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["checks"]["database"]["status"], "ok", "{}", res.text);
    drop(held);
    let logins: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = 'fp_rotating'")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(logins, 2, "one connection with each password");

    sm.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await.ok();
}
