//! AWS clients, created once per cold start and only when first used.
//!
//! The SDK configuration is loaded lazily (no work at init that can wait) and honours the SDK's
//! own `AWS_ENDPOINT_URL`, so the same code talks to AWS or to the local emulator (moto).

use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

/// The AWS clients of a function. Cheap to share behind an `Arc`; each client is built on first use.
#[derive(Default)]
pub struct AwsClients {
    sdk: OnceCell<SdkConfig>,
    s3: OnceCell<aws_sdk_s3::Client>,
    dynamodb: OnceCell<aws_sdk_dynamodb::Client>,
    secrets_manager: OnceCell<aws_sdk_secretsmanager::Client>,
}

impl AwsClients {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared SDK configuration (region, credentials chain, endpoint override).
    pub async fn sdk_config(&self) -> &SdkConfig {
        self.sdk.get_or_init(|| aws_config::defaults(BehaviorVersion::latest()).load()).await
    }

    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3
            .get_or_init(|| async {
                let sdk = self.sdk_config().await;
                // Path-style addressing when an endpoint is overridden: the emulator serves
                // `http://host/bucket/key`, not `bucket.host`.
                let path_style = sdk.endpoint_url().is_some();
                let conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .await
    }

    pub async fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        self.dynamodb.get_or_init(|| async { aws_sdk_dynamodb::Client::new(self.sdk_config().await) }).await
    }

    pub async fn secrets_manager(&self) -> &aws_sdk_secretsmanager::Client {
        self.secrets_manager
            .get_or_init(|| async { aws_sdk_secretsmanager::Client::new(self.sdk_config().await) })
            .await
    }
}
