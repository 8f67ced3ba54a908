//! Feature flags: switches an admin turns on and off at run time, without a deploy.
//!
//! They live in one item of the service's DynamoDB table (`pk = config#feature-flags`,
//! `sk = current`), one attribute per flag, with a `version` counter and who changed them last.
//! Each function instance reads the item at most once per `FEATURE_FLAGS_CACHE_TTL_SECS` (at most
//! 30, default 30) and keeps it in memory in between, so a change made through `PATCH
//! /api/admin/flags` applies everywhere within that time. A flag the item does not carry has its
//! default: the configuration's `REGISTRATION_OPEN` for registration, everything else on, the
//! maintenance mode off.
//!
//! Why DynamoDB and not AWS AppConfig: the table is already there, every API function already
//! reaches it (gateway endpoint, IAM), a read is one `GetItem` of a few milliseconds, it runs
//! against the local emulator in tests, and an admin changes it through the API with the same
//! token as every other admin action. AppConfig would add a Lambda extension layer or a
//! configuration session per instance, a deployment strategy per change and a second way for an
//! operator to change a flag, none of which four booleans need.
//!
//! When DynamoDB cannot be read the last value read is kept (or the defaults, before any read),
//! for [`FAILURE_BACKOFF`] before the next try: a flag store outage never fails a request.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, ReturnValue},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{engine::Strategy, http::ApiError, ids::UserId};

/// The key of the flags item.
pub const PK: &str = "config#feature-flags";
pub const SK: &str = "current";
/// The longest an instance may keep flags before reading them again.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(30);
/// How long a failed read is not retried (the last value, or the defaults, are used meanwhile).
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// The longest a flags call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1000);
/// `Retry-After` of a write refused in maintenance mode: by then a change of the flag has reached
/// every instance.
pub const MAINTENANCE_RETRY_AFTER_SECS: u64 = 30;

/// Whether each prediction strategy may be used for new predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StrategyFlags {
    pub statistical: bool,
    pub historical: bool,
    pub ml_model: bool,
    pub market: bool,
}

impl StrategyFlags {
    pub fn enabled(&self, strategy: Strategy) -> bool {
        match strategy {
            Strategy::Statistical => self.statistical,
            Strategy::Historical => self.historical,
            Strategy::MlModel => self.ml_model,
            Strategy::Market => self.market,
        }
    }
}

/// The feature flags in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeatureFlags {
    /// `POST /api/auth/register` accepts new accounts (403 otherwise).
    pub registration_open: bool,
    /// Read-only maintenance: every write (register, create a prediction, change an account)
    /// answers 503 with `Retry-After`; reads, sign-in and this flag's own `PATCH` still work.
    pub maintenance_mode: bool,
    /// Predictions show the bookmakers' opening odds beside them (`market`).
    pub market_comparison: bool,
    /// Strategies that may be used for new predictions (a disabled one answers 403).
    pub strategies: StrategyFlags,
    /// How many times the flags were changed (0: never, these are the defaults).
    pub version: u64,
    /// When they were last changed.
    pub updated_at: Option<DateTime<Utc>>,
    /// The admin who changed them last (`user_1`).
    #[schema(example = "user_1")]
    pub updated_by: Option<String>,
}

impl FeatureFlags {
    /// The flags before any change: registration as configured, everything else on, no maintenance.
    pub fn defaults(registration_open: bool) -> Self {
        FeatureFlags {
            registration_open,
            maintenance_mode: false,
            market_comparison: true,
            strategies: StrategyFlags { statistical: true, historical: true, ml_model: true, market: true },
            version: 0,
            updated_at: None,
            updated_by: None,
        }
    }

    /// The flags of a stored item; a missing attribute keeps its default.
    fn from_item(item: &std::collections::HashMap<String, AttributeValue>, defaults: &FeatureFlags) -> Self {
        let flag =
            |name: &str, default: bool| item.get(name).and_then(|v| v.as_bool().ok()).copied().unwrap_or(default);
        let s = &defaults.strategies;
        FeatureFlags {
            registration_open: flag("registration_open", defaults.registration_open),
            maintenance_mode: flag("maintenance_mode", defaults.maintenance_mode),
            market_comparison: flag("market_comparison", defaults.market_comparison),
            strategies: StrategyFlags {
                statistical: flag("strategy_statistical", s.statistical),
                historical: flag("strategy_historical", s.historical),
                ml_model: flag("strategy_ml_model", s.ml_model),
                market: flag("strategy_market", s.market),
            },
            version: item.get("version").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0),
            updated_at: item
                .get("updated_at")
                .and_then(|v| v.as_s().ok())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc)),
            updated_by: item.get("updated_by").and_then(|v| v.as_s().ok()).cloned(),
        }
    }
}

/// A field that may be left out but, when given, is a value: `null` is refused, as the schema says.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Strategies to switch: only the ones given change (at least one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct StrategyChange {
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub statistical: Option<bool>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub historical: Option<bool>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ml_model: Option<bool>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub market: Option<bool>,
}

/// The body of `PATCH /api/admin/flags`: the flags to change, at least one; the others keep
/// their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct FlagsChange {
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub registration_open: Option<bool>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub maintenance_mode: Option<bool>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub market_comparison: Option<bool>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub strategies: Option<StrategyChange>,
}

impl FlagsChange {
    /// The `(attribute, value)` pairs to set; a 400 when there are none.
    pub fn assignments(&self) -> Result<Vec<(&'static str, bool)>, ApiError> {
        // `strategies` names at least one strategy (the document's `minProperties: 1`).
        if self.strategies.as_ref().is_some_and(|s| *s == StrategyChange::default()) {
            return Err(ApiError::invalid_field(
                "strategies",
                "name at least one of statistical, historical, ml_model, market",
            ));
        }
        let s = self.strategies.clone().unwrap_or_default();
        let all = [
            ("registration_open", self.registration_open),
            ("maintenance_mode", self.maintenance_mode),
            ("market_comparison", self.market_comparison),
            ("strategy_statistical", s.statistical),
            ("strategy_historical", s.historical),
            ("strategy_ml_model", s.ml_model),
            ("strategy_market", s.market),
        ];
        let set: Vec<(&'static str, bool)> = all.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
        if set.is_empty() {
            return Err(ApiError::bad_request(
                "nothing to change: give at least one of registration_open, maintenance_mode, market_comparison, \
                 strategies.{statistical,historical,ml_model,market}",
            ));
        }
        Ok(set)
    }
}

struct Cached {
    read_at: Instant,
    /// How long this value may be used (the TTL, or the failure backoff).
    valid_for: Duration,
    flags: FeatureFlags,
}

/// This instance's view of the flags: read from DynamoDB at most once per TTL.
pub struct FlagStore {
    ttl: Duration,
    defaults: FeatureFlags,
    cached: Mutex<Option<Cached>>,
}

impl FlagStore {
    pub fn new(ttl: Duration, registration_open_default: bool) -> Self {
        FlagStore {
            ttl: ttl.min(MAX_CACHE_TTL),
            defaults: FeatureFlags::defaults(registration_open_default),
            cached: Mutex::new(None),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn fresh(&self) -> Option<FeatureFlags> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        cached.as_ref().filter(|c| c.read_at.elapsed() < c.valid_for).map(|c| c.flags.clone())
    }

    fn keep(&self, flags: FeatureFlags, valid_for: Duration) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Cached { read_at: Instant::now(), valid_for, flags });
    }

    /// The flags in force: from memory within the TTL, else read from the table.
    pub async fn current(&self, client: &Client, table: &str) -> FeatureFlags {
        if let Some(flags) = self.fresh() {
            return flags;
        }
        match self.read(client, table).await {
            Ok(flags) => {
                self.keep(flags.clone(), self.ttl);
                flags
            }
            Err(e) => {
                let last = self.cached.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|c| c.flags.clone());
                let kept = if last.is_some() { "the last value read" } else { "the defaults" };
                tracing::warn!(error = %e, kept, "feature flags unreadable");
                let flags = last.unwrap_or_else(|| self.defaults.clone());
                self.keep(flags.clone(), FAILURE_BACKOFF.min(self.ttl.max(Duration::from_millis(1))));
                flags
            }
        }
    }

    /// Reads the item (consistently: a change is seen by the next read).
    #[tracing::instrument(name = "dynamodb.get_item", skip_all, fields(item = PK))]
    pub async fn read(&self, client: &Client, table: &str) -> Result<FeatureFlags, ApiError> {
        let call = client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(PK.into()))
            .key("sk", AttributeValue::S(SK.into()))
            .consistent_read(true)
            .send();
        let out = bounded(call).await?.map_err(|e| unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(out.item().map_or_else(|| self.defaults.clone(), |item| FeatureFlags::from_item(item, &self.defaults)))
    }

    /// Applies `change` (only the flags it names) in one conditional-free update, counts the
    /// version up, and keeps the result as this instance's view. 400 on an empty change, 503 when
    /// DynamoDB fails.
    #[tracing::instrument(name = "dynamodb.update_item", skip_all, fields(item = PK))]
    pub async fn update(
        &self,
        client: &Client,
        table: &str,
        change: &FlagsChange,
        by: UserId,
        now: DateTime<Utc>,
    ) -> Result<FeatureFlags, ApiError> {
        let set = change.assignments()?;
        let mut update = client
            .update_item()
            .table_name(table)
            .key("pk", AttributeValue::S(PK.into()))
            .key("sk", AttributeValue::S(SK.into()))
            .return_values(ReturnValue::AllNew)
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#updated_at", "updated_at")
            .expression_attribute_names("#updated_by", "updated_by")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":at", AttributeValue::S(now.to_rfc3339()))
            .expression_attribute_values(":by", AttributeValue::S(by.to_string()));
        let mut assignments = vec!["#updated_at = :at".to_string(), "#updated_by = :by".to_string()];
        for (i, (name, value)) in set.iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#f{i}"), *name)
                .expression_attribute_values(format!(":f{i}"), AttributeValue::Bool(*value));
            assignments.push(format!("#f{i} = :f{i}"));
        }
        let out = bounded(update.update_expression(format!("SET {} ADD #version :one", assignments.join(", "))).send())
            .await?
            .map_err(|e| unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        let flags = out
            .attributes()
            .map_or_else(|| self.defaults.clone(), |item| FeatureFlags::from_item(item, &self.defaults));
        self.keep(flags.clone(), self.ttl);
        Ok(flags)
    }
}

async fn bounded<F: std::future::Future>(call: F) -> Result<F::Output, ApiError> {
    tokio::time::timeout(CALL_TIMEOUT, call).await.map_err(|_| unavailable("timed out"))
}

fn unavailable(cause: impl std::fmt::Display) -> ApiError {
    crate::metrics::dependency_error("dynamodb");
    ApiError::unavailable("dynamodb", cause.to_string())
}

/// Whether `method path` is a write that the maintenance mode refuses. Reads, sign-in (login,
/// refresh, logout: sessions, not data) and the flags themselves (so an admin can turn the
/// maintenance off) stay open.
pub fn refused_in_maintenance(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    !matches!(path, "/api/auth/login" | "/api/auth/refresh" | "/api/auth/logout" | "/api/admin/flags")
}

/// Layer of every API function that writes: in maintenance mode a write answers 503 with
/// `Retry-After` before its handler runs.
pub async fn maintenance_guard(
    axum::extract::State(services): axum::extract::State<crate::Services>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let write = refused_in_maintenance(request.method(), request.uri().path());
    if write && services.flags().await.maintenance_mode {
        return ApiError::Maintenance { retry_after_secs: MAINTENANCE_RETRY_AFTER_SECS }.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    #[test]
    fn an_empty_change_is_refused_and_a_partial_one_names_only_its_flags() {
        assert!(FlagsChange::default().assignments().is_err());
        let change: FlagsChange =
            serde_json::from_str(r#"{"maintenance_mode":true,"strategies":{"ml_model":false}}"#).unwrap();
        assert_eq!(change.assignments().unwrap(), [("maintenance_mode", true), ("strategy_ml_model", false)]);
        assert!(serde_json::from_str::<FlagsChange>(r#"{"strategies":{"elo":false}}"#).is_err());
        assert!(serde_json::from_str::<FlagsChange>(r#"{"maintenance":true}"#).is_err());
        assert!(serde_json::from_str::<FlagsChange>(r#"{"strategies":{}}"#).unwrap().assignments().is_err());
        // An empty `strategies` is refused even beside another flag (found by `make contract`).
        let err = serde_json::from_str::<FlagsChange>(r#"{"maintenance_mode":false,"strategies":{}}"#)
            .unwrap()
            .assignments()
            .unwrap_err();
        assert!(err.to_string().starts_with("strategies:"), "{err}");
        assert!(serde_json::from_str::<FlagsChange>(r#"{"maintenance_mode":null,"registration_open":true}"#).is_err());
    }

    #[test]
    fn a_missing_attribute_keeps_its_default() {
        let defaults = FeatureFlags::defaults(false);
        let item = std::collections::HashMap::from([
            ("strategy_market".to_string(), AttributeValue::Bool(false)),
            ("version".to_string(), AttributeValue::N("3".into())),
        ]);
        let flags = FeatureFlags::from_item(&item, &defaults);
        assert!(!flags.registration_open && flags.market_comparison && !flags.strategies.market);
        assert!(flags.strategies.enabled(Strategy::MlModel) && !flags.strategies.enabled(Strategy::Market));
        assert_eq!(flags.version, 3);
    }

    #[test]
    fn maintenance_refuses_writes_but_not_reads_sign_in_or_the_flags() {
        assert!(refused_in_maintenance(&Method::POST, "/api/predictions"));
        assert!(refused_in_maintenance(&Method::POST, "/api/auth/register"));
        assert!(refused_in_maintenance(&Method::PATCH, "/api/admin/users/user_2"));
        assert!(!refused_in_maintenance(&Method::GET, "/api/predictions"));
        assert!(!refused_in_maintenance(&Method::POST, "/api/auth/login"));
        assert!(!refused_in_maintenance(&Method::PATCH, "/api/admin/flags"));
    }

    #[test]
    fn the_ttl_is_at_most_thirty_seconds() {
        assert_eq!(FlagStore::new(Duration::from_secs(300), true).ttl(), MAX_CACHE_TTL);
        assert_eq!(FlagStore::new(Duration::from_secs(2), true).ttl(), Duration::from_secs(2));
    }
}
