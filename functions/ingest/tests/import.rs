//! The football-data.co.uk import: the EPL history of ../shared/data twice (same row counts, the
//! second run writes nothing), and an S3 object through the ingest function's `import` event
//! against the AWS emulator; shots and shots on target stored at import and read back by
//! `history::load` as the CSV reader gives them to the engine.

mod common;

use std::time::Instant;

use common::{root, snapshot};
use ingest::JobInput;
use shared::{
    import::S3Import,
    jobs::{Deadline, JobError, Outcome},
};
use test_support::TestDatabase;

#[tokio::test]
async fn importing_the_epl_history_twice_gives_the_same_rows() {
    // `$FP_DATA_DIR` for a worktree that is not beside ../shared (as for the train tests).
    let dir = std::env::var_os("FP_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/data/football-data-co-uk/E0"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 12, "the EPL seasons 2012/13 to 2023/24");
    let db = TestDatabase::new().await;

    let started = Instant::now();
    let first = shared::import::import_files(&db.pool, &files, Some("PL")).await.expect("first import");
    let first_elapsed = started.elapsed();
    let after_first = snapshot(&db.pool).await;
    assert_eq!(first.matches.inserted, 4560, "{:?}", first.matches);
    assert_eq!(after_first["matches"], 4560);
    assert_eq!(after_first["match_sources"], 4560);
    assert!(first.odds.inserted > 100_000, "{:?}", first.odds);
    assert_eq!(after_first["match_odds"].as_u64(), Some(first.odds.inserted));

    let started = Instant::now();
    let second = shared::import::import_files(&db.pool, &files, Some("PL")).await.expect("second import");
    let second_elapsed = started.elapsed();
    assert_eq!(second.matches.changed() + second.odds.changed() + second.teams_changed, 0, "{second:?}");
    assert!(second.data_versions.is_empty());
    assert_eq!(snapshot(&db.pool).await, after_first);
    eprintln!(
        "[import] {} matches, {} odds rows, {} teams: first import {:?}, second (no change) {:?}",
        after_first["matches"], after_first["match_odds"], after_first["teams"], first_elapsed, second_elapsed
    );

    // One club, one row: every co.uk name of Manchester City resolves to the canonical team.
    let (teams, seasons): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM teams), (SELECT count(DISTINCT season) FROM matches)")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(seasons, 12);
    assert!(teams <= 40, "{teams} teams: names were not reconciled");
    let city: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM matches m JOIN teams t ON t.id = m.home_team_id WHERE t.name = 'Manchester City FC'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(city, 12 * 19);
    let (phases, pinnacle): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT phase), count(*) FILTER (WHERE bookmaker = 'pinnacle' AND market = 'over_under_2_5')
           FROM match_odds",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(phases, 2, "opening and closing odds");
    assert!(pinnacle > 0);
    let runs: Vec<String> =
        sqlx::query_scalar("SELECT outcome FROM job_runs WHERE job = 'import'").fetch_all(&db.pool).await.unwrap();
    assert_eq!(runs, ["succeeded", "succeeded"]);

    // The engine gets the same shots from the database as `fp backtest` from the files.
    let totals = |stats: &mut dyn Iterator<Item = Option<[u8; 4]>>| {
        stats.flatten().fold((0u64, [0u64; 4]), |(n, mut t), s| {
            (0..4).for_each(|i| t[i] += u64::from(s[i]));
            (n + 1, t)
        })
    };
    let mut from_files = Vec::new();
    for f in &files {
        from_files.extend(shared::engine::csv_import::read_csv_file(f, &Default::default()).unwrap());
    }
    let csv = totals(
        &mut from_files
            .iter()
            .map(|r| r.stats.map(|s| [s.home_shots, s.away_shots, s.home_shots_on_target, s.away_shots_on_target])),
    );
    let db_shots = shots_in_history(&db.pool).await;
    assert_eq!(db_shots.len(), 4560);
    assert_eq!(totals(&mut db_shots.into_iter()), csv);
    assert_eq!(csv.0, 4560, "every EPL match of the files has its shots");
}

const SMALL: &str = "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,PSH,PSD,PSA,PSCH,PSCD,PSCA,P>2.5,P<2.5\r\n\
E0,16/08/2024,20:00,Man United,Fulham,1,0,H,1.6,4.3,5.5,1.65,4.2,5.3,1.8,2.1\r\n\
E0,17/08/2024,12:30,Ipswich,Liverpool,0,2,A,7.5,5.0,1.4,8.0,5.2,1.38,1.6,2.4\r\n\
E0,17/08/2024,15:00,Arsenal,Wolves,2,0,H,1.2,7.0,13.0,1.22,6.8,12.5,1.7,2.2\r\n";

const SHOTS: &str = "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,HS,AS,HST,AST\r\n\
E0,16/08/2024,20:00,Man United,Fulham,1,0,H,14,10,5,2\r\n\
E0,17/08/2024,12:30,Ipswich,Liverpool,0,2,A,7,18,2,5\r\n\
E0,17/08/2024,15:00,Arsenal,Wolves,2,0,H,,9,6,3\r\n";

fn write_csv(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("fp-shots-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, text).unwrap();
    path
}

/// `[home shots, away shots, home on target, away on target]` of each match of the PL history in
/// kick-off order, as the engine gets it from the database.
async fn shots_in_history(pool: &sqlx::PgPool) -> Vec<Option<[u8; 4]>> {
    let id: i64 = sqlx::query_scalar("SELECT id FROM competitions WHERE code = 'PL'").fetch_one(pool).await.unwrap();
    let q = shared::history::HistoryQuery { competition_id: Some(id), ..Default::default() };
    shared::history::load(pool, q)
        .await
        .expect("history")
        .into_iter()
        .map(|r| r.stats.map(|s| [s.home_shots, s.away_shots, s.home_shots_on_target, s.away_shots_on_target]))
        .collect()
}

#[tokio::test]
async fn shots_are_stored_at_import_and_reach_the_engine_through_history() {
    let db = TestDatabase::new().await;
    let with_shots = write_csv(SHOTS);
    // The same matches from a file without the shots columns.
    let without = write_csv(
        "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR\r\n\
         E0,16/08/2024,20:00,Man United,Fulham,1,0,H\r\n\
         E0,17/08/2024,12:30,Ipswich,Liverpool,0,2,A\r\n\
         E0,17/08/2024,15:00,Arsenal,Wolves,2,0,H\r\n",
    );

    // Without the columns: every match imported, no shots.
    let first = shared::import::import_files(&db.pool, &[&without], Some("PL")).await.expect("import");
    assert_eq!(first.matches.inserted, 3);
    assert_eq!(shots_in_history(&db.pool).await, [None, None, None]);

    // With them: the rows that have all four get them, as the CSV reader gives them to `fp
    // backtest` (a blank one leaves the match without statistics, as there).
    let second = shared::import::import_files(&db.pool, &[&with_shots], Some("PL")).await.expect("import");
    assert_eq!((second.matches.inserted, second.matches.updated, second.matches.unchanged), (0, 2, 1));
    assert!(second.data_versions.contains_key("PL"), "stored shots are a change of the data");
    let from_csv: Vec<Option<[u8; 4]>> =
        shared::engine::csv_import::read_csv(SHOTS.as_bytes(), "shots.csv", &Default::default())
            .unwrap()
            .into_iter()
            .map(|r| r.stats.map(|s| [s.home_shots, s.away_shots, s.home_shots_on_target, s.away_shots_on_target]))
            .collect();
    assert_eq!(from_csv, [Some([14, 10, 5, 2]), Some([7, 18, 2, 5]), None]);
    let stored = shots_in_history(&db.pool).await;
    assert_eq!(stored, from_csv);

    // Idempotent: the same file again changes nothing; a file without shots keeps the stored ones.
    for (path, what) in [(&with_shots, "the same file"), (&without, "a file without shots")] {
        let again = shared::import::import_files(&db.pool, &[path], Some("PL")).await.expect("import");
        assert_eq!(again.matches.changed(), 0, "{what}: {:?}", again.matches);
        assert!(again.data_versions.is_empty(), "{what}");
        assert_eq!(shots_in_history(&db.pool).await, stored, "{what}");
    }

    // A corrected figure is an update.
    let fixed = write_csv(&SHOTS.replace("Fulham,1,0,H,14,10,5,2", "Fulham,1,0,H,15,10,6,2"));
    let corrected = shared::import::import_files(&db.pool, &[&fixed], Some("PL")).await.expect("import");
    assert_eq!(corrected.matches.updated, 1, "{:?}", corrected.matches);
    assert_eq!(shots_in_history(&db.pool).await[0], Some([15, 10, 6, 2]));
    for p in [with_shots, without, fixed] {
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
async fn an_s3_object_is_imported_through_the_ingest_event() {
    let db = TestDatabase::new().await;
    let bucket = std::env::var("BACKUP_BUCKET").expect("BACKUP_BUCKET (load .local/stack.env)");
    let key = format!("imports/test-{}.csv", uuid::Uuid::new_v4().simple());
    let job = common::job(&db, "http://127.0.0.1:9");
    job.services
        .aws
        .s3()
        .await
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(SMALL.as_bytes().to_vec().into())
        .send()
        .await
        .expect("put the CSV into the emulator");

    let input: JobInput =
        serde_json::from_value(serde_json::json!({"import": {"bucket": bucket, "key": key, "competition": "PL"}}))
            .unwrap();
    let far = Deadline::after(std::time::Duration::from_secs(60));
    // What a catalog reader left in Redis before the import: the version of the empty database.
    let version_key = shared::catalog::version_key(&job.services);
    let empty = shared::catalog::data_version(&db.pool).await.unwrap();
    job.services.cache.set_bytes(&version_key, empty.clone().into_bytes(), shared::catalog::VERSION_TTL).await;
    let report = ingest::run(&job, input.clone(), far).await.expect("import");
    assert_eq!((report.job.as_str(), report.outcome), ("import", Outcome::Succeeded), "{report:?}");
    // After its commit the import published the new version: the next catalog read is fresh.
    let imported = shared::catalog::data_version(&db.pool).await.unwrap();
    assert_ne!(imported, empty);
    assert_eq!(job.services.cache.get_bytes(&version_key).await.as_deref(), Some(imported.as_bytes()));
    assert_eq!(report.counts["matches"]["inserted"], 3);
    // 3 matches x (1X2 opening + closing + over/under opening) = 3 x (3 + 3 + 2)
    assert_eq!(report.counts["odds"]["inserted"], 24);
    let kickoff: String = sqlx::query_scalar(
        "SELECT to_char(kickoff_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM matches m
           JOIN teams t ON t.id = m.home_team_id WHERE t.name = 'Manchester United FC'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(kickoff, "2024-08-16 19:00", "UK summer time is UTC+1");

    // Again: nothing changes.
    let again = ingest::run(&job, input, far).await.expect("import again");
    for table in ["matches", "odds"] {
        assert_eq!(
            (again.counts[table]["inserted"].as_u64(), again.counts[table]["updated"].as_u64()),
            (Some(0), Some(0))
        );
    }

    // A key outside imports/ is bad input; a missing object is named.
    let outside = JobInput {
        import: Some(S3Import { bucket: bucket.clone(), key: "backups/x.csv".into(), competition: None }),
        ..Default::default()
    };
    match ingest::run(&job, outside, far).await {
        Err(JobError::Permanent(m)) => assert!(m.contains("imports/"), "{m}"),
        other => panic!("expected invalid input, got {other:?}"),
    }
    let missing = JobInput {
        import: Some(S3Import { bucket, key: "imports/none.csv".into(), competition: None }),
        ..Default::default()
    };
    match ingest::run(&job, missing, far).await {
        Err(e) => assert!(e.to_string().contains("imports/none.csv"), "{e}"),
        Ok(_) => panic!("a missing object cannot import"),
    }
}

#[tokio::test]
async fn an_oversized_object_and_a_bad_row_are_permanent_errors_that_say_where() {
    let db = TestDatabase::new().await;
    let bucket = std::env::var("BACKUP_BUCKET").expect("BACKUP_BUCKET (load .local/stack.env)");
    let job = common::job(&db, "http://127.0.0.1:9");
    let s3 = job.services.aws.s3().await;
    let far = Deadline::after(std::time::Duration::from_secs(60));
    let run = |key: String| {
        let input = JobInput {
            import: Some(S3Import { bucket: bucket.clone(), key, competition: Some("PL".into()) }),
            ..Default::default()
        };
        ingest::run(&job, input, far)
    };

    // Over the cap: refused before it is read, and not retried.
    let big = format!("imports/big-{}.csv", uuid::Uuid::new_v4().simple());
    let body = vec![b'x'; shared::import::MAX_FILE_BYTES as usize + 1];
    s3.put_object().bucket(&bucket).key(&big).body(body.into()).send().await.expect("put");
    match run(big.clone()).await {
        Err(JobError::Permanent(m)) => assert!(m.contains(&big) && m.contains("bytes"), "{m}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }

    // A value the database would refuse (101 goals): a permanent error naming file, line, column.
    let bad = format!("imports/bad-{}.csv", uuid::Uuid::new_v4().simple());
    let text = SMALL.replace("Ipswich,Liverpool,0,2,A", "Ipswich,Liverpool,0,101,A");
    s3.put_object().bucket(&bucket).key(&bad).body(text.into_bytes().into()).send().await.expect("put");
    match run(bad.clone()).await {
        Err(JobError::Permanent(m)) => {
            assert!(m.contains(&bad) && m.contains("line 3") && m.contains("column 7") && m.contains("FTAG"), "{m}")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM matches").fetch_one(&db.pool).await.unwrap();
    assert_eq!(written, 0, "nothing of a bad file is written");
}
