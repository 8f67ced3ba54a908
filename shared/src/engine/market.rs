//! Market ratings: what the betting market thought of each team, learnt from the odds of
//! *past* matches only (never the odds of the match being predicted).
//!
//! For each past match with 1X2 odds (closing first, else pre-match), the market's supremacy is
//! `y = ln(p_home / p_away)` of the normalised implied probabilities; a weighted ridge regression
//! `y ≈ h + r[home] - r[away]` (weights decaying with age) gives each team a market rating `r`.
//! The same is done for the goal expectation with over/under 2.5 odds:
//! `logit(p_over) ≈ t + u[home] + u[away]`. Solved exactly (normal equations, Cholesky).

// Numeric kernels index several parallel arrays at once; index loops read best there.
#![allow(clippy::needless_range_loop)]

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::data::{MatchRecord, days_between};
use super::linalg::{Matrix, cholesky_solve};

/// Settings of the market ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MarketConfig {
    /// Decay per day of a past match's weight.
    pub xi: f64,
    /// Matches older than this are ignored.
    pub window_days: f64,
    /// Ridge penalty (in weighted matches) pulling each rating to the league mean.
    pub ridge: f64,
    /// How many of the weakest rated teams define an unknown (promoted) team's rating.
    pub promoted_reference_teams: usize,
    /// Teams with less total weight than this are not considered rated.
    pub min_weight: f64,
}

impl Default for MarketConfig {
    fn default() -> Self {
        MarketConfig { xi: 0.015, window_days: 400.0, ridge: 0.3, promoted_reference_teams: 3, min_weight: 0.5 }
    }
}

/// A team's market ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketRating {
    pub team: String,
    /// Supremacy rating (log-odds scale of home over away win).
    pub strength: f64,
    /// Goal-expectation rating (logit of over 2.5 goals scale); `None` without over/under odds.
    pub goals: Option<f64>,
    /// Total decayed weight of the team's matches with odds.
    pub weight: f64,
}

/// Fitted market ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketModel {
    /// Sorted by team.
    pub teams: Vec<MarketRating>,
    pub home_advantage: f64,
    pub goals_intercept: Option<f64>,
    /// Strength of an unrated (promoted) team.
    pub unknown_strength: f64,
}

/// Ridge regression on signed team indicators; returns (team effects, intercept).
fn solve(n: usize, rows: &[(usize, usize, f64, f64)], sign_away: f64, ridge: f64) -> Option<(Vec<f64>, f64)> {
    let dim = n + 1;
    let mut a = Matrix::zeros(dim);
    let mut b = vec![0.0; dim];
    for &(h, aw, y, w) in rows {
        let idx = [(h, 1.0), (aw, sign_away), (n, 1.0)];
        for &(i, si) in &idx {
            b[i] += w * si * y;
            for &(j, sj) in &idx {
                a.add(i, j, w * si * sj);
            }
        }
    }
    for i in 0..n {
        a.add(i, i, ridge);
        // Sum-to-zero of the team effects (identifiability when the ridge is tiny).
        for j in 0..n {
            a.add(i, j, 1.0);
        }
    }
    let mut work = Vec::new();
    let x = cholesky_solve(&a, &b, 0.0, 1e-9, &mut work)?;
    Some((x[..n].to_vec(), x[n]))
}

impl MarketModel {
    /// Fits on chronological `matches` known before `as_of`. `None` when no past match has odds.
    pub fn fit(matches: &[&MatchRecord], as_of: NaiveDateTime, config: &MarketConfig) -> Option<MarketModel> {
        let mut names: Vec<&str> = Vec::new();
        let mut sup: Vec<(&str, &str, f64, f64)> = Vec::new();
        let mut tot: Vec<(&str, &str, f64, f64)> = Vec::new();
        for m in matches {
            let age = days_between(m.kickoff(), as_of);
            if age > config.window_days || age < 0.0 {
                continue;
            }
            let w = (-config.xi * age).exp();
            if let Some(o) = m.odds.best_closing().or_else(|| m.odds.best_pre_match()) {
                let p = o.implied_probabilities();
                sup.push((&m.home, &m.away, (p[0] / p[2]).ln(), w));
                names.push(&m.home);
                names.push(&m.away);
            }
            if let Some(ou) = m.odds.best_over_under() {
                let p = ou.implied_over().clamp(0.01, 0.99);
                tot.push((&m.home, &m.away, (p / (1.0 - p)).ln(), w));
            }
        }
        if sup.is_empty() {
            return None;
        }
        names.sort_unstable();
        names.dedup();
        let n = names.len();
        let idx = |s: &str| names.binary_search(&s).ok();
        let rows = |v: &[(&str, &str, f64, f64)]| -> Vec<(usize, usize, f64, f64)> {
            v.iter().filter_map(|(h, a, y, w)| Some((idx(h)?, idx(a)?, *y, *w))).collect()
        };
        let sup_rows = rows(&sup);
        let (strength, home_advantage) = solve(n, &sup_rows, -1.0, config.ridge)?;
        let mut weight = vec![0.0; n];
        for &(h, a, _, w) in &sup_rows {
            weight[h] += w;
            weight[a] += w;
        }
        let tot_rows = rows(&tot);
        let goals = if tot_rows.is_empty() { None } else { solve(n, &tot_rows, 1.0, config.ridge) };
        let mut goals_seen = vec![false; n];
        for &(h, a, _, _) in &tot_rows {
            goals_seen[h] = true;
            goals_seen[a] = true;
        }
        let mut rated: Vec<f64> = (0..n).filter(|&i| weight[i] >= config.min_weight).map(|i| strength[i]).collect();
        rated.sort_by(f64::total_cmp);
        let k = config.promoted_reference_teams.clamp(1, rated.len().max(1));
        let unknown_strength = if rated.is_empty() {
            0.0
        } else {
            rated[..k.min(rated.len())].iter().sum::<f64>() / k.min(rated.len()) as f64
        };
        let teams = names
            .iter()
            .enumerate()
            .filter(|&(i, _)| weight[i] >= config.min_weight)
            .map(|(i, t)| MarketRating {
                team: (*t).to_string(),
                strength: strength[i],
                goals: goals.as_ref().filter(|_| goals_seen[i]).map(|(u, _)| u[i]),
                weight: weight[i],
            })
            .collect();
        Some(MarketModel { teams, home_advantage, goals_intercept: goals.map(|(_, t)| t), unknown_strength })
    }

    /// A team's ratings, if it had odds in the window.
    pub fn rating(&self, team: &str) -> Option<&MarketRating> {
        self.teams.binary_search_by(|t| t.team.as_str().cmp(team)).ok().map(|i| &self.teams[i])
    }

    /// Predicted market supremacy `ln(p_home / p_away)`; unknown teams get the promoted rating.
    pub fn supremacy(&self, home: &str, away: &str) -> f64 {
        let s = |t: &str| self.rating(t).map_or(self.unknown_strength, |r| r.strength);
        self.home_advantage + s(home) - s(away)
    }

    /// Predicted logit of over 2.5 goals, when both teams have over/under ratings.
    pub fn goals_logit(&self, home: &str, away: &str) -> Option<f64> {
        let g = |t: &str| self.rating(t).and_then(|r| r.goals).unwrap_or(0.0);
        self.goals_intercept.map(|t| t + g(home) + g(away))
    }

    /// True when at least one team is rated: a team without a rating of its own then stands at
    /// the promoted teams' rating ([`Self::unknown_strength`]), which is what `ml_model`'s
    /// market head expects of a promoted team.
    pub fn rates_anyone(&self) -> bool {
        !self.teams.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::data::{BookOdds, Odds1x2};
    use chrono::NaiveDate;

    #[test]
    fn recovers_the_market_view_from_past_odds() {
        // Market: A is strong, C weak; odds consistent with r = (0.6, 0, -0.6), h = 0.3.
        let r = [("A", 0.6), ("B", 0.0), ("C", -0.6)];
        let mut hist = Vec::new();
        for round in 0..4 {
            for (i, (h, rh)) in r.iter().enumerate() {
                for (j, (a, ra)) in r.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    let y: f64 = 0.3 + rh - ra;
                    // Choose p_home / p_away = e^y with p_draw = 0.26, 5% margin.
                    let pa = (1.0 - 0.26) / (1.0 + y.exp());
                    let ph = 1.0 - 0.26 - pa;
                    let d = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date")
                        + chrono::Duration::days((round * 6 + i * 3 + j) as i64);
                    let mut m = MatchRecord::new(d, *h, *a, 1, 1);
                    m.odds.closing.push(BookOdds {
                        bookmaker: "PS".into(),
                        odds: Odds1x2 { home: 1.0 / (ph * 1.05), draw: 1.0 / (0.26 * 1.05), away: 1.0 / (pa * 1.05) },
                    });
                    hist.push(m);
                }
            }
        }
        let refs: Vec<&MatchRecord> = hist.iter().collect();
        let as_of = NaiveDate::from_ymd_opt(2024, 3, 1).expect("date").and_hms_opt(0, 0, 0).expect("time");
        let cfg = MarketConfig { ridge: 1e-6, promoted_reference_teams: 1, ..MarketConfig::default() };
        let m = MarketModel::fit(&refs, as_of, &cfg).expect("odds present");
        assert!((m.home_advantage - 0.3).abs() < 1e-6, "{m:?}");
        assert!((m.supremacy("A", "C") - 1.5).abs() < 1e-6);
        assert!(m.rating("A").is_some() && m.rating("B").is_some() && m.rating("Z").is_none());
        assert!(m.rates_anyone());
        // An unknown team is rated like the weakest.
        assert!((m.supremacy("Z", "B") - m.supremacy("C", "B")).abs() < 1e-6);
    }
}
