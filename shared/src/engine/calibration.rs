//! Calibration: is a 60% really 60%? Reliability bins per outcome, the expected calibration
//! error, and a paired bootstrap of the difference of two forecasters' mean scores. Used by
//! `fp backtest --report` and by `GET /api/admin/stats` (from settled predictions).

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::data::Outcome;

/// The forecasts that fell in one probability band, for one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReliabilityBin {
    /// The band `[lower, upper)` of the forecast probability.
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    /// Mean forecast probability in the band.
    pub mean_predicted: f64,
    /// How often the outcome happened.
    pub observed: f64,
}

/// Reliability of one outcome's forecasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutcomeCalibration {
    /// Non-empty bands only, in order.
    pub bins: Vec<ReliabilityBin>,
    /// Expected calibration error: Σ count/N × |observed - mean_predicted|.
    pub ece: f64,
}

/// Calibration of a set of forecasts: home, draw and away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Calibration {
    pub forecasts: u64,
    pub home: OutcomeCalibration,
    pub draw: OutcomeCalibration,
    pub away: OutcomeCalibration,
    /// Mean of the three outcomes' expected calibration errors.
    pub ece: f64,
}

impl Calibration {
    /// Bins `[p_home, p_draw, p_away]` forecasts into `bins` equal-width bands per outcome.
    pub fn of(forecasts: impl IntoIterator<Item = ([f64; 3], Outcome)>, bins: usize) -> Calibration {
        let bins = bins.max(1);
        let mut sums = Vec::new();
        let mut n = 0u64;
        for (p, outcome) in forecasts {
            if p.iter().any(|x| !x.is_finite()) {
                continue;
            }
            n += 1;
            for (k, o) in [Outcome::Home, Outcome::Draw, Outcome::Away].into_iter().enumerate() {
                let x = p[k].clamp(0.0, 1.0);
                let b = ((x * bins as f64) as usize).min(bins - 1);
                sums.push((o, b, 1, x, f64::from(u8::from(outcome == o))));
            }
        }
        Self::from_sums(n, bins, sums)
    }

    /// From bins counted elsewhere (SQL): `(outcome, bin index, count, Σ predicted, Σ happened)`
    /// with `bins` equal-width bands; `forecasts` is the number of forecasts binned.
    pub fn from_sums(
        forecasts: u64,
        bins: usize,
        sums: impl IntoIterator<Item = (Outcome, usize, u64, f64, f64)>,
    ) -> Self {
        let bins = bins.max(1);
        let mut acc = vec![vec![(0u64, 0.0f64, 0.0f64); bins]; 3];
        for (o, b, c, sp, so) in sums {
            let a = &mut acc[o.index()][b.min(bins - 1)];
            a.0 += c;
            a.1 += sp;
            a.2 += so;
        }
        let n = forecasts.max(1) as f64;
        let outcome = |k: usize| {
            let mut ece = 0.0;
            let out = acc[k]
                .iter()
                .enumerate()
                .filter(|(_, a)| a.0 > 0)
                .map(|(b, &(c, sp, so))| {
                    let (mp, ob) = (sp / c as f64, so / c as f64);
                    ece += c as f64 / n * (ob - mp).abs();
                    ReliabilityBin {
                        lower: b as f64 / bins as f64,
                        upper: (b + 1) as f64 / bins as f64,
                        count: c,
                        mean_predicted: mp,
                        observed: ob,
                    }
                })
                .collect();
            OutcomeCalibration { bins: out, ece }
        };
        let (home, draw, away) = (outcome(0), outcome(1), outcome(2));
        let ece = (home.ece + draw.ece + away.ece) / 3.0;
        Calibration { forecasts, home, draw, away, ece }
    }

    pub fn outcome(&self, o: Outcome) -> &OutcomeCalibration {
        match o {
            Outcome::Home => &self.home,
            Outcome::Draw => &self.draw,
            Outcome::Away => &self.away,
        }
    }
}

/// Mean of `a - b` over paired observations with a percentile bootstrap interval (matches drawn
/// with replacement, the same draw for both), seeded so a report is reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
    pub level: f64,
    pub resamples: usize,
}

pub fn paired_bootstrap(a: &[f64], b: &[f64], resamples: usize, level: f64, seed: u64) -> Option<PairedDifference> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len();
    let mean = d.iter().sum::<f64>() / n as f64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> =
        (0..resamples.max(1)).map(|_| (0..n).map(|_| d[rng.random_range(0..n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let q = |p: f64| means[((p * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    let tail = (1.0 - level) / 2.0;
    Some(PairedDifference { mean, lower: q(tail), upper: q(1.0 - tail), level, resamples: means.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfectly_calibrated_and_overconfident_forecasts() {
        // 40% home forecasts: 4 of 10 home wins -> calibrated in that band.
        let mut f = Vec::new();
        for i in 0..10 {
            let o = if i < 4 {
                Outcome::Home
            } else if i < 7 {
                Outcome::Draw
            } else {
                Outcome::Away
            };
            f.push(([0.4, 0.3, 0.3], o));
        }
        let c = Calibration::of(f.clone(), 10);
        assert_eq!(c.forecasts, 10);
        assert_eq!(c.home.bins.len(), 1);
        let b = c.home.bins[0];
        assert_eq!((b.lower, b.upper, b.count), (0.4, 0.5, 10));
        assert!((b.observed - 0.4).abs() < 1e-12 && c.ece < 1e-12, "{c:?}");
        // The same results forecast at 90% home: far off.
        let over: Vec<_> = f.iter().map(|(_, o)| ([0.9, 0.05, 0.05], *o)).collect();
        let c = Calibration::of(over, 10);
        assert!((c.home.ece - 0.5).abs() < 1e-12, "{c:?}");
        assert!(c.ece > 0.2);
    }

    #[test]
    fn bootstrap_interval_contains_the_mean_and_is_reproducible() {
        let a: Vec<f64> = (0..200).map(|i| 0.2 + 0.001 * (i % 7) as f64).collect();
        let b: Vec<f64> = (0..200).map(|i| 0.21 + 0.002 * (i % 5) as f64).collect();
        let d = paired_bootstrap(&a, &b, 500, 0.95, 1).expect("paired");
        assert!(d.lower <= d.mean && d.mean <= d.upper && d.upper < 0.0, "{d:?}");
        assert_eq!(Some(d), paired_bootstrap(&a, &b, 500, 0.95, 1));
        assert!(paired_bootstrap(&a, &b[..10], 500, 0.95, 1).is_none());
    }
}
