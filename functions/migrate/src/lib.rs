//! The `migrate` function: applies `shared::db::MIGRATOR`, then creates the first admin from the
//! secret named by `FIRST_ADMIN_SECRET_ARN` (`{"username","password"}`) when no account of that
//! name exists. Both steps are idempotent, so it can run on every deploy.
//!
//! Invoked two ways: a plain `{}` (manual or scheduled), or as a CodeDeploy lifecycle hook
//! (`{"DeploymentId","LifecycleEventHookExecutionId"}`, the pre-traffic hook of a Lambda
//! deployment), in which case the outcome is also reported to CodeDeploy with
//! `PutLifecycleEventHookExecutionStatus` (a failure stops the traffic shift).

use serde::{Deserialize, Serialize};
use shared::{
    Secret, Services,
    auth::{Role, session::hash_blocking},
    users,
};
use tokio::sync::OnceCell;

/// The invocation payload. Both ids or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MigrateEvent {
    #[serde(rename = "DeploymentId", default)]
    pub deployment_id: Option<String>,
    #[serde(rename = "LifecycleEventHookExecutionId", default)]
    pub hook_execution_id: Option<String>,
}

/// What happened to the first admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstAdmin {
    Created,
    /// An admin of that name exists: nothing done.
    Exists,
    /// A non-admin account has that name: it is NOT promoted (someone may have registered the
    /// name first); an operator must choose another name or promote it deliberately.
    NameTakenByNonAdmin,
    /// `FIRST_ADMIN_SECRET_ARN` is not set.
    NotConfigured,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateOutput {
    /// Migrations applied by this run (0 when the schema was up to date).
    pub migrations_applied: usize,
    pub first_admin: FirstAdmin,
    /// Whether the outcome was reported to CodeDeploy.
    pub hook_reported: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the event has DeploymentId or LifecycleEventHookExecutionId but not both")]
    IncompleteHookEvent,
    #[error("database unavailable: {0}")]
    Database(String),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("first admin secret unavailable: {0}")]
    Secret(String),
    #[error("first admin secret is invalid: {0}")]
    InvalidSecret(String),
    #[error("CodeDeploy could not be told the hook's status: {0}")]
    Hook(String),
}

/// The job, with its (lazily built) CodeDeploy client.
pub struct Migrator {
    services: Services,
    first_admin_secret: Option<String>,
    codedeploy: OnceCell<aws_sdk_codedeploy::Client>,
}

impl Migrator {
    pub fn new(services: Services, first_admin_secret: Option<String>) -> Self {
        Self {
            services,
            first_admin_secret: first_admin_secret.filter(|s| !s.trim().is_empty()),
            codedeploy: OnceCell::new(),
        }
    }

    /// Uses `client` for CodeDeploy (tests: a client pointed at a stand-in endpoint).
    pub fn with_codedeploy(self, client: aws_sdk_codedeploy::Client) -> Self {
        Self { codedeploy: OnceCell::from(client), ..self }
    }

    async fn codedeploy(&self) -> &aws_sdk_codedeploy::Client {
        self.codedeploy
            .get_or_init(|| async { aws_sdk_codedeploy::Client::new(self.services.aws.sdk_config().await) })
            .await
    }

    /// Runs the job; as a hook, reports `Succeeded` or `Failed` to CodeDeploy either way.
    pub async fn handle(&self, event: MigrateEvent) -> Result<MigrateOutput, MigrateError> {
        let hook = match (event.deployment_id, event.hook_execution_id) {
            (Some(d), Some(h)) => Some((d, h)),
            (None, None) => None,
            _ => return Err(MigrateError::IncompleteHookEvent),
        };
        let outcome = self.run().await;
        match &outcome {
            Ok(out) => {
                tracing::info!(migrations_applied = out.migrations_applied, first_admin = ?out.first_admin, "migrate done")
            }
            Err(e) => tracing::error!(error = %e, "migrate failed"),
        }
        let Some((deployment_id, hook_id)) = hook else { return outcome };
        let status = if outcome.is_ok() {
            aws_sdk_codedeploy::types::LifecycleEventStatus::Succeeded
        } else {
            aws_sdk_codedeploy::types::LifecycleEventStatus::Failed
        };
        self.codedeploy()
            .await
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(&deployment_id)
            .lifecycle_event_hook_execution_id(&hook_id)
            .status(status.clone())
            .send()
            .await
            .map_err(|e| MigrateError::Hook(aws_sdk_codedeploy::error::DisplayErrorContext(e).to_string()))?;
        tracing::info!(deployment_id, status = status.as_str(), "hook status reported to CodeDeploy");
        outcome.map(|out| MigrateOutput { hook_reported: true, ..out })
    }

    /// Migrations, then the first admin.
    pub async fn run(&self) -> Result<MigrateOutput, MigrateError> {
        let pool = self.services.db.pool().await.map_err(|e| MigrateError::Database(e.to_string()))?;
        let before = applied_count(pool).await?;
        shared::db::MIGRATOR.run(pool).await.map_err(|e| MigrateError::Migration(e.to_string()))?;
        let after = applied_count(pool).await?;
        self.database_logins(pool).await?;
        let first_admin = self.first_admin(pool).await?;
        Ok(MigrateOutput { migrations_applied: after.saturating_sub(before), first_admin, hook_reported: false })
    }

    /// The login users of the least-privilege roles, from their secrets (`APP_DATABASE_SECRET_ARN`:
    /// the API functions and the jobs; `BACKUP_DATABASE_SECRET_ARN`: backup), created or given
    /// the secret's current password. Not configured (local, tests): nothing to do.
    async fn database_logins(&self, pool: &sqlx::PgPool) -> Result<(), MigrateError> {
        for (var, group, createdb) in [
            ("APP_DATABASE_SECRET_ARN", shared::db::APP_ROLE, false),
            ("BACKUP_DATABASE_SECRET_ARN", shared::db::BACKUP_ROLE, true),
        ] {
            let Some(arn) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) else { continue };
            let value =
                self.services.secrets.refresh_json(&arn).await.map_err(|e| MigrateError::Secret(e.to_string()))?;
            let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
            let username =
                field("username").ok_or_else(|| MigrateError::InvalidSecret(format!("{var}: no `username`")))?;
            let password = Secret::new(
                field("password").ok_or_else(|| MigrateError::InvalidSecret(format!("{var}: no `password`")))?,
            );
            shared::db::provision_login(pool, &username, &password, group, createdb).await.map_err(db)?;
            tracing::info!(username, group, "database login provisioned");
        }
        Ok(())
    }

    async fn first_admin(&self, pool: &sqlx::PgPool) -> Result<FirstAdmin, MigrateError> {
        let Some(arn) = &self.first_admin_secret else {
            tracing::info!("FIRST_ADMIN_SECRET_ARN is not set: no first admin to create");
            return Ok(FirstAdmin::NotConfigured);
        };
        let value = self.services.secrets.resolve_json(arn).await.map_err(|e| MigrateError::Secret(e.to_string()))?;
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let username = field("username").ok_or_else(|| MigrateError::InvalidSecret("no `username` string".into()))?;
        let password =
            Secret::new(field("password").ok_or_else(|| MigrateError::InvalidSecret("no `password` string".into()))?);
        users::validate_username("username", &username).map_err(|e| MigrateError::InvalidSecret(e.to_string()))?;
        users::validate_password("password", password.expose(), &username)
            .map_err(|e| MigrateError::InvalidSecret(e.to_string()))?;

        if let Some(existing) = users::get_by_username(pool, &username).await.map_err(db)? {
            return Ok(if existing.role == Role::Admin {
                FirstAdmin::Exists
            } else {
                tracing::error!(username, "the first admin's username belongs to a non-admin account: not promoted");
                FirstAdmin::NameTakenByNonAdmin
            });
        }
        let hash = hash_blocking(password).await.map_err(db)?;
        match users::create(pool, &username, None, &hash, Role::Admin).await.map_err(db)? {
            Some(user) => {
                tracing::info!(user_id = %user.id, username, "first admin created");
                Ok(FirstAdmin::Created)
            }
            // Created by a concurrent run between the check and the insert.
            None => Ok(FirstAdmin::Exists),
        }
    }
}

fn db(e: impl std::fmt::Display) -> MigrateError {
    MigrateError::Database(e.to_string())
}

async fn applied_count(pool: &sqlx::PgPool) -> Result<usize, MigrateError> {
    let exists: bool = sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "exists!""#)
        .fetch_one(pool)
        .await
        .map_err(db)?;
    if !exists {
        return Ok(0);
    }
    let n: i64 = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM _sqlx_migrations WHERE success"#)
        .fetch_one(pool)
        .await
        .map_err(db)?;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_invoke_and_a_codedeploy_hook() {
        let plain: MigrateEvent = serde_json::from_str("{}").unwrap();
        assert_eq!(plain, MigrateEvent::default());
        let hook: MigrateEvent =
            serde_json::from_str(r#"{"DeploymentId":"d-ABC","LifecycleEventHookExecutionId":"h-1"}"#).unwrap();
        assert_eq!(hook.deployment_id.as_deref(), Some("d-ABC"));
        assert_eq!(hook.hook_execution_id.as_deref(), Some("h-1"));
    }
}
