//! Training against the real database and the S3 emulator: publishes a version, refuses a worse
//! one, keeps the previous one to roll back to.

use std::{path::PathBuf, time::Duration};

use shared::{
    engine::Strategy,
    jobs::{Deadline, Outcome, testdata},
    training,
};
use test_support::{TestDatabase, services};

/// `../shared/data/football-data-co-uk/E0` beside the repository, or `$FP_DATA_DIR` (as for the
/// engine bench: a worktree elsewhere).
fn e0() -> PathBuf {
    match std::env::var_os("FP_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/football-data-co-uk/E0"),
    }
}

#[tokio::test]
async fn train_publishes_a_version_refuses_a_worse_one_and_keeps_the_previous_to_roll_back_to() {
    let db = TestDatabase::new().await;
    // Two and a half seasons: enough for the ml_model's burn-in year and a 150-match evaluation.
    let records = testdata::read_dir(&e0()).unwrap();
    let start = records.len() - 950;
    testdata::load_matches(&db.pool, "PL", &records[start..]).await.unwrap();
    let s = services(&db);
    let deadline = || Deadline::after(Duration::from_secs(900));

    let first = train::run(&s, serde_json::json!({"holdout_matches": 150}), deadline()).await.unwrap();
    assert_eq!(first.outcome, Outcome::Succeeded, "{first:?}");
    let results = first.counts["strategies"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|r| r["decision"] == "published"), "{results:?}");
    // market: evaluated on the same matches with the ml_model artifact just published.
    let market = training::active_version(&db.pool, Strategy::Market).await.unwrap().unwrap();
    assert!(market.artifact_key.as_ref().unwrap().starts_with("models/market/"));
    assert!(market.rps().unwrap() > 0.1 && market.rps().unwrap() < 0.3, "{:?}", market.metrics);
    let ml = training::active_version(&db.pool, Strategy::MlModel).await.unwrap().unwrap();
    let key = ml.artifact_key.clone().unwrap();
    assert!(key.starts_with("models/ml_model/") && key.ends_with(".json"));
    assert_eq!(ml.artifact_sha256.as_ref().unwrap().len(), 64);
    assert!(ml.rps().unwrap() > 0.1 && ml.rps().unwrap() < 0.3, "{:?}", ml.metrics);
    // The artifact in S3 is the one recorded, and loads.
    let (version, artifact) = training::active_ml_artifact(&s).await.unwrap().unwrap();
    assert_eq!(version, ml.version);
    assert!(artifact.trained_until < chrono::Utc::now().naive_utc());

    // A worse candidate (heavily over-regularised, another seed): refused, the active one stays.
    let worse = train::run(
        &s,
        serde_json::json!({"holdout_matches": 150, "strategies": ["ml_model"], "ml": {"seed": 7, "l2_grid": [50.0]}}),
        deadline(),
    )
    .await
    .unwrap();
    let r = &worse.counts["strategies"][0];
    assert_eq!(r["decision"], "refused", "{r}");
    assert!(r["rps"].as_f64().unwrap() > r["current_rps"].as_f64().unwrap());
    assert_eq!(training::active_version(&db.pool, Strategy::MlModel).await.unwrap().unwrap().version, ml.version);

    // The same training again: nothing new to publish.
    let again = train::run(&s, serde_json::json!({"holdout_matches": 150, "strategies": ["ml_model"]}), deadline())
        .await
        .unwrap();
    assert_eq!(again.counts["strategies"][0]["decision"], "unchanged");

    // A better-or-equal candidate (another seed) is published; the previous one stays to roll back to.
    let other = train::run(
        &s,
        serde_json::json!({"holdout_matches": 150, "strategies": ["ml_model"], "max_rps_regression": 0.01, "ml": {"seed": 11}}),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(other.counts["strategies"][0]["decision"], "published", "{other:?}");
    let versions = training::versions(&db.pool, Strategy::MlModel).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions[0].is_active && !versions[1].is_active);
    assert!(training::activate(&db.pool, Strategy::MlModel, &ml.version).await.unwrap());
    assert_eq!(training::active_version(&db.pool, Strategy::MlModel).await.unwrap().unwrap().version, ml.version);
}

#[tokio::test]
async fn too_little_history_or_bad_input_is_a_permanent_error() {
    let db = TestDatabase::new().await;
    let records = testdata::read_dir(&e0()).unwrap();
    testdata::load_matches(&db.pool, "PL", &records[..100]).await.unwrap();
    let s = services(&db);
    let deadline = Deadline::after(Duration::from_secs(60));
    let err = train::run(&s, serde_json::json!({}), deadline).await.unwrap_err();
    assert!(!err.is_retryable() && err.to_string().contains("finished matches"), "{err}");
    let err = train::run(&s, serde_json::json!({"holdout_matches": 3}), deadline).await.unwrap_err();
    assert!(err.to_string().contains("holdout_matches"), "{err}");
    let err = train::run(&s, serde_json::json!({"strategies": ["magic"]}), deadline).await.unwrap_err();
    assert!(err.to_string().contains("strategies"), "{err}");
}

#[tokio::test]
async fn an_active_artifact_missing_from_s3_does_not_block_training() {
    let db = TestDatabase::new().await;
    // Another slice than the other tests: its artifact (and S3 key) is this test's own.
    let records = testdata::read_dir(&e0()).unwrap();
    testdata::load_matches(&db.pool, "PL", &records[records.len() - 960..]).await.unwrap();
    let s = services(&db);
    let deadline = || Deadline::after(Duration::from_secs(900));
    let input = serde_json::json!({"holdout_matches": 150, "strategies": ["ml_model"]});
    let first = train::run(&s, input, deadline()).await.unwrap();
    assert_eq!(first.outcome, Outcome::Succeeded, "{first:?}");
    let ml = training::active_version(&db.pool, Strategy::MlModel).await.unwrap().unwrap();
    s.aws
        .s3()
        .await
        .delete_object()
        .bucket(&s.config.aws.backup_bucket)
        .key(ml.artifact_key.clone().unwrap())
        .send()
        .await
        .unwrap();

    // The next candidate is compared with the version's recorded evaluation instead of failing
    // (as retryable) on every run for an object that will not come back.
    let next = train::run(
        &s,
        serde_json::json!({"holdout_matches": 150, "strategies": ["ml_model"], "max_rps_regression": 0.01, "ml": {"seed": 11}}),
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(next.outcome, Outcome::Succeeded, "{next:?}");
    let r = &next.counts["strategies"][0];
    assert_eq!(r["decision"], "published", "{r}");
    assert_eq!(r["current_rps"].as_f64(), ml.rps(), "the recorded RPS was the bar: {r}");
}
