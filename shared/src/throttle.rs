//! Login throttling in DynamoDB: every attempt **reserves** its place in three counters with a
//! conditional update *before* the password is verified, so N concurrent guesses get at most the
//! limit of answers (the counter cannot be read by many and written by each after its verify).
//!
//! | counter (key) | limit per window | past it |
//! |---|---|---|
//! | username from one source (`throttle#login#src#<ip>#user#<h>`) | `LOGIN_MAX_FAILURES` (5) | 429 for that source and username until the window closes |
//! | one source, any username (`throttle#login#src#<ip>`) | `LOGIN_MAX_FAILURES_PER_IP` (50) | 429 for that source until the window closes |
//! | one username, every source (`throttle#login#user#<h>`) | `LOGIN_ACCOUNT_BUDGET` (20) | not a block: one attempt per `LOGIN_ACCOUNT_BACKOFF_SECS` (30) |
//!
//! `<h>` is the keyed hash of the case-folded username ([`crate::auth::identity`]), never the
//! typed text (a password typed into the username field must not be stored). An item is `count`,
//! `expires_at` (epoch seconds, the window's end and the table's TTL attribute) and, for the
//! paced account counter, `next_at`. The counters are reserved in the order of the table and the
//! first refusal stops: a source that is refused for a username does not use up that username's
//! budget, so hammering from one place cannot slow the account down for another place beyond the
//! 5 attempts it got. A successful login gives its reservations back (the pair's item is deleted,
//! the source's and the account's counts go down by one). DynamoDB's TTL deletes items lazily,
//! so an item whose `expires_at` has passed counts as absent and is replaced.
//!
//! When DynamoDB cannot be reached login fails closed (503 naming `dynamodb`): without the
//! counters, a password-guessing attack would be unlimited.

use std::time::Duration;

use aws_sdk_dynamodb::{Client, error::ProvideErrorMetadata, types::AttributeValue};

use crate::{config::AuthConfig, http::ApiError};

/// The longest a throttle call may take before login answers 503.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1500);
const SK: &str = "attempts";
/// How often a reservation is tried again when the counter changed under it (a window opened by
/// a concurrent attempt) before it is refused with `Retry-After: 1`.
const RACE_RETRIES: usize = 8;
/// Every key of this module starts so (the IAM `dynamodb:LeadingKeys` of the auth function).
pub const KEY_PREFIX: &str = "throttle#";

/// Who an attempt is counted against. Usernames are given as their keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// One username from one source address.
    AccountFromSource { account: String, source: String },
    /// One source address, whatever the username.
    Source(String),
    /// One username, from every source.
    Account(String),
}

impl Subject {
    pub fn key(&self) -> String {
        match self {
            // An address has no `#`, so the two parts cannot run into each other.
            Subject::AccountFromSource { account, source } => format!("throttle#login#src#{source}#user#{account}"),
            Subject::Source(ip) => format!("throttle#login#src#{ip}"),
            Subject::Account(account) => format!("throttle#login#user#{account}"),
        }
    }

    /// The three subjects of one login attempt, in the order they are reserved.
    pub fn of_attempt(account_hash: &str, source: &str) -> [Subject; 3] {
        [
            Subject::AccountFromSource { account: account_hash.to_string(), source: source.to_string() },
            Subject::Source(source.to_string()),
            Subject::Account(account_hash.to_string()),
        ]
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
    pub next_at: Option<i64>,
}

/// What a reservation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reserve {
    Granted,
    Refused {
        retry_after: i64,
    },
    /// The item changed under us (a window opened or closed): try again.
    Raced,
}

impl<'a> LoginThrottle<'a> {
    pub fn new(client: &'a Client, table: &'a str, config: &'a AuthConfig) -> Self {
        Self { client, table, config }
    }

    fn limit(&self, subject: &Subject) -> u64 {
        u64::from(match subject {
            Subject::AccountFromSource { .. } => self.config.login_max_failures,
            Subject::Source(_) => self.config.login_max_failures_per_ip,
            Subject::Account(_) => self.config.login_account_budget,
        })
    }

    /// Seconds between attempts once the limit is reached; `None`: blocked until the window ends.
    fn pace(&self, subject: &Subject) -> Option<i64> {
        match subject {
            Subject::Account(_) => Some(self.config.login_account_backoff.as_secs().max(1) as i64),
            _ => None,
        }
    }

    fn window(&self) -> i64 {
        self.config.login_failure_window.as_secs() as i64
    }

    /// Reserves one attempt against each subject in turn: 429 with the seconds to wait at the
    /// first that refuses (the later ones are not charged); 503 when DynamoDB fails.
    pub async fn reserve(&self, subjects: &[Subject], now: i64) -> Result<(), ApiError> {
        for subject in subjects {
            let mut outcome = Reserve::Raced;
            for _ in 0..RACE_RETRIES {
                outcome = self.reserve_one(subject, now).await?;
                if outcome != Reserve::Raced {
                    break;
                }
            }
            match outcome {
                Reserve::Granted => {}
                Reserve::Refused { retry_after } => {
                    return Err(ApiError::TooManyRequests { retry_after_secs: retry_after.max(1) as u64 });
                }
                // Races lost every time: this counter is very busy; refuse briefly rather than pass.
                Reserve::Raced => return Err(ApiError::TooManyRequests { retry_after_secs: 1 }),
            }
        }
        Ok(())
    }

    async fn reserve_one(&self, subject: &Subject, now: i64) -> Result<Reserve, ApiError> {
        let key = subject.key();
        let limit = self.limit(subject);
        // 1. Within an open window and under the limit: one more.
        let within = self
            .update(&key)
            .update_expression("ADD #c :one")
            .condition_expression("#e > :now AND #c < :limit")
            .expression_attribute_names("#c", "count")
            .expression_attribute_names("#e", "expires_at")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":limit", n(limit as i64))
            .send();
        if granted(bounded(within).await?)? {
            return Ok(Reserve::Granted);
        }
        // 2. No item, or its window is over: a new window with this attempt in it.
        let open = self
            .client
            .put_item()
            .table_name(self.table)
            .item("pk", AttributeValue::S(key.clone()))
            .item("sk", AttributeValue::S(SK.into()))
            .item("count", AttributeValue::N("1".into()))
            .item("expires_at", n(now + self.window()))
            .condition_expression("attribute_not_exists(pk) OR #e <= :now")
            .expression_attribute_names("#e", "expires_at")
            .expression_attribute_values(":now", n(now))
            .send();
        if granted(bounded(open).await?)? {
            return Ok(Reserve::Granted);
        }
        // 3. Over the limit of a paced counter and its next slot is open: take the slot (and
        // keep the window open while attempts keep coming).
        if let Some(pace) = self.pace(subject) {
            let slot = self
                .update(&key)
                .update_expression("ADD #c :one SET #n = :next, #e = :end")
                .condition_expression("#e > :now AND #c >= :limit AND (attribute_not_exists(#n) OR #n <= :now)")
                .expression_attribute_names("#c", "count")
                .expression_attribute_names("#e", "expires_at")
                .expression_attribute_names("#n", "next_at")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":limit", n(limit as i64))
                .expression_attribute_values(":next", n(now + pace))
                .expression_attribute_values(":end", n(now + self.window()))
                .send();
            if granted(bounded(slot).await?)? {
                return Ok(Reserve::Granted);
            }
        }
        // 4. Refused: say how long to wait, unless the item changed in between.
        Ok(match self.counter(subject, now).await? {
            Some(c) if c.count >= limit => match self.pace(subject) {
                Some(_) => match c.next_at {
                    Some(next) if next > now => Reserve::Refused { retry_after: next - now },
                    _ => Reserve::Raced,
                },
                None => Reserve::Refused { retry_after: c.expires_at - now },
            },
            _ => Reserve::Raced,
        })
    }

    fn update(&self, key: &str) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .key("sk", AttributeValue::S(SK.into()))
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
            let next_at = number(item.get("next_at"));
            (expires_at > now).then_some(Counter { count: count.max(0) as u64, expires_at, next_at })
        }))
    }

    /// A successful login gives its reservations back: the pair's counter is forgotten, the
    /// source's and the account's go down by one (never below zero).
    pub async fn succeeded(&self, subjects: &[Subject]) -> Result<(), ApiError> {
        let calls = subjects.iter().map(|subject| async move {
            let key = subject.key();
            match subject {
                Subject::AccountFromSource { .. } => {
                    let call = self
                        .client
                        .delete_item()
                        .table_name(self.table)
                        .key("pk", AttributeValue::S(key))
                        .key("sk", AttributeValue::S(SK.into()))
                        .send();
                    granted(bounded(call).await?).map(|_| ())
                }
                _ => {
                    let call = self
                        .update(&key)
                        .update_expression("ADD #c :minus")
                        .condition_expression("#c > :zero")
                        .expression_attribute_names("#c", "count")
                        .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
                        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                        .send();
                    granted(bounded(call).await?).map(|_| ())
                }
            }
        });
        futures::future::join_all(calls).await.into_iter().collect::<Result<Vec<_>, _>>().map(|_| ())
    }
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `true` when the call succeeded, `false` when its condition failed, a 503 otherwise.
fn granted<O, E, R>(result: Result<O, aws_sdk_dynamodb::error::SdkError<E, R>>) -> Result<bool, ApiError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e))),
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
    fn keys_separate_kinds_and_start_with_the_prefix() {
        let [pair, source, account] = Subject::of_attempt("ab12", "10.0.0.1");
        assert_eq!(pair.key(), "throttle#login#src#10.0.0.1#user#ab12");
        assert_eq!(source.key(), "throttle#login#src#10.0.0.1");
        assert_eq!(account.key(), "throttle#login#user#ab12");
        assert!([pair, source, account].iter().all(|s| s.key().starts_with(KEY_PREFIX)));
    }
}
