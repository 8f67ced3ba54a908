//! Redis (ElastiCache locally replaced by redis-server): the cache adapter.
//!
//! The cache is an accelerator, never a source of truth: every operation has a short timeout, and
//! a failure is logged and reported to the caller as a miss or a no-op, so an outage costs speed,
//! not correctness. Keys all start with `fp:`.
//!
//! Deployed, the URL is `rediss://` (ElastiCache with encryption in transit): TLS through rustls
//! with the built-in webpki roots, and rustls' `ring` provider installed as the process default
//! before the first client exists (with both `ring` and `aws-lc-rs` compiled in by other
//! dependencies, rustls cannot pick one by itself and would panic on the first TLS connection).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use redis::{AsyncCommands, IntoConnectionInfo, aio::ConnectionManager, aio::ConnectionManagerConfig};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::OnceCell;

use crate::{
    config::{CacheConfig, SecretSource},
    secrets::SecretStore,
};

/// Every key this service writes starts with this prefix.
pub const KEY_PREFIX: &str = "fp:";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache timed out after {0:?}")]
    Timeout(Duration),
    #[error("cache error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cache URL is invalid")]
    InvalidUrl,
    #[error("the cache's AUTH token cannot be read")]
    Auth,
}

/// The cache adapter: a Redis connection manager created on first use, which reconnects by
/// itself after a failure.
pub struct Cache {
    info: Option<redis::ConnectionInfo>,
    auth: Option<SecretSource>,
    secrets: Option<Arc<SecretStore>>,
    timeout: Duration,
    manager: OnceCell<ConnectionManager>,
}

impl Cache {
    /// No network I/O: the connection is opened on first use. An AUTH token in Secrets Manager
    /// needs [`Cache::with_secrets`].
    pub fn new(config: &CacheConfig) -> Self {
        Self {
            info: config.cache_url().into_connection_info().ok(),
            auth: config.auth.clone(),
            secrets: None,
            timeout: config.timeout,
            manager: OnceCell::new(),
        }
    }

    /// A cache whose AUTH token (`REDIS_AUTH_SECRET_ARN`) is read from Secrets Manager on the
    /// first connection.
    pub fn with_secrets(config: &CacheConfig, secrets: Arc<SecretStore>) -> Self {
        Self { secrets: Some(secrets), ..Self::new(config) }
    }

    async fn client(&self) -> Result<redis::Client, CacheError> {
        let mut info = self.info.clone().ok_or(CacheError::InvalidUrl)?;
        match &self.auth {
            None => {}
            Some(SecretSource::Plain(password)) => info.redis.password = Some(password.expose().to_string()),
            Some(source) => {
                let secrets = self.secrets.as_ref().ok_or(CacheError::Auth)?;
                let token = secrets.resolve(source).await.map_err(|_| CacheError::Auth)?;
                info.redis.password = Some(token.expose().to_string());
            }
        }
        Ok(redis::Client::open(info)?)
    }

    async fn connection(&self) -> Result<ConnectionManager, CacheError> {
        let manager = self
            .manager
            .get_or_try_init(|| async {
                let client = self.client().await?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(self.timeout)
                    .set_number_of_retries(1);
                bounded(self.timeout, ConnectionManager::new_with_config(client, config)).await
            })
            .await?;
        Ok(manager.clone())
    }

    /// `PING`, with its round-trip time.
    #[tracing::instrument(name = "redis.ping", skip_all)]
    pub async fn ping(&self) -> Result<Duration, CacheError> {
        let start = Instant::now();
        let mut conn = self.connection().await?;
        let _: String = bounded(self.timeout, redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(start.elapsed())
    }

    /// A JSON value, or `None` on a miss, on a value that no longer decodes, or on a cache failure
    /// (logged).
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_slice(&self.get_bytes(key).await?).ok()
    }

    /// The bytes under `key`, or `None` on a miss or on a cache failure (logged).
    #[tracing::instrument(name = "redis.get", skip_all, fields(key = %key))]
    pub async fn get_bytes(&self, key: &str) -> Option<Vec<u8>> {
        let result: Result<Option<Vec<u8>>, CacheError> = async {
            let mut conn = self.connection().await?;
            bounded(self.timeout, conn.get(prefixed(key))).await
        }
        .await;
        match result {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, key, "cache read failed; answering from the source");
                None
            }
        }
    }

    /// The bytes under each of `keys` in one round trip (`MGET`), in their order: `None` for a
    /// miss, and for every key on a cache failure (logged).
    #[tracing::instrument(name = "redis.mget", skip_all, fields(keys = keys.len()))]
    pub async fn get_many(&self, keys: &[String]) -> Vec<Option<Vec<u8>>> {
        let full: Vec<String> = keys.iter().map(|k| prefixed(k)).collect();
        let result: Result<Vec<Option<Vec<u8>>>, CacheError> = async {
            let mut conn = self.connection().await?;
            bounded(self.timeout, redis::cmd("MGET").arg(&full).query_async(&mut conn)).await
        }
        .await;
        match result {
            Ok(values) if values.len() == keys.len() => values,
            Ok(_) => vec![None; keys.len()],
            Err(error) => {
                tracing::warn!(%error, "cache read failed; answering from the source");
                vec![None; keys.len()]
            }
        }
    }

    /// Stores bytes with a time to live only when the key is absent (`SET NX EX`), see
    /// [`Cache::set_json_if_absent`]. A failure is logged and otherwise ignored.
    pub async fn set_bytes_if_absent(&self, key: &str, bytes: Vec<u8>, ttl: Duration) {
        let result: Result<Option<String>, CacheError> = async {
            let mut conn = self.connection().await?;
            let cmd =
                redis::cmd("SET").arg(prefixed(key)).arg(bytes).arg("NX").arg("EX").arg(ttl.as_secs().max(1)).clone();
            bounded(self.timeout, cmd.query_async(&mut conn)).await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, key, "cache write failed");
        }
    }

    /// Stores a JSON value with a time to live. A failure is logged and otherwise ignored.
    pub async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Ok(bytes) = serde_json::to_vec(value) else { return };
        self.set_bytes(key, bytes, ttl).await
    }

    /// Stores bytes with a time to live. A failure is logged and otherwise ignored.
    #[tracing::instrument(name = "redis.set", skip_all, fields(key = %key))]
    pub async fn set_bytes(&self, key: &str, bytes: Vec<u8>, ttl: Duration) {
        let result: Result<(), CacheError> = async {
            let mut conn = self.connection().await?;
            bounded(self.timeout, conn.set_ex(prefixed(key), bytes, ttl.as_secs().max(1))).await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, key, "cache write failed");
        }
    }

    /// Stores a JSON value with a time to live only when the key is absent (`SET NX EX`): a
    /// reader filling the cache from the source cannot overwrite what a writer published after
    /// changing the source. A failure is logged and otherwise ignored.
    pub async fn set_json_if_absent<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Ok(bytes) = serde_json::to_vec(value) else { return };
        self.set_bytes_if_absent(key, bytes, ttl).await
    }

    /// Deletes keys (after a write made them stale). A failure is logged: the TTL bounds staleness.
    #[tracing::instrument(name = "redis.del", skip_all, fields(keys = keys.len()))]
    pub async fn delete(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let full: Vec<String> = keys.iter().map(|k| prefixed(k)).collect();
        let result: Result<(), CacheError> = async {
            let mut conn = self.connection().await?;
            bounded(self.timeout, conn.del(full)).await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "cache invalidation failed; entries expire by TTL");
        }
    }
}

fn prefixed(key: &str) -> String {
    if key.starts_with(KEY_PREFIX) { key.to_string() } else { format!("{KEY_PREFIX}{key}") }
}

async fn bounded<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, redis::RedisError>>,
) -> Result<T, CacheError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(CacheError::Timeout(limit)),
    }
}

impl CacheConfig {
    fn cache_url(&self) -> &str {
        self.url.expose()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use redis::ConnectionAddr;

    use super::*;
    use crate::secret::Secret;

    #[test]
    fn a_rediss_url_is_a_tls_connection_that_verifies_the_host() {
        let info = "rediss://master.football-prediction-prod.abc123.euw1.cache.amazonaws.com:6379"
            .into_connection_info()
            .expect("rediss:// parses (the redis crate is built with TLS)");
        match info.addr {
            ConnectionAddr::TcpTls { host, port, insecure, .. } => {
                assert_eq!(host, "master.football-prediction-prod.abc123.euw1.cache.amazonaws.com");
                assert_eq!(port, 6379);
                assert!(!insecure, "the certificate's host name must be checked");
            }
            other => panic!("rediss:// must be TLS, got {other:?}"),
        }
        let plain = "redis://127.0.0.1:6379".into_connection_info().unwrap();
        assert!(matches!(plain.addr, ConnectionAddr::Tcp(..)), "{:?}", plain.addr);
    }

    #[test]
    fn a_cache_on_a_rediss_url_builds_its_client_and_rustls_finds_its_one_provider() {
        let cache = Cache::new(&CacheConfig {
            url: Secret::new("rediss://cache.invalid:6379".to_string()),
            timeout: Duration::from_millis(50),
            auth: None,
        });
        assert!(cache.info.is_some(), "a rediss:// URL must give a client, not InvalidUrl");
        // redis builds its TLS configuration with `ClientConfig::builder()`, which panics when
        // the crate features enable two providers (or none) and nobody installed one: with
        // aws-lc-rs alone it picks that, with no `install_default` anywhere.
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        drop(config);
    }

    #[tokio::test]
    async fn a_failed_tls_handshake_is_a_miss_not_a_panic() {
        // A server that accepts and hangs up: the client builds its TLS configuration (where a
        // missing crypto provider panics), starts a handshake that fails, and the cache answers as
        // a miss within its timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let cache = Cache::new(&CacheConfig {
            url: Secret::new(format!("rediss://localhost:{port}")),
            timeout: Duration::from_millis(300),
            auth: None,
        });
        let value: Option<String> = cache.get_json("k").await;
        assert_eq!(value, None);
        assert!(cache.ping().await.is_err());
    }

    #[test]
    fn keys_get_the_prefix_once() {
        assert_eq!(prefixed("a"), "fp:a");
        assert_eq!(prefixed("fp:a"), "fp:a");
    }
}
