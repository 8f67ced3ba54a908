//! HTTP plumbing shared by every API function: the error type, extractors that turn bad input
//! into clear 400s, and the layers every response goes through (security headers, request id,
//! access log line, request metrics, JSON 404/405, body limit, panics as opaque 500s, gzip for
//! clients that accept it).

pub mod bounds;
pub mod error;
pub mod extract;
pub mod gzip;
pub mod request_id;

use std::time::Instant;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, HeaderValue, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};

pub use error::ApiError;
pub use extract::{ApiJson, ApiPath, ApiQuery};

/// The largest request body any route accepts.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Wraps a function's routes with the behaviour the HTTP contract requires of every response.
pub fn finish<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_to_500))
        // gzip when the client sends `Accept-Encoding: gzip` and the body is worth it: a page of
        // matches or the OpenAPI document shrink 6 to 8 times (API Gateway HTTP APIs do not
        // compress; lambda_http sends an encoded body base64, as API Gateway expects). One
        // deflate state per thread, reused: [`gzip`].
        .layer(middleware::from_fn(gzip::compress))
        .layer(middleware::from_fn(request_envelope))
}

/// Whether the request asks for an answer computed now rather than a stored one: `Cache-Control`
/// with `no-cache` or `max-age=0` (RFC 9111, 5.2.1), in any case, among other directives.
pub fn wants_fresh(headers: &axum::http::HeaderMap) -> bool {
    headers.get_all(header::CACHE_CONTROL).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |directive| {
            let directive = directive.trim();
            directive.eq_ignore_ascii_case("no-cache")
                || directive.split_once('=').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("max-age") && value.trim().trim_matches('"') == "0"
                })
        },
    )
}

/// Responses smaller than this are sent as they are.
pub const COMPRESS_ABOVE_BYTES: u64 = gzip::MIN_BYTES;

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_to_500(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The payload may carry data from the request; log only that it happened.
    ApiError::internal("handler panicked").into_response()
}

const SECURITY_HEADERS: [(HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"),
];

/// Request id in and out, security headers, and the request's one EMF document (its metrics and
/// access log line). All of it, and the handler, run in the request's span (every log line
/// carries `request_id`), in [`request_id::scope`] (error bodies carry it too) and in
/// [`crate::metrics::request_scope`] (data points wait for the request's document).
async fn request_envelope(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let ids = request_id::of_request(request.extensions(), request.headers());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());

    let span = tracing::info_span!(
        "request",
        request_id = %ids.id,
        client_request_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        method = %method,
        route = %route
    );
    if let Some(request_id::XrayTraceId(trace)) = request.extensions().get::<request_id::XrayTraceId>() {
        span.record("trace_id", trace.as_str());
    }
    if let Some(client) = &ids.client {
        span.record("client_request_id", client.as_str());
    }
    let trace_id = request.extensions().get::<request_id::XrayTraceId>().map(|t| t.0.clone());
    let client_id = ids.client;
    let id = ids.id;
    let (scope_id, metrics_id) = (id.clone(), id.clone());
    let handled = async move {
        let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
        let headers = response.headers_mut();
        for (name, value) in SECURITY_HEADERS {
            headers.insert(name, HeaderValue::from_static(value));
        }
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert(HeaderName::from_static(request_id::HEADER), value);
        }
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        // The request's EMF document is its access log line (route, status, duration, ids, and
        // the data points the request measured); API Gateway keeps its own access log. The
        // tracing line is for local debugging only.
        span.in_scope(|| {
            tracing::debug!(status, duration_ms = elapsed.as_secs_f64() * 1000.0, "request handled");
        });
        let mut properties = vec![("request_id", id.as_str())];
        if let Some(trace) = &trace_id {
            properties.push(("trace_id", trace.as_str()));
        }
        if let Some(client) = &client_id {
            properties.push(("client_request_id", client.as_str()));
        }
        crate::metrics::http_request(method.as_str(), &route, status, elapsed, &properties);
        response
    };
    request_id::scope(scope_id, crate::metrics::request_scope(metrics_id, handled)).await
}

#[cfg(test)]
mod tests {
    use axum::{
        body::Body,
        http::{Request, StatusCode},
        routing::get,
    };
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[test]
    fn a_fresh_answer_is_asked_for_with_no_cache_or_max_age_0() {
        let ask = |values: &[&str]| {
            let mut headers = axum::http::HeaderMap::new();
            for v in values {
                headers.append(super::header::CACHE_CONTROL, super::HeaderValue::from_str(v).unwrap());
            }
            super::wants_fresh(&headers)
        };
        assert!(ask(&["no-cache"]));
        assert!(ask(&["No-Cache"]));
        assert!(ask(&["no-store, no-cache"]));
        assert!(ask(&["max-age=0"]));
        assert!(ask(&["max-age = \"0\""]));
        assert!(ask(&["no-transform", "no-cache"]), "any of several headers");
        assert!(!ask(&[]));
        assert!(!ask(&["max-age=10"]));
        assert!(!ask(&["max-age=00x"]));
        assert!(!ask(&["no-store"]));
        assert!(!ask(&["no-cacheX"]));
    }

    use super::*;

    async fn boom() -> &'static str {
        panic!("a bug")
    }

    fn app() -> Router {
        finish(
            Router::new()
                .route("/ok", get(|| async { "ok" }))
                .route("/boom", get(boom))
                .route("/internal", get(|| async { ApiError::internal("db password is hunter2") }))
                .route("/page", get(|| async { axum::Json(page()) })),
        )
    }

    fn page() -> serde_json::Value {
        let items: Vec<_> =
            (0..50).map(|i| serde_json::json!({"id": format!("match_{i}"), "status": "TIMED"})).collect();
        serde_json::json!({ "items": items })
    }

    #[tokio::test]
    async fn large_bodies_are_gzipped_for_clients_that_accept_it_and_only_for_them() {
        let req = Request::get("/page").header("accept-encoding", "gzip").body(Body::empty()).unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(res.headers()["content-encoding"], "gzip");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "still every header");
        let compressed = res.into_body().collect().await.unwrap().to_bytes();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut plain).unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&plain).unwrap(), page());
        assert!(compressed.len() * 4 < plain.len(), "{} -> {}", plain.len(), compressed.len());

        let res = app().oneshot(Request::get("/page").body(Body::empty()).unwrap()).await.unwrap();
        assert!(res.headers().get("content-encoding").is_none());
        let req = Request::get("/ok").header("accept-encoding", "gzip").body(Body::empty()).unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert!(res.headers().get("content-encoding").is_none(), "a small body is not worth it");
    }

    async fn call(uri: &str, request_id: Option<&str>) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let mut req = Request::get(uri);
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        let res = app().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, headers, json)
    }

    #[tokio::test]
    async fn every_response_has_security_headers_and_a_request_id() {
        for uri in ["/ok", "/nope", "/boom"] {
            let (_, headers, _) = call(uri, None).await;
            assert_eq!(headers["x-content-type-options"], "nosniff", "{uri}");
            assert_eq!(headers["x-frame-options"], "DENY", "{uri}");
            assert_eq!(headers["strict-transport-security"], "max-age=31536000; includeSubDomains", "{uri}");
            assert!(!headers["x-request-id"].is_empty(), "{uri}");
        }
    }

    #[tokio::test]
    async fn unknown_route_is_a_json_404_carrying_the_request_id() {
        let (status, headers, body) = call("/nope", Some("req-42")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers["x-request-id"], "req-42");
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["request_id"], "req-42");
    }

    #[tokio::test]
    async fn a_500_leaks_nothing() {
        for uri in ["/internal", "/boom"] {
            let (status, _, body) = call(uri, None).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(body["error"]["code"], "internal_error");
            let text = body.to_string();
            assert!(!text.contains("hunter2") && !text.contains("a bug"), "{text}");
        }
    }

    #[tokio::test]
    async fn behind_the_gateway_its_request_id_is_the_one_everywhere() {
        let req = Request::get("/boom")
            .header("x-request-id", "client-chosen")
            .extension(request_id::GatewayRequestId("Hf3xWjyZoAMEVrw=".into()))
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["x-request-id"], "Hf3xWjyZoAMEVrw=");
        let body: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["error"]["request_id"], "Hf3xWjyZoAMEVrw=", "a panic's 500 too");
    }

    #[tokio::test]
    async fn wrong_method_is_a_json_405() {
        let res = app().oneshot(Request::post("/ok").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
