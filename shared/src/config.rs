//! Configuration from environment variables into one typed struct, validated at start.
//!
//! Every function calls [`Config::from_env`] once in `main`; a missing or malformed variable is an
//! error that names it. A secret can be given two ways: `<NAME>_SECRET_ARN` names a Secrets Manager
//! secret (read once per cold start, lazily, by [`crate::secrets::SecretStore`]), or the plain
//! variable `<NAME>` carries the value (local development and tests). The ARN wins when both are set.

use std::{str::FromStr, time::Duration};

use crate::secret::Secret;

/// Where a deployment runs. `local` enables demo data and the development defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Local,
    Dev,
    Staging,
    Prod,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Self::Local),
            "dev" => Ok(Self::Dev),
            "staging" => Ok(Self::Staging),
            "prod" => Ok(Self::Prod),
            other => Err(format!("`{other}` is not one of local, dev, staging, prod")),
        }
    }
}

/// A configuration value that may live in Secrets Manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The value itself, from a plain environment variable.
    Plain(Secret),
    /// The ARN (or name) of a Secrets Manager secret holding it.
    SecretsManager { arn: String },
}

/// A configuration error: always names the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {var} is required{hint}")]
    Missing { var: &'static str, hint: &'static str },
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Database pool settings, sized for Lambda: one request at a time per instance, so a handful
/// of connections at most, and short timeouts so a database outage answers 503 quickly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`, or `DATABASE_SECRET_ARN`: an RDS/Aurora secret (JSON with `username`,
    /// `password`, `host`, `port`, `dbname`).
    pub source: SecretSource,
    /// `DATABASE_MAX_CONNECTIONS`, default 2.
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_MS`, default 1500: connecting or waiting for a free connection.
    pub acquire_timeout: Duration,
    /// `DATABASE_STATEMENT_TIMEOUT_MS`, default 5000: server-side limit per statement.
    pub statement_timeout: Duration,
    /// `DATABASE_SSL_MODE`, with `DATABASE_SECRET_ARN` (a `DATABASE_URL` says it in its own
    /// `sslmode`): `verify-full` by default (RDS Proxy's certificate chains to an Amazon root, which
    /// the built-in webpki roots hold), `disable` for a local server without TLS.
    pub ssl_mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// `REDIS_URL` (`redis://` or `rediss://` for in-transit encryption).
    pub url: Secret,
    /// `REDIS_TIMEOUT_MS`, default 300: connect and response timeout of each command.
    pub timeout: Duration,
    /// `REDIS_AUTH_SECRET_ARN` (deployed: the ElastiCache AUTH token) or `REDIS_PASSWORD`; none
    /// locally.
    pub auth: Option<SecretSource>,
}

/// Names of the AWS resources the functions use. The endpoint of the AWS clients comes from the
/// SDK's own `AWS_ENDPOINT_URL` (set locally to the emulator), so the same code talks to either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsResources {
    /// `TABLE_NAME`: the DynamoDB table (throttles, idempotency records, job locks).
    pub table_name: String,
    /// `BACKUP_BUCKET`: the S3 bucket of backups and model artifacts.
    pub backup_bucket: String,
}

/// JWT settings (the key itself may be in Secrets Manager).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// `JWT_SECRET_ARN` or `JWT_SECRET` (at least 32 bytes).
    pub signing_key: SecretSource,
    /// `JWT_ISSUER`, default `football-prediction`.
    pub issuer: String,
    /// `JWT_AUDIENCE`, default `football-prediction-api`.
    pub audience: String,
}

/// Accounts and login throttling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `REGISTRATION_OPEN`, default true: whether `POST /api/auth/register` accepts new accounts.
    pub registration_open: bool,
    /// `LOGIN_MAX_FAILURES`, default 5: login attempts for one username from one source address
    /// within the window before that pair gets 429 (a success gives its attempt back).
    pub login_max_failures: u32,
    /// `LOGIN_MAX_FAILURES_PER_IP`, default 50: attempts from one source address, across
    /// usernames, within the window before that address gets 429.
    pub login_max_failures_per_ip: u32,
    /// `LOGIN_ACCOUNT_BUDGET`, default 20: attempts for one username from all sources within the
    /// window before that account is slowed to one attempt per `login_account_backoff`.
    pub login_account_budget: u32,
    /// `LOGIN_ACCOUNT_BACKOFF_SECS`, default 30.
    pub login_account_backoff: Duration,
    /// `LOGIN_FAILURE_WINDOW_SECS`, default 900 (15 minutes).
    pub login_failure_window: Duration,
}

/// The whole configuration of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ENVIRONMENT`: local, dev, staging or prod (required).
    pub environment: Environment,
    /// `SERVICE_VERSION`, default the crate version: reported by `/health`.
    pub service_version: String,
    pub database: DatabaseConfig,
    pub cache: CacheConfig,
    pub aws: AwsResources,
    pub jwt: JwtConfig,
    pub auth: AuthConfig,
    /// `FEATURE_FLAGS_CACHE_TTL_SECS`, default 30, at most 30: how long an instance keeps the
    /// feature flags before reading them again ([`crate::flags`]).
    pub flags_cache_ttl: Duration,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let environment = env.parse_required::<Environment>("ENVIRONMENT", " (local, dev, staging or prod)")?;
        let database = DatabaseConfig {
            source: env.secret_source(
                "DATABASE_URL",
                "DATABASE_SECRET_ARN",
                " (or DATABASE_SECRET_ARN), e.g. postgres://postgres@127.0.0.1:5432/football",
            )?,
            max_connections: env.parse_or("DATABASE_MAX_CONNECTIONS", 2u32)?,
            acquire_timeout: Duration::from_millis(env.parse_or("DATABASE_ACQUIRE_TIMEOUT_MS", 1500u64)?),
            statement_timeout: Duration::from_millis(env.parse_or("DATABASE_STATEMENT_TIMEOUT_MS", 5000u64)?),
            ssl_mode: env.or("DATABASE_SSL_MODE", "verify-full"),
        };
        if !matches!(database.ssl_mode.as_str(), "disable" | "prefer" | "require" | "verify-ca" | "verify-full") {
            return Err(ConfigError::Invalid {
                var: "DATABASE_SSL_MODE",
                reason: format!(
                    "`{}` is not one of disable, prefer, require, verify-ca, verify-full",
                    database.ssl_mode
                ),
            });
        }
        if database.max_connections == 0 {
            return Err(ConfigError::Invalid { var: "DATABASE_MAX_CONNECTIONS", reason: "must be at least 1".into() });
        }
        let redis_url = env.required("REDIS_URL", ", e.g. redis://127.0.0.1:6379")?;
        if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
            return Err(ConfigError::Invalid {
                var: "REDIS_URL",
                reason: "must start with redis:// or rediss://".into(),
            });
        }
        let cache = CacheConfig {
            url: Secret::new(redis_url),
            timeout: Duration::from_millis(env.parse_or("REDIS_TIMEOUT_MS", 300u64)?),
            auth: match (env.get("REDIS_AUTH_SECRET_ARN"), env.get("REDIS_PASSWORD")) {
                (Some(arn), _) => Some(SecretSource::SecretsManager { arn }),
                (None, Some(password)) => Some(SecretSource::Plain(Secret::new(password))),
                (None, None) => None,
            },
        };
        let aws = AwsResources {
            table_name: env.required("TABLE_NAME", " (the DynamoDB table)")?,
            backup_bucket: env.required("BACKUP_BUCKET", " (the S3 bucket of backups and models)")?,
        };
        let jwt = JwtConfig {
            signing_key: env.secret_source("JWT_SECRET", "JWT_SECRET_ARN", " (or JWT_SECRET_ARN)")?,
            issuer: env.or("JWT_ISSUER", "football-prediction"),
            audience: env.or("JWT_AUDIENCE", "football-prediction-api"),
        };
        if let SecretSource::Plain(key) = &jwt.signing_key
            && key.expose().len() < 32
        {
            return Err(ConfigError::Invalid {
                var: "JWT_SECRET",
                reason: "must be at least 32 bytes (256 bits)".into(),
            });
        }
        let auth = AuthConfig {
            registration_open: env.parse_or("REGISTRATION_OPEN", true)?,
            login_max_failures: env.parse_or("LOGIN_MAX_FAILURES", 5u32)?,
            login_max_failures_per_ip: env.parse_or("LOGIN_MAX_FAILURES_PER_IP", 50u32)?,
            login_account_budget: env.parse_or("LOGIN_ACCOUNT_BUDGET", 20u32)?,
            login_account_backoff: Duration::from_secs(env.parse_or("LOGIN_ACCOUNT_BACKOFF_SECS", 30u64)?),
            login_failure_window: Duration::from_secs(env.parse_or("LOGIN_FAILURE_WINDOW_SECS", 900u64)?),
        };
        if auth.login_max_failures == 0
            || auth.login_max_failures_per_ip == 0
            || auth.login_account_budget == 0
            || auth.login_account_backoff.is_zero()
            || auth.login_failure_window.is_zero()
        {
            return Err(ConfigError::Invalid {
                var: "LOGIN_MAX_FAILURES",
                reason: "LOGIN_MAX_FAILURES, LOGIN_MAX_FAILURES_PER_IP, LOGIN_ACCOUNT_BUDGET, \
                         LOGIN_ACCOUNT_BACKOFF_SECS and LOGIN_FAILURE_WINDOW_SECS must be at least 1"
                    .into(),
            });
        }
        let flags_cache_ttl = Duration::from_secs(env.parse_or("FEATURE_FLAGS_CACHE_TTL_SECS", 30u64)?);
        if flags_cache_ttl > crate::flags::MAX_CACHE_TTL {
            return Err(ConfigError::Invalid {
                var: "FEATURE_FLAGS_CACHE_TTL_SECS",
                reason: "at most 30: a flag change must reach every instance within 30 s".into(),
            });
        }
        Ok(Self {
            environment,
            service_version: env.or("SERVICE_VERSION", env!("CARGO_PKG_VERSION")),
            database,
            cache,
            aws,
            jwt,
            auth,
            flags_cache_ttl,
        })
    }
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, var: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.get(var).ok_or(ConfigError::Missing { var, hint })
    }

    fn or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or_else(|| default.to_string())
    }

    fn parse_required<T: FromStr>(&self, var: &'static str, hint: &'static str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.required(var, hint)?;
        raw.parse().map_err(|e: T::Err| ConfigError::Invalid { var, reason: e.to_string() })
    }

    fn parse_or<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid { var, reason: format!("`{raw}`: {e}") }),
        }
    }

    fn secret_source(
        &self,
        plain: &'static str,
        arn: &'static str,
        hint: &'static str,
    ) -> Result<SecretSource, ConfigError> {
        if let Some(arn) = self.get(arn) {
            return Ok(SecretSource::SecretsManager { arn });
        }
        self.get(plain).map(|v| SecretSource::Plain(Secret::new(v))).ok_or(ConfigError::Missing { var: plain, hint })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("ENVIRONMENT", "local"),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/football"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("TABLE_NAME", "football-prediction-local"),
            ("BACKUP_BUCKET", "football-prediction-backups-local"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef-local"),
        ])
    }

    fn load(vars: &HashMap<&'static str, &'static str>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn reads_a_complete_environment_with_defaults() {
        let c = load(&base()).unwrap();
        assert_eq!(c.environment, Environment::Local);
        assert_eq!(c.database.max_connections, 2);
        assert_eq!(c.cache.timeout, Duration::from_millis(300));
        assert_eq!(c.jwt.issuer, "football-prediction");
        assert_eq!(c.database.ssl_mode, "verify-full", "TLS to RDS Proxy is verified unless told otherwise");
    }

    #[test]
    fn an_unknown_ssl_mode_is_named() {
        let mut vars = base();
        vars.insert("DATABASE_SSL_MODE", "sometimes");
        assert!(matches!(load(&vars), Err(ConfigError::Invalid { var: "DATABASE_SSL_MODE", .. })));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let mut vars = base();
        vars.remove("REDIS_URL");
        let err = load(&vars).unwrap_err();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[test]
    fn an_invalid_number_is_named_with_its_value() {
        let mut vars = base();
        vars.insert("DATABASE_MAX_CONNECTIONS", "lots");
        let err = load(&vars).unwrap_err().to_string();
        assert!(err.contains("DATABASE_MAX_CONNECTIONS") && err.contains("lots"), "{err}");
    }

    #[test]
    fn an_arn_wins_over_the_plain_value() {
        let mut vars = base();
        vars.insert("DATABASE_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:db");
        let c = load(&vars).unwrap();
        assert_eq!(
            c.database.source,
            SecretSource::SecretsManager { arn: "arn:aws:secretsmanager:eu-west-1:1:secret:db".into() }
        );
    }

    #[test]
    fn the_flags_cache_lives_at_most_thirty_seconds() {
        assert_eq!(load(&base()).unwrap().flags_cache_ttl, Duration::from_secs(30));
        let mut vars = base();
        vars.insert("FEATURE_FLAGS_CACHE_TTL_SECS", "1");
        assert_eq!(load(&vars).unwrap().flags_cache_ttl, Duration::from_secs(1));
        vars.insert("FEATURE_FLAGS_CACHE_TTL_SECS", "31");
        assert!(matches!(load(&vars), Err(ConfigError::Invalid { var: "FEATURE_FLAGS_CACHE_TTL_SECS", .. })));
    }

    #[test]
    fn a_short_jwt_key_is_refused() {
        let mut vars = base();
        vars.insert("JWT_SECRET", "short");
        assert!(matches!(load(&vars), Err(ConfigError::Invalid { var: "JWT_SECRET", .. })));
    }

    #[test]
    fn an_unknown_environment_is_refused() {
        let mut vars = base();
        vars.insert("ENVIRONMENT", "production");
        assert!(matches!(load(&vars), Err(ConfigError::Invalid { var: "ENVIRONMENT", .. })));
    }

    #[test]
    fn the_config_debug_output_has_no_secret() {
        let c = load(&base()).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
        assert!(!dbg.contains("postgres://"), "{dbg}");
    }
}
