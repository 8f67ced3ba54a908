//! The request id: taken from a well-formed incoming `X-Request-Id` (API Gateway's own id is
//! passed this way by the function's Lambda adapter) or generated, and visible to every error
//! response built while the request is handled.

use axum::http::HeaderMap;

pub const HEADER: &str = "x-request-id";

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

/// A client-supplied id is kept only if it is short and made of safe characters (it goes into
/// logs and headers); otherwise a new one is made.
pub fn from_headers_or_new(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_well_formed(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn is_well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
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
}
