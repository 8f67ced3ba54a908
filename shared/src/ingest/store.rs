//! Idempotent writes shared by the football-data.org ingestion and the football-data.co.uk import:
//! team reconciliation through `team_aliases` and the engine's alias table, batched match and odds
//! upserts (UNNEST arrays, one statement per batch), the per-competition data version. Run records
//! and checkpoints belong to [`crate::jobs`].
//!
//! Every upsert writes only when a value differs (`IS DISTINCT FROM`), so running the same input
//! twice leaves every row, `updated_at` included, as it was, and the data version unchanged.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::{
    engine::{data::MatchStats, teams::TeamAliases},
    jobs::{self, Outcome},
};

pub const SOURCE_ORG: &str = "football-data.org";
pub const SOURCE_CO_UK: &str = "football-data.co.uk";
pub const SOURCE_TLA: &str = "tla";

fn valid_tla(tla: Option<&str>) -> Option<String> {
    let t = tla?.trim().to_uppercase();
    ((2..=4).contains(&t.len()) && t.chars().all(|c| c.is_ascii_alphanumeric())).then_some(t)
}

fn clean(name: Option<&str>) -> Option<String> {
    let n = name?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!n.is_empty() && n.len() <= 200).then_some(n)
}

/// A football-data.org team.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrgTeam {
    pub id: i64,
    pub name: String,
    pub short_name: Option<String>,
    pub tla: Option<String>,
}

impl OrgTeam {
    pub fn from_api(t: &super::api::Team) -> Option<Self> {
        Some(Self {
            id: t.id?,
            name: clean(t.name.as_deref())?,
            short_name: clean(t.short_name.as_deref()),
            tla: valid_tla(t.tla.as_deref()),
        })
    }
}

/// Maps source names to team ids, creating teams on first sight. One resolver per run: it
/// remembers what it resolved.
pub struct TeamResolver {
    builtin: TeamAliases,
    org: HashMap<i64, i64>,
    co_uk: HashMap<String, i64>,
    /// Teams inserted or changed.
    pub changed: u64,
}

impl Default for TeamResolver {
    fn default() -> Self {
        Self { builtin: TeamAliases::builtin(), org: HashMap::new(), co_uk: HashMap::new(), changed: 0 }
    }
}

impl TeamResolver {
    /// The team of a football-data.org team: by its id, by its name or TLA as an alias, by the
    /// engine's alias table (canonical name), else a new team. Records its id, short name, TLA and
    /// aliases.
    pub async fn org(&mut self, conn: &mut PgConnection, t: &OrgTeam) -> Result<i64, sqlx::Error> {
        if let Some(&id) = self.org.get(&t.id) {
            return Ok(id);
        }
        let known = self.builtin.find(&t.name).or_else(|| t.short_name.as_deref().and_then(|s| self.builtin.find(s)));
        let canonical = known.map(|k| k.name.clone());
        let tla = t.tla.clone().or_else(|| known.and_then(|k| k.tla.clone()));
        let found: Option<i64> = sqlx::query_scalar!(
            r#"SELECT c.id AS "id!" FROM (
                 SELECT id, 1 AS rank FROM teams WHERE source_id = $1
                 UNION ALL
                 SELECT a.team_id, 2 FROM team_aliases a JOIN teams t ON t.id = a.team_id
                  WHERE a.source = 'football-data.org' AND a.alias = $2 AND t.source_id IS NULL
                 UNION ALL
                 -- a TLA identifies a club only within the sources that gave it (two leagues can
                 -- share one), so it matches only a team no football-data.org id claims yet
                 SELECT a.team_id, 3 FROM team_aliases a JOIN teams t ON t.id = a.team_id
                  WHERE a.source = 'tla' AND a.alias = $3 AND t.source_id IS NULL
                 UNION ALL
                 SELECT id, 4 FROM teams WHERE name = $4 AND source_id IS NULL
                 UNION ALL
                 SELECT id, 5 FROM teams WHERE name = $2 AND source_id IS NULL
             ) c ORDER BY rank LIMIT 1"#,
            t.id,
            t.name,
            tla.as_deref(),
            canonical.as_deref(),
        )
        .fetch_optional(&mut *conn)
        .await?;
        let id = match found {
            Some(id) => {
                let updated = sqlx::query!(
                    "UPDATE teams SET source_id = $2, short_name = COALESCE($3, short_name), tla = COALESCE($4, tla),
                            updated_at = now()
                      WHERE id = $1 AND (source_id, short_name, tla) IS DISTINCT FROM ($2, COALESCE($3, short_name), COALESCE($4, tla))",
                    id,
                    t.id,
                    t.short_name.as_deref(),
                    tla.as_deref(),
                )
                .execute(&mut *conn)
                .await?;
                self.changed += updated.rows_affected();
                id
            }
            None => {
                let id: i64 = sqlx::query_scalar!(
                    "INSERT INTO teams (name, short_name, tla, source_id) VALUES ($1, $2, $3, $4) RETURNING id",
                    canonical.as_deref().unwrap_or(&t.name),
                    t.short_name.as_deref(),
                    tla.as_deref(),
                    t.id,
                )
                .fetch_one(&mut *conn)
                .await?;
                self.changed += 1;
                id
            }
        };
        let mut aliases = vec![(SOURCE_ORG, t.name.clone())];
        if let Some(s) = &t.short_name {
            aliases.push((SOURCE_ORG, s.clone()));
        }
        if let Some(tla) = &tla {
            aliases.push((SOURCE_TLA, tla.clone()));
        }
        add_aliases(conn, id, &aliases).await?;
        self.org.insert(t.id, id);
        Ok(id)
    }

    /// The team of a football-data.co.uk name ("Man City"): by that alias, by the engine's
    /// canonical name ("Manchester City FC", football-data.org's), by a football-data.org short
    /// name, else a new team under the canonical name.
    pub async fn co_uk(&mut self, conn: &mut PgConnection, raw: &str) -> Result<i64, sqlx::Error> {
        let raw = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(&id) = self.co_uk.get(&raw) {
            return Ok(id);
        }
        let known = self.builtin.find(&raw);
        let canonical = known.map(|k| k.name.clone()).unwrap_or_else(|| raw.clone());
        let tla = known.and_then(|k| k.tla.clone());
        let found: Option<i64> = sqlx::query_scalar!(
            r#"SELECT c.id AS "id!" FROM (
                 SELECT team_id AS id, 1 AS rank FROM team_aliases WHERE source = 'football-data.co.uk' AND alias = $1
                 UNION ALL
                 SELECT id, 2 FROM teams WHERE name = $2
                 UNION ALL
                 SELECT team_id, 3 FROM team_aliases WHERE source = 'football-data.org' AND alias = $1
             ) c ORDER BY rank LIMIT 1"#,
            raw,
            canonical,
        )
        .fetch_optional(&mut *conn)
        .await?;
        let id = match found {
            Some(id) => id,
            None => {
                let id: i64 = sqlx::query_scalar!(
                    "INSERT INTO teams (name, short_name, tla) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                    canonical,
                    raw,
                    tla.as_deref(),
                )
                .fetch_one(&mut *conn)
                .await?;
                self.changed += 1;
                id
            }
        };
        let mut aliases = vec![(SOURCE_CO_UK, raw.clone())];
        if let Some(tla) = tla {
            aliases.push((SOURCE_TLA, tla));
        }
        add_aliases(conn, id, &aliases).await?;
        self.co_uk.insert(raw, id);
        Ok(id)
    }
}

/// Adds aliases; one already taken (by this or another team) keeps its first owner.
async fn add_aliases(conn: &mut PgConnection, team_id: i64, aliases: &[(&str, String)]) -> Result<(), sqlx::Error> {
    let sources: Vec<&str> = aliases.iter().map(|(s, _)| *s).collect();
    let names: Vec<&str> = aliases.iter().map(|(_, a)| a.as_str()).collect();
    sqlx::query!(
        "INSERT INTO team_aliases (source, alias, team_id)
         SELECT s, a, $3 FROM UNNEST($1::text[], $2::text[]) AS u(s, a)
         ON CONFLICT DO NOTHING",
        &sources as &[&str],
        &names as &[&str],
        team_id,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The competition with this code, created when absent; returns its id.
pub async fn ensure_competition(conn: &mut PgConnection, code: &str, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO competitions (code, name) VALUES ($1, $2)
         ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code RETURNING id",
        code,
        name,
    )
    .fetch_one(&mut *conn)
    .await
}

/// Makes the competition `code` match football-data.org's record; true when a value changed.
pub async fn upsert_org_competition(
    conn: &mut PgConnection,
    code: &str,
    c: &super::api::Competition,
) -> Result<bool, sqlx::Error> {
    let area = c.area.as_ref().and_then(|a| a.name.clone());
    let inserted: Option<bool> = sqlx::query_scalar!(
        r#"INSERT INTO competitions (code, name, area, source_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, area = EXCLUDED.area,
                 source_id = EXCLUDED.source_id, updated_at = now()
          WHERE (competitions.name, competitions.area, competitions.source_id)
                IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.area, EXCLUDED.source_id)
         RETURNING (xmax = 0) AS "inserted!""#,
        code,
        c.name,
        area,
        c.id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(inserted.is_some())
}

/// One match to write (already resolved to team ids).
#[derive(Debug, Clone)]
pub struct MatchRow {
    pub season: i32,
    pub home_team_id: i64,
    pub away_team_id: i64,
    pub kickoff_at: DateTime<Utc>,
    /// football-data.co.uk files without a `Time` column: keep an existing kick-off.
    pub kickoff_exact: bool,
    pub status: &'static str,
    pub matchday: Option<i32>,
    pub stage: Option<String>,
    pub home_goals: Option<i16>,
    pub away_goals: Option<i16>,
    pub home_goals_ht: Option<i16>,
    pub away_goals_ht: Option<i16>,
    /// Shots and shots on target (football-data.co.uk's HS, AS, HST, AST), when the source has
    /// them. Only football-data.co.uk brings them: football-data.org's rows never touch them,
    /// and a co.uk file without them keeps what is stored.
    pub stats: Option<MatchStats>,
    pub source_id: String,
}

/// What a batch upsert did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl UpsertCounts {
    pub fn add(&mut self, o: UpsertCounts) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }
    pub fn changed(&self) -> u64 {
        self.inserted + self.updated
    }
}

/// How a source's row overrides an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// football-data.org: the live source of fixtures, statuses and scores; every field is its.
    Org,
    /// football-data.co.uk: final results; it never clears what it does not know (half-time
    /// score, matchday, stage) and keeps an existing kick-off when its file has no time.
    CoUk,
}

/// Upserts matches on the natural key (competition, season, home, away) and records their source
/// ids; returns the counts and the match id of each input row (same order). Rows with the same
/// natural key: the last one wins.
pub async fn upsert_matches(
    conn: &mut PgConnection,
    competition_id: i64,
    source: &str,
    authority: Authority,
    rows: &[MatchRow],
) -> Result<(UpsertCounts, Vec<i64>), sqlx::Error> {
    if rows.is_empty() {
        return Ok((UpsertCounts::default(), Vec::new()));
    }
    // One INSERT ... ON CONFLICT cannot touch a row twice: keep the last row of each natural key.
    let mut last: HashMap<(i32, i64, i64), usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        last.insert((r.season, r.home_team_id, r.away_team_id), i);
    }
    let mut keep: Vec<&MatchRow> = {
        let mut idx: Vec<usize> = last.values().copied().collect();
        idx.sort_unstable();
        idx.into_iter().map(|i| &rows[i]).collect()
    };
    keep.shrink_to_fit();
    let seasons: Vec<i32> = keep.iter().map(|r| r.season).collect();
    let homes: Vec<i64> = keep.iter().map(|r| r.home_team_id).collect();
    let aways: Vec<i64> = keep.iter().map(|r| r.away_team_id).collect();
    let kickoffs: Vec<DateTime<Utc>> = keep.iter().map(|r| r.kickoff_at).collect();
    let exact: Vec<bool> = keep.iter().map(|r| r.kickoff_exact).collect();
    let statuses: Vec<&str> = keep.iter().map(|r| r.status).collect();
    let matchdays: Vec<Option<i32>> = keep.iter().map(|r| r.matchday).collect();
    let stages: Vec<Option<&str>> = keep.iter().map(|r| r.stage.as_deref()).collect();
    let hg: Vec<Option<i16>> = keep.iter().map(|r| r.home_goals).collect();
    let ag: Vec<Option<i16>> = keep.iter().map(|r| r.away_goals).collect();
    let hht: Vec<Option<i16>> = keep.iter().map(|r| r.home_goals_ht).collect();
    let aht: Vec<Option<i16>> = keep.iter().map(|r| r.away_goals_ht).collect();
    let source_ids: Vec<&str> = keep.iter().map(|r| r.source_id.as_str()).collect();
    let stat = |f: fn(&MatchStats) -> u8| -> Vec<Option<i16>> {
        keep.iter().map(|r| r.stats.as_ref().map(|s| i16::from(f(s)))).collect()
    };
    let (hs, as_) = (stat(|s| s.home_shots), stat(|s| s.away_shots));
    let (hst, ast) = (stat(|s| s.home_shots_on_target), stat(|s| s.away_shots_on_target));

    // football-data.org owns every field. football-data.co.uk brings final results only: it keeps
    // what it does not know (matchday, stage, half-time score) and an existing kick-off when its
    // file has no time.
    // The same INSERT twice, one literal per authority (the macros take only a literal): only the
    // DO UPDATE SET clause differs.
    let written: Vec<bool> = match authority {
        Authority::Org => sqlx::query_scalar!(
            r#"INSERT INTO matches AS m (competition_id, season, home_team_id, away_team_id, kickoff_at, status, matchday,
                                  stage, home_goals, away_goals, home_goals_ht, away_goals_ht)
         SELECT $1, u.s, u.h, u.a, CASE WHEN u.ex OR e.id IS NULL THEN u.k ELSE e.kickoff_at END, u.st, u.md, u.sg,
                u.hg, u.ag, u.hht, u.aht
           FROM UNNEST($2::int[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::bool[], $7::text[], $8::int[],
                       $9::text[], $10::smallint[], $11::smallint[], $12::smallint[], $13::smallint[])
                AS u(s, h, a, k, ex, st, md, sg, hg, ag, hht, aht)
           LEFT JOIN matches e ON e.competition_id = $1 AND e.season = u.s AND e.home_team_id = u.h
                              AND e.away_team_id = u.a
         ON CONFLICT ON CONSTRAINT one_fixture_per_pairing_and_season DO UPDATE SET
             kickoff_at = EXCLUDED.kickoff_at, status = EXCLUDED.status, matchday = EXCLUDED.matchday,
             stage = EXCLUDED.stage, home_goals = EXCLUDED.home_goals, away_goals = EXCLUDED.away_goals,
             home_goals_ht = EXCLUDED.home_goals_ht, away_goals_ht = EXCLUDED.away_goals_ht, updated_at = now()
             WHERE (m.kickoff_at, m.status, m.matchday, m.stage, m.home_goals, m.away_goals, m.home_goals_ht,
                    m.away_goals_ht)
                   IS DISTINCT FROM (EXCLUDED.kickoff_at, EXCLUDED.status, EXCLUDED.matchday, EXCLUDED.stage,
                    EXCLUDED.home_goals, EXCLUDED.away_goals, EXCLUDED.home_goals_ht, EXCLUDED.away_goals_ht)
         RETURNING (xmax = 0) AS "inserted!""#,
            competition_id,
            &seasons,
            &homes,
            &aways,
            &kickoffs,
            &exact,
            &statuses as &[&str],
            &matchdays as &[Option<i32>],
            &stages as &[Option<&str>],
            &hg as &[Option<i16>],
            &ag as &[Option<i16>],
            &hht as &[Option<i16>],
            &aht as &[Option<i16>],
        )
        .fetch_all(&mut *conn)
        .await?,
        Authority::CoUk => sqlx::query_scalar!(
            r#"INSERT INTO matches AS m (competition_id, season, home_team_id, away_team_id, kickoff_at, status, matchday,
                                  stage, home_goals, away_goals, home_goals_ht, away_goals_ht, home_shots,
                                  away_shots, home_shots_on_target, away_shots_on_target)
         SELECT $1, u.s, u.h, u.a, CASE WHEN u.ex OR e.id IS NULL THEN u.k ELSE e.kickoff_at END, u.st, u.md, u.sg,
                u.hg, u.ag, u.hht, u.aht, u.hs, u.as_, u.hst, u.ast
           FROM UNNEST($2::int[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::bool[], $7::text[], $8::int[],
                       $9::text[], $10::smallint[], $11::smallint[], $12::smallint[], $13::smallint[],
                       $14::smallint[], $15::smallint[], $16::smallint[], $17::smallint[])
                AS u(s, h, a, k, ex, st, md, sg, hg, ag, hht, aht, hs, as_, hst, ast)
           LEFT JOIN matches e ON e.competition_id = $1 AND e.season = u.s AND e.home_team_id = u.h
                              AND e.away_team_id = u.a
         ON CONFLICT ON CONSTRAINT one_fixture_per_pairing_and_season DO UPDATE SET
             kickoff_at = EXCLUDED.kickoff_at, status = EXCLUDED.status, home_goals = EXCLUDED.home_goals,
             away_goals = EXCLUDED.away_goals,
             home_shots = COALESCE(EXCLUDED.home_shots, m.home_shots),
             away_shots = COALESCE(EXCLUDED.away_shots, m.away_shots),
             home_shots_on_target = COALESCE(EXCLUDED.home_shots_on_target, m.home_shots_on_target),
             away_shots_on_target = COALESCE(EXCLUDED.away_shots_on_target, m.away_shots_on_target),
             updated_at = now()
             WHERE (m.kickoff_at, m.status, m.home_goals, m.away_goals)
                   IS DISTINCT FROM (EXCLUDED.kickoff_at, EXCLUDED.status, EXCLUDED.home_goals, EXCLUDED.away_goals)
                OR (EXCLUDED.home_shots IS NOT NULL
                    AND (m.home_shots, m.away_shots, m.home_shots_on_target, m.away_shots_on_target)
                        IS DISTINCT FROM (EXCLUDED.home_shots, EXCLUDED.away_shots, EXCLUDED.home_shots_on_target,
                                          EXCLUDED.away_shots_on_target))
         RETURNING (xmax = 0) AS "inserted!""#,
            competition_id,
            &seasons,
            &homes,
            &aways,
            &kickoffs,
            &exact,
            &statuses as &[&str],
            &matchdays as &[Option<i32>],
            &stages as &[Option<&str>],
            &hg as &[Option<i16>],
            &ag as &[Option<i16>],
            &hht as &[Option<i16>],
            &aht as &[Option<i16>],
            &hs as &[Option<i16>],
            &as_ as &[Option<i16>],
            &hst as &[Option<i16>],
            &ast as &[Option<i16>],
        )
        .fetch_all(&mut *conn)
        .await?,
    };
    let inserted = written.iter().filter(|i| **i).count() as u64;
    let updated = written.len() as u64 - inserted;
    let counts = UpsertCounts { inserted, updated, unchanged: keep.len() as u64 - inserted - updated };

    sqlx::query!(
        "INSERT INTO match_sources (source, source_id, match_id)
         SELECT $1, u.sid, m.id
           FROM UNNEST($3::int[], $4::bigint[], $5::bigint[], $6::text[]) AS u(s, h, a, sid)
           JOIN matches m ON m.competition_id = $2 AND m.season = u.s AND m.home_team_id = u.h AND m.away_team_id = u.a
         ON CONFLICT DO NOTHING",
        source,
        competition_id,
        &seasons,
        &homes,
        &aways,
        &source_ids as &[&str],
    )
    .execute(&mut *conn)
    .await?;

    // The id of every input row, duplicates included.
    let all_seasons: Vec<i32> = rows.iter().map(|r| r.season).collect();
    let all_homes: Vec<i64> = rows.iter().map(|r| r.home_team_id).collect();
    let all_aways: Vec<i64> = rows.iter().map(|r| r.away_team_id).collect();
    let ids = sqlx::query!(
        r#"SELECT u.ord AS "ord!", m.id
           FROM UNNEST($2::int[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS u(s, h, a, ord)
           JOIN matches m ON m.competition_id = $1 AND m.season = u.s AND m.home_team_id = u.h AND m.away_team_id = u.a
          ORDER BY u.ord"#,
        competition_id,
        &all_seasons,
        &all_homes,
        &all_aways,
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.ord, r.id));
    let mut out = vec![0i64; rows.len()];
    for (ord, id) in ids {
        if let Some(slot) = out.get_mut(ord as usize - 1) {
            *slot = id;
        }
    }
    Ok((counts, out))
}

/// One bookmaker price.
#[derive(Debug, Clone)]
pub struct OddsRow {
    pub match_id: i64,
    pub bookmaker: String,
    pub market: &'static str,
    pub phase: &'static str,
    pub outcome: &'static str,
    pub price: f64,
}

/// Upserts odds (a price that changed is updated; none is ever deleted).
pub async fn upsert_odds(conn: &mut PgConnection, rows: &[OddsRow]) -> Result<UpsertCounts, sqlx::Error> {
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<&OddsRow> = rows
        .iter()
        .filter(|r| r.price > 1.0 && r.price < 10_000.0 && r.bookmaker.len() <= 50)
        .filter(|r| seen.insert((r.match_id, r.bookmaker.as_str(), r.market, r.phase, r.outcome)))
        .collect();
    if rows.is_empty() {
        return Ok(UpsertCounts::default());
    }
    let match_ids: Vec<i64> = rows.iter().map(|r| r.match_id).collect();
    let bookmakers: Vec<&str> = rows.iter().map(|r| r.bookmaker.as_str()).collect();
    let markets: Vec<&str> = rows.iter().map(|r| r.market).collect();
    let phases: Vec<&str> = rows.iter().map(|r| r.phase).collect();
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome).collect();
    let prices: Vec<f64> = rows.iter().map(|r| r.price).collect();
    let written: Vec<bool> = sqlx::query_scalar!(
        r#"INSERT INTO match_odds AS o (match_id, bookmaker, market, phase, outcome, price)
         SELECT m, b, mk, ph, oc, p::numeric(8, 3)
           FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[])
                AS u(m, b, mk, ph, oc, p)
         ON CONFLICT (match_id, bookmaker, market, phase, outcome) DO UPDATE
            SET price = EXCLUDED.price, updated_at = now()
          WHERE o.price IS DISTINCT FROM EXCLUDED.price
         RETURNING (xmax = 0) AS "inserted!""#,
        &match_ids,
        &bookmakers as &[&str],
        &markets as &[&str],
        &phases as &[&str],
        &outcomes as &[&str],
        &prices,
    )
    .fetch_all(&mut *conn)
    .await?;
    let inserted = written.iter().filter(|i| **i).count() as u64;
    let updated = written.len() as u64 - inserted;
    Ok(UpsertCounts { inserted, updated, unchanged: rows.len() as u64 - inserted - updated })
}

/// Increments the competition's data version (see the migration `..._competition_data_version`):
/// called in the transaction that changed its data, only when something changed.
pub async fn bump_data_version(conn: &mut PgConnection, competition_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "UPDATE competitions SET data_version = data_version + 1 WHERE id = $1 RETURNING data_version",
        competition_id
    )
    .fetch_one(&mut *conn)
    .await
}

/// A `job_runs` row, opened at the start of a run: [`crate::jobs::start_run`], for the CSV import
/// (its runs are recorded, not locked: `fp import` runs it too). The ingestion runs under
/// [`crate::jobs::run`].
pub async fn start_run(pool: &PgPool, job: &str) -> Result<i64, sqlx::Error> {
    jobs::start_run(pool, job).await
}

/// Closes a run with its outcome (`succeeded`, `partial`, `failed`), counts and error:
/// [`crate::jobs::finish_run`].
pub async fn finish_run(
    pool: &PgPool,
    run_id: i64,
    outcome: &str,
    counts: &serde_json::Value,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    let outcome = match outcome {
        "succeeded" => Outcome::Succeeded,
        "partial" => Outcome::Partial,
        "skipped" => Outcome::Skipped,
        _ => Outcome::Failed,
    };
    jobs::finish_run(pool, run_id, outcome, counts, error).await
}
