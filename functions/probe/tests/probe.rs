//! The probe against a local axum server standing in for the API, and the cache cluster's
//! status through the ElastiCache API of the emulator.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Json, Router,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use shared::{
    config::SecretSource,
    probe::{self, CacheTarget, ProbeConfig, ProbeInput},
    secret::Secret,
};
use test_support::{TestDatabase, services};

/// A stand-in API: `/health`, login for `probe_user`/`probe_password`, `/api/matches` with its
/// token. `healthy` switches /health between 200 and 503.
async fn fake_api(healthy: Arc<AtomicBool>) -> String {
    let app = Router::new()
        .route(
            "/health",
            get(move || {
                let up = healthy.load(Ordering::SeqCst);
                async move {
                    if up {
                        (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "unavailable"})))
                    }
                }
            }),
        )
        .route(
            "/api/auth/login",
            post(|Json(body): Json<serde_json::Value>| async move {
                if body["username"] == "probe_user" && body["password"] == "probe_password" {
                    (StatusCode::OK, Json(serde_json::json!({"access_token": "tok-123", "token_type": "bearer"})))
                } else {
                    (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": {"code": "unauthorized"}})))
                }
            }),
        )
        .route(
            "/api/matches",
            get(|headers: HeaderMap| async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer tok-123") {
                    (StatusCode::OK, Json(serde_json::json!({"items": [{"id": "match_1"}], "next_cursor": null})))
                } else {
                    (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": {"code": "unauthorized"}})))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn config(base_url: &str, password: &str, cache: Option<CacheTarget>) -> ProbeConfig {
    ProbeConfig {
        base_url: base_url.into(),
        user: SecretSource::Plain(Secret::new(format!(r#"{{"username":"probe_user","password":"{password}"}}"#))),
        cache,
        timeout: std::time::Duration::from_secs(2),
    }
}

#[tokio::test]
async fn every_check_passes_against_a_healthy_api_and_cache_cluster() {
    let db = TestDatabase::new().await;
    let s = services(&db);
    let group = format!("fp-probe-{}", &db.name[8..20]);
    let ec = aws_sdk_elasticache::Client::new(s.aws.sdk_config().await);
    ec.create_replication_group()
        .replication_group_id(&group)
        .replication_group_description("probe test")
        .engine("redis")
        .cache_node_type("cache.t4g.micro")
        .num_cache_clusters(1)
        .send()
        .await
        .expect("the emulator creates a replication group");
    let healthy = Arc::new(AtomicBool::new(true));
    let base = fake_api(healthy.clone()).await;

    let report = probe::run(
        &s,
        &config(&base, "probe_password", Some(CacheTarget::ReplicationGroup(group.clone()))),
        &ProbeInput::default(),
    )
    .await
    .unwrap();
    let names: Vec<&str> = report.checks.iter().map(|c| c.check.as_str()).collect();
    assert_eq!(names, ["health", "login", "matches", "cache_cluster"]);
    assert!(report.success, "{report:?}");
    assert!(report.checks.iter().all(|c| c.latency_ms >= 0.0));

    // The API's health fails: that check fails, the others still run.
    healthy.store(false, Ordering::SeqCst);
    let report = probe::run(&s, &config(&base, "probe_password", None), &ProbeInput::default()).await.unwrap();
    assert!(!report.success);
    let health = &report.checks[0];
    assert!(!health.success && health.detail.as_deref().unwrap().contains("503"), "{health:?}");
    assert!(report.checks[1].success && report.checks[2].success);

    // An unknown cache cluster fails its check.
    let report = probe::run(
        &s,
        &config(&base, "probe_password", Some(CacheTarget::CacheCluster("no-such-cluster".into()))),
        &ProbeInput { checks: Some(vec!["cache_cluster".into()]) },
    )
    .await
    .unwrap();
    assert_eq!(report.checks.len(), 1);
    assert!(!report.checks[0].success);
}

#[tokio::test]
async fn wrong_credentials_fail_login_and_matches_and_an_unreachable_api_fails_fast() {
    let db = TestDatabase::new().await;
    let s = services(&db);
    let base = fake_api(Arc::new(AtomicBool::new(true))).await;
    let report = probe::run(&s, &config(&base, "wrong", None), &ProbeInput::default()).await.unwrap();
    assert!(report.checks[0].success);
    assert!(!report.checks[1].success && !report.checks[2].success);
    assert!(!report.checks[1].detail.as_deref().unwrap_or_default().contains("wrong"), "no secret in the report");

    let dead = test_support::proxy::Blackhole::start().await;
    let report =
        probe::run(&s, &config(&format!("http://{}", dead.addr), "x", None), &ProbeInput::default()).await.unwrap();
    assert!(report.checks.iter().all(|c| !c.success));
    assert_eq!(report.checks[0].detail.as_deref(), Some("timed out"));

    let err =
        probe::run(&s, &config(&base, "x", None), &ProbeInput { checks: Some(vec!["nope".into()]) }).await.unwrap_err();
    assert!(err.to_string().contains("nope"));
}
