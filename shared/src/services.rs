//! The adapters a function needs, built once in `main` from the configuration and shared as
//! state by every request. Building them does no network I/O: connections, the AWS SDK
//! configuration and secrets are all established on first use.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::{
    auth::{AuthUser, Role, TokenKeys},
    aws::AwsClients,
    cache::Cache,
    config::Config,
    db::Database,
    flags::{FeatureFlags, FlagStore},
    http::ApiError,
    secrets::SecretStore,
};

/// Everything a handler may use. Clone is cheap (one `Arc`).
#[derive(Clone)]
pub struct Services(Arc<ServicesInner>);

pub struct ServicesInner {
    pub config: Config,
    pub db: Database,
    pub cache: Cache,
    pub aws: Arc<AwsClients>,
    pub secrets: Arc<SecretStore>,
    /// This instance's view of the feature flags (read at most once per TTL).
    pub flag_store: FlagStore,
    token_keys: OnceCell<TokenKeys>,
}

impl Services {
    pub fn new(config: Config) -> Self {
        let aws = Arc::new(AwsClients::new());
        let secrets = Arc::new(SecretStore::new(aws.clone()));
        let db = Database::new(config.database.clone(), secrets.clone());
        let cache = Cache::new(&config.cache);
        let flag_store = FlagStore::new(config.flags_cache_ttl, config.auth.registration_open);
        Self(Arc::new(ServicesInner { config, db, cache, aws, secrets, flag_store, token_keys: OnceCell::new() }))
    }

    /// Services around an existing database pool (tests and tools).
    pub fn with_pool(config: Config, pool: sqlx::PgPool) -> Self {
        let aws = Arc::new(AwsClients::new());
        let secrets = Arc::new(SecretStore::new(aws.clone()));
        let db = Database::from_pool(pool, config.database.clone(), secrets.clone());
        let cache = Cache::new(&config.cache);
        let flag_store = FlagStore::new(config.flags_cache_ttl, config.auth.registration_open);
        Self(Arc::new(ServicesInner { config, db, cache, aws, secrets, flag_store, token_keys: OnceCell::new() }))
    }
}

impl ServicesInner {
    /// The feature flags in force (from this instance's memory within the TTL).
    pub async fn flags(&self) -> FeatureFlags {
        self.flag_store.current(self.aws.dynamodb().await, &self.config.aws.table_name).await
    }

    /// The access-token keys; the signing key is read (from Secrets Manager when configured so)
    /// on first use and kept for the life of the process.
    pub async fn token_keys(&self) -> Result<&TokenKeys, ApiError> {
        self.token_keys
            .get_or_try_init(|| async {
                let key = self
                    .secrets
                    .resolve(&self.config.jwt.signing_key)
                    .await
                    .map_err(|e| ApiError::unavailable("secrets", e))?;
                TokenKeys::new(&key, &self.config.jwt.issuer, &self.config.jwt.audience).map_err(ApiError::internal)
            })
            .await
    }

    /// The caller as the database knows them now: a deleted or deactivated account is refused at
    /// its next request, and a role change applies at once.
    pub async fn check_account(&self, claimed: AuthUser) -> Result<AuthUser, ApiError> {
        let pool = self.db.pool().await?;
        let row: Option<(String, bool)> = sqlx::query_as("SELECT role, is_active FROM users WHERE id = $1")
            .bind(claimed.id.0)
            .fetch_optional(pool)
            .await?;
        match row {
            Some((role, true)) => Ok(AuthUser { id: claimed.id, role: Role::parse(&role).unwrap_or(Role::User) }),
            Some((_, false)) => Err(ApiError::Unauthorized("account is deactivated".into())),
            None => Err(ApiError::Unauthorized("invalid token".into())),
        }
    }
}

impl std::ops::Deref for Services {
    type Target = ServicesInner;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
