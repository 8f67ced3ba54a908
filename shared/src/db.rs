//! PostgreSQL: the pool, created lazily, and the migrations.

use std::{
    str::FromStr,
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions, PgSslMode},
};
use tokio::sync::{Mutex, OnceCell};

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
    /// Opening a connection failed (after reading the credentials again, for an authentication
    /// failure).
    #[error("connecting to the database failed: {0}")]
    Connect(#[source] sqlx::Error),
}

impl DatabaseError {
    /// Whether it is worth trying again later (503 / a retryable job) rather than a
    /// configuration to fix.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Credentials(SecretError::Unavailable { .. }) => true,
            Self::Credentials(SecretError::Malformed { .. }) | Self::InvalidUrl(_) => false,
            Self::Connect(e) => is_unavailable(e),
        }
    }
}

/// The database adapter. The pool is built on first use (after reading the credentials from
/// Secrets Manager when configured so) and connects lazily: a cold start opens no connection, and
/// a database that is down at start is found again when it returns, with no restart.
///
/// Credentials that rotate: with `DATABASE_SECRET_ARN`, when the pool is about to open a
/// connection and PostgreSQL (or RDS Proxy) refuses the password (28P01, 28000), the secret is
/// read again from Secrets Manager, the pool's connect options are rebuilt from it and the
/// connection is tried once more. Open connections are not affected by a password change, so
/// only the first request that needs a new connection after a rotation pays one more read.
pub struct Database {
    config: DatabaseConfig,
    secrets: Arc<SecretStore>,
    pool: OnceCell<PgPool>,
    /// When the secret was last read again after an authentication failure: a burst of refused
    /// connections makes one read, not one each.
    last_refresh: Mutex<Option<Instant>>,
}

/// The shortest time between two re-reads of the database secret.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(1);

impl Database {
    pub fn new(config: DatabaseConfig, secrets: Arc<SecretStore>) -> Self {
        Self { config, secrets, pool: OnceCell::new(), last_refresh: Mutex::new(None) }
    }

    /// A database from an existing pool (tests, tools).
    pub fn from_pool(pool: PgPool, config: DatabaseConfig, secrets: Arc<SecretStore>) -> Self {
        Self { config, secrets, pool: OnceCell::from(pool), last_refresh: Mutex::new(None) }
    }

    /// The pool; the first call builds it. With credentials from Secrets Manager, a call that
    /// finds no idle connection opens one first, so that a rotated password is noticed (and the
    /// secret read again) here rather than failing the caller's query.
    pub async fn pool(&self) -> Result<&PgPool, DatabaseError> {
        let pool = self
            .pool
            .get_or_try_init(|| async {
                let options = self.connect_options(false).await?;
                Ok::<_, DatabaseError>(pool_options(&self.config).connect_lazy_with(options))
            })
            .await?;
        if self.rotates() && pool.num_idle() == 0 {
            match pool.acquire().await {
                Ok(conn) => drop(conn),
                Err(e) if is_auth_failure(&e) => {
                    tracing::warn!(error = %e, "the database refused the credentials: reading the secret again");
                    self.refresh_credentials(pool).await?;
                    drop(pool.acquire().await.map_err(DatabaseError::Connect)?);
                    tracing::info!("connected with the credentials read again");
                }
                Err(e) => return Err(DatabaseError::Connect(e)),
            }
        }
        Ok(pool)
    }

    /// Whether the credentials can change under a running process (they come from Secrets
    /// Manager).
    fn rotates(&self) -> bool {
        matches!(self.config.source, SecretSource::SecretsManager { .. })
    }

    async fn refresh_credentials(&self, pool: &PgPool) -> Result<(), DatabaseError> {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFRESH_AT_MOST_EVERY) {
            return Ok(()); // another request just did it
        }
        let options = self.connect_options(true).await?;
        pool.set_connect_options(options);
        *last = Some(Instant::now());
        Ok(())
    }

    /// The connect options from the configuration; `fresh` reads the secret again.
    async fn connect_options(&self, fresh: bool) -> Result<PgConnectOptions, DatabaseError> {
        let options = match &self.config.source {
            SecretSource::Plain(url) => PgConnectOptions::from_str(url.expose())
                .map_err(|e| DatabaseError::InvalidUrl(redact_url_error(&e.to_string())))?,
            SecretSource::SecretsManager { arn } => {
                let v =
                    if fresh { self.secrets.refresh_json(arn).await? } else { self.secrets.resolve_json(arn).await? };
                let field = |name: &str| v.get(name).and_then(|x| x.as_str().map(str::to_string));
                let malformed =
                    |what: &str| SecretError::Malformed { arn: arn.clone(), reason: format!("missing `{what}`") };
                // DATABASE_HOST / DATABASE_PORT (the RDS Proxy endpoint) win over the secret's
                // host and port, which name the cluster (the rotation function connects there);
                // an Aurora-managed master secret has neither. The database name likewise.
                let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
                let host = env("DATABASE_HOST").or_else(|| field("host")).ok_or_else(|| malformed("host"))?;
                let port = env("DATABASE_PORT")
                    .and_then(|p| p.parse().ok())
                    .or_else(|| v.get("port").and_then(|p| p.as_u64()))
                    .unwrap_or(5432) as u16;
                let dbname = field("dbname").or_else(|| env("DATABASE_NAME")).unwrap_or_else(|| "football".into());
                let ssl_mode = PgSslMode::from_str(&self.config.ssl_mode).unwrap_or(PgSslMode::VerifyFull);
                PgConnectOptions::new()
                    .host(&host)
                    .port(port)
                    .username(&field("username").ok_or_else(|| malformed("username"))?)
                    .password(&field("password").ok_or_else(|| malformed("password"))?)
                    .database(&dbname)
                    // verify-full: the certificate chains to a root of the built-in webpki store
                    // (RDS Proxy's ACM certificate chains to Amazon Root CA 1-4) and names the host.
                    .ssl_mode(ssl_mode)
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

/// The group roles the migrations create (`20261202001100_least_privilege_roles.sql`).
pub const APP_ROLE: &str = "football_app";
pub const BACKUP_ROLE: &str = "football_backup";

/// Creates (or, when it exists, updates) the login user `username` with `password` as a member of
/// `group`, with `CREATEDB` when asked (the backup job's scratch databases). Run by `migrate`, as
/// the master user, after the migrations. The statements are built by the server (`format` with
/// `%I` / `%L`), so neither value is spliced into SQL text here.
pub async fn provision_login(
    pool: &PgPool,
    username: &str,
    password: &crate::Secret,
    group: &str,
    createdb: bool,
) -> Result<(), sqlx::Error> {
    use sqlx::Executor;
    let exists: bool =
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1) AS "exists!""#, username)
            .fetch_one(pool)
            .await?;
    // The two keywords are ours (never input), passed to `format` as `%s`; the names and the
    // password are quoted by the server (`%I`, `%L`).
    let verb = if exists { "ALTER" } else { "CREATE" };
    let createdb = if createdb { "CREATEDB" } else { "NOCREATEDB" };
    let set_password: String = sqlx::query_scalar!(
        r#"SELECT format('%s ROLE %I WITH LOGIN %s PASSWORD %L', $3::text, $1::text, $4::text, $2::text) AS "sql!""#,
        username,
        password.expose(),
        verb,
        createdb,
    )
    .fetch_one(pool)
    .await?;
    // DDL text built by the server above: it can only run as a runtime statement.
    pool.execute(set_password.as_str()).await?;
    let grant: String =
        sqlx::query_scalar!(r#"SELECT format('GRANT %I TO %I', $1::text, $2::text) AS "sql!""#, group, username)
            .fetch_one(pool)
            .await?;
    pool.execute(grant.as_str()).await?;
    Ok(())
}

/// Whether a database failure means "the database is not available now" rather than a bug or bad
/// data: the API answers it 503 with `Retry-After`, a job reports it as retryable. One
/// classification for both ([`crate::http::ApiError`], [`crate::jobs::JobError`]).
///
/// Unavailable: no connection could be made or kept (I/O, TLS, a cut connection, the pool closed
/// or out of time), or the server said so with an SQLSTATE of [`sqlstate_is_unavailable`].
/// Anything else (a constraint, a missing row, a decode error, bad SQL) is not.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().as_deref().is_some_and(sqlstate_is_unavailable),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        // a connection cut in the middle of a message
        | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

/// The SQLSTATEs that mean "not now" (PostgreSQL Appendix A):
/// - class 08, connection exception (08000, 08003, 08006 connection failure, 08001, 08004 ...);
/// - class 53, insufficient resources (53300 too many connections, 53100 disk full, 53200 out of
///   memory);
/// - 57P01 admin shutdown (an Aurora failover or a terminated backend), 57P02 crash shutdown,
///   57P03 cannot connect now (starting up, recovering), 57P05 idle session timeout,
///   57014 query canceled (the statement timeout);
/// - 40001 serialization failure, 40P01 deadlock (the transaction may succeed when run again);
/// - 55P03 lock not available;
/// - 25006 read-only transaction (a write that reached a writer just demoted by a failover);
/// - 28P01 / 28000 authentication failed, once the credentials have been read again
///   ([`Database::pool`]): a rotation in flight, or credentials that an operator must fix; either
///   way not the request's fault, and the `database_errors_total` alarm says which.
pub fn sqlstate_is_unavailable(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "57P05" | "57014" | "40001" | "40P01" | "55P03" | "25006")
        || is_auth_failure_code(code)
}

fn is_auth_failure_code(code: &str) -> bool {
    matches!(code, "28P01" | "28000")
}

/// Whether `error` is PostgreSQL refusing the credentials (28P01 invalid password, 28000 invalid
/// authorization).
pub fn is_auth_failure(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref().is_some_and(is_auth_failure_code))
}

// sqlx's URL parse errors can echo the URL, password included.
fn redact_url_error(message: &str) -> String {
    if message.contains("://") { "malformed connection URL".into() } else { message.into() }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A server error with an SQLSTATE, as sqlx hands it over.
    #[derive(Debug)]
    pub(crate) struct ServerError(pub &'static str);

    impl std::fmt::Display for ServerError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "server error {}", self.0)
        }
    }

    impl std::error::Error for ServerError {}

    impl sqlx::error::DatabaseError for ServerError {
        fn message(&self) -> &str {
            "server error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    pub(crate) fn server(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(ServerError(code)))
    }

    #[test]
    fn not_available_now_per_sqlstate_class() {
        for (code, what) in [
            ("08000", "connection exception"),
            ("08006", "connection failure"),
            ("08001", "cannot establish a connection"),
            ("53300", "too many connections"),
            ("53100", "disk full"),
            ("53200", "out of memory"),
            ("57P01", "admin shutdown (failover, terminated backend)"),
            ("57P02", "crash shutdown"),
            ("57P03", "cannot connect now"),
            ("57P05", "idle session timeout"),
            ("57014", "statement timeout"),
            ("40001", "serialization failure"),
            ("40P01", "deadlock"),
            ("55P03", "lock not available"),
            ("25006", "read-only transaction after a failover"),
            ("28P01", "password refused after reading it again"),
        ] {
            assert!(is_unavailable(&server(code)), "{code} {what}");
        }
    }

    #[test]
    fn bugs_and_bad_data_are_not_unavailability() {
        for code in ["23505", "23503", "42P01", "42601", "22P02", "57P04", "XX000"] {
            assert!(!is_unavailable(&server(code)), "{code}");
        }
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(!is_unavailable(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[test]
    fn connection_failures_are_unavailability() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::PoolClosed));
        assert!(is_unavailable(&sqlx::Error::WorkerCrashed));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset))));
        assert!(is_unavailable(&sqlx::Error::Tls("handshake".into())));
    }

    #[test]
    fn only_28p01_and_28000_are_refused_credentials() {
        assert!(is_auth_failure(&server("28P01")));
        assert!(is_auth_failure(&server("28000")));
        assert!(!is_auth_failure(&server("57P01")));
        assert!(!is_auth_failure(&sqlx::Error::PoolTimedOut));
    }

    #[test]
    fn a_malformed_secret_is_a_configuration_error_not_an_outage() {
        let malformed = DatabaseError::Credentials(SecretError::Malformed { arn: "a".into(), reason: "r".into() });
        assert!(!malformed.is_unavailable());
        let down = DatabaseError::Credentials(SecretError::Unavailable { arn: "a".into(), reason: "r".into() });
        assert!(down.is_unavailable());
        assert!(DatabaseError::Connect(server("57P03")).is_unavailable());
        assert!(!DatabaseError::InvalidUrl("x".into()).is_unavailable());
    }
}
