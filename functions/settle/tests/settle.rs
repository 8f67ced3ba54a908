//! Settlement and the job discipline, against the real database and the DynamoDB emulator.

use std::time::Duration;

use chrono::NaiveDate;
use shared::{
    engine::MatchRecord,
    jobs::{self, Deadline, JobLock, Outcome, WorkDone, testdata},
    settlement,
};
use test_support::{TestDatabase, services};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
}

/// Three finished matches (home win, draw, away win), one still to play, and `per_match`
/// predictions of each strategy for each of the four.
async fn fixture(db: &TestDatabase, per_match: usize) -> (Vec<i64>, Vec<i64>) {
    let records = vec![
        MatchRecord::new(day(2), "Arsenal FC", "Everton FC", 2, 0),
        MatchRecord::new(day(3), "Chelsea FC", "Fulham FC", 1, 1),
        MatchRecord::new(day(4), "Burnley FC", "Liverpool FC", 0, 3),
    ];
    let mut matches = testdata::load_matches(&db.pool, "PL", &records).await.unwrap();
    let scheduled: i64 = sqlx::query_scalar(
        "INSERT INTO matches (competition_id, season, kickoff_at, home_team_id, away_team_id) \
         SELECT competition_id, season, now() + interval '3 days', away_team_id, home_team_id FROM matches WHERE id = $1 RETURNING id",
    )
    .bind(matches[0])
    .fetch_one(&db.pool)
    .await
    .unwrap();
    matches.push(scheduled);
    let users = testdata::create_users(&db.pool, "punter", 2).await.unwrap();
    let mut preds = Vec::new();
    for &m in &matches {
        for i in 0..per_match {
            for strategy in ["statistical", "historical", "ml_model"] {
                preds.push(testdata::NewPrediction {
                    match_id: m,
                    user_id: Some(users[i % 2]),
                    strategy,
                    model_version: format!("{strategy}-v1"),
                    p: [0.5, 0.25, 0.25],
                });
            }
        }
    }
    let ids = testdata::insert_predictions(&db.pool, &preds).await.unwrap();
    (matches, ids)
}

async fn scores(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM prediction_scores").fetch_one(&db.pool).await.unwrap()
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(120))
}

#[tokio::test]
async fn settles_each_prediction_of_a_finished_match_once_even_when_run_twice_or_concurrently() {
    let db = TestDatabase::new().await;
    let (matches, _) = fixture(&db, 4).await;
    let s = services(&db);
    let input = settlement::SettleInput { batch_size: Some(7), max_batches: None };

    // Two overlapping runs: the lock lets one work; the other is recorded as skipped.
    let (a, b) = tokio::join!(settlement::run(&s, &input, deadline()), settlement::run(&s, &input, deadline()));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut outcomes = [a.outcome, b.outcome];
    outcomes.sort_by_key(|o| o.as_str());
    assert!(
        outcomes == [Outcome::Skipped, Outcome::Succeeded] || outcomes == [Outcome::Succeeded, Outcome::Succeeded],
        "{outcomes:?}"
    );
    // 3 finished matches x 4 x 3 strategies, nothing for the match still to play.
    assert_eq!(scores(&db).await, 36);
    let settled: u64 = [&a, &b].iter().map(|r| r.counts["settled"].as_u64().unwrap_or(0)).sum();
    assert_eq!(settled, 36, "metrics and counts see each score once: {a:?} {b:?}");

    // Again: nothing new.
    let again = settlement::run(&s, &input, deadline()).await.unwrap();
    assert_eq!(again.outcome, Outcome::Succeeded);
    assert_eq!(again.counts["settled"], 0);
    assert_eq!(scores(&db).await, 36);

    // The scores are the engine's: p = (0.5, 0.25, 0.25) on a home win, a draw, an away win.
    let rows: Vec<(i64, String, f64, f64, f64, bool)> = sqlx::query_as(
        "SELECT match_id, outcome, rps, brier, log_loss, correct FROM prediction_scores ORDER BY prediction_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let home = rows.iter().find(|r| r.0 == matches[0]).unwrap();
    assert_eq!(home.1, "home");
    assert!((home.2 - 0.15625).abs() < 1e-12 && (home.3 - 0.375).abs() < 1e-12 && home.5);
    assert!((home.4 - 2f64.ln()).abs() < 1e-12);
    let draw = rows.iter().find(|r| r.0 == matches[1]).unwrap();
    assert_eq!((draw.1.as_str(), draw.5), ("draw", false));
    assert!((draw.2 - (0.25 + 0.0625) / 2.0).abs() < 1e-12);
    let away = rows.iter().find(|r| r.0 == matches[2]).unwrap();
    assert!((away.2 - (0.25 + 0.5625) / 2.0).abs() < 1e-12);

    // The match finishes: the next run settles its predictions too.
    sqlx::query("UPDATE matches SET status = 'FINISHED', home_goals = 1, away_goals = 0 WHERE id = $1")
        .bind(matches[3])
        .execute(&db.pool)
        .await
        .unwrap();
    let later = settlement::run(&s, &input, deadline()).await.unwrap();
    assert_eq!(later.counts["settled"], 12);

    // Accuracy per strategy and model version.
    let acc = settlement::accuracy_by_model(&db.pool).await.unwrap();
    assert_eq!(acc.len(), 3);
    for a in &acc {
        assert_eq!(a.predictions, 16);
        assert!((a.accuracy - 0.5).abs() < 1e-12, "{a:?}");
    }
    let curve =
        settlement::accuracy_over_time(&db.pool, chrono::Utc::now() - chrono::Duration::days(10000)).await.unwrap();
    assert!(curve.iter().all(|p| p.predictions > 0) && curve.len() >= 3);
}

#[tokio::test]
async fn settle_batches_without_the_lock_still_write_each_score_once() {
    let db = TestDatabase::new().await;
    fixture(&db, 20).await;
    // Four concurrent writers over the same predictions, as if the lock had failed.
    let runs = futures::future::join_all((0..4).map(|_| settlement::settle_batch(&db.pool, 0, 10_000))).await;
    let inserted: usize = runs.into_iter().map(|r| r.unwrap().inserted.len()).sum();
    assert_eq!(inserted, 180);
    assert_eq!(scores(&db).await, 180);
}

#[tokio::test]
async fn a_run_stopped_by_its_deadline_resumes_and_finishes_the_work() {
    let db = TestDatabase::new().await;
    fixture(&db, 10).await;
    let s = services(&db);

    // Stopped after 2 batches of 10: partial, with a checkpoint.
    let first =
        settlement::run(&s, &settlement::SettleInput { batch_size: Some(10), max_batches: Some(2) }, deadline())
            .await
            .unwrap();
    assert_eq!(first.outcome, Outcome::Partial);
    assert_eq!(scores(&db).await, 20);
    let cp: Option<serde_json::Value> = jobs::load_checkpoint(&db.pool, "settle", "all").await.unwrap();
    assert!(cp.is_some());

    // A deadline already passed: the run starts no batch.
    let none = settlement::run(&s, &settlement::SettleInput::default(), Deadline::after(Duration::ZERO)).await.unwrap();
    assert_eq!(none.outcome, Outcome::Partial);
    assert_eq!(scores(&db).await, 20);

    // The next run picks up after the checkpoint and finishes.
    let second = settlement::run(&s, &settlement::SettleInput { batch_size: Some(10), max_batches: None }, deadline())
        .await
        .unwrap();
    assert_eq!(second.outcome, Outcome::Succeeded);
    assert_eq!(second.counts["settled"], 70);
    assert_eq!(scores(&db).await, 90);
    let cp: Option<serde_json::Value> = jobs::load_checkpoint(&db.pool, "settle", "all").await.unwrap();
    assert!(cp.is_none(), "a complete pass clears the checkpoint");

    let runs = jobs::recent_runs(&db.pool, 10).await.unwrap();
    let outcomes: Vec<&str> = runs.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["succeeded", "partial", "partial"]);
}

#[tokio::test]
async fn overlapping_runs_of_one_job_one_runs_the_other_is_skipped() {
    let db = TestDatabase::new().await;
    let s = services(&db);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let first = {
        let s = s.clone();
        tokio::spawn(async move {
            jobs::run(&s, "overlap", deadline(), |_ctx| async move {
                let _ = started_tx.send(());
                let _ = release_rx.await;
                Ok(WorkDone::complete(serde_json::json!({"worked": true})))
            })
            .await
        })
    };
    started_rx.await.unwrap();
    let second = jobs::run(&s, "overlap", deadline(), |_ctx| async move {
        panic!("the second run must not work while the first holds the lock")
    })
    .await
    .unwrap();
    assert_eq!(second.outcome, Outcome::Skipped);
    release_tx.send(()).unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.outcome, Outcome::Succeeded);
    // Both are on record.
    let runs = jobs::recent_runs(&db.pool, 10).await.unwrap();
    let mut outcomes: Vec<&str> = runs.iter().map(|r| r.outcome.as_str()).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["skipped", "succeeded"]);
}

#[tokio::test]
async fn a_killed_run_holds_the_lock_only_until_its_lease_expires_and_is_then_marked_failed() {
    let db = TestDatabase::new().await;
    let s = services(&db);
    let name = format!("overlap#{}", db.name);
    // A run that died: its lease (1 s) and its `running` record stay behind.
    let lock = JobLock::new(s.aws.dynamodb().await.clone(), &s.config.aws.table_name, &name);
    lock.acquire(Duration::from_secs(1)).await.unwrap().unwrap().forget();
    sqlx::query("INSERT INTO job_runs (job) VALUES ('overlap')").execute(&db.pool).await.unwrap();

    let skipped = jobs::run(&s, "overlap", deadline(), |_| async { Ok(WorkDone::complete(serde_json::json!({}))) })
        .await
        .unwrap();
    assert_eq!(skipped.outcome, Outcome::Skipped);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let ran = jobs::run(&s, "overlap", deadline(), |_| async { Ok(WorkDone::complete(serde_json::json!({}))) })
        .await
        .unwrap();
    assert_eq!(ran.outcome, Outcome::Succeeded);
    let dead: (String, Option<String>) =
        sqlx::query_as("SELECT outcome, error FROM job_runs WHERE job = 'overlap' ORDER BY id LIMIT 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(dead.0, "failed");
    assert!(dead.1.unwrap().contains("did not finish"));
}

#[tokio::test]
async fn a_failing_job_is_recorded_with_its_error_and_frees_the_lock() {
    let db = TestDatabase::new().await;
    let s = services(&db);
    let err = jobs::run(&s, "boom", deadline(), |_| async { Err(jobs::JobError::permanent("bad backup")) })
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    let row: (String, Option<String>) =
        sqlx::query_as("SELECT outcome, error FROM job_runs WHERE job = 'boom'").fetch_one(&db.pool).await.unwrap();
    assert_eq!(row, ("failed".to_string(), Some("bad backup".to_string())));
    let ok =
        jobs::run(&s, "boom", deadline(), |_| async { Ok(WorkDone::complete(serde_json::json!({}))) }).await.unwrap();
    assert_eq!(ok.outcome, Outcome::Succeeded);
}

#[tokio::test]
async fn bad_input_is_a_permanent_error_naming_the_field() {
    let db = TestDatabase::new().await;
    let s = services(&db);
    let err = settle::run(&s, serde_json::json!({"batch_size": "many"}), deadline()).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("batch_size"), "{err}");
    let err = settle::run(&s, serde_json::json!({"batch_size": 0}), deadline()).await.unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
    let err = settle::run(&s, serde_json::json!({"bogus": 1}), deadline()).await.unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
    let ok = settle::run(&s, serde_json::Value::Null, deadline()).await.unwrap();
    assert_eq!(ok.outcome, Outcome::Succeeded);
}
