//! Competitions, teams and matches: the read side. Queries, filters with 400s that name the bad
//! parameter, keyset pagination on `(kickoff_at, id)` ([`cursor`]), and cache-aside in Redis.
//!
//! # Cache
//!
//! Every answer is cached as its JSON body under `fp:body<n>:<scope>:catalog:...` with a time to
//! live per kind of data ([`Ttl`]): competitions and teams change rarely (1 h), lists of matches
//! change as results come in (30 s), a finished match hardly ever (1 h; 60 s while it is to be
//! played). A
//! body is stored with the data version it was built from ([`data_version`]: the database's name
//! and `competitions.data_version`, bumped by ingestion and import with every change); a body of
//! another version than the current one is a miss, so new data makes older entries unusable at
//! once. The TTL bounds staleness for writers that do not bump the version.
//!
//! ## The data version in Redis: one round trip per cached read (issue 13)
//!
//! The current version is kept in Redis ([`version_key`]), so that a cached read is one `MGET`
//! of the caller's account state, the version and the body ([`body::cached_read`]), with no
//! PostgreSQL statement. Every writer that bumps the version publishes it after its transaction
//! commits ([`publish_data_version`]: ingestion after each step, the import of an S3 object after
//! the import); a reader that finds no version reads it from PostgreSQL and offers it with
//! `SET NX` (never over a writer's newer one).
//!
//! **Staleness bound: [`VERSION_TTL`], 5 s.** The version key always has that time to live,
//! whoever wrote it. A writer that commits and then cannot write Redis (or a writer that does not
//! publish: the local `fp import`, a hand-written `UPDATE`), or two writers publishing out of
//! order, leave an old version in Redis for at most 5 s after it was written; the next reader then
//! reads the version from PostgreSQL. So a bump is seen by every reader at most about 5 s (plus
//! one reader's statement) after its commit; with a working Redis, at once. The price: one
//! `data_version` statement per 5 s per deployment, not one per request.
//!
//! A Redis failure is a miss (logged by [`Cache`](crate::cache::Cache)) and the answer, the
//! version and the account come from PostgreSQL.

pub mod body;
pub mod cursor;

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

pub use cursor::{Cursor, PATTERN as CURSOR_PATTERN};

use self::body::{JsonBody, cached_read};
use crate::{
    Services,
    auth::UncheckedUser,
    http::ApiError,
    ids::{MatchId, TeamId},
    metrics::{self, MetricValue},
};

/// Page size of `GET /api/matches` when `limit` is absent, and its maximum.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// Time to live of each kind of cached answer.
pub struct Ttl;

impl Ttl {
    pub const COMPETITIONS: Duration = Duration::from_secs(3600);
    pub const TEAMS: Duration = Duration::from_secs(3600);
    pub const MATCH_LIST: Duration = Duration::from_secs(30);
    pub const MATCH_FINISHED: Duration = Duration::from_secs(3600);
    pub const MATCH_OPEN: Duration = Duration::from_secs(60);
}

/// The statuses a match can have (football-data.org's).
pub const STATUSES: [&str; 9] =
    ["SCHEDULED", "TIMED", "IN_PLAY", "PAUSED", "FINISHED", "POSTPONED", "SUSPENDED", "CANCELLED", "AWARDED"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Competition {
    /// football-data.org's code, e.g. `PL`.
    #[schema(example = "PL")]
    pub code: String,
    pub name: String,
    pub area: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Team {
    /// Public id, `team_<n>`.
    #[schema(value_type = String, example = "team_65")]
    pub id: TeamId,
    pub name: String,
    pub short_name: Option<String>,
    pub tla: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Score {
    pub home: i16,
    pub away: i16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Match {
    /// Public id, `match_<n>`.
    #[schema(value_type = String, example = "match_9")]
    pub id: MatchId,
    #[schema(example = "PL")]
    pub competition: String,
    /// The year the season starts.
    pub season: i32,
    pub matchday: Option<i32>,
    pub kickoff_at: DateTime<Utc>,
    /// SCHEDULED, TIMED, IN_PLAY, PAUSED, FINISHED, POSTPONED, SUSPENDED, CANCELLED or AWARDED.
    #[schema(example = "FINISHED")]
    pub status: String,
    pub home_team: Team,
    pub away_team: Team,
    /// Full-time score; null until known.
    pub score: Option<Score>,
}

/// One bookmaker's prices for one market and phase: `prices` maps outcomes (`home`, `draw`,
/// `away` for `1x2`; `over`, `under` for `over_under_2_5`) to decimal odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OddsQuote {
    pub bookmaker: String,
    #[schema(example = "1x2")]
    pub market: String,
    /// `opening` or `closing`.
    pub phase: String,
    pub prices: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MatchDetail {
    #[serde(flatten)]
    pub r#match: Match,
    /// Bookmaker odds when known (empty otherwise).
    pub odds: Vec<OddsQuote>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompetitionList {
    pub items: Vec<Competition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TeamList {
    pub items: Vec<Team>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MatchPage {
    pub items: Vec<Match>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The raw query of `GET /api/teams`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TeamsQuery {
    /// Competition code (`PL`, any case); all teams when absent.
    #[param(pattern = r"^[A-Za-z0-9]{2,10}$", nullable = false)]
    pub competition: Option<String>,
}

/// The raw query of `GET /api/matches`: every field is validated by [`MatchFilter::parse`], which
/// names the bad one.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MatchesQuery {
    /// Competition code, e.g. `PL` (any case).
    #[param(pattern = r"^[A-Za-z0-9]{2,10}$", nullable = false)]
    pub competition: Option<String>,
    /// A team id (`team_65`): its home and away matches.
    #[param(pattern = r"^team_[1-9][0-9]{0,17}$", nullable = false)]
    pub team: Option<String>,
    /// A status or a comma-separated list of them (`FINISHED`, `TIMED,SCHEDULED`).
    #[param(
        pattern = r"^(SCHEDULED|TIMED|IN_PLAY|PAUSED|FINISHED|POSTPONED|SUSPENDED|CANCELLED|AWARDED)(,(SCHEDULED|TIMED|IN_PLAY|PAUSED|FINISHED|POSTPONED|SUSPENDED|CANCELLED|AWARDED))*$",
        nullable = false
    )]
    pub status: Option<String>,
    /// Kick-off on or after: `YYYY-MM-DD` (start of the day, UTC) or RFC 3339.
    #[param(schema_with = crate::openapi::date_or_date_time)]
    pub date_from: Option<String>,
    /// Kick-off on or before: `YYYY-MM-DD` (the whole day, UTC) or RFC 3339. Before `date_from`:
    /// an empty page.
    #[param(schema_with = crate::openapi::date_or_date_time)]
    pub date_to: Option<String>,
    /// Page size, 1 to 100, default 20.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^v1\.(0|-?[1-9][0-9]{0,15})\.[1-9][0-9]{0,17}$", nullable = false)]
    pub cursor: Option<String>,
}

/// A validated `GET /api/matches` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchFilter {
    pub competition: Option<String>,
    pub team: Option<TeamId>,
    pub statuses: Option<Vec<String>>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
    pub after: Option<Cursor>,
}

/// Validates a competition code (`PL`, `DEMO`): 400 naming `field` otherwise.
pub fn parse_competition_code(value: &str, field: &str) -> Result<String, ApiError> {
    let code = value.to_ascii_uppercase();
    if (2..=10).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(code)
    } else {
        Err(ApiError::invalid_field(field, "expected a competition code such as PL"))
    }
}

/// Parses a page size: 1..=max, default `default`.
pub fn parse_limit(value: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match value {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid_field("limit", format!("expected an integer from 1 to {max}"))),
        },
    }
}

fn parse_bound(value: &str, field: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let date = crate::http::bounds::check_date(field, date)?;
        let date = if end_of_day { date.succ_opt() } else { Some(date) };
        return date
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .ok_or_else(|| ApiError::invalid_field(field, "date out of range"));
    }
    let t = DateTime::parse_from_rfc3339(value)
        .map_err(|_| ApiError::invalid_field(field, "expected a date (YYYY-MM-DD) or an RFC 3339 date-time"))?;
    let t = crate::http::bounds::check_instant(field, t)?;
    // An exclusive upper bound one microsecond after the instant makes `date_to` inclusive.
    Ok(if end_of_day { t + chrono::Duration::microseconds(1) } else { t })
}

impl MatchFilter {
    pub fn parse(q: &MatchesQuery) -> Result<Self, ApiError> {
        let competition = q.competition.as_deref().map(|c| parse_competition_code(c, "competition")).transpose()?;
        let team =
            q.team.as_deref().map(|t| TeamId::parse(t).map_err(|e| ApiError::invalid_field("team", e))).transpose()?;
        let statuses = match q.status.as_deref() {
            None => None,
            Some(s) => {
                let mut list = Vec::new();
                for part in s.split(',').map(str::to_string) {
                    if !STATUSES.contains(&part.as_str()) {
                        return Err(ApiError::invalid_field(
                            "status",
                            format!("expected one of {}", STATUSES.join(", ")),
                        ));
                    }
                    if !list.contains(&part) {
                        list.push(part);
                    }
                }
                if list.is_empty() {
                    return Err(ApiError::invalid_field("status", "empty"));
                }
                list.sort();
                Some(list)
            }
        };
        let from = q.date_from.as_deref().map(|v| parse_bound(v, "date_from", false)).transpose()?;
        let to = q.date_to.as_deref().map(|v| parse_bound(v, "date_to", true)).transpose()?;
        let limit = parse_limit(q.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        let after = q.cursor.as_deref().map(|c| Cursor::decode(c, "cursor")).transpose()?;
        Ok(Self { competition, team, statuses, from, to, limit, after })
    }

    /// A stable digest of the filter, for the cache key.
    fn digest(&self) -> String {
        let text = format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}",
            self.competition,
            self.team.map(|t| t.0),
            self.statuses,
            self.from.map(|t| t.timestamp_micros()),
            self.to.map(|t| t.timestamp_micros()),
            self.limit,
            self.after.map(|c| (c.at.timestamp_micros(), c.id)),
        );
        hex::encode(&Sha256::digest(text.as_bytes())[..12])
    }
}

/// A match as [`query_matches`] and [`load_match_detail`] select it (the same column list in both:
/// the compile-time checked macros take only a string literal).
#[derive(Debug)]
struct MatchRow {
    id: i64,
    competition: String,
    season: i32,
    matchday: Option<i32>,
    kickoff_at: DateTime<Utc>,
    status: String,
    home_team_id: i64,
    home_name: String,
    home_short: Option<String>,
    home_tla: Option<String>,
    away_team_id: i64,
    away_name: String,
    away_short: Option<String>,
    away_tla: Option<String>,
    home_goals: Option<i16>,
    away_goals: Option<i16>,
}

impl From<MatchRow> for Match {
    fn from(r: MatchRow) -> Self {
        Match {
            id: MatchId(r.id),
            competition: r.competition,
            season: r.season,
            matchday: r.matchday,
            kickoff_at: r.kickoff_at,
            status: r.status,
            home_team: Team {
                id: TeamId(r.home_team_id),
                name: r.home_name,
                short_name: r.home_short,
                tla: r.home_tla,
            },
            away_team: Team {
                id: TeamId(r.away_team_id),
                name: r.away_name,
                short_name: r.away_short,
                tla: r.away_tla,
            },
            score: match (r.home_goals, r.away_goals) {
                (Some(home), Some(away)) => Some(Score { home, away }),
                _ => None,
            },
        }
    }
}

/// Records a cache hit or miss of `kind` (`cache_hits_total` / `cache_misses_total`).
pub fn record_cache(kind: &str, hit: bool) {
    let name = if hit { "cache_hits_total" } else { "cache_misses_total" };
    metrics::emit(&[("kind", kind)], &[(name, MetricValue::Count(1.0))]);
}

/// How long the data version is trusted in Redis: the bound on how long a bump whose writer
/// could not publish it (or did not) stays unseen (see the module docs).
pub const VERSION_TTL: Duration = Duration::from_secs(5);

/// The Redis key of the current data version of the deployment's database.
pub fn version_key(services: &Services) -> String {
    format!("catalog:version:{}", services.cache_scope())
}

/// After a writer's commit that bumped `competitions.data_version`: the version as PostgreSQL now
/// has it, written to Redis (over whatever is there) with [`VERSION_TTL`], so the next catalog
/// read sees the new data at once. When the version cannot be read the key is deleted (the next
/// reader reads PostgreSQL); when Redis cannot be written the old key expires within
/// [`VERSION_TTL`] (logged by the cache).
pub async fn publish_data_version(services: &Services) {
    let key = version_key(services);
    let version = async { data_version(services.db.pool().await?).await }.await;
    match version {
        Ok(version) => services.cache.set_bytes(&key, version.into_bytes(), VERSION_TTL).await,
        Err(error) => {
            tracing::warn!(%error, "the data version cannot be read after a write; dropping the cached one");
            services.cache.delete(&[key]).await;
        }
    }
}

/// The version of the catalog data, stored with every cached catalog body: the database's name
/// (so that two databases sharing one Redis, as tests and a local stack do, never share entries)
/// and the data versions of all competitions together.
#[tracing::instrument(name = "db.data_version", skip_all)]
pub async fn data_version(pool: &PgPool) -> Result<String, ApiError> {
    let row = sqlx::query!(
        r#"SELECT current_database()::text AS "db!", COALESCE(SUM(data_version), 0)::bigint AS "sum!",
                  COUNT(*) AS "count!" FROM competitions"#,
    )
    .fetch_one(pool)
    .await?;
    Ok(format_version(&row.db, row.sum, row.count))
}

/// The data version as [`data_version`] spells it, from the database's name, the sum of the
/// competitions' data versions and their count (a statement that reads them in its own snapshot,
/// as `predictions::models::match_context` does, can say which version its rows belong to).
pub fn format_version(db: &str, sum: i64, count: i64) -> String {
    // The count makes a new competition a new version even before anything bumps it.
    format!("{db}:{sum}.{count}")
}

/// `GET /api/competitions`, after the caller's account is checked.
pub async fn competitions(services: &Services, caller: UncheckedUser) -> Result<JsonBody, ApiError> {
    cached_read(
        services,
        caller,
        "competitions",
        "catalog:competitions",
        |_| Ttl::COMPETITIONS,
        |pool| async move {
            let items = sqlx::query_as!(Competition, "SELECT code, name, area FROM competitions ORDER BY code")
                .fetch_all(pool)
                .await?;
            Ok::<_, ApiError>(CompetitionList { items })
        },
    )
    .await
}

/// `GET /api/teams?competition=`: the teams that play in the competition (all teams without one).
/// An unknown competition is a 404.
pub async fn teams(services: &Services, caller: UncheckedUser, query: &TeamsQuery) -> Result<JsonBody, ApiError> {
    let code = query.competition.as_deref().map(|c| parse_competition_code(c, "competition")).transpose()?;
    let key = format!("catalog:teams:{}", code.as_deref().unwrap_or("*"));
    cached_read(
        services,
        caller,
        "teams",
        &key,
        |_| Ttl::TEAMS,
        |pool| async move {
            // `id` is the `BIGINT` key, turned into a `TeamId` by `From<i64>` (the macros call `.into()`).
            let items: Vec<Team> = match &code {
                None => {
                    sqlx::query_as!(Team, "SELECT id, name, short_name, tla FROM teams ORDER BY name, id")
                        .fetch_all(pool)
                        .await?
                }
                Some(code) => {
                    let exists = sqlx::query_scalar!(
                        r#"SELECT EXISTS (SELECT 1 FROM competitions WHERE code = $1) AS "exists!""#,
                        code
                    )
                    .fetch_one(pool)
                    .await?;
                    if !exists {
                        return Err(ApiError::NotFound(format!("no competition {code}")));
                    }
                    sqlx::query_as!(
                        Team,
                        "SELECT t.id, t.name, t.short_name, t.tla FROM teams t
                     WHERE EXISTS (SELECT 1 FROM matches m JOIN competitions c ON c.id = m.competition_id
                                   WHERE c.code = $1 AND (m.home_team_id = t.id OR m.away_team_id = t.id))
                     ORDER BY t.name, t.id",
                        code
                    )
                    .fetch_all(pool)
                    .await?
                }
            };
            Ok::<_, ApiError>(TeamList { items })
        },
    )
    .await
}

/// `GET /api/matches`: one page ordered by `(kickoff_at, id)`, starting after the cursor.
pub async fn list_matches(
    services: &Services,
    caller: UncheckedUser,
    filter: &MatchFilter,
) -> Result<JsonBody, ApiError> {
    let key = format!("catalog:matches:{}", filter.digest());
    cached_read(services, caller, "match_list", &key, |_| Ttl::MATCH_LIST, |pool| query_matches(pool, filter)).await
}

/// The page from PostgreSQL (no cache).
#[tracing::instrument(name = "db.query_matches", skip_all, fields(limit = filter.limit))]
pub async fn query_matches(pool: &PgPool, filter: &MatchFilter) -> Result<MatchPage, ApiError> {
    let mut rows = sqlx::query_as!(
        MatchRow,
        "SELECT m.id, c.code AS competition, m.season, m.matchday, m.kickoff_at, m.status,
                m.home_team_id, ht.name AS home_name, ht.short_name AS home_short, ht.tla AS home_tla,
                m.away_team_id, at.name AS away_name, at.short_name AS away_short, at.tla AS away_tla,
                m.home_goals, m.away_goals
         FROM matches m
         JOIN competitions c ON c.id = m.competition_id
         JOIN teams ht ON ht.id = m.home_team_id
         JOIN teams at ON at.id = m.away_team_id
         WHERE ($1::text IS NULL OR c.code = $1)
           AND ($2::bigint IS NULL OR m.home_team_id = $2 OR m.away_team_id = $2)
           AND ($3::text[] IS NULL OR m.status = ANY($3))
           AND ($4::timestamptz IS NULL OR m.kickoff_at >= $4)
           AND ($5::timestamptz IS NULL OR m.kickoff_at < $5)
           AND ($6::timestamptz IS NULL OR (m.kickoff_at, m.id) > ($6, $7))
         ORDER BY m.kickoff_at, m.id
         LIMIT $8",
        filter.competition,
        filter.team.map(|t| t.0),
        filter.statuses.as_deref(),
        filter.from,
        filter.to,
        filter.after.map(|c| c.at),
        filter.after.map(|c| c.id).unwrap_or(0),
        filter.limit + 1,
    )
    .fetch_all(pool)
    .await?;
    let more = rows.len() as i64 > filter.limit;
    rows.truncate(filter.limit as usize);
    let next_cursor = if more { rows.last().map(|r| Cursor::new(r.kickoff_at, r.id).encode()) } else { None };
    Ok(MatchPage { items: rows.into_iter().map(Match::from).collect(), next_cursor })
}

/// `GET /api/matches/{id}`: 404 when unknown.
pub async fn match_detail(services: &Services, caller: UncheckedUser, id: MatchId) -> Result<JsonBody, ApiError> {
    let key = format!("catalog:match:{}", id.0);
    let ttl = |detail: &MatchDetail| {
        if detail.r#match.status == "FINISHED" { Ttl::MATCH_FINISHED } else { Ttl::MATCH_OPEN }
    };
    cached_read(services, caller, "match", &key, ttl, |pool| load_match_detail(pool, id)).await
}

/// The match with its odds from PostgreSQL (no cache).
#[tracing::instrument(name = "db.match_detail", skip_all, fields(match_id = %id))]
pub async fn load_match_detail(pool: &PgPool, id: MatchId) -> Result<MatchDetail, ApiError> {
    let row = sqlx::query_as!(
        MatchRow,
        "SELECT m.id, c.code AS competition, m.season, m.matchday, m.kickoff_at, m.status,
                m.home_team_id, ht.name AS home_name, ht.short_name AS home_short, ht.tla AS home_tla,
                m.away_team_id, at.name AS away_name, at.short_name AS away_short, at.tla AS away_tla,
                m.home_goals, m.away_goals
         FROM matches m
         JOIN competitions c ON c.id = m.competition_id
         JOIN teams ht ON ht.id = m.home_team_id
         JOIN teams at ON at.id = m.away_team_id
         WHERE m.id = $1",
        id.0
    )
    .fetch_optional(pool)
    .await?;
    let row = row.ok_or_else(|| ApiError::NotFound(format!("no match {id}")))?;
    let quotes = sqlx::query!(
        r#"SELECT bookmaker, market, phase, outcome, price::float8 AS "price!" FROM match_odds WHERE match_id = $1
         ORDER BY bookmaker, market, phase, outcome"#,
        id.0
    )
    .fetch_all(pool)
    .await?;
    let mut odds: Vec<OddsQuote> = Vec::new();
    for q in quotes {
        let (bookmaker, market, phase, outcome, price) = (q.bookmaker, q.market, q.phase, q.outcome, q.price);
        match odds.last_mut() {
            Some(q) if q.bookmaker == bookmaker && q.market == market && q.phase == phase => {
                q.prices.insert(outcome, price);
            }
            _ => odds.push(OddsQuote { bookmaker, market, phase, prices: BTreeMap::from([(outcome, price)]) }),
        }
    }
    Ok(MatchDetail { r#match: row.into(), odds })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> MatchesQuery {
        MatchesQuery::default()
    }

    fn field_of(err: ApiError) -> String {
        err.to_string().split(':').next().unwrap_or_default().to_string()
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases: Vec<(MatchesQuery, &str)> = vec![
            (MatchesQuery { competition: Some("P-L".into()), ..q() }, "competition"),
            (MatchesQuery { team: Some("65".into()), ..q() }, "team"),
            (MatchesQuery { status: Some("DONE".into()), ..q() }, "status"),
            (MatchesQuery { date_from: Some("yesterday".into()), ..q() }, "date_from"),
            (MatchesQuery { date_to: Some("2024-13-01".into()), ..q() }, "date_to"),
            // observed as a 500 (issue 12): chrono takes the year, PostgreSQL refuses it
            (MatchesQuery { date_from: Some("-9999-01-01".into()), ..q() }, "date_from"),
            (MatchesQuery { date_to: Some("+262143-12-31".into()), ..q() }, "date_to"),
            (MatchesQuery { date_to: Some("10000-01-01".into()), ..q() }, "date_to"),
            (MatchesQuery { date_from: Some("10000-01-01T00:00:00Z".into()), ..q() }, "date_from"),
            (MatchesQuery { date_to: Some("+262143-12-31T23:59:59.999999999-23:59".into()), ..q() }, "date_to"),
            (MatchesQuery { limit: Some("0".into()), ..q() }, "limit"),
            (MatchesQuery { limit: Some("101".into()), ..q() }, "limit"),
            (MatchesQuery { limit: Some("ten".into()), ..q() }, "limit"),
            (MatchesQuery { cursor: Some("nope".into()), ..q() }, "cursor"),
            // Exactly the document's grammar: no trimming, no lower case, no empty list item.
            (MatchesQuery { status: Some("timed".into()), ..q() }, "status"),
            (MatchesQuery { status: Some("TIMED,".into()), ..q() }, "status"),
            (MatchesQuery { status: Some("".into()), ..q() }, "status"),
            (MatchesQuery { limit: Some(" 5".into()), ..q() }, "limit"),
            (MatchesQuery { team: Some("team_065".into()), ..q() }, "team"),
        ];
        for (query, field) in cases {
            let err = MatchFilter::parse(&query).unwrap_err();
            assert_eq!(err.status(), 400);
            assert_eq!(field_of(err), field);
        }
    }

    #[test]
    fn defaults_and_normalisation() {
        let f = MatchFilter::parse(&MatchesQuery {
            competition: Some("pl".into()),
            status: Some("TIMED,FINISHED,TIMED".into()),
            date_from: Some("2024-05-01".into()),
            date_to: Some("2024-05-01".into()),
            ..q()
        })
        .unwrap();
        assert_eq!(f.competition.as_deref(), Some("PL"));
        assert_eq!(f.statuses, Some(vec!["FINISHED".to_string(), "TIMED".to_string()]));
        assert_eq!(f.limit, DEFAULT_LIMIT);
        assert_eq!((f.to.unwrap() - f.from.unwrap()).num_hours(), 24);
        // A range that ends before it starts is an empty page, not an error.
        let empty = MatchesQuery { date_from: Some("2024-05-02".into()), date_to: Some("2024-05-01".into()), ..q() };
        assert!(MatchFilter::parse(&empty).is_ok());
    }
}
