//! football-prediction's domain crate: domain types, the prediction engine, ports and the
//! adapters behind them (PostgreSQL, Redis, S3, DynamoDB, Secrets Manager), configuration, errors
//! and telemetry. It has no Lambda dependency: function crates are thin glue around it.

// The catalog's cached read (`catalog::body::cached_read`: the account check, the version and
// the load in one future) nests deeper than the default limit lets rustc compute its layout.
#![recursion_limit = "256"]

pub mod admin;
pub mod auth;
pub mod aws;
pub mod backup;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod db;
pub mod demo;
pub mod engine;
pub mod flags;
pub mod health;
pub mod history;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod import;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod predictions;
pub mod probe;
pub mod progress;
pub mod secret;
pub mod secrets;
pub mod services;
pub mod settlement;
pub mod telemetry;
pub mod throttle;
pub mod tls;
pub mod training;
pub mod users;
pub mod xray;

pub use config::Config;
pub use secret::Secret;
pub use services::Services;
