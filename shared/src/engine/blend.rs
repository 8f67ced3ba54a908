//! The `market` strategy's combination of a model with the match's own pre-kick-off odds, in
//! logit space (Benter 1994):
//!
//! `p_i ∝ exp(α ln m_i + β ln q_i + γ_i)`, `i ∈ {home, draw, away}`, `γ_away = 0`,
//!
//! where `m` is the model's probabilities and `q` the bookmaker's opening odds turned into
//! probabilities ([`Devig`]). `α`, `β`, `γ` are fitted by weighted maximum likelihood (Newton,
//! [`super::optim`]) on rows whose model probabilities are out of sample (the `ml_model`
//! training's out-of-fold predictions), so they come from earlier seasons only. The method that
//! removes the margin is chosen on the same rows: the one with the lowest log loss of the blend.
//! Closing odds are never used: they exist only once the match has started.

// Numeric kernels index several parallel arrays at once; index loops read best there.
#![allow(clippy::needless_range_loop)]

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::data::{MatchRecord, Odds1x2, Outcome};
use super::devig::Devig;
use super::error::EngineError;
use super::grid::Prediction;
use super::linalg::Matrix;
use super::ml_model::{MlArtifact, MlModel};
use super::optim::{NewtonOptions, Objective, minimise};

/// Fitted combination weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketBlend {
    pub devig: Devig,
    /// α: weight of the model's log-probabilities.
    pub model_weight: f64,
    /// β: weight of the market's log-probabilities.
    pub market_weight: f64,
    /// γ home, γ draw (away is 0).
    pub intercepts: [f64; 2],
    /// Rows it was fitted on (0 for the built-in prior).
    pub rows: usize,
    /// Mean log loss on those rows: the blend, the market alone (same method), the model alone.
    pub log_loss: f64,
    pub market_log_loss: f64,
    pub model_log_loss: f64,
}

/// One fitting row: the model's out-of-sample probabilities, the opening odds, the result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlendRow {
    pub model: [f64; 3],
    pub odds: Odds1x2,
    pub outcome: Outcome,
    pub weight: f64,
}

fn ln3(p: [f64; 3]) -> [f64; 3] {
    p.map(|x| x.clamp(1e-9, 1.0).ln())
}

fn softmax(s: [f64; 3]) -> [f64; 3] {
    let m = s[0].max(s[1]).max(s[2]);
    let e = s.map(|x| (x - m).exp());
    let t: f64 = e.iter().sum();
    e.map(|x| x / t)
}

impl MarketBlend {
    /// The weights used when an artifact carries none (too few training rows with odds): close
    /// to what the EPL and the four other leagues give (README, prediction engine).
    pub fn prior() -> Self {
        MarketBlend {
            devig: Devig::Shin,
            model_weight: 0.25,
            market_weight: 0.8,
            intercepts: [0.0, 0.0],
            rows: 0,
            log_loss: f64::NAN,
            market_log_loss: f64::NAN,
            model_log_loss: f64::NAN,
        }
    }

    /// The market's probabilities for `odds` by this blend's method.
    pub fn market_probabilities(&self, odds: &Odds1x2) -> Option<[f64; 3]> {
        self.devig.probabilities(odds)
    }

    fn scores(theta: &[f64], m: &[f64; 3], q: &[f64; 3]) -> [f64; 3] {
        [
            theta[0] * m[0] + theta[1] * q[0] + theta[2],
            theta[0] * m[1] + theta[1] * q[1] + theta[3],
            theta[0] * m[2] + theta[1] * q[2],
        ]
    }

    /// Combines model probabilities with the market's (already without margin).
    pub fn combine(&self, model: [f64; 3], market: [f64; 3]) -> [f64; 3] {
        let theta = [self.model_weight, self.market_weight, self.intercepts[0], self.intercepts[1]];
        softmax(Self::scores(&theta, &ln3(model), &ln3(market)))
    }

    /// Combines model probabilities with odds; the model alone when the odds are unusable.
    pub fn combine_odds(&self, model: [f64; 3], odds: Option<&Odds1x2>) -> [f64; 3] {
        match odds.and_then(|o| self.market_probabilities(o)) {
            Some(q) => self.combine(model, q),
            None => model,
        }
    }

    /// Fits the weights for one method; `None` with fewer than 100 usable rows or no optimum.
    pub fn fit(rows: &[BlendRow], devig: Devig) -> Option<Self> {
        let mut data = Vec::with_capacity(rows.len());
        for r in rows {
            if let Some(q) = devig.probabilities(&r.odds) {
                data.push((ln3(r.model), ln3(q), r.outcome.index(), r.weight));
            }
        }
        if data.len() < 100 {
            return None;
        }
        let total_w: f64 = data.iter().map(|d| d.3).sum();
        let obj = BlendObjective { data: &data, l2: 1e-4 * total_w };
        let m = minimise(&obj, vec![0.5, 0.5, 0.0, 0.0], &NewtonOptions::default()).ok()?;
        let loss = |f: &dyn Fn(&LogRow) -> [f64; 3]| {
            data.iter().map(|d| -d.3 * f(d)[d.2].max(1e-15).ln()).sum::<f64>() / total_w
        };
        let theta = m.x;
        Some(MarketBlend {
            devig,
            model_weight: theta[0],
            market_weight: theta[1],
            intercepts: [theta[2], theta[3]],
            rows: data.len(),
            log_loss: loss(&|d| softmax(Self::scores(&theta, &d.0, &d.1))),
            market_log_loss: loss(&|d| d.1.map(f64::exp)),
            model_log_loss: loss(&|d| d.0.map(f64::exp)),
        })
    }

    /// Fits every method and keeps the one with the lowest log loss; also returns each method's
    /// fit (what the README's comparison of methods shows).
    pub fn fit_best(rows: &[BlendRow]) -> (Option<Self>, Vec<MarketBlend>) {
        let fits: Vec<MarketBlend> = Devig::ALL.into_iter().filter_map(|d| Self::fit(rows, d)).collect();
        let best = fits.iter().min_by(|a, b| a.log_loss.total_cmp(&b.log_loss)).cloned();
        (best, fits)
    }
}

/// Version string of the `market` strategy (part of every prediction's `model_version`).
pub const MARKET_VERSION: &str = "market-benter-1";

/// A fitted `market` model: `ml_model` at a date plus the artifact's combination weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlendedModel {
    pub model_version: String,
    pub base: MlModel,
    pub blend: MarketBlend,
}

impl BlendedModel {
    /// Fits the artifact's `ml_model` on chronological `matches` known before `as_of`; the
    /// combination is the one of the competition of the last of them, when the artifact has one
    /// ([`MlArtifact::blend_for`]).
    pub fn fit_sorted(
        matches: &[&MatchRecord],
        as_of: NaiveDateTime,
        artifact: &MlArtifact,
    ) -> Result<Self, EngineError> {
        Self::fit_sorted_warm(matches, as_of, artifact, &mut super::WarmStart::default())
    }

    /// [`Self::fit_sorted`] with the model's features fitted warm ([`MlModel::fit_sorted_warm`]).
    pub fn fit_sorted_warm<'a>(
        matches: &[&'a MatchRecord],
        as_of: NaiveDateTime,
        artifact: &MlArtifact,
        warm: &mut super::WarmStart<'a>,
    ) -> Result<Self, EngineError> {
        Ok(BlendedModel {
            model_version: format!("{MARKET_VERSION}+{}", artifact.model_version),
            base: MlModel::fit_sorted_warm(matches, as_of, artifact, warm)?,
            blend: artifact.blend_for(matches.last().and_then(|m| m.competition.as_deref())),
        })
    }

    /// `[p_home, p_draw, p_away]`: the model combined with the opening odds, or the model alone
    /// without usable odds.
    pub fn probabilities(&self, home: &str, away: &str, opening: Option<&Odds1x2>) -> [f64; 3] {
        let (p, _) = self.base.probabilities(home, away);
        self.blend.combine_odds(p, opening)
    }

    /// Predicts a match: the Dixon-Coles grid rescaled to the combined probabilities.
    pub fn predict(&self, home: &str, away: &str, opening: Option<&Odds1x2>) -> Prediction {
        let p = self.probabilities(home, away, opening);
        let mut g = self.base.state.dc_long.grid(home, away);
        g.rescale_outcomes(p);
        g.to_prediction(&self.model_version)
    }
}

/// One fitting row in log space: (ln model, ln market, outcome index, weight).
type LogRow = ([f64; 3], [f64; 3], usize, f64);

struct BlendObjective<'a> {
    data: &'a [LogRow],
    l2: f64,
}

impl Objective for BlendObjective<'_> {
    fn dim(&self) -> usize {
        4
    }

    fn value(&self, t: &[f64]) -> f64 {
        let mut f = 0.5 * self.l2 * (t[2] * t[2] + t[3] * t[3]);
        for (m, q, y, w) in self.data {
            let s = MarketBlend::scores(t, m, q);
            let mx = s[0].max(s[1]).max(s[2]);
            let lse = mx + s.iter().map(|x| (x - mx).exp()).sum::<f64>().ln();
            f -= w * (s[*y] - lse);
        }
        if f.is_finite() { f } else { f64::INFINITY }
    }

    fn gradient_hessian(&self, t: &[f64], g: &mut [f64], h: &mut Matrix) {
        g[2] += self.l2 * t[2];
        g[3] += self.l2 * t[3];
        h.add(2, 2, self.l2);
        h.add(3, 3, self.l2);
        for (m, q, y, w) in self.data {
            let p = softmax(MarketBlend::scores(t, m, q));
            // x_i = [ln m_i, ln q_i, 1{i = home}, 1{i = draw}]
            let x = |i: usize| [m[i], q[i], (i == 0) as u8 as f64, (i == 1) as u8 as f64];
            let mut mean = [0.0; 4];
            for i in 0..3 {
                let xi = x(i);
                for k in 0..4 {
                    mean[k] += p[i] * xi[k];
                }
            }
            let xy = x(*y);
            for k in 0..4 {
                g[k] += w * (mean[k] - xy[k]);
            }
            for i in 0..3 {
                let xi = x(i);
                for a in 0..4 {
                    for b in 0..4 {
                        h.add(a, b, w * p[i] * (xi[a] - mean[a]) * (xi[b] - mean[b]));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Outcomes drawn from the market's fair probabilities; a model that is the truth blurred.
    fn rows(n: usize) -> Vec<BlendRow> {
        let mut rng = Lcg(7);
        (0..n)
            .map(|_| {
                let ph = 0.2 + 0.5 * rng.next();
                let pd = 0.22 + 0.08 * rng.next();
                let truth = [ph, pd, 1.0 - ph - pd];
                let u = rng.next();
                let outcome = if u < truth[0] {
                    Outcome::Home
                } else if u < truth[0] + truth[1] {
                    Outcome::Draw
                } else {
                    Outcome::Away
                };
                let noise = 0.15 * (rng.next() - 0.5);
                let model = [truth[0] + noise, truth[1], truth[2] - noise];
                let odds = Odds1x2 {
                    home: 1.0 / (truth[0] * 1.05),
                    draw: 1.0 / (truth[1] * 1.05),
                    away: 1.0 / (truth[2] * 1.05),
                };
                BlendRow { model, odds, outcome, weight: 1.0 }
            })
            .collect()
    }

    #[test]
    fn learns_to_trust_the_sharper_source() {
        let rows = rows(4000);
        let b = MarketBlend::fit(&rows, Devig::Multiplicative).expect("fit");
        assert!(b.market_weight > 0.6 && b.model_weight < 0.4, "{b:?}");
        assert!(b.log_loss <= b.market_log_loss + 1e-9 && b.log_loss < b.model_log_loss, "{b:?}");
        let p = b.combine([0.5, 0.3, 0.2], [0.4, 0.3, 0.3]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Without odds the model alone.
        assert_eq!(b.combine_odds([0.5, 0.3, 0.2], None), [0.5, 0.3, 0.2]);
        let (best, all) = MarketBlend::fit_best(&rows);
        assert_eq!(all.len(), 3);
        assert!(best.expect("best").log_loss <= all.iter().map(|f| f.log_loss).fold(f64::INFINITY, f64::min));
        assert!(MarketBlend::fit(&rows[..50], Devig::Shin).is_none(), "too few rows");
    }
}
