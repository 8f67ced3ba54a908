//! The request id: one id per request, end to end. Behind API Gateway it is the gateway's own
//! `requestContext.requestId` (the `$context.requestId` of the access log), which the function's
//! Lambda adapter puts in the request's extensions as [`GatewayRequestId`]; it is then the
//! `X-Request-Id` of the response, the `request_id` of an error body, a field of every log line of
//! the request and a property of its EMF metrics document.
//!
//! A client's own `X-Request-Id` never replaces the gateway's id (a client could reuse or forge
//! one, and the gateway's is the one its access log has): behind the gateway a well-formed one is
//! only logged beside it as `client_request_id`, so a client can still find its call. Without a
//! gateway (plain axum: tests, tools) a well-formed client id is used, else a new UUID.

use axum::http::{Extensions, HeaderMap};

pub const HEADER: &str = "x-request-id";

/// API Gateway's `requestContext.requestId` of the request being handled (set by the Lambda
/// adapter of the function; the domain crate has no Lambda dependency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRequestId(pub String);

/// The X-Ray trace id of the invocation (`Root=1-...;Parent=...;Sampled=1`, the Lambda
/// context's, as `_X_AMZN_TRACE_ID` has it), set by the Lambda adapter: every log line of the
/// request carries it as `trace_id`, so a log line leads to the request's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrayTraceId(pub String);

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The ids of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIds {
    /// The id of the request everywhere: the gateway's, else a well-formed client id, else new.
    pub id: String,
    /// A well-formed client-sent `X-Request-Id` that is not [`RequestIds::id`] (behind the gateway).
    pub client: Option<String>,
}

/// The request's ids from its extensions ([`GatewayRequestId`]) and headers.
pub fn of_request(extensions: &Extensions, headers: &HeaderMap) -> RequestIds {
    let client = headers.get(HEADER).and_then(|v| v.to_str().ok()).filter(|v| is_well_formed(v)).map(str::to_string);
    match extensions.get::<GatewayRequestId>().filter(|g| is_well_formed(&g.0)) {
        Some(GatewayRequestId(gateway)) => RequestIds { id: gateway.clone(), client: client.filter(|c| c != gateway) },
        None => RequestIds { id: client.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()), client: None },
    }
}

/// A client-supplied id is kept only if it is short and made of safe characters (it goes into
/// logs and headers); otherwise a new one is made.
pub fn from_headers_or_new(headers: &HeaderMap) -> String {
    of_request(&Extensions::new(), headers).id
}

fn is_well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_safe_id_and_replaces_an_unsafe_one() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, "abc-123".parse().unwrap());
        assert_eq!(from_headers_or_new(&h), "abc-123");
        h.insert(HEADER, "bad id\twith spaces".parse().unwrap());
        let fresh = from_headers_or_new(&h);
        assert_ne!(fresh, "bad id\twith spaces");
        assert_eq!(fresh.len(), 36);
    }

    #[test]
    fn the_gateway_id_wins_and_the_client_id_is_kept_beside_it() {
        let mut ext = Extensions::new();
        // HTTP API request ids look like this (base64-ish with a trailing `=`)
        ext.insert(GatewayRequestId("Hf3xWjyZoAMEVrw=".into()));
        let mut h = HeaderMap::new();
        h.insert(HEADER, "client-chosen".parse().unwrap());
        let ids = of_request(&ext, &h);
        assert_eq!(ids.id, "Hf3xWjyZoAMEVrw=");
        assert_eq!(ids.client.as_deref(), Some("client-chosen"));
        assert_eq!(of_request(&ext, &HeaderMap::new()).client, None);
    }
}
