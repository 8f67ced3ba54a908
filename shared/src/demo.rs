//! Demo data for a local stack (`ENVIRONMENT=local` only): a league of 20 fictional clubs with
//! three complete past seasons, the current season played up to `now` and its remaining fixtures,
//! bookmaker odds for every match (opening for all, closing for the played ones), and the users
//! `test_user` and `test_admin`. Deterministic (seeded) and idempotent: a second run changes
//! nothing. Enough history for every strategy and for the `train` job (which needs
//! `holdout_matches + 200` finished matches).

use chrono::{DateTime, Datelike, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgPool;

use crate::{auth::password, config::Environment, secret::Secret};

pub const COMPETITION_CODE: &str = "DEMO";
/// Complete seasons before the current one.
pub const PAST_SEASONS: i64 = 3;
/// Match days of the current season played before `now` (of 38).
pub const PLAYED_ROUNDS: i64 = 12;
/// The bookmaker of the demo odds (a name `match_odds` and the engine both know).
const BOOKMAKER: &str = "market_average";
/// The demo bookmaker's margin on the fair probabilities.
const OVERROUND: f64 = 1.05;

/// Clubs of the demo league with an attack and a defence strength for the simulated results.
const CLUBS: [(&str, &str, f64, f64); 20] = [
    ("Northbridge United", "NBU", 1.45, 0.75),
    ("Eastmoor Rovers", "EMR", 1.38, 0.80),
    ("Kingsford Athletic", "KFA", 1.30, 0.85),
    ("Harrow Vale", "HRV", 1.22, 0.90),
    ("Westfield Town", "WFT", 1.15, 0.92),
    ("Ashcombe City", "ASC", 1.10, 0.95),
    ("Riverside Albion", "RVA", 1.06, 0.98),
    ("Lowmarsh Wanderers", "LMW", 1.02, 1.00),
    ("Castleton Forest", "CTF", 1.00, 1.02),
    ("Seaford Harbour", "SFH", 0.98, 1.04),
    ("Millbrook Rangers", "MBR", 0.96, 1.05),
    ("Oakhurst Villa", "OHV", 0.94, 1.06),
    ("Redcliffe Borough", "RCB", 0.92, 1.08),
    ("Stonegate County", "SGC", 0.90, 1.10),
    ("Thornbury Park", "TBP", 0.88, 1.12),
    ("Fenwick Celtic", "FWC", 0.86, 1.14),
    ("Glenholme Town", "GHT", 0.84, 1.16),
    ("Brackenridge FC", "BRF", 0.82, 1.18),
    ("Dunmore Athletic", "DMA", 0.80, 1.22),
    ("Pelham Wednesday", "PLW", 0.78, 1.25),
];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo data is only loaded when ENVIRONMENT=local (here: {0})")]
    NotLocal(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Hash(#[from] password::HashError),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    pub teams: u64,
    pub matches: u64,
    pub odds: u64,
    pub users: u64,
}

/// Odds rows of one season, as columns for one `UNNEST` insert.
#[derive(Default)]
struct OddsColumns {
    match_id: Vec<i64>,
    market: Vec<&'static str>,
    phase: Vec<&'static str>,
    outcome: Vec<&'static str>,
    price: Vec<f64>,
}

impl OddsColumns {
    fn push(&mut self, match_id: i64, market: &'static str, phase: &'static str, outcome: &'static str, p: f64) {
        self.match_id.push(match_id);
        self.market.push(market);
        self.phase.push(phase);
        self.outcome.push(outcome);
        // decimal odds with the margin, to the 3 decimals of the column, never below 1.01
        self.price.push(((1.0 / (p * OVERROUND)).max(1.01) * 1000.0).round() / 1000.0);
    }
}

/// Loads the demo league and users. The current season has played `PLAYED_ROUNDS` weekly match
/// days before `now`; the past seasons start 52, 104 and 156 weeks before it.
pub async fn seed(pool: &PgPool, environment: Environment, now: DateTime<Utc>) -> Result<Seeded, DemoError> {
    seed_with_progress(pool, environment, now, &crate::progress::Silent).await
}

/// [`seed`], reporting each match day written to `progress`.
pub async fn seed_with_progress(
    pool: &PgPool,
    environment: Environment,
    now: DateTime<Utc>,
    progress: &dyn crate::progress::Progress,
) -> Result<Seeded, DemoError> {
    if environment != Environment::Local {
        return Err(DemoError::NotLocal(environment.as_str()));
    }
    let mut tx = pool.begin().await?;
    let mut seeded = Seeded::default();
    let competition_id: i64 = sqlx::query_scalar!(
        "INSERT INTO competitions (code, name, area) VALUES ($1, 'Demo League', 'Local')
         ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code RETURNING id",
        COMPETITION_CODE
    )
    .fetch_one(&mut *tx)
    .await?;

    let mut team_ids = Vec::new();
    for (name, tla, _, _) in CLUBS {
        let inserted = sqlx::query!(
            "INSERT INTO teams (name, short_name, tla) VALUES ($1, $1, $2) ON CONFLICT (name) DO NOTHING",
            name,
            tla
        )
        .execute(&mut *tx)
        .await?;
        seeded.teams += inserted.rows_affected();
        let id: i64 = sqlx::query_scalar!("SELECT id FROM teams WHERE name = $1", name).fetch_one(&mut *tx).await?;
        team_ids.push(id);
    }

    // the first match day at 15:00 such that exactly PLAYED_ROUNDS weekly rounds are before `now`
    // (the next one is tomorrow), whatever the time of day
    let current_start = (now - Duration::weeks(PLAYED_ROUNDS) + Duration::days(1))
        .date_naive()
        .and_hms_opt(15, 0, 0)
        .expect("valid time")
        .and_utc();
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let rounds = double_round_robin(CLUBS.len());
    progress.stage("seed-demo", (PAST_SEASONS as u64 + 1) * rounds.len() as u64);
    let mut days_done = 0;
    for seasons_ago in (0..=PAST_SEASONS).rev() {
        let first_kickoff = current_start - Duration::weeks(52 * seasons_ago);
        let season = if first_kickoff.month() >= 7 { first_kickoff.year() } else { first_kickoff.year() - 1 };
        // each season the clubs' strengths drift a little
        let form: Vec<(f64, f64)> =
            CLUBS.iter().map(|_| (rng.random_range(0.92..1.08), rng.random_range(0.92..1.08))).collect();
        let mut odds = OddsColumns::default();
        for (round, pairs) in rounds.iter().enumerate() {
            let kickoff = first_kickoff + Duration::weeks(round as i64);
            days_done += 1;
            progress.set(days_done, &format!("season {season}/{} match day {}", (season + 1) % 100, round + 1));
            for &(h, a) in pairs {
                let (lambda_home, lambda_away) = expected_goals(h, a, &form);
                let (hg, ag) = (poisson(&mut rng, lambda_home), poisson(&mut rng, lambda_away));
                let played = kickoff < now;
                let (status, hg, ag) = if played { ("FINISHED", Some(hg), Some(ag)) } else { ("TIMED", None, None) };
                let source_id = format!("demo-{season}-{}-{}", CLUBS[h].1, CLUBS[a].1);
                let match_id: Option<i64> = sqlx::query_scalar!(
                    "INSERT INTO matches (competition_id, season, matchday, kickoff_at, status, home_team_id, away_team_id, home_goals, away_goals)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (competition_id, season, home_team_id, away_team_id) DO NOTHING RETURNING id",
                    competition_id,
                    season,
                    round as i32 + 1,
                    kickoff,
                    status,
                    team_ids[h],
                    team_ids[a],
                    hg,
                    ag,
                )
                .fetch_optional(&mut *tx)
                .await?;
                let Some(match_id) = match_id else { continue };
                seeded.matches += 1;
                sqlx::query!(
                    "INSERT INTO match_sources (source, source_id, match_id) VALUES ('demo', $1, $2) ON CONFLICT DO NOTHING",
                    source_id,
                    match_id
                )
                .execute(&mut *tx)
                .await?;
                // opening odds: the fair probabilities seen through some noise; closing (played
                // matches only): the fair probabilities themselves
                let fair = outcome_probabilities(lambda_home, lambda_away);
                let noise: Vec<f64> = (0..3).map(|_| rng.random_range(0.9..1.1)).collect();
                let opening = normalised([fair[0] * noise[0], fair[1] * noise[1], fair[2] * noise[2]]);
                let mut phases = vec![("opening", opening, fair[3] * noise[0].sqrt())];
                if played {
                    phases.push(("closing", [fair[0], fair[1], fair[2]], fair[3]));
                }
                for (phase, p, p_over) in phases {
                    for (outcome, q) in ["home", "draw", "away"].into_iter().zip(p) {
                        odds.push(match_id, "1x2", phase, outcome, q);
                    }
                    let p_over = p_over.clamp(0.05, 0.95);
                    odds.push(match_id, "over_under_2_5", phase, "over", p_over);
                    odds.push(match_id, "over_under_2_5", phase, "under", 1.0 - p_over);
                }
            }
        }
        let inserted = sqlx::query!(
            "INSERT INTO match_odds (match_id, bookmaker, market, phase, outcome, price)
             SELECT m, $1, k, ph, o, p::numeric(8, 3)
             FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::float8[]) AS t(m, k, ph, o, p)
             ON CONFLICT DO NOTHING",
            BOOKMAKER,
            &odds.match_id,
            &odds.market as &[&str],
            &odds.phase as &[&str],
            &odds.outcome as &[&str],
            &odds.price,
        )
        .execute(&mut *tx)
        .await?;
        seeded.odds += inserted.rows_affected();
    }

    progress.finish();
    for (username, role) in [("test_user", "user"), ("test_admin", "admin")] {
        let exists: bool =
            sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM users WHERE username = $1) AS "exists!""#, username)
                .fetch_one(&mut *tx)
                .await?;
        if !exists {
            let hash = password::hash(&Secret::new("test_password"))?;
            sqlx::query!("INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)", username, hash, role)
                .execute(&mut *tx)
                .await?;
            seeded.users += 1;
        }
    }
    tx.commit().await?;
    Ok(seeded)
}

/// Rounds of a double round robin (circle method): each pairing once at each ground.
fn double_round_robin(n: usize) -> Vec<Vec<(usize, usize)>> {
    let mut ring: Vec<usize> = (0..n).collect();
    let mut first = Vec::new();
    for round in 0..n - 1 {
        let pairs = (0..n / 2)
            .map(|i| {
                let (a, b) = (ring[i], ring[n - 1 - i]);
                if (round + i) % 2 == 0 { (a, b) } else { (b, a) }
            })
            .collect::<Vec<_>>();
        first.push(pairs);
        ring[1..].rotate_right(1);
    }
    let second: Vec<_> = first.iter().map(|r| r.iter().map(|&(h, a)| (a, h)).collect()).collect();
    first.into_iter().chain(second).collect()
}

/// The simulation's expected goals of a match (home advantage about 0.3 goals).
fn expected_goals(home: usize, away: usize, form: &[(f64, f64)]) -> (f64, f64) {
    let (_, _, att_h, def_h) = CLUBS[home];
    let (_, _, att_a, def_a) = CLUBS[away];
    (1.50 * att_h * form[home].0 * def_a * form[away].1, 1.18 * att_a * form[away].0 * def_h * form[home].1)
}

/// Home, draw, away and over 2.5 goals probabilities of independent Poisson scores.
fn outcome_probabilities(lambda_home: f64, lambda_away: f64) -> [f64; 4] {
    let pmf = |lambda: f64| -> Vec<f64> {
        let mut p = vec![(-lambda).exp()];
        for k in 1..=10 {
            p.push(p[k - 1] * lambda / k as f64);
        }
        p
    };
    let (ph, pa) = (pmf(lambda_home), pmf(lambda_away));
    let mut out = [0.0; 4];
    for (i, x) in ph.iter().enumerate() {
        for (j, y) in pa.iter().enumerate() {
            let p = x * y;
            out[if i > j {
                0
            } else if i == j {
                1
            } else {
                2
            }] += p;
            if i + j > 2 {
                out[3] += p;
            }
        }
    }
    let [h, d, a] = normalised([out[0], out[1], out[2]]);
    [h, d, a, out[3]]
}

fn normalised(p: [f64; 3]) -> [f64; 3] {
    let sum: f64 = p.iter().sum();
    p.map(|x| x / sum)
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> i16 {
    let limit = (-lambda).exp();
    let (mut k, mut p) = (0i16, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= limit || k >= 9 {
            return k;
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_pairing_once_at_each_ground_and_every_team_once_per_round() {
        let rounds = double_round_robin(8);
        assert_eq!(rounds.len(), 14);
        let mut seen = HashSet::new();
        for round in &rounds {
            let mut teams = HashSet::new();
            for &(h, a) in round {
                assert!(teams.insert(h) && teams.insert(a));
                assert!(seen.insert((h, a)), "pairing twice: {h}-{a}");
            }
        }
        assert_eq!(seen.len(), 56);
    }

    #[test]
    fn a_twenty_club_season_has_38_rounds_of_10_matches() {
        let rounds = double_round_robin(CLUBS.len());
        assert_eq!(rounds.len(), 38);
        assert!(rounds.iter().all(|r| r.len() == 10));
        let pairings: HashSet<_> = rounds.iter().flatten().collect();
        assert_eq!(pairings.len(), 380);
    }

    #[test]
    fn fair_probabilities_sum_to_one_and_favour_the_stronger_home_side() {
        let form = vec![(1.0, 1.0); CLUBS.len()];
        let (lh, la) = expected_goals(0, 19, &form);
        let [h, d, a, over] = outcome_probabilities(lh, la);
        assert!((h + d + a - 1.0).abs() < 1e-12);
        assert!(h > 0.6 && a < 0.15, "{h} {d} {a}");
        assert!(over > 0.5 && over < 0.8, "{over}");
        let (lh, la) = expected_goals(19, 0, &form);
        let [h, _, a, _] = outcome_probabilities(lh, la);
        assert!(a > h);
    }

    #[test]
    fn odds_carry_the_margin_and_fit_the_column() {
        let mut odds = OddsColumns::default();
        odds.push(1, "1x2", "closing", "home", 0.5);
        odds.push(1, "1x2", "closing", "draw", 0.99);
        assert_eq!(odds.price, vec![1.905, 1.01]);
    }
}
