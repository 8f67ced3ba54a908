//! football-prediction's domain crate: domain types, the prediction engine, ports and the
//! adapters behind them (PostgreSQL, Redis, S3, DynamoDB, Secrets Manager), configuration, errors
//! and telemetry. It has no Lambda dependency: function crates are thin glue around it.

pub mod auth;
pub mod aws;
pub mod cache;
pub mod config;
pub mod db;
pub mod demo;
pub mod engine;
pub mod health;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod secret;
pub mod secrets;
pub mod services;
pub mod telemetry;

pub use config::Config;
pub use secret::Secret;
pub use services::Services;
