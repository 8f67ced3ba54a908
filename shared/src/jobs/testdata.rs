//! Loads football-data.co.uk match records (read by [`crate::engine::csv_import`]) into the
//! schema, with users and predictions: the data of the jobs' tests, the restore drill's
//! measurements and `examples/` of the job crates. Not a production import path (that is
//! [`crate::import`]): it assumes an empty competition.

use std::{collections::HashMap, path::Path};

use chrono::{Datelike, TimeZone, Utc};
use sqlx::PgPool;

use crate::engine::{MatchRecord, TeamAliases, csv_import};

/// Every `*.csv` of `dir` (e.g. `../shared/data/football-data-co-uk/E0`), oldest season first.
pub fn read_dir(dir: &Path) -> Result<Vec<MatchRecord>, String> {
    let aliases = TeamAliases::builtin();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        out.extend(csv_import::read_csv_file(&f, &aliases).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    out.sort_by_key(|m| m.kickoff());
    Ok(out)
}

/// The season (start year) a match belongs to: August to July (2019-20 ended in July 2020).
pub fn season_of(m: &MatchRecord) -> i32 {
    if m.date.month() >= 8 { m.date.year() } else { m.date.year() - 1 }
}

/// The schema's bookmaker name of a football-data.co.uk column prefix.
pub fn bookmaker_name(prefix: &str) -> String {
    match prefix {
        "PS" | "P" => "pinnacle".into(),
        "B365" => "bet365".into(),
        "Avg" | "BbAv" => "market_average".into(),
        "Max" | "BbMx" => "market_max".into(),
        "WH" => "william_hill".into(),
        other => other.to_lowercase(),
    }
}

/// Inserts `records` as finished matches of competition `code` (created when missing), with
/// their teams and odds. Returns the match ids in the order of `records`.
pub async fn load_matches(pool: &PgPool, code: &str, records: &[MatchRecord]) -> Result<Vec<i64>, sqlx::Error> {
    let competition_id: i64 = sqlx::query_scalar!(
        "INSERT INTO competitions (code, name) VALUES ($1, $1)
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        code
    )
    .fetch_one(pool)
    .await?;
    let mut names: Vec<String> = records.iter().flat_map(|m| [m.home.clone(), m.away.clone()]).collect();
    names.sort();
    names.dedup();
    sqlx::query!("INSERT INTO teams (name) SELECT * FROM UNNEST($1::text[]) ON CONFLICT (name) DO NOTHING", &names)
        .execute(pool)
        .await?;
    let teams: HashMap<String, i64> =
        sqlx::query!("SELECT name, id FROM teams").fetch_all(pool).await?.into_iter().map(|t| (t.name, t.id)).collect();
    let mut ids = Vec::with_capacity(records.len());
    for chunk in records.chunks(1000) {
        let mut home = Vec::new();
        let mut away = Vec::new();
        let mut kickoff = Vec::new();
        let mut season = Vec::new();
        let mut hg = Vec::new();
        let mut ag = Vec::new();
        for m in chunk {
            home.push(teams.get(&m.home).copied().unwrap_or_default());
            away.push(teams.get(&m.away).copied().unwrap_or_default());
            kickoff.push(Utc.from_utc_datetime(&m.kickoff()));
            season.push(season_of(m));
            hg.push(i16::from(m.home_goals));
            ag.push(i16::from(m.away_goals));
        }
        let chunk_ids: Vec<i64> = sqlx::query_scalar!(
            "INSERT INTO matches (competition_id, season, kickoff_at, status, home_team_id, away_team_id, home_goals, away_goals)
             SELECT $1, s, k, 'FINISHED', h, a, hg, ag FROM UNNEST($2::int[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::smallint[], $7::smallint[])
               WITH ORDINALITY AS t(s, k, h, a, hg, ag, n) ORDER BY n RETURNING id",
            competition_id,
            &season,
            &kickoff,
            &home,
            &away,
            &hg,
            &ag,
        )
        .fetch_all(pool)
        .await?;
        ids.extend(chunk_ids);
    }
    // Odds, long format.
    let (mut mid, mut book, mut market, mut phase, mut outcome, mut price) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    let mut push = |id: i64, b: String, mk: &str, ph: &str, oc: &str, p: f64| {
        if p > 1.0 && p < 10_000.0 && seen.insert((id, b.clone(), mk.to_string(), ph.to_string(), oc.to_string())) {
            mid.push(id);
            book.push(b);
            market.push(mk.to_string());
            phase.push(ph.to_string());
            outcome.push(oc.to_string());
            price.push(p);
        }
    };
    for (m, &id) in records.iter().zip(&ids) {
        for (quotes, ph) in [(&m.odds.pre_match, "opening"), (&m.odds.closing, "closing")] {
            for q in quotes {
                let b = bookmaker_name(&q.bookmaker);
                push(id, b.clone(), "1x2", ph, "home", q.odds.home);
                push(id, b.clone(), "1x2", ph, "draw", q.odds.draw);
                push(id, b, "1x2", ph, "away", q.odds.away);
            }
        }
        for (quotes, ph) in [(&m.odds.over_under_pre_match, "opening"), (&m.odds.over_under_closing, "closing")] {
            for q in quotes {
                let b = bookmaker_name(&q.bookmaker);
                push(id, b.clone(), "over_under_2_5", ph, "over", q.odds.over);
                push(id, b, "over_under_2_5", ph, "under", q.odds.under);
            }
        }
    }
    for start in (0..mid.len()).step_by(5000) {
        let end = (start + 5000).min(mid.len());
        sqlx::query!(
            "INSERT INTO match_odds (match_id, bookmaker, market, phase, outcome, price)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[]::numeric[])",
            &mid[start..end] as &[i64],
            &book[start..end] as &[String],
            &market[start..end] as &[String],
            &phase[start..end] as &[String],
            &outcome[start..end] as &[String],
            &price[start..end] as &[f64],
        )
        .execute(pool)
        .await?;
    }
    let sources: Vec<String> =
        records.iter().map(|m| format!("{code}/{}/{}/{}", m.date.format("%Y-%m-%d"), m.home, m.away)).collect();
    sqlx::query!(
        "INSERT INTO match_sources (source, source_id, match_id)
         SELECT 'football-data.co.uk', s, m FROM UNNEST($1::text[], $2::bigint[]) AS t(s, m) ON CONFLICT DO NOTHING",
        &sources,
        &ids,
    )
    .execute(pool)
    .await?;
    Ok(ids)
}

/// A valid argon2id-shaped hash for test users (never verified against a password).
pub const TEST_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

/// Creates `n` users named `<prefix>_<i>` and returns their ids.
pub async fn create_users(pool: &PgPool, prefix: &str, n: usize) -> Result<Vec<i64>, sqlx::Error> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}_{i}")).collect();
    let emails: Vec<String> = names.iter().map(|u| format!("{u}@example.com")).collect();
    sqlx::query_scalar!(
        "INSERT INTO users (username, email, password_hash) SELECT u, e, $3 FROM UNNEST($1::text[], $2::text[]) AS t(u, e) RETURNING id",
        &names,
        &emails,
        TEST_PASSWORD_HASH,
    )
    .fetch_all(pool)
    .await
}

/// One stored prediction to insert.
#[derive(Debug, Clone)]
pub struct NewPrediction {
    pub match_id: i64,
    pub user_id: Option<i64>,
    pub strategy: &'static str,
    pub model_version: String,
    pub p: [f64; 3],
}

/// Inserts predictions (expected goals and markets filled with plausible constants); returns ids.
pub async fn insert_predictions(pool: &PgPool, preds: &[NewPrediction]) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(preds.len());
    for chunk in preds.chunks(2000) {
        let m: Vec<i64> = chunk.iter().map(|p| p.match_id).collect();
        let u: Vec<Option<i64>> = chunk.iter().map(|p| p.user_id).collect();
        let s: Vec<&str> = chunk.iter().map(|p| p.strategy).collect();
        let v: Vec<&str> = chunk.iter().map(|p| p.model_version.as_str()).collect();
        let ph: Vec<f64> = chunk.iter().map(|p| p.p[0]).collect();
        let pd: Vec<f64> = chunk.iter().map(|p| p.p[1]).collect();
        let pa: Vec<f64> = chunk.iter().map(|p| 1.0 - p.p[0] - p.p[1]).collect();
        let out: Vec<i64> = sqlx::query_scalar!(
            "INSERT INTO predictions (match_id, user_id, strategy_type, model_version, p_home, p_draw, p_away,
               expected_goals_home, expected_goals_away, likely_home_goals, likely_away_goals, p_over_2_5, p_btts)
             SELECT m, u, s, v, ph, pd, pa, 1.5, 1.1, 1, 1, 0.5, 0.5
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[])
               WITH ORDINALITY AS t(m, u, s, v, ph, pd, pa, n) ORDER BY n RETURNING id",
            &m,
            &u as &[Option<i64>],
            &s as &[&str],
            &v as &[&str],
            &ph,
            &pd,
            &pa,
        )
        .fetch_all(pool)
        .await?;
        ids.extend(out);
    }
    Ok(ids)
}
