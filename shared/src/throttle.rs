//! Failed-login throttling per username and per source IP, counted in DynamoDB with a TTL.
//!
//! One item per subject: `pk = throttle#login#user#<username>` (or `...#ip#<address>`),
//! `sk = failures`, with `count` and `expires_at` (epoch seconds, the table's TTL attribute). The
//! first failure opens a window (`LOGIN_FAILURE_WINDOW_SECS`); each failure in it adds one; once
//! `count` reaches the limit every login of that subject is refused with 429 until the window
//! closes, `Retry-After` saying when, and a correct password is refused too. A success deletes
//! the username's item (not the address's: one good account does not clear a spraying address).
//! DynamoDB's TTL deletes items lazily, so an item whose `expires_at` has passed counts as absent.
//!
//! When DynamoDB cannot be reached login fails closed (503 naming `dynamodb`): without the
//! counters, a password-guessing attack would be unlimited.

use std::time::Duration;

use aws_sdk_dynamodb::{Client, types::AttributeValue};

use crate::{config::AuthConfig, http::ApiError};

/// The longest a throttle call may take before login answers 503.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1500);
const SK: &str = "failures";

/// Who a failure is counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Username(String),
    SourceIp(String),
}

impl Subject {
    pub fn key(&self) -> String {
        match self {
            // Usernames are case-folded so `Ann` and `ann` share a counter.
            Subject::Username(u) => format!("throttle#login#user#{}", u.to_lowercase()),
            Subject::SourceIp(ip) => format!("throttle#login#ip#{ip}"),
        }
    }
}

/// The login throttle over one DynamoDB table.
pub struct LoginThrottle<'a> {
    client: &'a Client,
    table: &'a str,
    config: &'a AuthConfig,
}

/// The state of one subject's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub count: u64,
    pub expires_at: i64,
}

impl<'a> LoginThrottle<'a> {
    pub fn new(client: &'a Client, table: &'a str, config: &'a AuthConfig) -> Self {
        Self { client, table, config }
    }

    fn limit(&self, subject: &Subject) -> u64 {
        match subject {
            Subject::Username(_) => u64::from(self.config.login_max_failures),
            Subject::SourceIp(_) => u64::from(self.config.login_max_failures_per_ip),
        }
    }

    /// 429 with the seconds to wait when any subject is over its limit; 503 when DynamoDB fails.
    pub async fn check(&self, subjects: &[Subject], now: i64) -> Result<(), ApiError> {
        let reads = futures::future::join_all(subjects.iter().map(|s| self.counter(s, now))).await;
        let mut retry_after: Option<i64> = None;
        for (subject, counter) in subjects.iter().zip(reads) {
            if let Some(c) = counter?
                && c.count >= self.limit(subject)
            {
                let wait = c.expires_at - now;
                retry_after = Some(retry_after.map_or(wait, |w| w.max(wait)));
            }
        }
        match retry_after {
            Some(wait) => Err(ApiError::TooManyRequests { retry_after_secs: wait.max(1) as u64 }),
            None => Ok(()),
        }
    }

    /// The live counter of `subject` (an expired item is none).
    pub async fn counter(&self, subject: &Subject, now: i64) -> Result<Option<Counter>, ApiError> {
        let call = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(subject.key()))
            .key("sk", AttributeValue::S(SK.into()))
            .consistent_read(true)
            .send();
        let out = bounded(call).await?.map_err(|e| unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(out.item().and_then(|item| {
            let count = number(item.get("count"))?;
            let expires_at = number(item.get("expires_at"))?;
            (expires_at > now).then_some(Counter { count: count.max(0) as u64, expires_at })
        }))
    }

    /// Counts one failure against each subject.
    pub async fn record_failure(&self, subjects: &[Subject], now: i64) -> Result<(), ApiError> {
        let writes = futures::future::join_all(subjects.iter().map(|s| self.add_failure(s, now))).await;
        writes.into_iter().collect::<Result<Vec<_>, _>>().map(|_| ())
    }

    async fn add_failure(&self, subject: &Subject, now: i64) -> Result<(), ApiError> {
        let expires_at = now + self.config.login_failure_window.as_secs() as i64;
        let update = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(subject.key()))
            .key("sk", AttributeValue::S(SK.into()))
            .update_expression("ADD #c :one SET #e = if_not_exists(#e, :exp)")
            .condition_expression("attribute_not_exists(pk) OR #e > :now")
            .expression_attribute_names("#c", "count")
            .expression_attribute_names("#e", "expires_at")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send();
        match bounded(update).await? {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                // A stale item whose window closed but that TTL has not deleted yet: a new window.
                let put = self
                    .client
                    .put_item()
                    .table_name(self.table)
                    .item("pk", AttributeValue::S(subject.key()))
                    .item("sk", AttributeValue::S(SK.into()))
                    .item("count", AttributeValue::N("1".into()))
                    .item("expires_at", AttributeValue::N(expires_at.to_string()))
                    .send();
                bounded(put)
                    .await?
                    .map(|_| ())
                    .map_err(|e| unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e)))
            }
            Err(e) => Err(unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e))),
        }
    }

    /// Forgets the failures of `subject` (a successful login resets its username).
    pub async fn reset(&self, subject: &Subject) -> Result<(), ApiError> {
        let call = self
            .client
            .delete_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(subject.key()))
            .key("sk", AttributeValue::S(SK.into()))
            .send();
        bounded(call).await?.map(|_| ()).map_err(|e| unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e)))
    }
}

fn number(v: Option<&AttributeValue>) -> Option<i64> {
    v.and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

async fn bounded<F: std::future::Future>(call: F) -> Result<F::Output, ApiError> {
    tokio::time::timeout(CALL_TIMEOUT, call).await.map_err(|_| unavailable("timed out"))
}

fn unavailable(cause: impl std::fmt::Display) -> ApiError {
    crate::metrics::dependency_error("dynamodb");
    ApiError::unavailable("dynamodb", cause.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_case_and_separate_kinds() {
        assert_eq!(Subject::Username("Ann".into()).key(), "throttle#login#user#ann");
        assert_eq!(Subject::SourceIp("10.0.0.1".into()).key(), "throttle#login#ip#10.0.0.1");
    }
}
