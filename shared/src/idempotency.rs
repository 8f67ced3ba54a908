//! Idempotency-Key records in DynamoDB: the same key and body within 24 hours returns the first
//! response; the same key with another body is a 422.
//!
//! One item per caller and key (`pk = idem#<scope>#<sha256(key)>`, `sk = idempotency`) expiring
//! with the table's TTL attribute `expires_at`. A request first *reserves* the key with a
//! conditional put (state `pending`, a 30 s lease); when it has its answer it *completes* the
//! record with the status and body; when it fails it *abandons* the reservation so that a retry
//! can proceed. A second request meeting a pending record of the same body gets a 409 (the first
//! is still running); one meeting a completed record gets its response replayed. A reservation
//! whose lease ran out (its request died) can be taken over.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::{Services, http::ApiError};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// How long a key is remembered.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long a reservation holds before another request may take it over.
pub const LEASE: Duration = Duration::from_secs(30);
const SORT_KEY: &str = "idempotency";

/// The `Idempotency-Key` header, validated: absent is `None`; 1 to 255 visible ASCII characters,
/// else a 400 naming the header.
pub fn key_from_headers(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else { return Ok(None) };
    let text = value.to_str().map_err(|_| ApiError::invalid_field("Idempotency-Key", "must be visible ASCII"))?;
    let text = text.trim();
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field("Idempotency-Key", "expected 1 to 255 visible ASCII characters"));
    }
    Ok(Some(text.to_string()))
}

/// A digest of a JSON request body, independent of whitespace and key order.
pub fn body_hash(body: &serde_json::Value) -> String {
    let mut text = String::new();
    canonical(body, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// JSON with object keys sorted at every level (whatever serde_json's map order is).
fn canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A reserved key: complete or abandon it.
#[derive(Debug, Clone)]
pub struct Reservation {
    pk: String,
    token: String,
}

/// What to do with a request carrying a key.
#[derive(Debug)]
pub enum Begin {
    /// First time: do the work, then [`complete`] (or [`abandon`]).
    Proceed(Reservation),
    /// Seen before with the same body: answer this.
    Replay { status: u16, body: serde_json::Value },
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::unavailable("idempotency store", e)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<i64> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

/// Reserves `key` of `scope` (the caller) for a request whose body hashes to `hash`.
#[tracing::instrument(name = "dynamodb.idempotency_begin", skip_all)]
pub async fn begin(services: &Services, scope: &str, key: &str, hash: &str) -> Result<Begin, ApiError> {
    let client = services.aws.dynamodb().await;
    let table = &services.config.aws.table_name;
    let pk = format!("idem#{scope}#{}", hex::encode(Sha256::digest(key.as_bytes())));
    let now = chrono::Utc::now().timestamp();
    let token = uuid::Uuid::new_v4().to_string();
    for _ in 0..3 {
        let put = client
            .put_item()
            .table_name(table)
            .item("pk", s(&pk))
            .item("sk", s(SORT_KEY))
            .item("state", s("pending"))
            .item("body_hash", s(hash))
            .item("token", s(&token))
            .item("lease_until", n(now + LEASE.as_secs() as i64))
            .item("expires_at", n(now + RETENTION.as_secs() as i64))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now OR (#state = :pending AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await;
        match put {
            Ok(_) => return Ok(Begin::Proceed(Reservation { pk, token })),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(unavailable(e)),
        }
        let existing = client
            .get_item()
            .table_name(table)
            .key("pk", s(&pk))
            .key("sk", s(SORT_KEY))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = existing.item else { continue }; // expired and deleted meanwhile: try again
        if get_n(&item, "expires_at").is_some_and(|t| t < now) {
            continue;
        }
        if get_s(&item, "body_hash") != Some(hash) {
            return Err(ApiError::Unprocessable(
                "Idempotency-Key was already used with a different request body".into(),
            ));
        }
        match get_s(&item, "state") {
            Some("done") => {
                let status = get_n(&item, "status").and_then(|v| u16::try_from(v).ok()).unwrap_or(200);
                let body = get_s(&item, "response").and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
                return Ok(Begin::Replay { status, body });
            }
            _ => {
                if get_n(&item, "lease_until").is_some_and(|t| t < now) {
                    continue;
                }
                return Err(ApiError::Conflict(
                    "a request with this Idempotency-Key is still in progress; retry shortly".into(),
                ));
            }
        }
    }
    Err(ApiError::Conflict("a request with this Idempotency-Key is still in progress; retry shortly".into()))
}

/// Stores the response of a reserved request.
#[tracing::instrument(name = "dynamodb.idempotency_complete", skip_all)]
pub async fn complete(
    services: &Services,
    reservation: &Reservation,
    status: u16,
    body: &serde_json::Value,
) -> Result<(), ApiError> {
    services
        .aws
        .dynamodb()
        .await
        .update_item()
        .table_name(&services.config.aws.table_name)
        .key("pk", s(&reservation.pk))
        .key("sk", s(SORT_KEY))
        .update_expression("SET #state = :done, #status = :status, #response = :response")
        .condition_expression("#token = :token")
        .expression_attribute_names("#state", "state")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#response", "response")
        .expression_attribute_names("#token", "token")
        .expression_attribute_values(":done", s("done"))
        .expression_attribute_values(":status", n(i64::from(status)))
        .expression_attribute_values(":response", s(body.to_string()))
        .expression_attribute_values(":token", s(&reservation.token))
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Releases a reservation whose request failed, so that a retry with the same key can proceed.
/// A failure is logged: the lease runs out by itself.
pub async fn abandon(services: &Services, reservation: &Reservation) {
    let result = services
        .aws
        .dynamodb()
        .await
        .delete_item()
        .table_name(&services.config.aws.table_name)
        .key("pk", s(&reservation.pk))
        .key("sk", s(SORT_KEY))
        .condition_expression("#token = :token")
        .expression_attribute_names("#token", "token")
        .expression_attribute_values(":token", s(&reservation.token))
        .send()
        .await;
    if let Err(error) = result {
        tracing::warn!(error = %error, "could not release an idempotency reservation; its lease expires");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_hash_ignores_layout_and_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1, "b":"x"}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "b" : "x", "a" : 1 }"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"a":2,"b":"x"}"#).unwrap();
        assert_eq!(body_hash(&a), body_hash(&b));
        assert_ne!(body_hash(&a), body_hash(&c));
    }

    #[test]
    fn header_is_validated() {
        let mut h = HeaderMap::new();
        assert_eq!(key_from_headers(&h).unwrap(), None);
        h.insert(HEADER, "abc-123".parse().unwrap());
        assert_eq!(key_from_headers(&h).unwrap().as_deref(), Some("abc-123"));
        h.insert(HEADER, "has space".parse().unwrap());
        assert!(key_from_headers(&h).unwrap_err().to_string().starts_with("Idempotency-Key:"));
        h.insert(HEADER, "x".repeat(256).parse().unwrap());
        assert!(key_from_headers(&h).is_err());
    }
}
