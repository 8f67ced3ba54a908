//! Small regression models fitted by Newton's method: ordered logit and multinomial logit for
//! 1X2 probabilities, Poisson regression for expected goals. All take weighted observations and
//! an L2 penalty on the slopes (never on intercepts or thresholds).

// Numeric kernels index several parallel arrays at once; index loops read best there.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

use super::data::Outcome;
use super::error::EngineError;
use super::linalg::{Matrix, sigmoid};
use super::optim::{NewtonOptions, Objective, minimise};

/// Observations in row-major order: `x[i * n_features + j]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Design {
    pub n_features: usize,
    pub x: Vec<f64>,
}

impl Design {
    pub fn new(n_features: usize) -> Self {
        Design { n_features, x: Vec::new() }
    }

    pub fn rows(&self) -> usize {
        self.x.len().checked_div(self.n_features).unwrap_or(0)
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.n_features..(i + 1) * self.n_features]
    }

    pub fn push(&mut self, row: &[f64]) {
        debug_assert_eq!(row.len(), self.n_features);
        self.x.extend_from_slice(row);
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn fit_error(model: &'static str) -> impl Fn(String) -> EngineError {
    move |reason| EngineError::FitFailed { model, reason }
}

/// Ordered index used by the ordered logit: away 0 < draw 1 < home 2.
fn ordered_index(o: Outcome) -> usize {
    match o {
        Outcome::Away => 0,
        Outcome::Draw => 1,
        Outcome::Home => 2,
    }
}

/// Ordered logit: latent `η = β·x`; `P(away) = σ(θ1 - η)`, `P(away or draw) = σ(θ2 - η)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderedLogit {
    pub thresholds: [f64; 2],
    pub beta: Vec<f64>,
}

struct OrderedObjective<'a> {
    design: &'a Design,
    y: &'a [Outcome],
    w: &'a [f64],
    l2: f64,
    /// The penalties pull β towards `center.beta` (zero by default) and, with `threshold_l2`,
    /// the thresholds towards `center.thresholds`.
    center: &'a OrderedLogit,
    threshold_l2: f64,
}

impl Objective for OrderedObjective<'_> {
    fn dim(&self) -> usize {
        2 + self.design.n_features
    }

    fn value(&self, p: &[f64]) -> f64 {
        let (t1, t2, beta) = (p[0], p[1], &p[2..]);
        if t2 <= t1 {
            return f64::INFINITY;
        }
        let db: Vec<f64> = beta.iter().zip(&self.center.beta).map(|(b, c)| b - c).collect();
        let dt = [t1 - self.center.thresholds[0], t2 - self.center.thresholds[1]];
        let mut f = 0.5 * self.l2 * dot(&db, &db) + 0.5 * self.threshold_l2 * dot(&dt, &dt);
        for i in 0..self.y.len() {
            let eta = dot(beta, self.design.row(i));
            let l = match ordered_index(self.y[i]) {
                0 => sigmoid(t1 - eta),
                1 => sigmoid(t2 - eta) - sigmoid(t1 - eta),
                _ => sigmoid(eta - t2),
            };
            if l <= 0.0 {
                return f64::INFINITY;
            }
            f -= self.w[i] * l.ln();
        }
        f
    }

    fn gradient_hessian(&self, p: &[f64], g: &mut [f64], h: &mut Matrix) {
        let (t1, t2, beta) = (p[0], p[1], &p[2..]);
        let nf = self.design.n_features;
        let dim = 2 + nf;
        g[2..].iter_mut().zip(beta.iter().zip(&self.center.beta)).for_each(|(gi, (b, c))| *gi += self.l2 * (b - c));
        for j in 0..nf {
            h.add(2 + j, 2 + j, self.l2);
        }
        for a in 0..2 {
            g[a] += self.threshold_l2 * (p[a] - self.center.thresholds[a]);
            h.add(a, a, self.threshold_l2);
        }
        for i in 0..self.y.len() {
            let x = self.design.row(i);
            let w = self.w[i];
            let eta = dot(beta, x);
            // lnL as a function of u = θ_upper - η and l = θ_lower - η; (a, b) = threshold indices.
            let (gu, gl, huu, hll, hul, a, b) = match ordered_index(self.y[i]) {
                0 => {
                    let s = sigmoid(t1 - eta);
                    (1.0 - s, 0.0, -s * (1.0 - s), 0.0, 0.0, Some(0), None)
                }
                2 => {
                    let s = sigmoid(t2 - eta);
                    (0.0, -s, 0.0, -s * (1.0 - s), 0.0, None, Some(1))
                }
                _ => {
                    let (su, sl) = (sigmoid(t2 - eta), sigmoid(t1 - eta));
                    let (fu, fl) = (su * (1.0 - su), sl * (1.0 - sl));
                    let (dfu, dfl) = (fu * (1.0 - 2.0 * su), fl * (1.0 - 2.0 * sl));
                    let l = (su - sl).max(1e-300);
                    (
                        fu / l,
                        -fl / l,
                        dfu / l - fu * fu / (l * l),
                        -dfl / l - fl * fl / (l * l),
                        fu * fl / (l * l),
                        Some(1),
                        Some(0),
                    )
                }
            };
            // Negative log-likelihood: flip signs.
            let (gu, gl, huu, hll, hul) = (-w * gu, -w * gl, -w * huu, -w * hll, -w * hul);
            let geta = -(gu + gl);
            let heta = huu + 2.0 * hul + hll;
            if let Some(a) = a {
                g[a] += gu;
                h.add(a, a, huu);
                for j in 0..nf {
                    let v = -(huu + hul) * x[j];
                    h.add(a, 2 + j, v);
                    h.add(2 + j, a, v);
                }
            }
            if let Some(b) = b {
                g[b] += gl;
                h.add(b, b, hll);
                for j in 0..nf {
                    let v = -(hul + hll) * x[j];
                    h.add(b, 2 + j, v);
                    h.add(2 + j, b, v);
                }
            }
            if let (Some(a), Some(b)) = (a, b) {
                h.add(a, b, hul);
                h.add(b, a, hul);
            }
            for j in 0..nf {
                g[2 + j] += geta * x[j];
                for k in 0..nf {
                    h.add(2 + j, 2 + k, heta * x[j] * x[k]);
                }
            }
        }
        debug_assert_eq!(h.n, dim);
    }
}

impl OrderedLogit {
    /// Fits by weighted maximum likelihood with an L2 penalty `l2/2 * |β|²`.
    pub fn fit(design: &Design, y: &[Outcome], w: &[f64], l2: f64) -> Result<Self, EngineError> {
        if y.is_empty() {
            return Err(EngineError::InsufficientHistory("no observations for the ordered logit".into()));
        }
        let zero = OrderedLogit { thresholds: [0.0, 0.0], beta: vec![0.0; design.n_features] };
        Self::fit_towards(design, y, w, l2, &zero, 0.0)
    }

    /// Fits with the penalty `l2/2 |β - center.β|² + threshold_l2/2 |θ - center.θ|²`: a prior
    /// centred on another fit. With `threshold_l2 > 0` it works without any observation (it is
    /// then the prior).
    pub fn fit_towards(
        design: &Design,
        y: &[Outcome],
        w: &[f64],
        l2: f64,
        center: &OrderedLogit,
        threshold_l2: f64,
    ) -> Result<Self, EngineError> {
        if center.beta.len() != design.n_features {
            return Err(EngineError::FitFailed { model: "ordered_logit", reason: "prior of another size".into() });
        }
        let obj = OrderedObjective { design, y, w, l2, center, threshold_l2 };
        // Start from the weighted base rates.
        let mut c = [0.0; 3];
        for (o, wi) in y.iter().zip(w) {
            c[ordered_index(*o)] += wi;
        }
        let tot: f64 = c.iter().sum();
        let p_a = ((c[0] + 0.5) / (tot + 1.5)).clamp(0.01, 0.98);
        let p_ad = ((c[0] + c[1] + 1.0) / (tot + 1.5)).clamp(p_a + 0.01, 0.99);
        let mut x0 = if threshold_l2 > 0.0 {
            center.thresholds.to_vec()
        } else {
            vec![(p_a / (1.0 - p_a)).ln(), (p_ad / (1.0 - p_ad)).ln()]
        };
        x0.extend_from_slice(&center.beta);
        let m = minimise(&obj, x0, &NewtonOptions::default()).map_err(fit_error("ordered_logit"))?;
        Ok(OrderedLogit { thresholds: [m.x[0], m.x[1]], beta: m.x[2..].to_vec() })
    }

    /// `[p_home, p_draw, p_away]`.
    pub fn predict(&self, x: &[f64]) -> [f64; 3] {
        let eta = dot(&self.beta, x);
        let pa = sigmoid(self.thresholds[0] - eta);
        let pad = sigmoid(self.thresholds[1] - eta);
        [1.0 - pad, pad - pa, pa]
    }
}

/// Multinomial logit with the away win as reference class: `score_home = w_h·[1, x]`,
/// `score_draw = w_d·[1, x]`, `score_away = 0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultinomialLogit {
    /// Intercept first, then one weight per feature.
    pub home: Vec<f64>,
    pub draw: Vec<f64>,
}

struct MultinomialObjective<'a> {
    design: &'a Design,
    y: &'a [Outcome],
    w: &'a [f64],
    l2: f64,
}

fn softmax3(sh: f64, sd: f64) -> [f64; 3] {
    let m = sh.max(sd).max(0.0);
    let (eh, ed, ea) = ((sh - m).exp(), (sd - m).exp(), (-m).exp());
    let s = eh + ed + ea;
    [eh / s, ed / s, ea / s]
}

impl Objective for MultinomialObjective<'_> {
    fn dim(&self) -> usize {
        2 * (1 + self.design.n_features)
    }

    fn value(&self, p: &[f64]) -> f64 {
        let k = 1 + self.design.n_features;
        let (wh, wd) = p.split_at(k);
        let mut f = 0.5 * self.l2 * (dot(&wh[1..], &wh[1..]) + dot(&wd[1..], &wd[1..]));
        for i in 0..self.y.len() {
            let x = self.design.row(i);
            let sh = wh[0] + dot(&wh[1..], x);
            let sd = wd[0] + dot(&wd[1..], x);
            let pr = softmax3(sh, sd);
            f -= self.w[i] * pr[self.y[i].index()].max(1e-300).ln();
        }
        f
    }

    fn gradient_hessian(&self, p: &[f64], g: &mut [f64], h: &mut Matrix) {
        let nf = self.design.n_features;
        let k = 1 + nf;
        let (wh, wd) = p.split_at(k);
        for j in 1..k {
            g[j] += self.l2 * wh[j];
            g[k + j] += self.l2 * wd[j];
            h.add(j, j, self.l2);
            h.add(k + j, k + j, self.l2);
        }
        let mut xt = vec![1.0; k];
        for i in 0..self.y.len() {
            let x = self.design.row(i);
            xt[1..].copy_from_slice(x);
            let w = self.w[i];
            let pr = softmax3(wh[0] + dot(&wh[1..], x), wd[0] + dot(&wd[1..], x));
            let yi = self.y[i].index();
            let r = [pr[0] - (yi == 0) as u8 as f64, pr[1] - (yi == 1) as u8 as f64];
            let c = [[pr[0] * (1.0 - pr[0]), -pr[0] * pr[1]], [-pr[0] * pr[1], pr[1] * (1.0 - pr[1])]];
            for a in 0..2 {
                for j in 0..k {
                    g[a * k + j] += w * r[a] * xt[j];
                }
                for b in 0..2 {
                    let cab = w * c[a][b];
                    for j in 0..k {
                        let v = cab * xt[j];
                        for l in 0..k {
                            h.add(a * k + j, b * k + l, v * xt[l]);
                        }
                    }
                }
            }
        }
    }
}

impl MultinomialLogit {
    /// Fits by weighted maximum likelihood with an L2 penalty on the slopes.
    pub fn fit(design: &Design, y: &[Outcome], w: &[f64], l2: f64) -> Result<Self, EngineError> {
        if y.is_empty() {
            return Err(EngineError::InsufficientHistory("no observations for the multinomial logit".into()));
        }
        let k = 1 + design.n_features;
        let obj = MultinomialObjective { design, y, w, l2 };
        let m = minimise(&obj, vec![0.0; 2 * k], &NewtonOptions::default()).map_err(fit_error("multinomial_logit"))?;
        Ok(MultinomialLogit { home: m.x[..k].to_vec(), draw: m.x[k..].to_vec() })
    }

    /// `[p_home, p_draw, p_away]`.
    pub fn predict(&self, x: &[f64]) -> [f64; 3] {
        self.predict_tempered(x, 1.0)
    }

    /// Probabilities with the scores divided by `temperature` (calibration).
    pub fn predict_tempered(&self, x: &[f64], temperature: f64) -> [f64; 3] {
        let sh = self.home[0] + dot(&self.home[1..], x);
        let sd = self.draw[0] + dot(&self.draw[1..], x);
        softmax3(sh / temperature, sd / temperature)
    }
}

/// Poisson regression: `λ = exp(c[0] + c[1..]·x)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoissonRegression {
    pub coefficients: Vec<f64>,
}

struct PoissonObjective<'a> {
    design: &'a Design,
    y: &'a [f64],
    w: &'a [f64],
    l2: f64,
    /// Slopes are pulled towards `center[1..]`, the intercept towards `center[0]` with
    /// `intercept_l2`.
    center: &'a [f64],
    intercept_l2: f64,
}

impl Objective for PoissonObjective<'_> {
    fn dim(&self) -> usize {
        1 + self.design.n_features
    }

    fn value(&self, c: &[f64]) -> f64 {
        let d: Vec<f64> = c.iter().zip(self.center).map(|(a, b)| a - b).collect();
        let mut f = 0.5 * self.l2 * dot(&d[1..], &d[1..]) + 0.5 * self.intercept_l2 * d[0] * d[0];
        for i in 0..self.y.len() {
            let eta = c[0] + dot(&c[1..], self.design.row(i));
            f += self.w[i] * (eta.exp() - self.y[i] * eta);
        }
        if f.is_finite() { f } else { f64::INFINITY }
    }

    fn gradient_hessian(&self, c: &[f64], g: &mut [f64], h: &mut Matrix) {
        let k = c.len();
        for j in 1..k {
            g[j] += self.l2 * (c[j] - self.center[j]);
            h.add(j, j, self.l2);
        }
        g[0] += self.intercept_l2 * (c[0] - self.center[0]);
        h.add(0, 0, self.intercept_l2);
        let mut xt = vec![1.0; k];
        for i in 0..self.y.len() {
            xt[1..].copy_from_slice(self.design.row(i));
            let lam = (c[0] + dot(&c[1..], &xt[1..])).exp();
            let r = self.w[i] * (lam - self.y[i]);
            let hw = self.w[i] * lam;
            for j in 0..k {
                g[j] += r * xt[j];
                for l in 0..k {
                    h.add(j, l, hw * xt[j] * xt[l]);
                }
            }
        }
    }
}

impl PoissonRegression {
    /// Fits by weighted maximum likelihood with an L2 penalty on the slopes.
    pub fn fit(design: &Design, y: &[f64], w: &[f64], l2: f64) -> Result<Self, EngineError> {
        let tw: f64 = w.iter().sum();
        if y.is_empty() || tw.is_nan() || tw <= 0.0 {
            return Err(EngineError::InsufficientHistory("no observations for the Poisson regression".into()));
        }
        let mean = y.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / tw;
        let mut x0 = vec![mean.max(0.05).ln()];
        x0.extend(std::iter::repeat_n(0.0, design.n_features));
        let center = vec![0.0; 1 + design.n_features];
        let obj = PoissonObjective { design, y, w, l2, center: &center, intercept_l2: 0.0 };
        let m = minimise(&obj, x0, &NewtonOptions::default()).map_err(fit_error("poisson"))?;
        Ok(PoissonRegression { coefficients: m.x })
    }

    /// Fits with the penalty `l2/2 |c[1..] - center[1..]|² + intercept_l2/2 (c[0] - center[0])²`;
    /// with `intercept_l2 > 0` it works without any observation.
    pub fn fit_towards(
        design: &Design,
        y: &[f64],
        w: &[f64],
        l2: f64,
        center: &PoissonRegression,
        intercept_l2: f64,
    ) -> Result<Self, EngineError> {
        if center.coefficients.len() != 1 + design.n_features {
            return Err(EngineError::FitFailed { model: "poisson", reason: "prior of another size".into() });
        }
        let obj = PoissonObjective { design, y, w, l2, center: &center.coefficients, intercept_l2 };
        let m = minimise(&obj, center.coefficients.clone(), &NewtonOptions::default()).map_err(fit_error("poisson"))?;
        Ok(PoissonRegression { coefficients: m.x })
    }

    /// The expected count at `x`.
    pub fn predict(&self, x: &[f64]) -> f64 {
        (self.coefficients[0] + dot(&self.coefficients[1..], x)).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers in [0, 1) (tests only).
    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    fn sample(p: [f64; 3], u: f64) -> Outcome {
        if u < p[0] {
            Outcome::Home
        } else if u < p[0] + p[1] {
            Outcome::Draw
        } else {
            Outcome::Away
        }
    }

    #[test]
    fn ordered_logit_recovers_its_parameters() {
        let truth = OrderedLogit { thresholds: [-0.8, 0.4], beta: vec![1.5] };
        let mut seed = 7;
        let mut d = Design::new(1);
        let mut y = Vec::new();
        for _ in 0..20_000 {
            let x = lcg(&mut seed) * 2.0 - 1.0;
            d.push(&[x]);
            y.push(sample(truth.predict(&[x]), lcg(&mut seed)));
        }
        let w = vec![1.0; y.len()];
        let fit = OrderedLogit::fit(&d, &y, &w, 0.0).expect("fit");
        assert!((fit.beta[0] - 1.5).abs() < 0.08, "{fit:?}");
        assert!((fit.thresholds[0] + 0.8).abs() < 0.05, "{fit:?}");
        assert!((fit.thresholds[1] - 0.4).abs() < 0.05, "{fit:?}");
        let p = fit.predict(&[0.3]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn multinomial_logit_recovers_base_rates_and_slopes() {
        let truth = MultinomialLogit { home: vec![0.3, 1.0], draw: vec![0.0, 0.2] };
        let mut seed = 11;
        let mut d = Design::new(1);
        let mut y = Vec::new();
        for _ in 0..20_000 {
            let x = lcg(&mut seed) * 2.0 - 1.0;
            d.push(&[x]);
            y.push(sample(truth.predict(&[x]), lcg(&mut seed)));
        }
        let w = vec![1.0; y.len()];
        let fit = MultinomialLogit::fit(&d, &y, &w, 0.0).expect("fit");
        assert!((fit.home[1] - 1.0).abs() < 0.1, "{fit:?}");
        assert!((fit.home[0] - 0.3).abs() < 0.06, "{fit:?}");
        // Without features the fit reproduces the class frequencies exactly.
        let d0 = Design { n_features: 0, x: vec![] };
        let y0 = [Outcome::Home, Outcome::Home, Outcome::Draw, Outcome::Away];
        let fit0 = MultinomialLogit::fit(&d0, &y0, &[1.0; 4], 0.0).expect("fit");
        let p = fit0.predict(&[]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.25).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn poisson_regression_recovers_the_mean() {
        let d = Design { n_features: 1, x: vec![0.0, 0.0, 1.0, 1.0] };
        let y = [1.0, 3.0, 4.0, 6.0];
        let fit = PoissonRegression::fit(&d, &y, &[1.0; 4], 0.0).expect("fit");
        assert!((fit.predict(&[0.0]) - 2.0).abs() < 1e-6);
        assert!((fit.predict(&[1.0]) - 5.0).abs() < 1e-6);
    }
}
