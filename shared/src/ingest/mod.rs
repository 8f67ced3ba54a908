//! Ingestion from the football-data.org v4 API: the client (rate limits, back-off, deadline) and idempotent upserts.
//!
//! A run turns a request (competitions, a season, a date range) into steps (competition record,
//! teams, matches: one API request each), does them in order and writes each step's data in one
//! transaction. A run is a job like settle or train ([`crate::jobs::run`]): it holds the `ingest`
//! lease lock (an overlapping run is recorded as `skipped` and does nothing), it is a `job_runs`
//! row (`ingest`) with its outcome and counts, and it starts a step only while its deadline
//! allows ([`JobContext::next_batch`]). Before each step the steps still to do are saved as the
//! job's checkpoint (`ingest`, `pending`): a run stopped by its deadline, or killed, leaves them
//! there and the next run does them first.
//!
//! Writes are idempotent ([`store`]); a step that changed a competition's data increments its
//! `competitions.data_version` in the same transaction. That is the cache invalidation: every
//! cache entry built from this data (the catalog's bodies, the prediction model state) carries
//! the data version (the catalog's with the body, the model's in its key), so a bump makes the
//! stale entries unusable at once and their TTL removes them; there are no unversioned keys to
//! delete. After the commit the step publishes the new version to Redis, where the catalog reads
//! it ([`crate::catalog`]: a version that could not be published is seen within 5 s).

pub mod api;
pub mod client;
pub mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::time::Instant;

use self::{
    client::{ClientOptions, ClientStats, FetchError, FootballDataClient},
    store::{Authority, MatchRow, OrgTeam, TeamResolver, UpsertCounts},
};
use crate::{
    Services,
    config::{ConfigError, SecretSource},
    jobs::{self, Deadline, JobContext, JobError, JobReport, WorkDone},
    secret::Secret,
};

pub const JOB: &str = "ingest";
const CHECKPOINT_SCOPE: &str = "pending";
pub const DEFAULT_BASE_URL: &str = "https://api.football-data.org";

/// The ingestion's own settings, read from the environment by the `ingest` function.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// `FOOTBALL_DATA_BASE_URL`, default `https://api.football-data.org`.
    pub base_url: String,
    /// `FOOTBALL_DATA_TOKEN_SECRET_ARN` or `FOOTBALL_DATA_TOKEN`; needed only to call the API.
    pub token: Option<SecretSource>,
    /// `INGEST_COMPETITIONS` (comma-separated codes), default `PL`: what a scheduled run ingests.
    pub default_competitions: Vec<String>,
    pub client: ClientOptions,
}

impl IngestSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let base_url = get("FOOTBALL_DATA_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into());
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                var: "FOOTBALL_DATA_BASE_URL",
                reason: "must be an http(s) URL".into(),
            });
        }
        let token = match (get("FOOTBALL_DATA_TOKEN_SECRET_ARN"), get("FOOTBALL_DATA_TOKEN")) {
            (Some(arn), _) => Some(SecretSource::SecretsManager { arn }),
            (None, Some(v)) => Some(SecretSource::Plain(Secret::new(v))),
            (None, None) => None,
        };
        let codes = get("INGEST_COMPETITIONS").unwrap_or_else(|| "PL".into());
        let default_competitions = parse_codes(codes.split(','))
            .map_err(|reason| ConfigError::Invalid { var: "INGEST_COMPETITIONS", reason })?;
        Ok(Self { base_url, token, default_competitions, client: ClientOptions::default() })
    }
}

fn parse_codes<'a>(codes: impl Iterator<Item = &'a str>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for c in codes.map(str::trim).filter(|c| !c.is_empty()) {
        let c = c.to_uppercase();
        if !(2..=10).contains(&c.len()) || !c.chars().all(|x| x.is_ascii_alphanumeric()) {
            return Err(format!("`{c}` is not a competition code (2-10 letters or digits, e.g. PL)"));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// What to ingest. Every field is optional: a scheduled run (an empty payload, or EventBridge's
/// own event, whose fields are ignored) ingests the default competitions from three days ago to
/// ten days ahead.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngestRequest {
    #[serde(default)]
    pub competitions: Vec<String>,
    /// The starting year of a season (`2023` for 2023/24): a whole season, teams included.
    pub season: Option<i32>,
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
}

/// A request that cannot be carried out; the message names the field.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidRequest {
    pub field: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Competition,
    Teams,
    Matches,
}

/// One API request and its writes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Step {
    pub competition: String,
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub season: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_from: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_to: Option<NaiveDate>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Pending {
    steps: Vec<Step>,
}

/// What a run did: the `counts` of its run record and of its [`JobReport`].
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct IngestReport {
    /// The run record's id ([`JobReport::run_id`]).
    #[serde(skip)]
    pub run_id: i64,
    /// `succeeded` or `partial` ([`JobReport::outcome`]).
    #[serde(skip)]
    pub outcome: &'static str,
    pub steps_done: u32,
    pub steps_failed: u32,
    /// Steps left for the next run (deadline).
    pub steps_left: u32,
    pub resumed_steps: u32,
    pub competitions_changed: u64,
    pub teams_changed: u64,
    pub matches: UpsertCounts,
    pub matches_skipped: u64,
    pub api: ClientStats,
    /// Data version of each competition whose data changed.
    pub data_versions: BTreeMap<String, i64>,
    pub errors: Vec<String>,
}

impl IngestReport {
    /// The ingestion's report in a run's [`JobReport`]; `None` for a run that did no ingestion
    /// (`skipped`: another run held the lock).
    pub fn from_job(job: &JobReport) -> Option<Self> {
        if job.job != JOB || job.outcome == jobs::Outcome::Skipped {
            return None;
        }
        let mut report: Self = serde_json::from_value(job.counts.clone()).ok()?;
        report.run_id = job.run_id.unwrap_or_default();
        report.outcome = job.outcome.as_str();
        Some(report)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Not configured: no retry helps.
    #[error("football-data.org token not configured: {0}")]
    NoToken(String),
    #[error("football-data.org token unavailable: {0}")]
    Token(String),
}

impl From<IngestError> for JobError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid(e) => JobError::Permanent(format!("invalid input: {e}")),
            IngestError::Database(e) => JobError::from(e),
            IngestError::NoToken(_) => JobError::permanent(e),
            IngestError::Token(_) => JobError::retryable(e),
        }
    }
}

/// The steps of a request. Teams and the competition record are fetched for a whole season, or
/// when the competition has no football-data.org id yet; a routine run costs one request per
/// competition.
pub async fn plan(
    pool: &PgPool,
    request: &IngestRequest,
    defaults: &[String],
    today: NaiveDate,
) -> Result<Vec<Step>, IngestError> {
    let codes = parse_codes(request.competitions.iter().map(String::as_str))
        .map_err(|reason| InvalidRequest { field: "competitions", reason })?;
    let codes = if codes.is_empty() { defaults.to_vec() } else { codes };
    if let Some(s) = request.season
        && !(1850..=2200).contains(&s)
    {
        return Err(InvalidRequest { field: "season", reason: format!("{s} is not a season's starting year") }.into());
    }
    if let (Some(f), Some(t)) = (request.date_from, request.date_to)
        && f > t
    {
        return Err(InvalidRequest { field: "dateTo", reason: "is before dateFrom".into() }.into());
    }
    let (date_from, date_to) = match (request.season, request.date_from, request.date_to) {
        (None, None, None) => (Some(today - Days::days(3)), Some(today + Days::days(10))),
        (_, f, t) => (f, t),
    };
    let mut steps = Vec::new();
    for code in codes {
        let known: Option<i64> = sqlx::query_scalar!("SELECT source_id FROM competitions WHERE code = $1", code)
            .fetch_optional(pool)
            .await?
            .flatten();
        let step = |kind| Step { competition: code.clone(), kind, season: request.season, date_from, date_to };
        if known.is_none() || request.season.is_some() {
            steps.push(step(StepKind::Competition));
            steps.push(step(StepKind::Teams));
        }
        steps.push(step(StepKind::Matches));
    }
    Ok(steps)
}

/// Builds the client of a run (reads the token, from Secrets Manager when configured so).
pub async fn client(
    settings: &IngestSettings,
    secrets: &crate::secrets::SecretStore,
) -> Result<FootballDataClient, IngestError> {
    let source = settings
        .token
        .as_ref()
        .ok_or_else(|| IngestError::NoToken("set FOOTBALL_DATA_TOKEN_SECRET_ARN (or FOOTBALL_DATA_TOKEN)".into()))?;
    let token = secrets.resolve(source).await.map_err(|e| IngestError::Token(e.to_string()))?;
    FootballDataClient::new(&settings.base_url, token, settings.client.clone())
        .map_err(|e| IngestError::NoToken(e.to_string()))
}

/// One ingestion run as the `ingest` job ([`jobs::run`]: the lock, the run record): the pending
/// steps of an earlier run first, then this request's, while the deadline allows. An invalid
/// request fails before the run starts.
pub async fn run(
    services: &Services,
    client: &FootballDataClient,
    request: &IngestRequest,
    defaults: &[String],
    deadline: Deadline,
    now: DateTime<Utc>,
) -> Result<JobReport, JobError> {
    let pool = services.db.pool().await?.clone();
    let own = plan(&pool, request, defaults, now.date_naive()).await?;
    jobs::run(services, JOB, deadline, |ctx| async move { ingest(services, &pool, client, own, &ctx).await }).await
}

/// The work of a run under `ctx`. Steps that fail are counted and the rest go on; a run in which
/// every step failed fails (retryable when the API was busy or down). A step that bumped a data
/// version publishes the new one to Redis after its commit ([`crate::catalog::publish_data_version`]).
pub async fn ingest(
    services: &Services,
    pool: &PgPool,
    client: &FootballDataClient,
    own: Vec<Step>,
    ctx: &JobContext,
) -> Result<WorkDone, JobError> {
    let mut report = IngestReport { run_id: ctx.run_id, ..Default::default() };
    let retryable = run_steps(services, pool, client, own, ctx, &mut report).await?;
    report.api = client.stats().await;
    let complete = report.steps_left == 0 && report.steps_failed == 0;
    let failed = report.steps_left == 0 && report.steps_failed > 0 && report.steps_done == 0;
    let outcome = if failed {
        "failed"
    } else if complete {
        "succeeded"
    } else {
        "partial"
    };
    report.outcome = outcome;
    use crate::metrics::MetricValue::Count;
    crate::metrics::emit(
        &[("job", JOB), ("outcome", outcome)],
        &[
            ("ingest_matches_changed_total", Count(report.matches.changed() as f64)),
            ("ingest_steps_failed_total", Count(f64::from(report.steps_failed))),
            ("ingest_steps_left", Count(f64::from(report.steps_left))),
        ],
    );
    let error = (!report.errors.is_empty()).then(|| report.errors.join("; "));
    if failed {
        let error = error.unwrap_or_default();
        return Err(if retryable { JobError::Retryable(error) } else { JobError::Permanent(error) });
    }
    let counts = serde_json::to_value(&report).map_err(JobError::permanent)?;
    let done = if complete { WorkDone::complete(counts) } else { WorkDone::partial(counts) };
    Ok(done.with_error(error))
}

/// Does the steps; answers whether a failed step may succeed on a later run.
async fn run_steps(
    services: &Services,
    pool: &PgPool,
    client: &FootballDataClient,
    own: Vec<Step>,
    ctx: &JobContext,
    report: &mut IngestReport,
) -> Result<bool, JobError> {
    // The client's waits and requests stop before this instant (less its safety margin).
    let deadline = Instant::now() + ctx.deadline.remaining();
    let pending: Pending = jobs::load_checkpoint(pool, JOB, CHECKPOINT_SCOPE).await?.unwrap_or_default();
    report.resumed_steps = pending.steps.len() as u32;
    let mut steps = pending.steps;
    for s in own {
        if !steps.contains(&s) {
            steps.push(s);
        }
    }
    let mut resolver = TeamResolver::default();
    let mut retryable = false;
    let mut i = 0;
    while i < steps.len() {
        jobs::save_checkpoint(pool, JOB, CHECKPOINT_SCOPE, &Pending { steps: steps[i..].to_vec() }).await?;
        if !ctx.next_batch() {
            tracing::info!(steps_left = steps.len() - i, "ingest: deadline passed, stopping; the next run goes on");
            report.steps_left = (steps.len() - i) as u32;
            return Ok(retryable);
        }
        let step = &steps[i];
        match do_step(pool, client, step, deadline, &mut resolver, report).await {
            Ok(bumped) => {
                report.steps_done += 1;
                if bumped {
                    crate::catalog::publish_data_version(services).await;
                }
            }
            Err(StepError::Fetch(e)) if e.is_deadline() => {
                tracing::info!(steps_left = steps.len() - i, "ingest: deadline near, stopping; the next run goes on");
                report.steps_left = (steps.len() - i) as u32;
                return Ok(retryable);
            }
            Err(StepError::Fetch(e)) => {
                tracing::warn!(error = %e, "ingest: step failed");
                retryable |= e.is_retryable();
                report.steps_failed += 1;
                report.errors.push(e.to_string());
            }
            Err(StepError::Database(e)) => return Err(e.into()),
        }
        i += 1;
    }
    jobs::clear_checkpoint(pool, JOB, CHECKPOINT_SCOPE).await?;
    report.teams_changed = resolver.changed;
    Ok(retryable)
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

async fn do_step(
    pool: &PgPool,
    client: &FootballDataClient,
    step: &Step,
    deadline: Instant,
    resolver: &mut TeamResolver,
    report: &mut IngestReport,
) -> Result<bool, StepError> {
    let code = &step.competition;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(s) = step.season {
        query.push(("season", s.to_string()));
    }
    let teams_before = resolver.changed;
    let changed = match step.kind {
        StepKind::Competition => {
            let c: api::Competition = client.get(&format!("/v4/competitions/{code}"), &query, deadline).await?;
            let mut tx = pool.begin().await?;
            let changed = store::upsert_org_competition(&mut tx, code, &c).await?;
            report.competitions_changed += u64::from(changed);
            let version = bump_if(&mut tx, code, changed).await?;
            tx.commit().await?;
            version
        }
        StepKind::Teams => {
            let t: api::TeamsResponse = client.get(&format!("/v4/competitions/{code}/teams"), &query, deadline).await?;
            let mut tx = pool.begin().await?;
            for team in t.teams.iter().filter_map(OrgTeam::from_api) {
                resolver.org(&mut tx, &team).await?;
            }
            let version = bump_if(&mut tx, code, resolver.changed > teams_before).await?;
            tx.commit().await?;
            version
        }
        StepKind::Matches => {
            if let Some(d) = step.date_from {
                query.push(("dateFrom", d.to_string()));
            }
            if let Some(d) = step.date_to {
                query.push(("dateTo", d.to_string()));
            }
            let m: api::MatchesResponse =
                client.get(&format!("/v4/competitions/{code}/matches"), &query, deadline).await?;
            let mut tx = pool.begin().await?;
            let competition_id = store::ensure_competition(&mut tx, code, code).await?;
            let mut rows = Vec::with_capacity(m.matches.len());
            for game in &m.matches {
                let Some(row) = match_row(&mut tx, resolver, game, step.season).await? else {
                    report.matches_skipped += 1;
                    continue;
                };
                rows.push(row);
            }
            let (counts, _) =
                store::upsert_matches(&mut tx, competition_id, store::SOURCE_ORG, Authority::Org, &rows).await?;
            report.matches.add(counts);
            let version = bump_if(&mut tx, code, counts.changed() > 0 || resolver.changed > teams_before).await?;
            tx.commit().await?;
            version
        }
    };
    report.teams_changed = resolver.changed;
    if let Some(v) = changed {
        report.data_versions.insert(code.clone(), v);
    }
    // Whether this step's committed transaction bumped a data version.
    Ok(changed.is_some())
}

async fn bump_if(conn: &mut sqlx::PgConnection, code: &str, changed: bool) -> Result<Option<i64>, sqlx::Error> {
    if !changed {
        return Ok(None);
    }
    let id: Option<i64> =
        sqlx::query_scalar!("SELECT id FROM competitions WHERE code = $1", code).fetch_optional(&mut *conn).await?;
    match id {
        Some(id) => Ok(Some(store::bump_data_version(conn, id).await?)),
        None => Ok(None),
    }
}

/// A football-data.org match as a row, or `None` when it cannot be stored (teams not drawn yet,
/// unknown status, a finished match without a score, a score out of range).
async fn match_row(
    conn: &mut sqlx::PgConnection,
    resolver: &mut TeamResolver,
    m: &api::Match,
    season: Option<i32>,
) -> Result<Option<MatchRow>, sqlx::Error> {
    let (Some(home), Some(away)) = (OrgTeam::from_api(&m.home_team), OrgTeam::from_api(&m.away_team)) else {
        return Ok(None);
    };
    let Some(status) = api::db_status(&m.status) else {
        tracing::warn!(match_id = m.id, status = %m.status, "ingest: unknown status, match skipped");
        return Ok(None);
    };
    let ok = |g: Option<i16>| g.is_none_or(|g| (0..=99).contains(&g));
    let (ft, ht) = (m.score.full_time, m.score.half_time);
    let both = |g: api::Goals| (g.home.is_some() == g.away.is_some()) && ok(g.home) && ok(g.away);
    if !both(ft) || !both(ht) || (status == "FINISHED" && ft.home.is_none()) {
        tracing::warn!(match_id = m.id, "ingest: inconsistent score, match skipped");
        return Ok(None);
    }
    let home_id = resolver.org(conn, &home).await?;
    let away_id = resolver.org(conn, &away).await?;
    if home_id == away_id {
        return Ok(None);
    }
    let season = m.season.as_ref().map(|s| s.start_date.year()).or(season).unwrap_or_else(|| {
        let d = m.utc_date.date_naive();
        if d.month() >= 7 { d.year() } else { d.year() - 1 }
    });
    Ok(Some(MatchRow {
        season,
        home_team_id: home_id,
        away_team_id: away_id,
        kickoff_at: m.utc_date,
        kickoff_exact: true,
        status,
        matchday: m.matchday.filter(|d| (1..=100).contains(d)),
        stage: m.stage.clone(),
        home_goals: ft.home,
        away_goals: ft.away,
        home_goals_ht: ht.home,
        away_goals_ht: ht.away,
        stats: None,
        source_id: m.id.to_string(),
    }))
}
