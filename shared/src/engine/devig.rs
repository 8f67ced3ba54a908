//! Bookmaker odds -> probabilities: removing the margin ("overround").
//!
//! - **multiplicative**: `p_i = (1/o_i) / Σ 1/o_j` (what the reference figures use);
//! - **power**: `p_i = (1/o_i)^k` with `k` such that they sum to one (the margin taken mostly
//!   from long shots, the favourite-longshot bias);
//! - **Shin** (1993): the margin explained by a share `z` of insider money,
//!   `p_i = (sqrt(z² + 4(1-z) π_i² / Π) - z) / (2(1-z))` with `π_i = 1/o_i`, `Π = Σ π_j`
//!   and `z` such that they sum to one.
//!
//! Which helps is measured, not assumed: `fp backtest --strategy market` reports the log loss of
//! each method on the opening odds (README, prediction engine).

use serde::{Deserialize, Serialize};

use super::data::Odds1x2;

/// How the margin is removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Devig {
    Multiplicative,
    Power,
    #[default]
    Shin,
}

impl Devig {
    pub const ALL: [Devig; 3] = [Devig::Multiplicative, Devig::Power, Devig::Shin];

    pub fn as_str(self) -> &'static str {
        match self {
            Devig::Multiplicative => "multiplicative",
            Devig::Power => "power",
            Devig::Shin => "shin",
        }
    }

    /// `[home, draw, away]` probabilities summing to one; `None` for odds that are not all
    /// finite and above 1.
    pub fn probabilities(self, odds: &Odds1x2) -> Option<[f64; 3]> {
        let o = [odds.home, odds.draw, odds.away];
        if o.iter().any(|x| !x.is_finite() || *x <= 1.0) {
            return None;
        }
        let pi = o.map(|x| 1.0 / x);
        let total: f64 = pi.iter().sum();
        let p = match self {
            Devig::Multiplicative => pi.map(|x| x / total),
            // A book without a margin (or a negative one, an arbitrage across books) has nothing
            // to remove by these methods: normalise.
            _ if total <= 1.0 => pi.map(|x| x / total),
            Devig::Power => {
                // Σ π_i^k is decreasing in k; it is > 1 at k = 1.
                let sum = |k: f64| pi.iter().map(|x| x.powf(k)).sum::<f64>();
                let k = bisect(|k| sum(k) - 1.0, 1.0, 10.0);
                let p = pi.map(|x| x.powf(k));
                let s: f64 = p.iter().sum();
                p.map(|x| x / s)
            }
            Devig::Shin => {
                let shin =
                    |z: f64| pi.map(|x| ((z * z + 4.0 * (1.0 - z) * x * x / total).sqrt() - z) / (2.0 * (1.0 - z)));
                // At z = 0 the sum is Σπ/√Π... > 1 for a positive margin; it decreases in z.
                let z = bisect(|z| shin(z).iter().sum::<f64>() - 1.0, 0.0, 0.5);
                let p = shin(z);
                let s: f64 = p.iter().sum();
                p.map(|x| x / s)
            }
        };
        p.iter().all(|x| x.is_finite() && *x > 0.0).then_some(p)
    }
}

impl std::str::FromStr for Devig {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Devig::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown method {s:?} (expected multiplicative, power or shin)"))
    }
}

/// A root of the decreasing function `f` on `[lo, hi]` (the nearer end when there is none).
fn bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    if f(lo) <= 0.0 {
        return lo;
    }
    if f(hi) >= 0.0 {
        return hi;
    }
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_sums_to_one_and_keeps_the_order() {
        let o = Odds1x2 { home: 1.5, draw: 4.2, away: 7.0 };
        for m in Devig::ALL {
            let p = m.probabilities(&o).expect("valid odds");
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{m:?} {p:?}");
            assert!(p[0] > p[1] && p[1] > p[2], "{m:?} {p:?}");
        }
        let mul = Devig::Multiplicative.probabilities(&o).expect("valid");
        let pow = Devig::Power.probabilities(&o).expect("valid");
        let shin = Devig::Shin.probabilities(&o).expect("valid");
        // Power and Shin take more of the margin from the long shot than normalisation does.
        assert!(pow[2] < mul[2] && shin[2] < mul[2], "{mul:?} {pow:?} {shin:?}");
        assert!(pow[0] > mul[0] && shin[0] > mul[0]);
    }

    #[test]
    fn shin_matches_a_worked_example() {
        // Fair probabilities (0.6, 0.25, 0.15) priced with Shin's model at z = 0.02:
        // π_i = sqrt(z p_i + (1 - z) p_i²) * Σ_j sqrt(z p_j + (1 - z) p_j²) (Jullien & Salanié).
        let (z, fair) = (0.02, [0.6, 0.25, 0.15]);
        let r: Vec<f64> = fair.iter().map(|p: &f64| (z * p + (1.0 - z) * p * p).sqrt()).collect();
        let s: f64 = r.iter().sum();
        let pi: Vec<f64> = r.iter().map(|x| x * s).collect();
        let o = Odds1x2 { home: 1.0 / pi[0], draw: 1.0 / pi[1], away: 1.0 / pi[2] };
        let p = Devig::Shin.probabilities(&o).expect("valid");
        for i in 0..3 {
            assert!((p[i] - fair[i]).abs() < 1e-9, "{p:?}");
        }
    }

    #[test]
    fn bad_odds_and_no_margin() {
        assert_eq!(Devig::Shin.probabilities(&Odds1x2 { home: 1.0, draw: 3.0, away: 4.0 }), None);
        assert_eq!(Devig::Power.probabilities(&Odds1x2 { home: f64::NAN, draw: 3.0, away: 4.0 }), None);
        let fair = Odds1x2 { home: 2.0, draw: 4.0, away: 4.0 };
        assert_eq!(Devig::Shin.probabilities(&fair), Some([0.5, 0.25, 0.25]));
        assert_eq!("power".parse::<Devig>(), Ok(Devig::Power));
    }
}
