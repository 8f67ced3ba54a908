//! The migrate job against a real, empty PostgreSQL database and the Secrets Manager emulator.
//! CodeDeploy's hook status call goes to a stand-in HTTP endpoint speaking the AWS JSON protocol
//! (moto does not implement PutLifecycleEventHookExecutionStatus): the real SDK request is checked.

use std::sync::{Arc, Mutex};

use axum::{Router, http::HeaderMap, routing::post};
use migrate::{FirstAdmin, MigrateError, MigrateEvent, Migrator};
use shared::{Secret, Services, auth::password};
use sqlx::{Connection, Executor, PgConnection};

/// A database with nothing in it: the job must create the schema itself.
async fn empty_database() -> (String, sqlx::PgPool) {
    let admin = test_support::admin_database_url();
    let name = format!("fp_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin).await.unwrap();
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await.unwrap();
    conn.close().await.ok();
    let url = test_support::replace_database(&admin, &name);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    (url, pool)
}

fn services(url: &str) -> Services {
    Services::new(test_support::config(url, &test_support::redis_url()))
}

async fn secret(services: &Services, value: serde_json::Value) -> String {
    let name = format!("football-prediction/test/first-admin-{}", uuid::Uuid::new_v4().simple());
    services
        .aws
        .secrets_manager()
        .await
        .create_secret()
        .name(&name)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("the AWS emulator (AWS_ENDPOINT_URL) is reachable");
    name
}

#[tokio::test]
async fn applies_every_migration_then_creates_the_first_admin_once() {
    let (url, pool) = empty_database().await;
    let services = services(&url);
    let arn = secret(&services, serde_json::json!({"username": "first_admin", "password": "a very long secret"})).await;
    let job = Migrator::new(services, Some(arn));

    let out = job.handle(MigrateEvent::default()).await.unwrap();
    assert_eq!(out.migrations_applied, shared::db::MIGRATOR.iter().count());
    assert_eq!(out.first_admin, FirstAdmin::Created);
    assert!(!out.hook_reported);
    let (role, hash): (String, String) =
        sqlx::query_as("SELECT role, password_hash FROM users WHERE username = 'first_admin'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(role, "admin");
    assert!(password::verify(&Secret::new("a very long secret"), &hash));

    // Again: nothing to do, nothing changed.
    let out = job.handle(MigrateEvent::default()).await.unwrap();
    assert_eq!((out.migrations_applied, out.first_admin), (0, FirstAdmin::Exists));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&pool).await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn without_a_secret_no_admin_is_created() {
    let (url, pool) = empty_database().await;
    let out = Migrator::new(services(&url), None).handle(MigrateEvent::default()).await.unwrap();
    assert_eq!(out.first_admin, FirstAdmin::NotConfigured);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&pool).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_name_already_taken_by_a_user_is_not_promoted() {
    let (url, pool) = empty_database().await;
    let services = services(&url);
    Migrator::new(services.clone(), None).run().await.unwrap();
    let hash = password::hash(&Secret::new("someone else's password")).unwrap();
    shared::users::create(&pool, "first_admin", None, &hash, shared::auth::Role::User).await.unwrap();
    let arn = secret(&services, serde_json::json!({"username": "first_admin", "password": "a very long secret"})).await;
    let out = Migrator::new(services, Some(arn)).run().await.unwrap();
    assert_eq!(out.first_admin, FirstAdmin::NameTakenByNonAdmin);
    let role: String =
        sqlx::query_scalar("SELECT role FROM users WHERE username = 'first_admin'").fetch_one(&pool).await.unwrap();
    assert_eq!(role, "user");
}

#[tokio::test]
async fn an_invalid_secret_is_an_error_that_names_the_problem() {
    let (url, _pool) = empty_database().await;
    let services = services(&url);
    for (value, words) in [
        (serde_json::json!({"username": "first_admin", "password": "short"}), "password"),
        (serde_json::json!({"username": "First Admin", "password": "a very long secret"}), "username"),
        (serde_json::json!({"user": "first_admin"}), "username"),
    ] {
        let arn = secret(&services, value).await;
        let err = Migrator::new(services.clone(), Some(arn)).run().await.unwrap_err();
        assert!(matches!(err, MigrateError::InvalidSecret(_)), "{err}");
        assert!(err.to_string().contains(words), "{err}");
        assert!(!err.to_string().contains("short"), "the secret's value must not be in the error: {err}");
    }
    let missing = Migrator::new(services, Some("football-prediction/test/does-not-exist".into())).run().await;
    assert!(matches!(missing, Err(MigrateError::Secret(_))), "{missing:?}");
}

/// Requests the stand-in CodeDeploy endpoint received: (X-Amz-Target, JSON body).
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

async fn fake_codedeploy() -> (aws_sdk_codedeploy::Client, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let app = Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let id = json["lifecycleEventHookExecutionId"].clone();
                log.lock().unwrap().push((target, json));
                (
                    [("content-type", "application/x-amz-json-1.1")],
                    serde_json::json!({ "lifecycleEventHookExecutionId": id }).to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let conf = aws_sdk_codedeploy::Config::builder()
        .behavior_version(aws_sdk_codedeploy::config::BehaviorVersion::latest())
        .region(aws_sdk_codedeploy::config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_codedeploy::config::Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(format!("http://{addr}"))
        .build();
    (aws_sdk_codedeploy::Client::from_conf(conf), received)
}

fn hook_event(deployment: &str, hook: &str) -> MigrateEvent {
    serde_json::from_value(serde_json::json!({"DeploymentId": deployment, "LifecycleEventHookExecutionId": hook}))
        .unwrap()
}

#[tokio::test]
async fn as_a_codedeploy_hook_it_reports_success_and_failure() {
    let (url, _pool) = empty_database().await;
    let services = services(&url);
    let (client, received) = fake_codedeploy().await;

    let job = Migrator::new(services.clone(), None).with_codedeploy(client.clone());
    let out = job.handle(hook_event("d-OK", "hook-1")).await.unwrap();
    assert!(out.hook_reported);

    let arn = secret(&services, serde_json::json!({"username": "first_admin", "password": "short"})).await;
    let failing = Migrator::new(services, Some(arn)).with_codedeploy(client);
    assert!(matches!(failing.handle(hook_event("d-BAD", "hook-2")).await, Err(MigrateError::InvalidSecret(_))));

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    for (target, _) in &got {
        assert_eq!(target, "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus");
    }
    assert_eq!(
        got[0].1,
        serde_json::json!({"deploymentId": "d-OK", "lifecycleEventHookExecutionId": "hook-1", "status": "Succeeded"})
    );
    assert_eq!(
        got[1].1,
        serde_json::json!({"deploymentId": "d-BAD", "lifecycleEventHookExecutionId": "hook-2", "status": "Failed"})
    );
}

#[tokio::test]
async fn half_a_hook_event_is_refused() {
    let (url, _pool) = empty_database().await;
    let event: MigrateEvent = serde_json::from_str(r#"{"DeploymentId":"d-1"}"#).unwrap();
    let err = Migrator::new(services(&url), None).handle(event).await.unwrap_err();
    assert!(matches!(err, MigrateError::IncompleteHookEvent));
}

#[test]
fn the_sample_events_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let plain: MigrateEvent =
        serde_json::from_str(&std::fs::read_to_string(dir.join("migrate.json")).unwrap()).unwrap();
    assert_eq!(plain, MigrateEvent::default());
    let hook: MigrateEvent =
        serde_json::from_str(&std::fs::read_to_string(dir.join("migrate-codedeploy-hook.json")).unwrap()).unwrap();
    assert!(hook.deployment_id.is_some() && hook.hook_execution_id.is_some());
}

/// The login users of the least-privilege roles: provision_login has the server build its
/// statements (`format` with %I and %L, the CREATE/ALTER and [NO]CREATEDB keywords as %s). The
/// first call creates a login member of the group, the second alters it; a name that needs quoting
/// is quoted. Roles belong to the cluster: the test drops the one it made before asserting.
#[tokio::test]
async fn provisions_a_login_user_then_updates_it() {
    let db = test_support::TestDatabase::new().await;
    let name = format!("fp_test_login_{}\"x y", uuid::Uuid::new_v4().simple());
    // (can log in, CREATEDB, member of football_app, member of football_backup, password hash)
    let state = |pool: sqlx::PgPool, name: String| async move {
        sqlx::query_as::<_, (bool, bool, bool, bool, Option<String>)>(
            "SELECT r.rolcanlogin, r.rolcreatedb, pg_has_role(r.oid, 'football_app', 'MEMBER'),
                    pg_has_role(r.oid, 'football_backup', 'MEMBER'), a.rolpassword
             FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = $1",
        )
        .bind(name)
        .fetch_one(&pool)
        .await
    };
    let created =
        shared::db::provision_login(&db.pool, &name, &Secret::new("first password"), shared::db::APP_ROLE, false).await;
    let after_create = state(db.pool.clone(), name.clone()).await;
    let altered =
        shared::db::provision_login(&db.pool, &name, &Secret::new("second password"), shared::db::BACKUP_ROLE, true)
            .await;
    let after_alter = state(db.pool.clone(), name.clone()).await;
    let drop: String =
        sqlx::query_scalar("SELECT format('DROP ROLE %I', $1::text)").bind(&name).fetch_one(&db.pool).await.unwrap();
    db.pool.execute(drop.as_str()).await.unwrap();

    created.unwrap();
    altered.unwrap();
    let (login, createdb, app, backup, first_hash) = after_create.unwrap();
    assert_eq!((login, createdb, app, backup), (true, false, true, false));
    let (login, createdb, app, backup, second_hash) = after_alter.unwrap();
    // ALTER keeps the earlier GRANT: the user is in both groups now.
    assert_eq!((login, createdb, app, backup), (true, true, true, true));
    assert!(first_hash.is_some() && second_hash.is_some() && first_hash != second_hash, "the password was set again");
}
