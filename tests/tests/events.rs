//! The sample events in events/ are real API Gateway HTTP API v2 events: lambda_http parses each
//! one, and the function that the template routes it to answers it.

use integration_tests::root;
use lambda_http::request::from_str;
use test_support::{TestDatabase, send, services};

fn event(name: &str) -> lambda_http::Request {
    let text = std::fs::read_to_string(root().join("events").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    from_str(&text).unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"))
}

fn into_axum(request: lambda_http::Request) -> axum::http::Request<axum::body::Body> {
    let (parts, body) = request.into_parts();
    axum::http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()))
}

#[tokio::test]
async fn health_events_are_answered_by_the_health_function() {
    let db = TestDatabase::new().await;
    let router = health::router(services(&db));

    let res = send(&router, into_axum(event("health.json"))).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["checks"]["database"]["status"], "ok");

    let res = send(&router, into_axum(event("health-live.json"))).await;
    assert_eq!(res.status, 200);

    let res = send(&router, into_axum(event("not-found.json"))).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.body["error"]["code"], "not_found");
}

#[test]
fn every_event_file_parses() {
    for entry in std::fs::read_dir(root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        if json.get("version").and_then(|v| v.as_str()) == Some("2.0") {
            from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not an API Gateway event: {e}"));
        }
    }
}
