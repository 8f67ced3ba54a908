//! Import of football-data.co.uk CSV files (the engine's importer) into the database, from a path or an S3 object.
//!
//! Each file becomes, in one transaction: its competition (given, or from the file's `Div`), its
//! teams (reconciled with football-data.org's through `team_aliases` and the engine's alias
//! table: "Man City" here is "Manchester City FC" there), its matches (results, on the natural key
//! shared with the ingestion) with their shots and shots on target when the file has them
//! (`HS, AS, HST, AST`; a file without them keeps what is stored), and their odds (1X2 and over/under 2.5, opening and closing, per
//! bookmaker). All writes are batched (UNNEST arrays) and idempotent: importing a file twice
//! changes nothing the second time. The competition's `data_version` is incremented when a file
//! changed anything.

use std::{collections::BTreeMap, path::Path, time::Instant};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{
    engine::{MatchRecord, csv_import, teams::TeamAliases},
    ingest::store::{self, Authority, MatchRow, OddsRow, TeamResolver, UpsertCounts},
};

pub const JOB: &str = "import";

/// football-data.co.uk division -> football-data.org competition code and name.
const DIVISIONS: &[(&str, &str, &str)] = &[
    ("E0", "PL", "Premier League"),
    ("E1", "ELC", "Championship"),
    ("D1", "BL1", "Bundesliga"),
    ("I1", "SA", "Serie A"),
    ("SP1", "PD", "Primera Division"),
    ("F1", "FL1", "Ligue 1"),
    ("N1", "DED", "Eredivisie"),
    ("P1", "PPL", "Primeira Liga"),
];

/// An S3 object to import: the `import` event of the `ingest` function.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct S3Import {
    pub bucket: String,
    pub key: String,
    /// football-data.org competition code (`PL`); default: from the file's `Div` column.
    #[serde(default)]
    pub competition: Option<String>,
}

/// S3 keys the import reads (the function's IAM policy allows `s3:GetObject` on this prefix only).
pub const S3_PREFIX: &str = "imports/";

/// The largest file an import reads (a football-data.co.uk season is 100 to 500 KB): a larger
/// object or file is refused before it is read, so a mistaken or hostile upload cannot exhaust
/// the function's memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not a football-data.co.uk CSV the importer can read (names file, line, column).
    #[error(transparent)]
    Csv(#[from] csv_import::ImportError),
    #[error("{source_name}: no match in the file")]
    Empty { source_name: String },
    #[error("{source_name}: cannot tell the competition of division {div:?}: give it (e.g. --competition PL)")]
    UnknownCompetition { source_name: String, div: Option<String> },
    #[error("competition: `{0}` is not a competition code (2-10 capital letters or digits, e.g. PL)")]
    InvalidCompetition(String),
    #[error("key: `{0}` is not under {S3_PREFIX}")]
    KeyOutsidePrefix(String),
    #[error("s3://{bucket}/{key}: {reason}")]
    S3 { bucket: String, key: String, reason: String },
    #[error("{source_name}: {bytes} bytes is more than the {MAX_FILE_BYTES} an import reads")]
    TooLarge { source_name: String, bytes: u64 },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl ImportError {
    /// True for failures of a dependency (retrying may succeed), false for bad input, including
    /// data the database refuses (a constraint violation or a value out of range: SQLSTATE
    /// classes 22 and 23), which no retry would change.
    pub fn is_retryable(&self) -> bool {
        match self {
            ImportError::Database(e) => !refused_data(e),
            ImportError::S3 { reason, .. } => !reason.contains("NoSuchKey"),
            _ => false,
        }
    }
}

fn refused_data(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
}

/// What one file did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FileReport {
    pub source: String,
    pub competition: String,
    pub season: i32,
    pub rows: u64,
    pub matches: UpsertCounts,
    pub odds: UpsertCounts,
    pub teams_changed: u64,
    /// The competition's data version after the file (changed only when the file changed data).
    pub data_version: i64,
}

/// What an import run did (also the `counts` of its `job_runs` row).
#[derive(Debug, Default, Clone, Serialize)]
pub struct ImportReport {
    pub run_id: i64,
    pub files: Vec<FileReport>,
    pub matches: UpsertCounts,
    pub odds: UpsertCounts,
    pub teams_changed: u64,
    pub elapsed_ms: u64,
    pub data_versions: BTreeMap<String, i64>,
}

fn check_code(code: &str) -> Result<String, ImportError> {
    let c = code.trim().to_uppercase();
    if (2..=10).contains(&c.len()) && c.chars().all(|x| x.is_ascii_alphanumeric()) {
        Ok(c)
    } else {
        Err(ImportError::InvalidCompetition(code.to_string()))
    }
}

/// Imports local files, in order, as one `import` job run.
pub async fn import_files(
    pool: &PgPool,
    paths: &[impl AsRef<Path>],
    competition: Option<&str>,
) -> Result<ImportReport, ImportError> {
    import_files_with_progress(pool, paths, competition, &crate::progress::Silent).await
}

/// [`import_files`], reporting each file imported to `progress`.
pub async fn import_files_with_progress(
    pool: &PgPool,
    paths: &[impl AsRef<Path>],
    competition: Option<&str>,
    progress: &dyn crate::progress::Progress,
) -> Result<ImportReport, ImportError> {
    let competition = competition.map(check_code).transpose()?;
    let mut inputs = Vec::with_capacity(paths.len());
    for p in paths {
        let p = p.as_ref();
        let name = p.display().to_string();
        let read_err =
            |e: std::io::Error| csv_import::ImportError::Read { source_name: name.clone(), message: e.to_string() };
        let size = std::fs::metadata(p).map_err(read_err)?.len();
        if size > MAX_FILE_BYTES {
            return Err(ImportError::TooLarge { source_name: name.clone(), bytes: size });
        }
        let bytes = std::fs::read(p).map_err(read_err)?;
        inputs.push((name, bytes));
    }
    run(pool, inputs, competition.as_deref(), progress).await
}

/// Imports one S3 object (key under `imports/`).
pub async fn import_s3(pool: &PgPool, s3: &aws_sdk_s3::Client, object: &S3Import) -> Result<ImportReport, ImportError> {
    let competition = object.competition.as_deref().map(check_code).transpose()?;
    if !object.key.starts_with(S3_PREFIX) || object.key.contains("..") {
        return Err(ImportError::KeyOutsidePrefix(object.key.clone()));
    }
    let s3_err = |reason: String| ImportError::S3 { bucket: object.bucket.clone(), key: object.key.clone(), reason };
    let out = s3
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .send()
        .await
        .map_err(|e| s3_err(aws_sdk_s3::error::DisplayErrorContext(&e).to_string()))?;
    let name = format!("s3://{}/{}", object.bucket, object.key);
    let too_large = |bytes: u64| ImportError::TooLarge { source_name: name.clone(), bytes };
    if let Some(len) = out.content_length.filter(|n| *n as u64 > MAX_FILE_BYTES) {
        return Err(too_large(len as u64));
    }
    // Read in chunks and stop past the cap, whatever the object's declared length said.
    let mut body = out.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.try_next().await.map_err(|e| s3_err(e.to_string()))? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(too_large(bytes.len() as u64));
        }
    }
    run(pool, vec![(name, bytes)], competition.as_deref(), &crate::progress::Silent).await
}

async fn run(
    pool: &PgPool,
    inputs: Vec<(String, Vec<u8>)>,
    competition: Option<&str>,
    progress: &dyn crate::progress::Progress,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let run_id = store::start_run(pool, JOB).await?;
    let mut report = ImportReport { run_id, ..Default::default() };
    let mut resolver = TeamResolver::default();
    let mut result = Ok(());
    progress.stage("import", inputs.len() as u64);
    for (i, (name, bytes)) in inputs.iter().enumerate() {
        let imported = import_one(pool, &mut resolver, bytes, name, competition).await;
        let short = name.rsplit('/').next().unwrap_or(name);
        progress.set(i as u64 + 1, short);
        match imported {
            Ok(file) => {
                report.matches.add(file.matches);
                report.odds.add(file.odds);
                report.teams_changed += file.teams_changed;
                if file.matches.changed() + file.odds.changed() + file.teams_changed > 0 {
                    report.data_versions.insert(file.competition.clone(), file.data_version);
                }
                report.files.push(file);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    progress.finish();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    let counts = serde_json::to_value(&report).unwrap_or_default();
    match result {
        Ok(()) => {
            store::finish_run(pool, run_id, "succeeded", &counts, None).await?;
            Ok(report)
        }
        Err(e) => {
            let outcome = if report.files.is_empty() { "failed" } else { "partial" };
            let _ = store::finish_run(pool, run_id, outcome, &counts, Some(&e.to_string())).await;
            Err(e)
        }
    }
}

/// Parses and writes one file in one transaction.
async fn import_one(
    pool: &PgPool,
    resolver: &mut TeamResolver,
    bytes: &[u8],
    source_name: &str,
    competition: Option<&str>,
) -> Result<FileReport, ImportError> {
    // Raw names (no alias table): the resolver maps them and records them as aliases.
    let records = csv_import::read_csv(bytes, source_name, &TeamAliases::new())?;
    let first =
        records.iter().min_by_key(|r| r.date).ok_or_else(|| ImportError::Empty { source_name: source_name.into() })?;
    let div = first.competition.clone();
    let known = div.as_deref().and_then(|d| DIVISIONS.iter().find(|(x, _, _)| *x == d));
    let code = match (competition, known) {
        (Some(c), _) => c.to_string(),
        (None, Some((_, c, _))) => (*c).to_string(),
        (None, None) => return Err(ImportError::UnknownCompetition { source_name: source_name.into(), div }),
    };
    let name = DIVISIONS.iter().find(|(_, c, _)| *c == code).map_or(code.as_str(), |(_, _, n)| n);
    // The season of a file is the year its first match is played in, or the one before when that
    // is before July (a file of a season's second half).
    let season = if first.date.month() >= 7 { first.date.year() } else { first.date.year() - 1 };
    let div_tag = div.unwrap_or_else(|| code.clone());

    let mut tx = pool.begin().await?;
    let teams_before = resolver.changed;
    let competition_id = store::ensure_competition(&mut tx, &code, name).await?;
    let mut rows = Vec::with_capacity(records.len());
    for r in &records {
        let home = resolver.co_uk(&mut tx, &r.home).await?;
        let away = resolver.co_uk(&mut tx, &r.away).await?;
        rows.push(MatchRow {
            season,
            home_team_id: home,
            away_team_id: away,
            kickoff_at: uk_kickoff(r.date, r.time),
            kickoff_exact: r.time.is_some(),
            status: "FINISHED",
            matchday: None,
            stage: None,
            home_goals: Some(i16::from(r.home_goals)),
            away_goals: Some(i16::from(r.away_goals)),
            home_goals_ht: None,
            away_goals_ht: None,
            stats: r.stats,
            source_id: format!("{div_tag}/{season}/{}/{}", r.home, r.away),
        });
    }
    let (matches, ids) =
        store::upsert_matches(&mut tx, competition_id, store::SOURCE_CO_UK, Authority::CoUk, &rows).await?;
    let odds_rows: Vec<OddsRow> =
        records.iter().zip(&ids).filter(|(_, id)| **id > 0).flat_map(|(r, id)| odds_of(*id, r)).collect();
    let odds = store::upsert_odds(&mut tx, &odds_rows).await?;
    let teams_changed = resolver.changed - teams_before;
    let data_version = if matches.changed() + odds.changed() + teams_changed > 0 {
        store::bump_data_version(&mut tx, competition_id).await?
    } else {
        sqlx::query_scalar!("SELECT data_version FROM competitions WHERE id = $1", competition_id)
            .fetch_one(&mut *tx)
            .await?
    };
    tx.commit().await?;
    Ok(FileReport {
        source: source_name.to_string(),
        competition: code,
        season,
        rows: records.len() as u64,
        matches,
        odds,
        teams_changed,
        data_version,
    })
}

/// football-data.co.uk's bookmaker prefixes as the database names them.
fn bookmaker(prefix: &str) -> String {
    match prefix {
        "PS" | "P" => "pinnacle".into(),
        "B365" => "bet365".into(),
        "Avg" | "BbAv" => "market_average".into(),
        "Max" | "BbMx" => "market_max".into(),
        "BW" => "bwin".into(),
        "IW" => "interwetten".into(),
        "WH" => "william_hill".into(),
        "VC" => "vc_bet".into(),
        "LB" => "ladbrokes".into(),
        "SJ" => "stan_james".into(),
        "GB" => "gamebookers".into(),
        "BS" => "blue_square".into(),
        "SB" => "sportingbet".into(),
        "BF" => "betfair".into(),
        "BFE" => "betfair_exchange".into(),
        "1XB" => "1xbet".into(),
        other => other.to_lowercase(),
    }
}

/// The long-format odds rows of one match: 1X2 and over/under 2.5, opening (pre-match) and closing.
fn odds_of(match_id: i64, r: &MatchRecord) -> Vec<OddsRow> {
    let mut out = Vec::new();
    let mut push = |book: &str, market: &'static str, phase: &'static str, outcome: &'static str, price: f64| {
        out.push(OddsRow { match_id, bookmaker: bookmaker(book), market, phase, outcome, price });
    };
    for (phase, quotes) in [("opening", &r.odds.pre_match), ("closing", &r.odds.closing)] {
        for q in quotes {
            push(&q.bookmaker, "1x2", phase, "home", q.odds.home);
            push(&q.bookmaker, "1x2", phase, "draw", q.odds.draw);
            push(&q.bookmaker, "1x2", phase, "away", q.odds.away);
        }
    }
    for (phase, quotes) in [("opening", &r.odds.over_under_pre_match), ("closing", &r.odds.over_under_closing)] {
        for q in quotes {
            push(&q.bookmaker, "over_under_2_5", phase, "over", q.odds.over);
            push(&q.bookmaker, "over_under_2_5", phase, "under", q.odds.under);
        }
    }
    out
}

/// The last Sunday of a month.
fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next =
        if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) };
    let mut d = next.unwrap_or(NaiveDate::MIN) - Duration::days(1);
    while d.weekday() != Weekday::Sun {
        d -= Duration::days(1);
    }
    d
}

/// A UK local kick-off (football-data.co.uk's times) in UTC: British Summer Time runs from 01:00
/// UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October. Without a time,
/// 15:00 local.
pub fn uk_kickoff(date: NaiveDate, time: Option<NaiveTime>) -> DateTime<Utc> {
    let local = NaiveDateTime::new(date, time.unwrap_or(NaiveTime::from_hms_opt(15, 0, 0).unwrap_or(NaiveTime::MIN)));
    let bst_start = last_sunday(date.year(), 3).and_hms_opt(1, 0, 0).unwrap_or_default();
    let bst_end = last_sunday(date.year(), 10).and_hms_opt(1, 0, 0).unwrap_or_default();
    let as_gmt = local; // local time read as UTC
    let summer = as_gmt - Duration::hours(1) >= bst_start && as_gmt - Duration::hours(1) < bst_end;
    let utc = if summer { local - Duration::hours(1) } else { local };
    utc.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> Option<NaiveTime> {
        NaiveTime::from_hms_opt(h, m, 0)
    }

    #[test]
    fn uk_times_become_utc() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        // August: BST (UTC+1).
        assert_eq!(uk_kickoff(d(2023, 8, 11), t(20, 0)).to_rfc3339(), "2023-08-11T19:00:00+00:00");
        // December: GMT.
        assert_eq!(uk_kickoff(d(2023, 12, 26), t(15, 0)).to_rfc3339(), "2023-12-26T15:00:00+00:00");
        // 2024: BST from 31 March to 27 October.
        assert_eq!(uk_kickoff(d(2024, 3, 30), t(15, 0)).to_rfc3339(), "2024-03-30T15:00:00+00:00");
        assert_eq!(uk_kickoff(d(2024, 3, 31), t(16, 30)).to_rfc3339(), "2024-03-31T15:30:00+00:00");
        assert_eq!(uk_kickoff(d(2024, 10, 27), t(14, 0)).to_rfc3339(), "2024-10-27T14:00:00+00:00");
        assert_eq!(uk_kickoff(d(2024, 10, 26), t(17, 30)).to_rfc3339(), "2024-10-26T16:30:00+00:00");
        assert_eq!(uk_kickoff(d(2012, 8, 18), None).to_rfc3339(), "2012-08-18T14:00:00+00:00");
    }

    #[test]
    fn bookmakers_get_database_names() {
        assert_eq!(bookmaker("PS"), "pinnacle");
        assert_eq!(bookmaker("P"), "pinnacle");
        assert_eq!(bookmaker("BbAv"), "market_average");
        assert_eq!(bookmaker("Unknown"), "unknown");
    }
}
