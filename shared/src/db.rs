//! PostgreSQL: the pool, created lazily, and the migrations.

use std::{str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::sync::OnceCell;

use crate::{
    config::{DatabaseConfig, SecretSource},
    secrets::{SecretError, SecretStore},
};

/// The schema, embedded in every binary that needs it (the migrate function, tests, `fp`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("database credentials unavailable: {0}")]
    Credentials(#[from] SecretError),
    #[error("database URL is invalid: {0}")]
    InvalidUrl(String),
}

/// The database adapter. The pool is built on first use (after reading the credentials from
/// Secrets Manager when configured so) and connects lazily: a cold start opens no connection, and
/// a database that is down at start is found again when it returns, with no restart.
pub struct Database {
    config: DatabaseConfig,
    secrets: Arc<SecretStore>,
    pool: OnceCell<PgPool>,
}

impl Database {
    pub fn new(config: DatabaseConfig, secrets: Arc<SecretStore>) -> Self {
        Self { config, secrets, pool: OnceCell::new() }
    }

    /// A database from an existing pool (tests, tools).
    pub fn from_pool(pool: PgPool, config: DatabaseConfig, secrets: Arc<SecretStore>) -> Self {
        Self { config, secrets, pool: OnceCell::from(pool) }
    }

    /// The pool; the first call builds it.
    pub async fn pool(&self) -> Result<&PgPool, DatabaseError> {
        self.pool
            .get_or_try_init(|| async {
                let options = self.connect_options().await?;
                Ok(pool_options(&self.config).connect_lazy_with(options))
            })
            .await
    }

    async fn connect_options(&self) -> Result<PgConnectOptions, DatabaseError> {
        let options = match &self.config.source {
            SecretSource::Plain(url) => PgConnectOptions::from_str(url.expose())
                .map_err(|e| DatabaseError::InvalidUrl(redact_url_error(&e.to_string())))?,
            SecretSource::SecretsManager { arn } => {
                let v = self.secrets.resolve_json(arn).await?;
                let field = |name: &str| v.get(name).and_then(|x| x.as_str().map(str::to_string));
                let malformed =
                    |what: &str| SecretError::Malformed { arn: arn.clone(), reason: format!("missing `{what}`") };
                // An Aurora-managed master secret holds only username and password: the host
                // (the RDS Proxy endpoint), port and database name then come from the environment.
                let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
                let host = field("host").or_else(|| env("DATABASE_HOST")).ok_or_else(|| malformed("host"))?;
                let port = v
                    .get("port")
                    .and_then(|p| p.as_u64())
                    .or_else(|| env("DATABASE_PORT").and_then(|p| p.parse().ok()))
                    .unwrap_or(5432) as u16;
                let dbname = field("dbname").or_else(|| env("DATABASE_NAME")).unwrap_or_else(|| "football".into());
                PgConnectOptions::new()
                    .host(&host)
                    .port(port)
                    .username(&field("username").ok_or_else(|| malformed("username"))?)
                    .password(&field("password").ok_or_else(|| malformed("password"))?)
                    .database(&dbname)
                    .ssl_mode(sqlx::postgres::PgSslMode::Require)
            }
        };
        let statement_timeout_ms = self.config.statement_timeout.as_millis().to_string();
        Ok(options
            .application_name("football-prediction")
            .options([("statement_timeout", statement_timeout_ms.as_str())]))
    }
}

/// Pool options sized for Lambda: a few connections, none kept open at idle for long, and an
/// acquire timeout that bounds how long a request waits for a database that is down.
pub fn pool_options(config: &DatabaseConfig) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .max_lifetime(Some(Duration::from_secs(1800)))
}

// sqlx's URL parse errors can echo the URL, password included.
fn redact_url_error(message: &str) -> String {
    if message.contains("://") { "malformed connection URL".into() } else { message.into() }
}
