//! Backups against the real PostgreSQL and the S3 emulator: the EPL seasons of
//! `../shared/data` plus users, predictions and scores, backed up, restored into an empty
//! database, and compared table by table.

use std::{path::PathBuf, sync::Arc, time::Duration};

use shared::{
    backup::{self, BackupOptions, Store},
    jobs::{Deadline, Outcome, testdata},
    settlement,
};
use sqlx::PgPool;
use test_support::{TestDatabase, proxy::ToggleProxy, services};

/// `../shared/data/football-data-co-uk/E0` beside the repository, or `$FP_DATA_DIR` (as for the
/// train tests: a worktree elsewhere).
fn e0() -> PathBuf {
    match std::env::var_os("FP_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/football-data-co-uk/E0"),
    }
}

fn unique_prefix() -> String {
    format!("test-backups/{}/", uuid_like())
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

async fn store(db: &TestDatabase, prefix: &str) -> Store {
    let s = services(db);
    Store { s3: s.aws.s3().await.clone(), bucket: s.config.aws.backup_bucket.clone(), prefix: prefix.into() }
}

/// Every EPL season of the data folder, 20 users, three predictions per match, scores for the
/// settled ones, a job run and a checkpoint, a model version.
async fn load_league(db: &TestDatabase) -> usize {
    let records = testdata::read_dir(&e0()).expect("the EPL CSV files of ../shared/data");
    assert!(records.len() > 3000, "{} matches", records.len());
    let matches = testdata::load_matches(&db.pool, "PL", &records).await.unwrap();
    let users = testdata::create_users(&db.pool, "fan", 20).await.unwrap();
    let mut preds = Vec::new();
    for (i, &m) in matches.iter().enumerate() {
        for (k, strategy) in ["statistical", "historical", "ml_model"].into_iter().enumerate() {
            let ph = 0.30 + 0.4 * (((i * 7 + k * 13) % 100) as f64 / 100.0);
            preds.push(testdata::NewPrediction {
                match_id: m,
                user_id: if i % 5 == 0 { None } else { Some(users[i % users.len()]) },
                strategy,
                model_version: format!("{strategy}-v{}", 1 + i % 3),
                p: [ph, (1.0 - ph) * 0.45, 0.0],
            });
        }
    }
    testdata::insert_predictions(&db.pool, &preds).await.unwrap();
    settlement::settle_batch(&db.pool, 0, 5000).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO job_runs (job, outcome, counts, finished_at) VALUES ('settle', 'succeeded', '{\"settled\": 5000}', now()); \
         INSERT INTO job_checkpoints (job, scope, state) VALUES ('settle', 'all', '{\"after_id\": 5000}'); \
         INSERT INTO model_versions (strategy_type, version, metrics, is_active) VALUES ('statistical', 'dc-1', '{\"rps\": 0.2}', true); \
         INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) \
           SELECT id, gen_random_uuid(), sha256(username::bytea), now() + interval '30 days' FROM users",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    records.len()
}

/// Row count and an md5 of the ordered rows of every table.
async fn fingerprint(pool: &PgPool) -> Vec<(String, i64, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let (n, md5): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(x::text, E'\\n' ORDER BY x::text)) FROM \"{t}\" x"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((t, n, md5.unwrap_or_default()));
    }
    out
}

#[tokio::test]
async fn backup_and_restore_into_an_empty_database_gives_identical_tables() {
    let source = TestDatabase::new().await;
    let n = load_league(&source).await;
    let prefix = unique_prefix();
    let store = store(&source, &prefix).await;

    let mut conn = source.pool.acquire().await.unwrap();
    let manifest = backup::backup(&mut conn, &store, &BackupOptions::default()).await.unwrap();
    drop(conn);
    assert_eq!(manifest.schema_version, backup::latest_migration());
    let matches = manifest.tables.iter().find(|t| t.name == "matches").unwrap();
    assert_eq!(matches.rows as usize, n);
    // Parents before children.
    let pos = |name: &str| manifest.tables.iter().position(|t| t.name == name).unwrap();
    assert!(pos("competitions") < pos("matches") && pos("matches") < pos("predictions"));
    assert!(pos("predictions") < pos("prediction_scores") && pos("users") < pos("predictions"));

    // The manifest read back from S3 is the one written, and it is the latest complete backup.
    let latest = backup::latest_complete(&store).await.unwrap().unwrap();
    assert_eq!(latest, manifest);

    let target = TestDatabase::new().await;
    let mut conn = target.pool.acquire().await.unwrap();
    let report = backup::restore(&mut conn, &store, &manifest).await.unwrap();
    drop(conn);
    assert_eq!(report.rows, manifest.total_rows());

    let before = fingerprint(&source.pool).await;
    let after = fingerprint(&target.pool).await;
    assert!(before.iter().any(|(t, rows, _)| t == "match_odds" && *rows > 10_000), "{before:?}");
    assert_eq!(before, after);

    // Sequences continue after the restored ids.
    let id: i64 =
        sqlx::query_scalar("INSERT INTO users (username, password_hash) VALUES ('after_restore', $1) RETURNING id")
            .bind(testdata::TEST_PASSWORD_HASH)
            .fetch_one(&target.pool)
            .await
            .unwrap();
    let max: i64 = sqlx::query_scalar("SELECT max(id) FROM users WHERE username <> 'after_restore'")
        .fetch_one(&target.pool)
        .await
        .unwrap();
    assert!(id > max);

    // A database that is not empty is refused.
    let mut conn = target.pool.acquire().await.unwrap();
    let err = backup::restore(&mut conn, &store, &manifest).await.unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");

    // The drill restores the latest backup into a scratch database and finds it identical.
    let report = backup::verify(&source.pool, &store, None).await.unwrap();
    assert_eq!(report.backup_id, manifest.backup_id);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&report.scratch_database)
        .fetch_one(&source.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the scratch database is dropped");
}

#[tokio::test]
async fn an_upload_that_fails_halfway_leaves_nothing_that_looks_complete() {
    let db = TestDatabase::new().await;
    load_league(&db).await;
    let prefix = unique_prefix();
    let good = store(&db, &prefix).await;

    // S3 through a proxy that goes down after the third table.
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (the emulator)");
    let proxy = Arc::new(ToggleProxy::start(endpoint.trim_start_matches("http://").trim_end_matches('/')).await);
    let sdk =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(proxy.url("http://", "")).load().await;
    let flaky = Store {
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(2))
                .build(),
        ),
        bucket: good.bucket.clone(),
        prefix: prefix.clone(),
    };
    let uploaded = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook = {
        let (proxy, uploaded) = (proxy.clone(), uploaded.clone());
        Arc::new(move |_: &backup::TableEntry| {
            if uploaded.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 3 {
                proxy.down();
            }
        })
    };
    let mut conn = db.pool.acquire().await.unwrap();
    let opts = BackupOptions { on_table: Some(hook), ..BackupOptions::default() };
    let err = backup::backup(&mut conn, &flaky, &opts).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    proxy.up();

    // Files of the failed run are there, its manifest is not: nothing takes it for a backup.
    let ids = backup::list_backups(&good).await.unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(backup::read_manifest(&good, &ids[0]).await.unwrap().is_none());
    assert!(backup::latest_complete(&good).await.unwrap().is_none());
    let err = backup::complete_manifest(&good, &ids[0]).await.unwrap_err();
    assert!(err.to_string().contains("no manifest"), "{err}");
    assert!(backup::verify(&db.pool, &good, None).await.is_err());
    let target = TestDatabase::new().await;
    let err = backup::complete_manifest(&good, &ids[0]).await.unwrap_err();
    assert!(!err.is_retryable());
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&target.pool).await.unwrap();
    assert_eq!(users, 0);

    // The next good backup is the one restore and verify take.
    let mut conn = db.pool.acquire().await.unwrap();
    let m = backup::backup(&mut conn, &good, &BackupOptions::default()).await.unwrap();
    assert_eq!(backup::latest_complete(&good).await.unwrap().unwrap().backup_id, m.backup_id);
}

#[tokio::test]
async fn verify_detects_a_tampered_backup_file() {
    let db = TestDatabase::new().await;
    load_league(&db).await;
    let prefix = unique_prefix();
    let store = store(&db, &prefix).await;
    let mut conn = db.pool.acquire().await.unwrap();
    let m = backup::backup(&mut conn, &store, &BackupOptions::default()).await.unwrap();
    drop(conn);

    // Change the gzip header's timestamp of the matches file: same size, still valid gzip with
    // the same rows, but not the file that was backed up.
    let t = m.tables.iter().find(|t| t.name == "matches").unwrap();
    let key = format!("{prefix}{}/{}", m.backup_id, t.file);
    let mut bytes = store
        .s3
        .get_object()
        .bucket(&store.bucket)
        .key(&key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec();
    bytes[5] ^= 0xff;
    store.s3.put_object().bucket(&store.bucket).key(&key).body(bytes.into()).send().await.unwrap();

    let err = backup::verify(&db.pool, &store, None).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("SHA-256") && err.to_string().contains(&t.file), "{err}");

    // A changed row with the checksum recomputed is caught by the content checksum.
    let mut m2 = m.clone();
    m2.tables.iter_mut().for_each(|x| {
        if x.name == "matches" {
            x.content_sha256 = "0".repeat(64)
        }
    });
    let target = TestDatabase::new().await;
    let mut conn = target.pool.acquire().await.unwrap();
    assert!(backup::restore(&mut conn, &store, &m2).await.is_err());
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM matches").fetch_one(&target.pool).await.unwrap();
    assert_eq!(n, 0, "a failed restore leaves the target empty");
}

#[tokio::test]
async fn the_job_backs_up_then_verifies_and_restores_by_name() {
    let db = TestDatabase::new().await;
    let records = testdata::read_dir(&e0()).unwrap();
    testdata::load_matches(&db.pool, "PL", &records[..400]).await.unwrap();
    let s = services(&db);
    let prefix = unique_prefix();
    let deadline = || Deadline::after(Duration::from_secs(300));

    let done = backup::run(&s, &serde_json::from_value(serde_json::json!({"prefix": prefix})).unwrap(), deadline())
        .await
        .unwrap();
    assert_eq!(done.outcome, Outcome::Succeeded);
    let id = done.counts["backup_id"].as_str().unwrap().to_string();

    let verified =
        ::backup::run(&s, serde_json::json!({"mode": "verify", "prefix": prefix}), deadline()).await.unwrap();
    assert_eq!(verified.outcome, Outcome::Succeeded);
    assert_eq!(verified.counts["backup_id"], id.as_str());

    let target_name = format!("{}_restored", db.name);
    let restored = ::backup::run(
        &s,
        serde_json::json!({"mode": "restore", "prefix": prefix, "backup_id": id, "target_database": target_name}),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(restored.outcome, Outcome::Succeeded);
    let url = test_support::replace_database(&db.url, &target_name);
    let target = PgPool::connect(&url).await.unwrap();
    // The backup is a snapshot taken while its own run (and then verify and restore) was going
    // on: every table but the run records is the same.
    let without_runs = |f: Vec<(String, i64, String)>| f.into_iter().filter(|t| t.0 != "job_runs").collect::<Vec<_>>();
    assert_eq!(without_runs(fingerprint(&db.pool).await), without_runs(fingerprint(&target).await));
    target.close().await;
    sqlx::query(&format!("DROP DATABASE \"{target_name}\" WITH (FORCE)")).execute(&db.pool).await.unwrap();

    let err =
        ::backup::run(&s, serde_json::json!({"mode": "restore", "prefix": prefix}), deadline()).await.unwrap_err();
    assert!(err.to_string().contains("backup_id"));
    let err = ::backup::run(&s, serde_json::json!({"mode": "explode"}), deadline()).await.unwrap_err();
    assert!(err.to_string().contains("mode"), "{err}");
}
