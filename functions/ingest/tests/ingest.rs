//! The ingestion against a fake football-data.org (fixtures in the real response shape) and a
//! real PostgreSQL: idempotency, status changes and score corrections, rate limits, server
//! errors, a malformed body, the deadline and the resume, overlapping runs, team reconciliation
//! with an import.

mod common;

use std::time::Duration;

use common::{FakeApi, Reply, job, snapshot};
use ingest::JobInput;
use shared::{
    ingest::{IngestReport, IngestRequest},
    jobs::{Deadline, Outcome},
};
use test_support::TestDatabase;
use tokio::time::Instant;

const COMPETITION: &str = "/v4/competitions/PL";
const TEAMS: &str = "/v4/competitions/PL/teams";
const MATCHES: &str = "/v4/competitions/PL/matches";

fn season_2024() -> JobInput {
    JobInput {
        import: None,
        ingest: IngestRequest { competitions: vec!["PL".into()], season: Some(2024), ..Default::default() },
    }
}

async fn ingest(job: &ingest::Job, input: JobInput, within: Duration) -> IngestReport {
    let report = ingest::run(job, input, Deadline::after(within)).await.expect("ingest run");
    IngestReport::from_job(&report).unwrap_or_else(|| panic!("not an ingestion: {report:?}"))
}

fn fake_pl(api: &FakeApi, matches: &str) {
    api.always(COMPETITION, Reply::ok("competition-PL.json"));
    api.always(TEAMS, Reply::ok("teams-PL.json"));
    api.always(MATCHES, Reply::ok(matches));
}

async fn match_state(pool: &sqlx::PgPool, org_id: &str) -> (String, Option<i16>, Option<i16>) {
    sqlx::query_as(
        "SELECT m.status, m.home_goals, m.away_goals FROM matches m
           JOIN match_sources s ON s.match_id = m.id AND s.source = 'football-data.org' WHERE s.source_id = $1",
    )
    .bind(org_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn ingestion_is_idempotent_and_applies_status_changes_and_score_corrections() {
    let db = TestDatabase::new().await;
    let api = FakeApi::default();
    fake_pl(&api, "matches-PL-1.json");
    let job = job(&db, &api.serve().await);

    let first = ingest(&job, season_2024(), Duration::from_secs(60)).await;
    assert_eq!(first.outcome, "succeeded", "{first:?}");
    assert_eq!((first.matches.inserted, first.matches.updated), (4, 0));
    assert_eq!(first.teams_changed, 4);
    assert!(api.seen().iter().all(|(_, _, token)| token.as_deref() == Some("test-token")));
    assert!(api.seen().iter().any(|(p, q, _)| p == MATCHES && q == "season=2024"), "{:?}", api.seen());
    let v1: i64 = sqlx::query_scalar("SELECT data_version FROM competitions WHERE code = 'PL'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(v1 >= 1);
    assert_eq!(match_state(&db.pool, "497420").await, ("TIMED".into(), None, None));

    // The same answer again: nothing is written, not even updated_at or the data version.
    let before = snapshot(&db.pool).await;
    let second = ingest(&job, season_2024(), Duration::from_secs(60)).await;
    assert_eq!(second.matches.changed(), 0, "{second:?}");
    assert_eq!(second.teams_changed, 0);
    assert!(second.data_versions.is_empty());
    assert_eq!(snapshot(&db.pool).await, before);

    // A score correction, a kick-off, a postponement, a cancellation.
    api.always(MATCHES, Reply::ok("matches-PL-2.json"));
    let third = ingest(&job, season_2024(), Duration::from_secs(60)).await;
    assert_eq!((third.matches.inserted, third.matches.updated), (0, 4), "{third:?}");
    assert_eq!(match_state(&db.pool, "497410").await, ("FINISHED".into(), Some(2), Some(1)));
    assert_eq!(match_state(&db.pool, "497420").await, ("IN_PLAY".into(), Some(1), Some(0)));
    assert_eq!(match_state(&db.pool, "497430").await, ("POSTPONED".into(), None, None));
    assert_eq!(match_state(&db.pool, "497440").await, ("CANCELLED".into(), None, None));
    let v3 = third.data_versions["PL"];
    assert!(v3 > v1);

    // Full time: one match changes; nothing is deleted.
    api.always(MATCHES, Reply::ok("matches-PL-3.json"));
    let fourth = ingest(&job, season_2024(), Duration::from_secs(60)).await;
    assert_eq!((fourth.matches.inserted, fourth.matches.updated, fourth.matches.unchanged), (0, 1, 3));
    assert_eq!(match_state(&db.pool, "497420").await, ("FINISHED".into(), Some(3), Some(1)));
    let after = snapshot(&db.pool).await;
    assert_eq!(
        (after["matches"].as_i64(), after["teams"].as_i64(), after["match_sources"].as_i64()),
        (Some(4), Some(4), Some(4))
    );

    let runs: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT outcome, counts FROM job_runs WHERE job = 'ingest' ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|(o, _)| o == "succeeded"));
    assert_eq!(runs[0].1["matches"]["inserted"], 4);
}

#[tokio::test]
async fn a_step_that_bumps_the_data_version_publishes_it_to_redis_after_its_commit() {
    let db = TestDatabase::new().await;
    let api = FakeApi::default();
    fake_pl(&api, "matches-PL-1.json");
    let job = job(&db, &api.serve().await);
    // What a catalog reader left in Redis before the run: the version of the empty database.
    let key = shared::catalog::version_key(&job.services);
    let empty = shared::catalog::data_version(&db.pool).await.unwrap();
    job.services.cache.set_bytes(&key, empty.clone().into_bytes(), shared::catalog::VERSION_TTL).await;

    let first = ingest(&job, season_2024(), Duration::from_secs(60)).await;
    assert_eq!(first.outcome, "succeeded", "{first:?}");
    assert!(!first.data_versions.is_empty());
    let ingested = shared::catalog::data_version(&db.pool).await.unwrap();
    assert_ne!(ingested, empty);
    assert_eq!(job.services.cache.get_bytes(&key).await.as_deref(), Some(ingested.as_bytes()));
}

#[tokio::test]
async fn a_429_and_a_500_are_retried_after_the_announced_wait() {
    let db = TestDatabase::new().await;
    let api = FakeApi::default();
    fake_pl(&api, "matches-PL-1.json");
    api.then(
        COMPETITION,
        Reply::status(429, "error-429.json")
            .header("X-Requests-Available-Minute", "0")
            .header("X-RequestCounter-Reset", "1"),
    );
    api.then(TEAMS, Reply::status(500, "error-500.json"));
    let job = job(&db, &api.serve().await);

    let started = Instant::now();
    let report = ingest(&job, season_2024(), Duration::from_secs(60)).await;
    assert_eq!(report.outcome, "succeeded", "{report:?}");
    assert_eq!((report.api.requests, report.api.retries), (5, 2), "{report:?}");
    assert!(started.elapsed() >= Duration::from_secs(1), "the 429's reset was not waited for");
    assert_eq!(report.matches.inserted, 4);
}

#[tokio::test]
async fn a_malformed_body_fails_its_step_writes_nothing_and_the_rest_goes_on() {
    let db = TestDatabase::new().await;
    let api = FakeApi::default();
    fake_pl(&api, "matches-malformed.json");
    // A competition whose server keeps failing: bounded retries, then the run goes on.
    api.always("/v4/competitions/ELC", Reply::status(500, "error-500.json"));
    api.always("/v4/competitions/ELC/teams", Reply::status(500, "error-500.json"));
    api.always("/v4/competitions/ELC/matches", Reply::status(500, "error-500.json"));
    let job = job(&db, &api.serve().await);

    let mut input = season_2024();
    input.ingest.competitions = vec!["PL".into(), "ELC".into()];
    let report = ingest(&job, input, Duration::from_secs(60)).await;
    assert_eq!(report.outcome, "partial", "{report:?}");
    assert_eq!((report.steps_done, report.steps_failed), (2, 4), "{report:?}");
    assert!(report.errors.iter().any(|e| e.contains("malformed")), "{:?}", report.errors);
    assert!(report.errors.iter().any(|e| e.contains("after 4 attempts")), "{:?}", report.errors);
    let matches: i64 = sqlx::query_scalar("SELECT count(*) FROM matches").fetch_one(&db.pool).await.unwrap();
    assert_eq!(matches, 0);
    let (outcome, error): (String, Option<String>) =
        sqlx::query_as("SELECT outcome, error FROM job_runs WHERE job = 'ingest'").fetch_one(&db.pool).await.unwrap();
    assert_eq!(outcome, "partial");
    assert!(error.unwrap_or_default().contains("malformed"));

    // The API answers properly again: the next run stores the matches.
    api.always(MATCHES, Reply::ok("matches-PL-1.json"));
    let report = ingest(&job, season_2024(), Duration::from_secs(60)).await;
    assert_eq!((report.outcome, report.matches.inserted), ("succeeded", 4));
}

#[tokio::test]
async fn a_run_stopped_by_its_deadline_records_its_progress_and_the_next_run_goes_on() {
    let db = TestDatabase::new().await;
    let api = FakeApi::default();
    fake_pl(&api, "matches-PL-1.json");
    // The plan's budget is spent for 30 s: waiting would cross this run's deadline.
    api.then(
        COMPETITION,
        Reply::ok("competition-PL.json")
            .header("X-Requests-Available-Minute", "0")
            .header("X-RequestCounter-Reset", "30"),
    );
    let job = job(&db, &api.serve().await);

    let started = Instant::now();
    let first = ingest(&job, season_2024(), Duration::from_secs(4)).await;
    assert!(started.elapsed() < Duration::from_secs(4), "the run must stop before its deadline");
    assert_eq!(first.outcome, "partial", "{first:?}");
    assert_eq!((first.steps_done, first.steps_left), (1, 2));
    let pending: serde_json::Value =
        sqlx::query_scalar("SELECT state FROM job_checkpoints WHERE job = 'ingest'").fetch_one(&db.pool).await.unwrap();
    let kinds: Vec<&str> = pending["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["teams", "matches"]);
    assert_eq!(api.seen().len(), 1);

    // The next (scheduled) run does what was left, then its own work.
    let second = ingest(&job, JobInput::default(), Duration::from_secs(60)).await;
    assert_eq!(second.outcome, "succeeded", "{second:?}");
    assert_eq!(second.resumed_steps, 2);
    assert_eq!(second.steps_done, 3);
    assert_eq!(second.matches.inserted, 4);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM job_checkpoints").fetch_one(&db.pool).await.unwrap();
    assert_eq!(left, 0);
    let outcomes: Vec<String> =
        sqlx::query_scalar("SELECT outcome FROM job_runs ORDER BY id").fetch_all(&db.pool).await.unwrap();
    assert_eq!(outcomes, ["partial", "succeeded"]);
}

#[tokio::test]
async fn football_data_co_uk_and_org_names_are_one_team_and_one_match() {
    let db = TestDatabase::new().await;
    let dir = std::env::temp_dir().join(format!("fp-import-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("E0_2425.csv");
    std::fs::write(
        &csv,
        "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,B365H,B365D,B365A\r\n\
         E0,17/08/2024,15:00,Arsenal,Wolves,2,0,H,1.2,7.0,13.0\r\n\
         E0,18/08/2024,16:30,Nott'm Forest,Man City,0,3,A,21.0,9.0,1.1\r\n",
    )
    .unwrap();
    let imported = shared::import::import_files(&db.pool, &[&csv], Some("PL")).await.unwrap();
    assert_eq!(imported.matches.inserted, 2);

    let api = FakeApi::default();
    fake_pl(&api, "matches-PL-1.json");
    let job = job(&db, &api.serve().await);
    let report = ingest(&job, season_2024(), Duration::from_secs(60)).await;
    // Arsenal v Wolves is the imported match (football-data.org adds matchday, stage, half time);
    // its three other fixtures are new.
    assert_eq!((report.matches.inserted, report.matches.updated), (3, 1), "{report:?}");
    let teams: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT name, source_id FROM teams ORDER BY name").fetch_all(&db.pool).await.unwrap();
    assert_eq!(
        teams,
        [
            ("Arsenal FC".to_string(), Some(57)),
            ("Manchester City FC".to_string(), Some(65)),
            ("Nottingham Forest FC".to_string(), Some(351)),
            ("Wolverhampton Wanderers FC".to_string(), Some(76)),
        ]
    );
    let aliases: Vec<String> = sqlx::query_scalar(
        "SELECT a.source || ':' || a.alias FROM team_aliases a JOIN teams t ON t.id = a.team_id
          WHERE t.name = 'Manchester City FC' ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        aliases,
        [
            "football-data.co.uk:Man City",
            "football-data.org:Man City",
            "football-data.org:Manchester City FC",
            "tla:MCI"
        ]
    );
    let sources: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM match_sources s JOIN matches m ON m.id = s.match_id
          JOIN teams h ON h.id = m.home_team_id WHERE h.name = 'Arsenal FC'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(sources, 2, "the imported match has both sources");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn overlapping_runs_one_ingests_the_other_is_skipped() {
    let db = TestDatabase::new().await;
    let api = FakeApi::default();
    fake_pl(&api, "matches-PL-1.json");
    let job = job(&db, &api.serve().await);
    let within = || Deadline::after(Duration::from_secs(60));

    // The first run takes the lock and waits on its first request; the second starts meanwhile.
    api.hold();
    let first = ingest::run(&job, season_2024(), within());
    let second = async {
        api.request_arrived().await;
        let second = ingest::run(&job, season_2024(), within()).await;
        let requests = api.seen().len();
        api.release();
        (second, requests)
    };
    let (first, (second, requests_meanwhile)) = tokio::join!(first, second);

    let second = second.expect("a skipped run is no error");
    assert_eq!(second.outcome, Outcome::Skipped, "{second:?}");
    assert!(IngestReport::from_job(&second).is_none());
    assert_eq!(requests_meanwhile, 1, "the skipped run called the API");
    let first = IngestReport::from_job(&first.expect("the first run")).expect("an ingestion");
    assert_eq!(first.outcome, "succeeded", "{first:?}");
    assert_eq!((first.steps_done, first.matches.inserted), (3, 4), "{first:?}");
    assert_eq!(api.seen().len(), 3);

    // Both are on record, as for every job; the lock is free again and nothing is left pending.
    let mut outcomes: Vec<String> =
        sqlx::query_scalar("SELECT outcome FROM job_runs WHERE job = 'ingest'").fetch_all(&db.pool).await.unwrap();
    outcomes.sort();
    assert_eq!(outcomes, ["skipped", "succeeded"]);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM job_checkpoints").fetch_one(&db.pool).await.unwrap();
    assert_eq!(left, 0);
    let again = ingest(&job, season_2024(), Duration::from_secs(60)).await;
    assert_eq!((again.outcome, again.matches.changed()), ("succeeded", 0), "{again:?}");
}
