//! The adapters a function needs, built once in `main` from the configuration and shared as
//! state by every request. Building them does no network I/O: connections, the AWS SDK
//! configuration and secrets are all established on first use.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::{
    auth::{AuthUser, IdentityHasher, Role, TokenKeys},
    aws::AwsClients,
    cache::Cache,
    config::{Config, DatabaseConfig},
    db::Database,
    flags::{FeatureFlags, FlagStore},
    http::ApiError,
    ids::UserId,
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
    identity: OnceCell<IdentityHasher>,
    /// Separates the cache entries of different databases sharing one Redis (tests).
    cache_scope: String,
}

impl Services {
    pub fn new(config: Config) -> Self {
        Self::build(config, Database::new)
    }

    /// Services around an existing database pool (tests and tools).
    pub fn with_pool(config: Config, pool: sqlx::PgPool) -> Self {
        Self::build(config, |database, secrets| Database::from_pool(pool, database, secrets))
    }

    fn build(config: Config, database: impl FnOnce(DatabaseConfig, Arc<SecretStore>) -> Database) -> Self {
        let aws = Arc::new(AwsClients::new());
        let secrets = Arc::new(SecretStore::new(aws.clone()));
        let db = database(config.database.clone(), secrets.clone());
        let cache = Cache::with_secrets(&config.cache, secrets.clone());
        let cache_scope = cache_scope(&config);
        let flag_store = FlagStore::new(config.flags_cache_ttl, config.auth.registration_open);
        Self(Arc::new(ServicesInner {
            config,
            db,
            cache,
            aws,
            secrets,
            flag_store,
            token_keys: OnceCell::new(),
            identity: OnceCell::new(),
            cache_scope,
        }))
    }
}

/// A short digest of where the database is: one value for every function of a deployment.
fn cache_scope(config: &Config) -> String {
    use sha2::Digest;
    let source = match &config.database.source {
        crate::config::SecretSource::Plain(url) => url.expose().to_string(),
        crate::config::SecretSource::SecretsManager { arn } => arn.clone(),
    };
    hex::encode(&sha2::Sha256::digest(source.as_bytes())[..6])
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

    /// The keyed hash of usernames for logs and throttle keys ([`IdentityHasher`]), its key
    /// derived from the JWT signing key on first use.
    pub async fn identity(&self) -> Result<&IdentityHasher, ApiError> {
        self.identity
            .get_or_try_init(|| async {
                let key = self
                    .secrets
                    .resolve(&self.config.jwt.signing_key)
                    .await
                    .map_err(|e| ApiError::unavailable("secrets", e))?;
                Ok::<_, ApiError>(IdentityHasher::new(&key))
            })
            .await
    }

    /// The caller as the account is now: a deleted or deactivated account, or a token issued
    /// before the account's token version was bumped (logout, deactivation, a role change, a
    /// reused refresh token), is refused; a role change applies at once. Answered from Redis
    /// when it can ([`ServicesInner::account_state`]): no database round trip per request.
    pub async fn check_account(&self, claimed: AuthUser, token_version: i64) -> Result<AuthUser, ApiError> {
        let state = self.account_state(claimed.id).await?;
        Self::admit(claimed, token_version, state)
    }

    /// [`ServicesInner::check_account`] with the account's cache entry already read (the bytes
    /// under [`ServicesInner::account_key`], fetched by the caller in the same round trip as its
    /// own keys): no further Redis read; a miss (or bytes that do not decode) is read from the
    /// database and offered to Redis as [`ServicesInner::account_state`] does.
    pub async fn check_account_prefetched(
        &self,
        claimed: AuthUser,
        token_version: i64,
        cached: Option<&[u8]>,
    ) -> Result<AuthUser, ApiError> {
        let state = match cached.and_then(|b| serde_json::from_slice::<AccountState>(b).ok()) {
            Some(state) => Some(state),
            None => self.load_and_offer_account_state(claimed.id).await?,
        };
        Self::admit(claimed, token_version, state)
    }

    fn admit(claimed: AuthUser, token_version: i64, state: Option<AccountState>) -> Result<AuthUser, ApiError> {
        match state {
            Some(s) if !s.is_active => Err(ApiError::Unauthorized("account is deactivated".into())),
            Some(s) if s.token_version != token_version => {
                Err(ApiError::Unauthorized("session ended: log in again".into()))
            }
            Some(s) => Ok(AuthUser { id: claimed.id, role: s.role }),
            None => Err(ApiError::Unauthorized("invalid token".into())),
        }
    }

    /// The Redis key of an account's state.
    pub fn account_key(&self, id: UserId) -> String {
        format!("auth:account:{}:{}", self.cache_scope, id.0)
    }

    /// A short digest of where the database is, the same in every function of a deployment: it
    /// separates the cache entries of databases sharing one Redis (tests, a local stack).
    pub fn cache_scope(&self) -> &str {
        &self.cache_scope
    }

    /// An account's role, active flag and token version: from Redis (60 s), else from the
    /// database, then offered to Redis only if no writer has published in between (`SET NX`).
    pub async fn account_state(&self, id: UserId) -> Result<Option<AccountState>, ApiError> {
        let key = self.account_key(id);
        if let Some(state) = self.cache.get_json::<AccountState>(&key).await {
            return Ok(Some(state));
        }
        self.load_and_offer_account_state(id).await
    }

    async fn load_and_offer_account_state(&self, id: UserId) -> Result<Option<AccountState>, ApiError> {
        let state = self.load_account_state(id).await?;
        if let Some(state) = &state {
            self.cache.set_json_if_absent(&self.account_key(id), state, ACCOUNT_STATE_TTL).await;
        }
        Ok(state)
    }

    async fn load_account_state(&self, id: UserId) -> Result<Option<AccountState>, ApiError> {
        let pool = self.db.pool().await?;
        let row = sqlx::query!("SELECT role, is_active, token_version FROM users WHERE id = $1", id.0)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|r| AccountState {
            role: Role::parse(&r.role).unwrap_or(Role::User),
            is_active: r.is_active,
            token_version: r.token_version,
        }))
    }

    /// After a committed change of an account (its token version, role or active flag): the
    /// fresh state overwrites the cached one, so the next request of an old token is refused.
    /// If Redis cannot be written the entry is deleted; if that fails too, the 60 s TTL bounds
    /// how long an old token keeps working (logged).
    pub async fn publish_account_state(&self, id: UserId) {
        let key = self.account_key(id);
        match self.load_account_state(id).await {
            Ok(Some(state)) => self.cache.set_json(&key, &state, ACCOUNT_STATE_TTL).await,
            _ => self.cache.delete(&[key]).await,
        }
    }
}

/// How long an account's state is cached: the longest an old token can outlive its revocation
/// when Redis took the read but refused the write that published the change.
pub const ACCOUNT_STATE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// What every request checks of its caller's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountState {
    pub role: Role,
    pub is_active: bool,
    pub token_version: i64,
}

impl std::ops::Deref for Services {
    type Target = ServicesInner;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
