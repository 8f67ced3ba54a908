//! Cached reads answered with the cached JSON as it is (issue 13).
//!
//! [`super::cached`] decodes a hit from Redis into its Rust type, and the handler encodes it again
//! as JSON: for a page of 50 matches that round trip was 28% of a warm `GET /api/matches` (its
//! largest cost after gzip). A cached read here hands the bytes from Redis to the client as they
//! are; a miss encodes the page once, for the cache and the response.
//!
//! The bytes are the JSON of the response body, so the cache key names their format
//! ([`BODY_FORMAT`]): bump it when the shape of a cached body changes, so that a new deployment
//! never serves a body of the old shape (the entries expire within their TTL anyway).

use std::time::Duration;

use axum::{
    body::Bytes,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{MatchFilter, Ttl, data_version, query_matches, record_cache};
use crate::{http::ApiError, services::Services};

/// The format of the cached bodies, part of their keys.
pub const BODY_FORMAT: u32 = 1;

/// A JSON response body, already encoded.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Bytes);

impl IntoResponse for JsonBody {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// The cached body under `key`, else `load`'s value encoded once, cached for `ttl` and returned.
pub async fn cached_body<T, F>(
    services: &Services,
    kind: &str,
    key: &str,
    ttl: Duration,
    load: F,
) -> Result<JsonBody, ApiError>
where
    T: Serialize,
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let key = format!("body{BODY_FORMAT}:{key}");
    if let Some(bytes) = services.cache.get_bytes(&key).await {
        record_cache(kind, true);
        return Ok(JsonBody(bytes.into()));
    }
    record_cache(kind, false);
    let value = load.await?;
    let bytes = serde_json::to_vec(&value).map_err(ApiError::internal)?;
    services.cache.set_bytes(&key, bytes.clone(), ttl).await;
    Ok(JsonBody(bytes.into()))
}

/// `GET /api/matches` as its JSON body: [`super::list_matches`] without decoding and encoding a
/// cached page again.
pub async fn list_matches_body(services: &Services, filter: &MatchFilter) -> Result<JsonBody, ApiError> {
    let pool = services.db.pool().await?;
    let version = data_version(pool).await?;
    let key = format!("catalog:matches:v{version}:{}", filter.digest());
    cached_body(services, "match_list", &key, Ttl::MATCH_LIST, query_matches(pool, filter)).await
}
