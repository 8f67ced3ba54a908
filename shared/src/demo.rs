//! Demo data for a local stack (`ENVIRONMENT=local` only): a small league with a played first half
//! and upcoming fixtures, and the users `test_user` and `test_admin`. Idempotent: a second run
//! changes nothing.

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgPool;

use crate::{auth::password, config::Environment, secret::Secret};

pub const COMPETITION_CODE: &str = "DEMO";

/// Clubs of the demo league with an attack and a defence strength for the simulated results.
const CLUBS: [(&str, &str, f64, f64); 8] = [
    ("Northbridge United", "NBU", 1.45, 0.80),
    ("Eastmoor Rovers", "EMR", 1.30, 0.95),
    ("Kingsford Athletic", "KFA", 1.20, 1.00),
    ("Harrow Vale", "HRV", 1.10, 1.05),
    ("Westfield Town", "WFT", 1.00, 1.10),
    ("Ashcombe City", "ASC", 0.95, 1.15),
    ("Riverside Albion", "RVA", 0.90, 1.25),
    ("Lowmarsh Wanderers", "LMW", 0.80, 1.35),
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
    pub users: u64,
}

/// Loads the demo league and users. Kick-offs are placed around `now`: ten matchdays played,
/// four to come.
pub async fn seed(pool: &PgPool, environment: Environment, now: DateTime<Utc>) -> Result<Seeded, DemoError> {
    if environment != Environment::Local {
        return Err(DemoError::NotLocal(environment.as_str()));
    }
    let mut tx = pool.begin().await?;
    let mut seeded = Seeded::default();
    let competition_id: i64 = sqlx::query_scalar(
        "INSERT INTO competitions (code, name, area) VALUES ($1, 'Demo League', 'Local')
         ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code RETURNING id",
    )
    .bind(COMPETITION_CODE)
    .fetch_one(&mut *tx)
    .await?;

    let mut team_ids = Vec::new();
    for (name, tla, _, _) in CLUBS {
        let inserted =
            sqlx::query("INSERT INTO teams (name, short_name, tla) VALUES ($1, $1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(tla)
                .execute(&mut *tx)
                .await?;
        seeded.teams += inserted.rows_affected();
        let id: i64 = sqlx::query_scalar("SELECT id FROM teams WHERE name = $1").bind(name).fetch_one(&mut *tx).await?;
        team_ids.push(id);
    }

    let season = 2026;
    let first_kickoff = (now - Duration::weeks(10)).date_naive().and_hms_opt(15, 0, 0).expect("valid time").and_utc();
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    for (round, pairs) in double_round_robin(CLUBS.len()).into_iter().enumerate() {
        let kickoff = first_kickoff + Duration::weeks(round as i64);
        for (h, a) in pairs {
            let played = kickoff < now;
            let (hg, ag) = simulate(&mut rng, h, a);
            let (status, hg, ag) = if played { ("FINISHED", Some(hg), Some(ag)) } else { ("TIMED", None, None) };
            let source_id = format!("demo-{season}-{}-{}", CLUBS[h].1, CLUBS[a].1);
            let match_id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO matches (competition_id, season, matchday, kickoff_at, status, home_team_id, away_team_id, home_goals, away_goals)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (competition_id, season, home_team_id, away_team_id) DO NOTHING RETURNING id",
            )
            .bind(competition_id)
            .bind(season)
            .bind(round as i32 + 1)
            .bind(kickoff)
            .bind(status)
            .bind(team_ids[h])
            .bind(team_ids[a])
            .bind(hg)
            .bind(ag)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(match_id) = match_id {
                seeded.matches += 1;
                sqlx::query("INSERT INTO match_sources (source, source_id, match_id) VALUES ('demo', $1, $2) ON CONFLICT DO NOTHING")
                    .bind(source_id)
                    .bind(match_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }

    for (username, role) in [("test_user", "user"), ("test_admin", "admin")] {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE username = $1)")
            .bind(username)
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            let hash = password::hash(&Secret::new("test_password"))?;
            sqlx::query("INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)")
                .bind(username)
                .bind(hash)
                .bind(role)
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

fn simulate(rng: &mut ChaCha8Rng, home: usize, away: usize) -> (i16, i16) {
    let (_, _, att_h, def_h) = CLUBS[home];
    let (_, _, att_a, def_a) = CLUBS[away];
    (poisson(rng, 1.5 * att_h * def_a * 1.1), poisson(rng, 1.2 * att_a * def_h))
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
}
