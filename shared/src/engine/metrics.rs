//! Scores of probabilistic 1X2 forecasts: ranked probability score, log loss, Brier score.

use super::data::Outcome;

/// Ranked probability score of `p = [home, draw, away]` for `outcome`, with outcomes ordered
/// home < draw < away: `((P1 - O1)^2 + (P1 + P2 - O1 - O2)^2) / 2`. 0 is perfect, lower is better.
pub fn rps(p: [f64; 3], outcome: Outcome) -> f64 {
    let mut o = [0.0; 3];
    o[outcome.index()] = 1.0;
    let c1 = p[0] - o[0];
    let c2 = p[0] + p[1] - o[0] - o[1];
    (c1 * c1 + c2 * c2) / 2.0
}

/// Negative natural log of the probability given to what happened (clamped at 1e-15).
pub fn log_loss(p: [f64; 3], outcome: Outcome) -> f64 {
    -p[outcome.index()].max(1e-15).ln()
}

/// Multi-class Brier score: sum over the three outcomes of the squared error (0 to 2).
pub fn brier(p: [f64; 3], outcome: Outcome) -> f64 {
    (0..3)
        .map(|i| {
            let o = if i == outcome.index() { 1.0 } else { 0.0 };
            (p[i] - o) * (p[i] - o)
        })
        .sum()
}

/// Running means of the three scores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreSums {
    pub n: usize,
    pub rps: f64,
    pub log_loss: f64,
    pub brier: f64,
}

impl ScoreSums {
    pub fn add(&mut self, p: [f64; 3], outcome: Outcome) {
        self.n += 1;
        self.rps += rps(p, outcome);
        self.log_loss += log_loss(p, outcome);
        self.brier += brier(p, outcome);
    }

    pub fn mean_rps(&self) -> f64 {
        self.rps / self.n.max(1) as f64
    }

    pub fn mean_log_loss(&self) -> f64 {
        self.log_loss / self.n.max(1) as f64
    }

    pub fn mean_brier(&self) -> f64 {
        self.brier / self.n.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rps_of_known_vectors() {
        // Constantinou and Fenton (2012), match 1: p = (1, 0, 0), home win -> 0.
        assert_eq!(rps([1.0, 0.0, 0.0], Outcome::Home), 0.0);
        // Completely wrong: (1, 0, 0) and an away win -> 1.
        assert_eq!(rps([1.0, 0.0, 0.0], Outcome::Away), 1.0);
        // (0.9, 0.1, 0) home win: ((0.1)^2 + 0) / 2 = 0.005.
        assert!((rps([0.9, 0.1, 0.0], Outcome::Home) - 0.005).abs() < 1e-12);
        // Their table: (0.8, 0.1, 0.1) home -> 0.025; (0.5, 0.25, 0.25) home -> 0.1562.
        assert!((rps([0.8, 0.1, 0.1], Outcome::Home) - 0.025).abs() < 1e-12);
        assert!((rps([0.5, 0.25, 0.25], Outcome::Home) - 0.15625).abs() < 1e-12);
        // (0.35, 0.3, 0.35) vs (0.6, 0.3, 0.1) on a draw: 0.1225 / 0.185.
        assert!((rps([1.0 / 3.0; 3], Outcome::Draw) - 1.0 / 9.0).abs() < 1e-12);
        assert!((rps([0.6, 0.3, 0.1], Outcome::Draw) - (0.36 + 0.01) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn log_loss_and_brier_of_known_vectors() {
        assert!((log_loss([0.5, 0.3, 0.2], Outcome::Draw) - -(0.3f64).ln()).abs() < 1e-12);
        assert!(log_loss([1.0, 0.0, 0.0], Outcome::Away).is_finite());
        assert!((brier([0.5, 0.3, 0.2], Outcome::Home) - (0.25 + 0.09 + 0.04)).abs() < 1e-12);
        let mut s = ScoreSums::default();
        s.add([1.0, 0.0, 0.0], Outcome::Home);
        s.add([1.0, 0.0, 0.0], Outcome::Away);
        assert_eq!(s.n, 2);
        assert!((s.mean_rps() - 0.5).abs() < 1e-12);
    }
}
