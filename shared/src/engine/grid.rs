//! Score-probability grids: every strategy's outputs come from one of these.

use serde::{Deserialize, Serialize};

/// Default size of a grid: scores 0..=10 for each side.
pub const DEFAULT_MAX_GOALS: usize = 10;

/// What every strategy returns for a match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub p_home: f64,
    pub p_draw: f64,
    pub p_away: f64,
    pub expected_goals_home: f64,
    pub expected_goals_away: f64,
    /// (home, away) goals of the single most likely score.
    pub most_likely_score: (u8, u8),
    /// Probability of three goals or more.
    pub over_2_5: f64,
    /// Probability that both teams score.
    pub btts: f64,
    pub model_version: String,
}

impl Prediction {
    /// `[p_home, p_draw, p_away]`.
    pub fn probabilities(&self) -> [f64; 3] {
        [self.p_home, self.p_draw, self.p_away]
    }
}

/// Joint probabilities of scores 0..=max_goals for each side, normalised to sum to one.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreGrid {
    size: usize,
    /// Row-major: `p[h * size + a]`.
    p: Vec<f64>,
}

/// Poisson probabilities of 0..size goals.
fn poisson_pmf(lambda: f64, size: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(size);
    let mut term = (-lambda).exp();
    for k in 0..size {
        out.push(term);
        term *= lambda / (k as f64 + 1.0);
    }
    out
}

impl ScoreGrid {
    /// Independent Poisson goals with means `lambda_home`, `lambda_away`, with Dixon and Coles's
    /// low-score correction `rho` (0 for plain Poisson).
    pub fn dixon_coles(lambda_home: f64, lambda_away: f64, rho: f64, max_goals: usize) -> Self {
        let size = max_goals + 1;
        let ph = poisson_pmf(lambda_home, size);
        let pa = poisson_pmf(lambda_away, size);
        let mut p = Vec::with_capacity(size * size);
        for &x in &ph {
            for &y in &pa {
                p.push(x * y);
            }
        }
        if size >= 2 {
            let tau = [
                1.0 - rho * lambda_home * lambda_away, // 0-0
                1.0 + rho * lambda_home,               // 0-1
                1.0 + rho * lambda_away,               // 1-0
                1.0 - rho,                             // 1-1
            ];
            p[0] *= tau[0].max(0.0);
            p[1] *= tau[1].max(0.0);
            p[size] *= tau[2].max(0.0);
            p[size + 1] *= tau[3].max(0.0);
        }
        let mut g = ScoreGrid { size, p };
        g.normalise();
        g
    }

    fn normalise(&mut self) {
        let s: f64 = self.p.iter().sum();
        if s > 0.0 && s.is_finite() {
            self.p.iter_mut().for_each(|x| *x /= s);
        }
    }

    /// Probability of the score `home`-`away` (0 outside the grid).
    pub fn prob(&self, home: usize, away: usize) -> f64 {
        if home < self.size && away < self.size { self.p[home * self.size + away] } else { 0.0 }
    }

    /// The largest number of goals per side the grid holds.
    pub fn max_goals(&self) -> usize {
        self.size - 1
    }

    /// `[p_home, p_draw, p_away]`, summing to one.
    pub fn outcome_probabilities(&self) -> [f64; 3] {
        let mut o = [0.0; 3];
        for h in 0..self.size {
            for a in 0..self.size {
                o[(h < a) as usize * 2 + (h == a) as usize] += self.p[h * self.size + a];
            }
        }
        o
    }

    /// Rescales the home-win, draw and away-win regions so the grid's 1X2 probabilities become
    /// `target` (which must be positive and sum to one), keeping the shape within each region.
    pub fn rescale_outcomes(&mut self, target: [f64; 3]) {
        let cur = self.outcome_probabilities();
        let f: Vec<f64> = (0..3).map(|i| if cur[i] > 0.0 { target[i] / cur[i] } else { 0.0 }).collect();
        for h in 0..self.size {
            for a in 0..self.size {
                self.p[h * self.size + a] *= f[(h < a) as usize * 2 + (h == a) as usize];
            }
        }
        self.normalise();
    }

    /// Expected goals (home, away).
    pub fn expected_goals(&self) -> (f64, f64) {
        let (mut eh, mut ea) = (0.0, 0.0);
        for h in 0..self.size {
            for a in 0..self.size {
                let q = self.p[h * self.size + a];
                eh += h as f64 * q;
                ea += a as f64 * q;
            }
        }
        (eh, ea)
    }

    /// The most likely score (home, away); the lower total wins ties.
    pub fn most_likely_score(&self) -> (u8, u8) {
        let mut best = (0usize, 0usize);
        let mut best_p = -1.0;
        for h in 0..self.size {
            for a in 0..self.size {
                let q = self.p[h * self.size + a];
                if q > best_p {
                    best_p = q;
                    best = (h, a);
                }
            }
        }
        (best.0.min(255) as u8, best.1.min(255) as u8)
    }

    /// Probability of more than `line` total goals.
    pub fn over(&self, line: f64) -> f64 {
        let mut s = 0.0;
        for h in 0..self.size {
            for a in 0..self.size {
                if (h + a) as f64 > line {
                    s += self.p[h * self.size + a];
                }
            }
        }
        s
    }

    /// Probability that both teams score.
    pub fn btts(&self) -> f64 {
        let mut s = 0.0;
        for h in 1..self.size {
            for a in 1..self.size {
                s += self.p[h * self.size + a];
            }
        }
        s
    }

    /// Every output of a [`Prediction`], from this grid.
    pub fn to_prediction(&self, model_version: &str) -> Prediction {
        let [p_home, p_draw, p_away] = self.outcome_probabilities();
        let (eh, ea) = self.expected_goals();
        Prediction {
            p_home,
            p_draw,
            p_away,
            expected_goals_home: eh,
            expected_goals_away: ea,
            most_likely_score: self.most_likely_score(),
            over_2_5: self.over(2.5),
            btts: self.btts(),
            model_version: model_version.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_grid_matches_closed_forms() {
        let g = ScoreGrid::dixon_coles(1.5, 1.1, 0.0, 15);
        let p = g.outcome_probabilities();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let (eh, ea) = g.expected_goals();
        assert!((eh - 1.5).abs() < 1e-6 && (ea - 1.1).abs() < 1e-6);
        // P(0-0) = exp(-2.6); BTTS = (1 - e^-1.5)(1 - e^-1.1); under 2.5 from Poisson(2.6).
        assert!((g.prob(0, 0) - (-2.6f64).exp()).abs() < 1e-9);
        let btts = (1.0 - (-1.5f64).exp()) * (1.0 - (-1.1f64).exp());
        assert!((g.btts() - btts).abs() < 1e-9);
        let l: f64 = 2.6;
        let under = (-l).exp() * (1.0 + l + l * l / 2.0);
        assert!((g.over(2.5) - (1.0 - under)).abs() < 1e-9);
        assert_eq!(g.most_likely_score(), (1, 1));
    }

    #[test]
    fn rho_moves_mass_to_draws_and_rescale_hits_target() {
        let plain = ScoreGrid::dixon_coles(1.3, 1.0, 0.0, 10);
        let dc = ScoreGrid::dixon_coles(1.3, 1.0, -0.1, 10);
        assert!(dc.outcome_probabilities()[1] > plain.outcome_probabilities()[1]);
        let mut g = plain.clone();
        g.rescale_outcomes([0.5, 0.3, 0.2]);
        let p = g.outcome_probabilities();
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[1] - 0.3).abs() < 1e-12);
        let pred = g.to_prediction("v");
        assert!((pred.p_home + pred.p_draw + pred.p_away - 1.0).abs() < 1e-12);
    }
}
