//! Secrets from Secrets Manager, read once per cold start, and again when the value was refused
//! ([`SecretStore::refresh_json`], for a rotated database password).

use std::{collections::HashMap, sync::Arc};

use tokio::sync::Mutex;

use crate::{aws::AwsClients, config::SecretSource, secret::Secret};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager could not be reached or refused: retryable, a 503 for a request.
    #[error("secret {arn} could not be read from Secrets Manager: {reason}")]
    Unavailable { arn: String, reason: String },
    /// The secret exists but its content is not what the service expects.
    #[error("secret {arn} is malformed: {reason}")]
    Malformed { arn: String, reason: String },
}

/// Resolves [`SecretSource`]s; a secret fetched from Secrets Manager is kept for the life of the
/// process (one read per cold start) unless it is refreshed. A failed read is not cached, so the
/// next request retries.
pub struct SecretStore {
    aws: Arc<AwsClients>,
    cache: Mutex<HashMap<String, Secret>>,
}

impl SecretStore {
    pub fn new(aws: Arc<AwsClients>) -> Self {
        Self { aws, cache: Mutex::new(HashMap::new()) }
    }

    /// The secret's value (the whole `SecretString`).
    pub async fn resolve(&self, source: &SecretSource) -> Result<Secret, SecretError> {
        match source {
            SecretSource::Plain(value) => Ok(value.clone()),
            SecretSource::SecretsManager { arn } => self.fetch(arn).await,
        }
    }

    /// A JSON secret's field, e.g. `password` of an RDS secret.
    pub async fn resolve_json(&self, arn: &str) -> Result<serde_json::Value, SecretError> {
        let raw = self.fetch(arn).await?;
        serde_json::from_str(raw.expose()).map_err(|e| SecretError::Malformed {
            arn: arn.to_string(),
            reason: format!("not JSON ({})", e.classify_name()),
        })
    }

    /// A JSON secret read again from Secrets Manager (its cached value replaced): after the
    /// value it held was refused (a rotated database password).
    pub async fn refresh_json(&self, arn: &str) -> Result<serde_json::Value, SecretError> {
        self.cache.lock().await.remove(arn);
        self.resolve_json(arn).await
    }

    async fn fetch(&self, arn: &str) -> Result<Secret, SecretError> {
        let mut cache = self.cache.lock().await;
        if let Some(hit) = cache.get(arn) {
            return Ok(hit.clone());
        }
        let out = self.aws.secrets_manager().await.get_secret_value().secret_id(arn).send().await.map_err(|e| {
            SecretError::Unavailable {
                arn: arn.to_string(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            }
        })?;
        let value = out
            .secret_string()
            .ok_or_else(|| SecretError::Malformed { arn: arn.to_string(), reason: "it has no SecretString".into() })?;
        let secret = Secret::new(value);
        cache.insert(arn.to_string(), secret.clone());
        Ok(secret)
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    // The error's Display could quote part of the secret; its category cannot.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}
