//! Cached reads answered with the cached JSON as it is (issue 13), in one Redis round trip.
//!
//! A cached read hands the bytes from Redis to the client as they are (decoding a hit and encoding
//! it again was 28% of a warm `GET /api/matches`); a miss encodes the answer once, for the cache
//! and the response. [`cached_read`] fetches the caller's account state, the data version
//! ([`super::version_key`]) and the body with one `MGET`: a warm cached read is that round trip
//! and nothing else (before: the account from Redis, the version from PostgreSQL, the body from
//! Redis).
//!
//! A stored entry is the data version it was built from, a newline, and the JSON of the response
//! body. Its key names the format ([`BODY_FORMAT`]): bump it when the shape of a cached body
//! changes, so that a new deployment never serves a body of the old shape.

use std::time::Duration;

use axum::{
    body::Bytes,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use sqlx::PgPool;

use super::{VERSION_TTL, data_version, record_cache, version_key};
use crate::{auth::UncheckedUser, http::ApiError, services::Services};

/// The format of the cached entries, part of their keys (2: the version, a newline, the body).
pub const BODY_FORMAT: u32 = 2;

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

/// The body of a stored entry when it was built from `version`, else `None` (also the format of
/// the cached match contexts of predictions, [`crate::predictions`]).
pub(crate) fn body_of(entry: Vec<u8>, version: &[u8]) -> Option<Bytes> {
    let head = version.len();
    if entry.len() > head && entry.starts_with(version) && entry[head] == b'\n' {
        Some(Bytes::from(entry).slice(head + 1..))
    } else {
        None
    }
}

/// The entry stored for `body` built from `version`.
pub(crate) fn entry_of(version: &[u8], body: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(version.len() + 1 + body.len());
    entry.extend_from_slice(version);
    entry.push(b'\n');
    entry.extend_from_slice(body);
    entry
}

/// Who may read a cached entry, and whether a stored entry may answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadPolicy {
    /// Only an admin's account may read it (else 403, after the account check).
    pub admin_only: bool,
    /// Load and store it even when an entry of the current version is stored (the client asked
    /// for a fresh answer with `Cache-Control: no-cache`).
    pub refresh: bool,
}

/// The Redis key of the entry stored under `key`. It names the database (the scope) as the
/// version does: two databases sharing one Redis (tests, a local stack) never answer with each
/// other's entries.
pub fn entry_key(services: &Services, key: &str) -> String {
    format!("body{BODY_FORMAT}:{}:{key}", services.cache_scope())
}

/// A catalog read for `caller`: [`cached_read_with`] with the default [`ReadPolicy`] (any active
/// account; a stored entry of the current version answers).
pub async fn cached_read<'s, T, F>(
    services: &'s Services,
    caller: UncheckedUser,
    kind: &str,
    key: &str,
    ttl: impl FnOnce(&T) -> Duration,
    load: impl FnOnce(&'s PgPool) -> F,
) -> Result<JsonBody, ApiError>
where
    T: Serialize,
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    cached_read_with(services, caller, ReadPolicy::default(), kind, key, ttl, load).await
}

/// A cached read for `caller`: one `MGET` of the caller's account state, the data version and
/// the entry under `key`; the account is checked (from PostgreSQL when Redis had no entry) before
/// anything else, and its role when the policy says admins only; the version comes from
/// PostgreSQL when Redis had none (then offered with `SET NX`, [`VERSION_TTL`]); an entry of the
/// current version is the answer (unless the policy asks for a refresh), else `load`'s value is
/// encoded once, stored with the version for `ttl(&value)` and returned. The pool is asked for
/// only when PostgreSQL is read (a cached read opens no connection).
pub async fn cached_read_with<'s, T, F>(
    services: &'s Services,
    caller: UncheckedUser,
    policy: ReadPolicy,
    kind: &str,
    key: &str,
    ttl: impl FnOnce(&T) -> Duration,
    load: impl FnOnce(&'s PgPool) -> F,
) -> Result<JsonBody, ApiError>
where
    T: Serialize,
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let keys = [services.account_key(caller.claimed_id()), version_key(services), entry_key(services, key)];
    let mut values = services.cache.get_many(&keys).await.into_iter();
    let (account, version, entry) = (values.next().flatten(), values.next().flatten(), values.next().flatten());
    let user = services.check_account_prefetched(caller.claimed, caller.token_version, account.as_deref()).await?;
    if policy.admin_only && !user.is_admin() {
        return Err(ApiError::Forbidden("admin role required".into()));
    }
    let version = match version {
        Some(version) => version,
        None => {
            let version = data_version(services.db.pool().await?).await?.into_bytes();
            services.cache.set_bytes_if_absent(&keys[1], version.clone(), VERSION_TTL).await;
            version
        }
    };
    if !policy.refresh
        && let Some(body) = entry.and_then(|e| body_of(e, &version))
    {
        record_cache(kind, true);
        return Ok(JsonBody(body));
    }
    record_cache(kind, false);
    let value = load(services.db.pool().await?).await?;
    let body = serde_json::to_vec(&value).map_err(ApiError::internal)?;
    services.cache.set_bytes(&keys[2], entry_of(&version, &body), ttl(&value)).await;
    Ok(JsonBody(body.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_answers_only_for_the_version_it_was_built_from() {
        let entry = entry_of(b"db:7.2", br#"{"items":[]}"#);
        assert_eq!(body_of(entry.clone(), b"db:7.2").as_deref(), Some(&br#"{"items":[]}"#[..]));
        assert_eq!(body_of(entry.clone(), b"db:8.2"), None, "another version");
        assert_eq!(body_of(entry.clone(), b"db:7"), None, "a prefix of the version is not the version");
        assert_eq!(body_of(entry, b"db:7.20"), None);
        assert_eq!(body_of(b"db:7.2".to_vec(), b"db:7.2"), None, "no body");
        assert_eq!(body_of(br#"{"items":[]}"#.to_vec(), b"db:7.2"), None, "an entry of the old format");
    }
}
