//! `statistical`: the Dixon and Coles (1997) goals model.
//!
//! Home goals ~ Poisson(λh), away goals ~ Poisson(λa) with
//! `λh = exp(home_advantage + attack[home] + defence[away])`, `λa = exp(attack[away] + defence[home])`,
//! and the low-score correction τ(ρ) on 0-0, 0-1, 1-0 and 1-1 (the parametrisation penaltyblog
//! uses, so fitted values compare one to one; a negative defence is a good defence).
//! Each match is weighted by `exp(-xi * days before the prediction date)`.
//!
//! The weighted negative log-likelihood is minimised by a damped Newton method with the analytic
//! gradient and Hessian (Levenberg-Marquardt damping, Armijo backtracking), which converges in a
//! handful of iterations to machine precision. Identifiability: the likelihood is unchanged by
//! `attack + c, defence - c`; a quadratic penalty on `sum(attack)` removes that direction without
//! moving the optimum, so fitted attacks sum to zero (penaltyblog constrains them to sum to the
//! number of teams: add 1 to our attacks and subtract 1 from our defences to compare).
//!
//! Optionally (on by default) a weak Gaussian prior pulls each team towards the league mean and
//! teams in their first season back in the league (promoted) towards the average of the weakest
//! established teams; it is invariant to the identifiability direction. Teams with no history at
//! all are predicted with that promoted-team prior.

// Numeric kernels index several parallel arrays at once; index loops read best there.
#![allow(clippy::needless_range_loop)]

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::data::{MatchRecord, days_between, history_before};
use super::error::EngineError;
use super::grid::{DEFAULT_MAX_GOALS, Prediction, ScoreGrid};
use super::linalg::{Matrix, cholesky_solve};

/// Matches in index form, ready for the fitter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DcData {
    pub n_teams: usize,
    pub home: Vec<u32>,
    pub away: Vec<u32>,
    pub home_goals: Vec<u8>,
    pub away_goals: Vec<u8>,
    pub weights: Vec<f64>,
    /// What the Poisson rates are fitted to, when not the goals themselves (empty: the goals):
    /// goals mixed with an expected-goals proxy from shots on target
    /// ([`DixonColesConfig::shots_weight`]). The low-score correction always reads the goals.
    pub home_target: Vec<f64>,
    pub away_target: Vec<f64>,
}

impl DcData {
    /// The home and away values the Poisson rates of match `m` are fitted to.
    #[inline]
    fn targets(&self, m: usize) -> (f64, f64) {
        if self.home_target.is_empty() {
            (f64::from(self.home_goals[m]), f64::from(self.away_goals[m]))
        } else {
            (self.home_target[m], self.away_target[m])
        }
    }

    pub fn len(&self) -> usize {
        self.home.len()
    }

    pub fn is_empty(&self) -> bool {
        self.home.is_empty()
    }
}

/// A Gaussian prior on each team's strength relative to the league mean: the penalty is
/// `0.5 * strength[i] * ((attack[i] - mean(attack) - attack_mean[i])^2 + (same for defence))`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DcPrior {
    pub strength: Vec<f64>,
    pub attack_mean: Vec<f64>,
    pub defence_mean: Vec<f64>,
}

/// Fitted parameters, in the layout of penaltyblog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DcParams {
    pub attack: Vec<f64>,
    pub defence: Vec<f64>,
    pub home_advantage: f64,
    pub rho: f64,
    /// The weighted log-likelihood at the optimum (with the log-factorial constants).
    pub log_likelihood: f64,
    pub iterations: u32,
}

/// The parameters of the previous fit, by team, to start the next fit from (a rolling backtest
/// refits at every match date on a history that changed by a few matches): see
/// [`DixonColesModel::fit_sorted_warm`]. Empty: the cold start.
#[derive(Debug, Clone, Default)]
pub struct DcWarmStart {
    /// Sorted team names of the previous fit.
    teams: Vec<String>,
    /// Its first-pass (league-mean prior) parameters, in the order of `teams`.
    params: Option<DcParams>,
    /// Its promoted-team offset from the league mean: where a new team starts.
    unknown: (f64, f64),
}

impl DcWarmStart {
    /// The starting point for a fit on sorted `teams`: each known team's previous strength, a new
    /// team at the previous promoted-team strength (None without a previous fit).
    fn start_for(&self, teams: &[String]) -> Option<DcParams> {
        let p = self.params.as_ref()?;
        let k = p.attack.len() as f64;
        let ma = p.attack.iter().sum::<f64>() / k;
        let md = p.defence.iter().sum::<f64>() / k;
        let (mut attack, mut defence) = (Vec::with_capacity(teams.len()), Vec::with_capacity(teams.len()));
        for t in teams {
            let (a, d) = match self.teams.binary_search(t) {
                Ok(i) => (p.attack[i], p.defence[i]),
                Err(_) => (ma + self.unknown.0, md + self.unknown.1),
            };
            attack.push(a);
            defence.push(d);
        }
        let start = DcParams {
            attack,
            defence,
            home_advantage: p.home_advantage,
            rho: p.rho,
            log_likelihood: 0.0,
            iterations: 0,
        };
        let finite = start.attack.iter().chain(&start.defence).all(|x| x.is_finite())
            && start.home_advantage.is_finite()
            && start.rho.is_finite();
        finite.then_some(start)
    }

    fn keep(&mut self, teams: &[String], params: &DcParams, unknown: (f64, f64)) {
        self.teams.clear();
        self.teams.extend_from_slice(teams);
        self.params = Some(params.clone());
        self.unknown = unknown;
    }
}

/// Penalty weight on `sum(attack)^2` that removes the identifiability direction.
const SUM_PENALTY: f64 = 1.0;

/// A very weak Gaussian prior on rho (standard deviation about 3): negligible on real data (its
/// information is a few hundred), it keeps the likelihood bounded on tiny degenerate samples where
/// the Dixon-Coles likelihood grows without limit as rho goes to minus infinity.
const RHO_PENALTY: f64 = 0.1;

/// The smallest league-mean prior strength used, so that a team without a goal (or without
/// conceding) in its few matches gets a finite estimate instead of minus infinity.
pub const MIN_PRIOR_STRENGTH: f64 = 1e-3;

struct Workspace {
    grad: Vec<f64>,
    hess: Matrix,
    chol: Vec<f64>,
    trial: Vec<f64>,
}

/// Penalised weighted negative log-likelihood (without the log-factorial constants) at `theta`,
/// or +inf outside the model's domain.
fn objective(data: &DcData, prior: Option<&DcPrior>, theta: &[f64]) -> f64 {
    let n = data.n_teams;
    let (att, rest) = theta.split_at(n);
    let (def, tail) = rest.split_at(n);
    let (hfa, rho) = (tail[0], tail[1]);
    if rho.is_nan() || rho >= 1.0 {
        return f64::INFINITY;
    }
    let mut f = 0.0;
    for m in 0..data.len() {
        let (h, a) = (data.home[m] as usize, data.away[m] as usize);
        let (kh, ka) = (data.home_goals[m], data.away_goals[m]);
        let eh = hfa + att[h] + def[a];
        let ea = att[a] + def[h];
        let (lh, la) = (eh.exp(), ea.exp());
        let (yh, ya) = data.targets(m);
        let mut v = lh - yh * eh + la - ya * ea;
        let tau = match (kh, ka) {
            (0, 0) => 1.0 - rho * lh * la,
            (0, 1) => 1.0 + rho * lh,
            (1, 0) => 1.0 + rho * la,
            (1, 1) => 1.0 - rho,
            _ => 1.0,
        };
        if tau != 1.0 {
            if tau <= 0.0 {
                return f64::INFINITY;
            }
            v -= tau.ln();
        }
        f += data.weights[m] * v;
    }
    let sum_att: f64 = att.iter().sum();
    f += 0.5 * SUM_PENALTY * sum_att * sum_att + 0.5 * RHO_PENALTY * rho * rho;
    if let Some(p) = prior {
        f += prior_value(p, att, def);
    }
    if f.is_finite() { f } else { f64::INFINITY }
}

fn prior_value(p: &DcPrior, att: &[f64], def: &[f64]) -> f64 {
    let n = att.len() as f64;
    let ma = att.iter().sum::<f64>() / n;
    let md = def.iter().sum::<f64>() / n;
    let mut f = 0.0;
    for i in 0..att.len() {
        let ra = att[i] - ma - p.attack_mean[i];
        let rd = def[i] - md - p.defence_mean[i];
        f += 0.5 * p.strength[i] * (ra * ra + rd * rd);
    }
    f
}

/// Gradient and Hessian of [`objective`] into the workspace.
fn derivatives(data: &DcData, prior: Option<&DcPrior>, theta: &[f64], ws: &mut Workspace) {
    let n = data.n_teams;
    let ih = 2 * n;
    let ir = 2 * n + 1;
    let (att, rest) = theta.split_at(n);
    let (def, tail) = rest.split_at(n);
    let (hfa, rho) = (tail[0], tail[1]);
    let g = &mut ws.grad;
    g.iter_mut().for_each(|x| *x = 0.0);
    let hm = &mut ws.hess;
    hm.fill_zero();
    let dim = hm.n;
    let hs = &mut hm.a;
    // Upper-triangle accumulation; mirrored at the end.
    let mut add = |i: usize, j: usize, v: f64| {
        let (r, c) = if i <= j { (i, j) } else { (j, i) };
        hs[r * dim + c] += v;
    };
    for m in 0..data.len() {
        let w = data.weights[m];
        if w == 0.0 {
            continue;
        }
        let (h, a) = (data.home[m] as usize, data.away[m] as usize);
        let (kh, ka) = (data.home_goals[m], data.away_goals[m]);
        let lh = (hfa + att[h] + def[a]).exp();
        let la = (att[a] + def[h]).exp();
        let (yh, ya) = data.targets(m);
        let mut gh = lh - yh;
        let mut ga = la - ya;
        let mut gr = 0.0;
        let (mut hhh, mut haa) = (lh, la);
        let (mut hha, mut hhr, mut har, mut hrr) = (0.0, 0.0, 0.0, 0.0);
        match (kh, ka) {
            (0, 0) => {
                let x = lh * la;
                let u = rho * x;
                let q = 1.0 - u;
                let q2 = q * q;
                gh += u / q;
                ga += u / q;
                gr += x / q;
                let s = u / q2;
                hhh += s;
                haa += s;
                hha += s;
                hhr += x / q2;
                har += x / q2;
                hrr += x * x / q2;
            }
            (0, 1) => {
                let v = rho * lh;
                let q = 1.0 + v;
                let q2 = q * q;
                gh -= v / q;
                hhh -= v / q2;
                gr -= lh / q;
                hrr += lh * lh / q2;
                hhr -= lh / q2;
            }
            (1, 0) => {
                let v = rho * la;
                let q = 1.0 + v;
                let q2 = q * q;
                ga -= v / q;
                haa -= v / q2;
                gr -= la / q;
                hrr += la * la / q2;
                har -= la / q2;
            }
            (1, 1) => {
                let q = 1.0 - rho;
                gr += 1.0 / q;
                hrr += 1.0 / (q * q);
            }
            _ => {}
        }
        // η_home depends on attack[h], defence[a], hfa; η_away on attack[a], defence[h].
        let s1 = [h, n + a, ih];
        let s2 = [a, n + h];
        for &i in &s1 {
            g[i] += w * gh;
        }
        for &i in &s2 {
            g[i] += w * ga;
        }
        g[ir] += w * gr;
        let (hhh, haa, hha, hhr, har, hrr) = (w * hhh, w * haa, w * hha, w * hhr, w * har, w * hrr);
        for p in 0..3 {
            add(s1[p], s1[p], hhh);
            for q in (p + 1)..3 {
                add(s1[p], s1[q], hhh);
            }
            if hha != 0.0 {
                add(s1[p], s2[0], hha);
                add(s1[p], s2[1], hha);
            }
            if hhr != 0.0 {
                add(s1[p], ir, hhr);
            }
        }
        add(s2[0], s2[0], haa);
        add(s2[1], s2[1], haa);
        add(s2[0], s2[1], haa);
        if har != 0.0 {
            add(s2[0], ir, har);
            add(s2[1], ir, har);
        }
        if hrr != 0.0 {
            add(ir, ir, hrr);
        }
    }
    g[ir] += RHO_PENALTY * rho;
    add(ir, ir, RHO_PENALTY);
    // Identifiability penalty on sum(attack).
    let sum_att: f64 = att.iter().sum();
    for i in 0..n {
        g[i] += SUM_PENALTY * sum_att;
        for j in i..n {
            add(i, j, SUM_PENALTY);
        }
    }
    if let Some(p) = prior {
        let nf = n as f64;
        let ma = att.iter().sum::<f64>() / nf;
        let md = def.iter().sum::<f64>() / nf;
        let k_sum: f64 = p.strength.iter().sum();
        let mut ka_r = 0.0;
        let mut kd_r = 0.0;
        for i in 0..n {
            ka_r += p.strength[i] * (att[i] - ma - p.attack_mean[i]);
            kd_r += p.strength[i] * (def[i] - md - p.defence_mean[i]);
        }
        for j in 0..n {
            g[j] += p.strength[j] * (att[j] - ma - p.attack_mean[j]) - ka_r / nf;
            g[n + j] += p.strength[j] * (def[j] - md - p.defence_mean[j]) - kd_r / nf;
            for k in j..n {
                let mut v = -(p.strength[j] + p.strength[k]) / nf + k_sum / (nf * nf);
                if j == k {
                    v += p.strength[j];
                }
                add(j, k, v);
                add(n + j, n + k, v);
            }
        }
    }
    ws.hess.symmetrise_from_upper();
}

/// Options of the Newton fitter.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    pub max_iterations: u32,
    /// Stop when the Newton decrement `-g·δ` falls below this.
    pub tolerance: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { max_iterations: 100, tolerance: 1e-10 }
    }
}

/// Maximum (penalised) likelihood fit of Dixon-Coles on indexed data. `start` warm-starts the
/// optimiser (it must have `data.n_teams` teams).
pub fn fit_params(
    data: &DcData,
    prior: Option<&DcPrior>,
    start: Option<&DcParams>,
    options: &FitOptions,
) -> Result<DcParams, EngineError> {
    let n = data.n_teams;
    let fail = |reason: String| EngineError::FitFailed { model: "dixon_coles", reason };
    let total_w: f64 = data.weights.iter().sum();
    if data.is_empty() || n < 2 || total_w.is_nan() || total_w <= 0.0 {
        return Err(EngineError::InsufficientHistory(
            "Dixon-Coles needs weighted matches between at least two teams".into(),
        ));
    }
    let dim = 2 * n + 2;
    let mut theta = vec![0.0; dim];
    match start {
        Some(s) if s.attack.len() == n => {
            theta[..n].copy_from_slice(&s.attack);
            theta[n..2 * n].copy_from_slice(&s.defence);
            theta[2 * n] = s.home_advantage;
            theta[2 * n + 1] = s.rho;
        }
        _ => {
            let (mut sh, mut sa) = (0.0, 0.0);
            for m in 0..data.len() {
                let (yh, ya) = data.targets(m);
                sh += data.weights[m] * yh;
                sa += data.weights[m] * ya;
            }
            let mh = (sh / total_w).max(0.1);
            let ma = (sa / total_w).max(0.1);
            theta[n..2 * n].iter_mut().for_each(|d| *d = ma.ln());
            theta[2 * n] = (mh / ma).ln();
        }
    }
    let mut ws = Workspace {
        grad: vec![0.0; dim],
        hess: Matrix::zeros(dim),
        chol: Vec::with_capacity(dim * dim),
        trial: vec![0.0; dim],
    };
    let mut f = objective(data, prior, &theta);
    if !f.is_finite() {
        return Err(fail("the starting point is outside the model's domain".into()));
    }
    let mut damping = 0.0;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < options.max_iterations {
        iterations += 1;
        derivatives(data, prior, &theta, &mut ws);
        let neg_g: Vec<f64> = ws.grad.iter().map(|x| -x).collect();
        let step = loop {
            match cholesky_solve(&ws.hess, &neg_g, damping, 1e-12, &mut ws.chol) {
                Some(s) => break s,
                None => {
                    damping = if damping == 0.0 { 1e-4 } else { damping * 10.0 };
                    if damping > 1e8 {
                        return Err(fail("the Hessian cannot be made positive definite".into()));
                    }
                }
            }
        };
        let decrement: f64 = -ws.grad.iter().zip(&step).map(|(g, s)| g * s).sum::<f64>();
        if decrement < options.tolerance {
            // Take the last (tiny, quadratically convergent) step and stop.
            for i in 0..dim {
                theta[i] += step[i];
            }
            f = objective(data, prior, &theta);
            converged = f.is_finite();
            break;
        }
        // Armijo backtracking.
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            for i in 0..dim {
                ws.trial[i] = theta[i] + t * step[i];
            }
            let ft = objective(data, prior, &ws.trial);
            if ft <= f - 1e-4 * t * decrement {
                theta.copy_from_slice(&ws.trial);
                f = ft;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            // No progress along the damped Newton direction: at the optimum to rounding.
            if decrement < 1e-6 {
                converged = true;
                break;
            }
            damping = if damping == 0.0 { 1e-3 } else { damping * 10.0 };
            continue;
        }
        damping = if t == 1.0 { damping * 0.1 } else { damping };
        if damping < 1e-10 {
            damping = 0.0;
        }
    }
    if !converged {
        return Err(fail(format!("no convergence in {} iterations", options.max_iterations)));
    }
    // Report the log-likelihood proper (without penalties, with the log-factorial constants).
    let mut ll_const = 0.0;
    for m in 0..data.len() {
        ll_const += data.weights[m] * (ln_factorial(data.home_goals[m]) + ln_factorial(data.away_goals[m]));
    }
    let penalty = {
        let s: f64 = theta[..n].iter().sum();
        let r = theta[2 * n + 1];
        0.5 * SUM_PENALTY * s * s
            + 0.5 * RHO_PENALTY * r * r
            + prior.map_or(0.0, |p| prior_value(p, &theta[..n], &theta[n..2 * n]))
    };
    Ok(DcParams {
        attack: theta[..n].to_vec(),
        defence: theta[n..2 * n].to_vec(),
        home_advantage: theta[2 * n],
        rho: theta[2 * n + 1],
        log_likelihood: -(f - penalty) - ll_const,
        iterations,
    })
}

fn ln_factorial(k: u8) -> f64 {
    (2..=k as u32).map(|i| (i as f64).ln()).sum()
}

/// Settings of the `statistical` strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DixonColesConfig {
    /// Time decay per day: a match `t` days old weighs `exp(-xi * t)`.
    pub xi: f64,
    /// Only matches at most this many days old are used (None: all).
    pub window_days: Option<f64>,
    /// Grid size for predictions.
    pub max_goals: usize,
    /// Prior strength (in weighted matches) pulling every team towards the league mean.
    pub prior_strength: f64,
    /// Prior strength pulling teams in their first season back towards the weakest teams.
    pub promoted_prior_strength: f64,
    /// How many of the weakest established teams define the promoted-team prior.
    pub promoted_reference_teams: usize,
    /// A gap of at least this many days between two matches of a team means it was out of the
    /// league in between (relegated): it is treated as promoted for its next season.
    pub absence_days: f64,
    /// Up to this many matches after its return a team counts as promoted.
    pub promoted_matches: usize,
    /// When set, the home advantage is re-estimated with this (faster) decay per day, the
    /// teams' strengths held: home advantage changes faster than the teams do (matches without
    /// crowds in 2020/21).
    #[serde(default)]
    pub home_xi: Option<f64>,
    /// Shots on target as a second signal of strength: the Poisson rates are fitted to
    /// `(1 - w) × goals + w × c × shots on target` (c: goals per shot on target of the matches
    /// fitted on, weighted) for matches with statistics; goals alone for the others (a source
    /// without shots). 0: goals only. 0.3 by default; absent from a JSON config: 0 (configs and
    /// artifacts written before it existed keep their meaning).
    #[serde(default)]
    pub shots_weight: f64,
}

impl Default for DixonColesConfig {
    fn default() -> Self {
        DixonColesConfig {
            xi: 0.0025,
            window_days: None,
            max_goals: DEFAULT_MAX_GOALS,
            prior_strength: 1.0,
            promoted_prior_strength: 3.0,
            promoted_reference_teams: 3,
            absence_days: 200.0,
            promoted_matches: 38,
            home_xi: None,
            shots_weight: 0.3,
        }
    }
}

impl DixonColesConfig {
    /// Plain maximum likelihood, as penaltyblog fits it (no priors).
    pub fn plain_mle(xi: f64) -> Self {
        DixonColesConfig { xi, prior_strength: 0.0, promoted_prior_strength: 0.0, shots_weight: 0.0, ..Self::default() }
    }
}

/// One team's fitted strength.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamStrength {
    pub team: String,
    pub attack: f64,
    pub defence: f64,
}

/// A fitted `statistical` model: serialisable, so a service can cache it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DixonColesModel {
    pub model_version: String,
    pub as_of: NaiveDateTime,
    /// Sorted by name.
    pub teams: Vec<TeamStrength>,
    pub home_advantage: f64,
    pub rho: f64,
    /// Strength used for a team absent from the history (the promoted-team prior).
    pub unknown_attack: f64,
    pub unknown_defence: f64,
    pub matches_used: usize,
    pub log_likelihood: f64,
    pub config: DixonColesConfig,
}

/// Mean goals of the home and the away side and the Dixon-Coles ρ over the five leagues of
/// `../shared/data`, 2012/13-2019/20 (14,507 matches): what a competition without results starts
/// from.
pub const LEAGUE_HOME_GOALS: f64 = 1.548;
pub const LEAGUE_AWAY_GOALS: f64 = 1.187;
pub const LEAGUE_RHO: f64 = -0.05;

/// Version string of this implementation (part of every prediction's `model_version`); 2: league-mean
/// prior worth 3 matches and promoted-team prior 3 by default; 3: shots on target mixed into the
/// goal rates (weight 0.3), decay 0.0025/day, league-mean prior 1 (chosen on the validation
/// seasons 2017/18-2019/20 of five leagues, `infra/bench/validation.sh`: pooled RPS 0.19781
/// against 0.19839). The database stores the shots at import (`history::load` reads them), so
/// the service predicts with what the backtest measures; matches without them count their goals.
pub const DIXON_COLES_VERSION: &str = "statistical-dc-3";

/// Teams and index data of the matches known before `as_of`, weighted by decay.
pub fn build_data(
    matches: &[&MatchRecord],
    as_of: NaiveDateTime,
    xi: f64,
    window_days: Option<f64>,
    shots_weight: f64,
) -> (Vec<String>, DcData) {
    let mut names: Vec<&str> = Vec::new();
    let mut data = DcData::default();
    let mut used: Vec<&MatchRecord> = Vec::with_capacity(matches.len());
    for m in matches {
        let age = days_between(m.kickoff(), as_of).max(0.0);
        if window_days.is_some_and(|w| age > w) {
            continue;
        }
        used.push(m);
        data.weights.push((-xi * age).exp());
        names.push(&m.home);
        names.push(&m.away);
    }
    names.sort_unstable();
    names.dedup();
    let idx = |s: &str| names.binary_search(&s).unwrap_or(0) as u32;
    for m in &used {
        data.home.push(idx(&m.home));
        data.away.push(idx(&m.away));
        data.home_goals.push(m.home_goals);
        data.away_goals.push(m.away_goals);
    }
    data.n_teams = names.len();
    if shots_weight > 0.0 {
        // Goals per shot on target of the matches with statistics, weighted like the fit.
        let (mut goals, mut shots) = (0.0, 0.0);
        for (m, w) in used.iter().zip(&data.weights) {
            if let Some(s) = &m.stats {
                goals += w * (f64::from(m.home_goals) + f64::from(m.away_goals));
                shots += w * (f64::from(s.home_shots_on_target) + f64::from(s.away_shots_on_target));
            }
        }
        if goals > 0.0 && shots > 0.0 {
            let c = goals / shots;
            let mix = |k: u8, s: u8| (1.0 - shots_weight) * f64::from(k) + shots_weight * c * f64::from(s);
            for m in &used {
                let (h, a) = match &m.stats {
                    Some(s) => (mix(m.home_goals, s.home_shots_on_target), mix(m.away_goals, s.away_shots_on_target)),
                    None => (f64::from(m.home_goals), f64::from(m.away_goals)),
                };
                data.home_target.push(h);
                data.away_target.push(a);
            }
        }
    }
    (names.into_iter().map(str::to_string).collect(), data)
}

/// Which teams are in their first `promoted_matches` matches after an absence (or since their
/// first appearance, when the history starts later than the league's first season).
fn promoted_flags(matches: &[&MatchRecord], teams: &[String], config: &DixonColesConfig) -> (Vec<bool>, Vec<bool>) {
    let n = teams.len();
    let mut last: Vec<Option<NaiveDateTime>> = vec![None; n];
    let mut since_return: Vec<usize> = vec![0; n];
    let mut returned: Vec<bool> = vec![false; n];
    let first_date = matches.first().map(|m| m.kickoff());
    for m in matches {
        for name in [&m.home, &m.away] {
            let Ok(i) = teams.binary_search(name) else {
                continue;
            };
            let k = m.kickoff();
            match last[i] {
                None => {
                    // A team first seen well after the history starts joined the league then.
                    returned[i] = first_date.is_some_and(|f| days_between(f, k) > config.absence_days);
                    since_return[i] = 0;
                }
                Some(prev) if days_between(prev, k) >= config.absence_days => {
                    returned[i] = true;
                    since_return[i] = 0;
                }
                _ => {}
            }
            since_return[i] += 1;
            last[i] = Some(k);
        }
    }
    let promoted: Vec<bool> = (0..n).map(|i| returned[i] && since_return[i] <= config.promoted_matches).collect();
    // Established: present, not promoted, and with a full season behind them.
    let established: Vec<bool> = (0..n).map(|i| !promoted[i] && since_return[i] >= 19).collect();
    (promoted, established)
}

impl DixonColesModel {
    /// Fits on the matches of `history` known before `as_of`, with the default configuration.
    pub fn fit(history: &[MatchRecord], as_of: NaiveDateTime) -> Result<Self, EngineError> {
        Self::fit_with(history, as_of, &DixonColesConfig::default())
    }

    /// Fits on the matches of `history` known before `as_of`.
    pub fn fit_with(
        history: &[MatchRecord],
        as_of: NaiveDateTime,
        config: &DixonColesConfig,
    ) -> Result<Self, EngineError> {
        let matches = history_before(history, as_of);
        Self::fit_sorted(&matches, as_of, config)
    }

    /// Fits on `matches`, which must be known before `as_of` and in chronological order (as
    /// [`history_before`] returns them).
    pub fn fit_sorted(
        matches: &[&MatchRecord],
        as_of: NaiveDateTime,
        config: &DixonColesConfig,
    ) -> Result<Self, EngineError> {
        Self::fit_sorted_warm(matches, as_of, config, &mut DcWarmStart::default())
    }

    /// [`Self::fit_sorted`] starting the optimiser from the parameters of the previous fit kept
    /// in `warm` (a rolling backtest's previous match date), and leaving this fit's there. The
    /// optimum is the same to the optimiser's tolerance; from a nearby start it takes a fraction
    /// of the iterations. A start that fails falls back to the cold start. Only fits with a
    /// league-mean prior (`prior_strength` > 0) start warm (see below).
    pub fn fit_sorted_warm(
        matches: &[&MatchRecord],
        as_of: NaiveDateTime,
        config: &DixonColesConfig,
        warm: &mut DcWarmStart,
    ) -> Result<Self, EngineError> {
        let (teams, data) = build_data(matches, as_of, config.xi, config.window_days, config.shots_weight);
        let n = teams.len();
        if n < 2 || data.weights.iter().sum::<f64>() < 1e-9 {
            // A competition without results yet: every team alike, with other competitions'
            // home and away scoring rates.
            return Ok(Self::league_prior(as_of, config));
        }
        let (promoted, established) = promoted_flags(matches, &teams, config);
        let options = FitOptions::default();
        // Only a penalised fit starts warm: its optimum is unique and well conditioned. Plain
        // maximum likelihood (`prior_strength` 0, ml_model's features) has no finite optimum
        // when a team has not scored (or conceded) in the matches fitted on, say a promoted
        // team's first match, and where Newton's method stops on that ridge depends on where it
        // started: a warm start moved such predictions by up to 0.04 in an EPL backtest.
        let warm = (config.prior_strength > 0.0).then_some(warm);
        let start = warm.as_ref().and_then(|w| w.start_for(&teams));
        // From the warm start when there is one; from the cold start when that fails.
        let fit = |prior: Option<&DcPrior>| match start.as_ref() {
            Some(s) => {
                fit_params(&data, prior, Some(s), &options).or_else(|_| fit_params(&data, prior, None, &options))
            }
            None => fit_params(&data, prior, None, &options),
        };

        // Pass 1: the league-mean prior only. Without one (plain maximum likelihood) the fit
        // falls back to the minimal prior when the MLE does not exist (a team that never scored).
        let mut prior = DcPrior {
            strength: vec![config.prior_strength.max(MIN_PRIOR_STRENGTH); n],
            attack_mean: vec![0.0; n],
            defence_mean: vec![0.0; n],
        };
        let first = if config.prior_strength > 0.0 {
            fit(Some(&prior))?
        } else {
            match fit(None) {
                Ok(p) => p,
                Err(_) => fit_params(&data, Some(&prior), None, &options)?,
            }
        };
        let unknown = weakest_offset(&first, &established, config.promoted_reference_teams);
        if let Some(w) = warm {
            w.keep(&teams, &first, unknown);
        }
        // Pass 2: promoted teams pulled towards the weakest established teams.
        let params = if config.promoted_prior_strength > 0.0 && promoted.iter().any(|&p| p) {
            for i in (0..n).filter(|&i| promoted[i]) {
                prior.strength[i] += config.promoted_prior_strength;
                prior.attack_mean[i] = unknown.0;
                prior.defence_mean[i] = unknown.1;
            }
            fit_params(&data, Some(&prior), Some(&first), &options)?
        } else {
            first
        };

        let mut params = params;
        if let Some(hx) = config.home_xi.filter(|_| config.xi > 0.0) {
            // Σ w'(λh − goals) = 0 for the home advantage alone (ρ's small share ignored), with
            // w' = exp(−hx × age) = w^(hx/xi).
            let (mut num, mut den) = (0.0, 0.0);
            for m in 0..data.len() {
                let w = data.weights[m].powf(hx / config.xi);
                let (h, a) = (data.home[m] as usize, data.away[m] as usize);
                num += w * data.targets(m).0;
                den += w * (params.attack[h] + params.defence[a]).exp();
            }
            if num > 0.0 && den > 0.0 {
                params.home_advantage = (num / den).ln();
            }
        }
        let mean_att = params.attack.iter().sum::<f64>() / n as f64;
        let mean_def = params.defence.iter().sum::<f64>() / n as f64;
        Ok(DixonColesModel {
            model_version: format!("{DIXON_COLES_VERSION}+xi{}", config.xi),
            as_of,
            teams: teams
                .into_iter()
                .enumerate()
                .map(|(i, team)| TeamStrength { team, attack: params.attack[i], defence: params.defence[i] })
                .collect(),
            home_advantage: params.home_advantage,
            rho: params.rho,
            unknown_attack: mean_att + unknown.0,
            unknown_defence: mean_def + unknown.1,
            matches_used: data.len(),
            log_likelihood: params.log_likelihood,
            config: config.clone(),
        })
    }

    /// The model of a competition without any result: other competitions' average home and away
    /// goals ([`LEAGUE_HOME_GOALS`], [`LEAGUE_AWAY_GOALS`]) and ρ, every team alike.
    pub fn league_prior(as_of: NaiveDateTime, config: &DixonColesConfig) -> Self {
        DixonColesModel {
            model_version: format!("{DIXON_COLES_VERSION}+xi{}+prior", config.xi),
            as_of,
            teams: Vec::new(),
            home_advantage: (LEAGUE_HOME_GOALS / LEAGUE_AWAY_GOALS).ln(),
            rho: LEAGUE_RHO,
            unknown_attack: 0.0,
            unknown_defence: LEAGUE_AWAY_GOALS.ln(),
            matches_used: 0,
            log_likelihood: 0.0,
            config: config.clone(),
        }
    }

    /// A team's fitted (attack, defence), or `None` when it was not in the history.
    pub fn team_strength(&self, team: &str) -> Option<(f64, f64)> {
        self.teams
            .binary_search_by(|t| t.team.as_str().cmp(team))
            .ok()
            .map(|i| (self.teams[i].attack, self.teams[i].defence))
    }

    /// Whether the team was in the history.
    pub fn knows(&self, team: &str) -> bool {
        self.team_strength(team).is_some()
    }

    fn strength_or_prior(&self, team: &str) -> (f64, f64) {
        self.team_strength(team).unwrap_or((self.unknown_attack, self.unknown_defence))
    }

    /// Expected goals (λ home, λ away) before the grid's truncation.
    pub fn lambdas(&self, home: &str, away: &str) -> (f64, f64) {
        let (ah, dh) = self.strength_or_prior(home);
        let (aa, da) = self.strength_or_prior(away);
        ((self.home_advantage + ah + da).exp(), (aa + dh).exp())
    }

    /// The score grid of a match.
    pub fn grid(&self, home: &str, away: &str) -> ScoreGrid {
        let (lh, la) = self.lambdas(home, away);
        ScoreGrid::dixon_coles(lh, la, self.rho, self.config.max_goals)
    }

    /// Predicts a match; teams absent from the history get the promoted-team prior.
    pub fn predict(&self, home: &str, away: &str) -> Prediction {
        self.grid(home, away).to_prediction(&self.model_version)
    }
}

/// Mean (attack, defence) of the `k` weakest established teams relative to the league mean.
fn weakest_offset(p: &DcParams, established: &[bool], k: usize) -> (f64, f64) {
    let n = p.attack.len();
    let ma = p.attack.iter().sum::<f64>() / n as f64;
    let md = p.defence.iter().sum::<f64>() / n as f64;
    let mut idx: Vec<usize> = (0..n).filter(|&i| established[i]).collect();
    if idx.is_empty() {
        idx = (0..n).collect();
    }
    // Strength: attack minus defence (a high defence concedes more).
    idx.sort_by(|&i, &j| (p.attack[i] - p.defence[i]).total_cmp(&(p.attack[j] - p.defence[j])));
    let take = k.clamp(1, idx.len());
    let (sa, sd) = idx[..take].iter().fold((0.0, 0.0), |(a, d), &i| (a + p.attack[i] - ma, d + p.defence[i] - md));
    (sa / take as f64, sd / take as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(n: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 1, 1).expect("date").and_hms_opt(15, 0, 0).expect("time")
            + chrono::Duration::days(n)
    }

    /// A small league: every pair home and away, with scores that make the teams differ.
    fn tiny_league() -> Vec<MatchRecord> {
        let teams = ["A", "B", "C", "D"];
        let scores = [(2, 0), (3, 1), (1, 0), (2, 2), (2, 1), (0, 1), (1, 2), (3, 0), (1, 1), (0, 3), (4, 1), (0, 0)];
        let mut out = Vec::new();
        let mut k = 0;
        for round in 0..2 {
            for (i, h) in teams.iter().enumerate() {
                for (j, a) in teams.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    let (hg, ag) = scores[k % scores.len()];
                    let mut m = MatchRecord::new(day(k as i64 + round * 30).date(), *h, *a, hg, ag);
                    m.time = Some(day(0).time());
                    out.push(m);
                    k += 1;
                }
            }
        }
        out
    }

    /// Finite-difference check of the analytic gradient and Hessian.
    #[test]
    fn analytic_derivatives_match_finite_differences() {
        let hist = tiny_league();
        let refs: Vec<&MatchRecord> = hist.iter().collect();
        let (_, data) = build_data(&refs, day(100), 0.01, None, 0.0);
        let n = data.n_teams;
        let prior = DcPrior {
            strength: vec![0.5, 1.0, 2.0, 0.5],
            attack_mean: vec![0.1, -0.2, 0.0, 0.1],
            defence_mean: vec![0.0, 0.1, -0.1, 0.0],
        };
        let theta: Vec<f64> =
            (0..2 * n + 2).map(|i| 0.05 * (i as f64).sin() + if i == 2 * n + 1 { -0.1 } else { 0.0 }).collect();
        let dim = theta.len();
        let mut ws =
            Workspace { grad: vec![0.0; dim], hess: Matrix::zeros(dim), chol: Vec::new(), trial: vec![0.0; dim] };
        derivatives(&data, Some(&prior), &theta, &mut ws);
        let eps = 1e-6;
        for i in 0..dim {
            let mut tp = theta.clone();
            let mut tm = theta.clone();
            tp[i] += eps;
            tm[i] -= eps;
            let fd = (objective(&data, Some(&prior), &tp) - objective(&data, Some(&prior), &tm)) / (2.0 * eps);
            assert!((fd - ws.grad[i]).abs() < 1e-5, "grad {i}: {fd} vs {}", ws.grad[i]);
            let mut wp =
                Workspace { grad: vec![0.0; dim], hess: Matrix::zeros(dim), chol: Vec::new(), trial: vec![0.0; dim] };
            let mut wm =
                Workspace { grad: vec![0.0; dim], hess: Matrix::zeros(dim), chol: Vec::new(), trial: vec![0.0; dim] };
            derivatives(&data, Some(&prior), &tp, &mut wp);
            derivatives(&data, Some(&prior), &tm, &mut wm);
            for j in 0..dim {
                let fdh = (wp.grad[j] - wm.grad[j]) / (2.0 * eps);
                assert!((fdh - ws.hess.at(i, j)).abs() < 1e-4, "hess {i},{j}: {fdh} vs {}", ws.hess.at(i, j));
            }
        }
    }

    #[test]
    fn fit_on_a_tiny_league_is_a_stationary_point_with_sum_zero_attack() {
        let hist = tiny_league();
        let model = DixonColesModel::fit_with(&hist, day(200), &DixonColesConfig::plain_mle(0.0)).expect("fit");
        let sum: f64 = model.teams.iter().map(|t| t.attack).sum();
        assert!(sum.abs() < 1e-8, "sum of attacks {sum}");
        // A scored 2,3,1 at home against B,C,D and is the strongest attack.
        let a = model.team_strength("A").expect("A").0;
        assert!(model.teams.iter().all(|t| t.attack <= a + 1e-12));
        // Stationary point: the gradient of the plain likelihood vanishes.
        let refs: Vec<&MatchRecord> = hist.iter().collect();
        let (_, data) = build_data(&refs, day(200), 0.0, None, 0.0);
        let p = fit_params(&data, None, None, &FitOptions::default()).expect("fit");
        let mut theta = p.attack.clone();
        theta.extend(&p.defence);
        theta.push(p.home_advantage);
        theta.push(p.rho);
        let dim = theta.len();
        let mut ws =
            Workspace { grad: vec![0.0; dim], hess: Matrix::zeros(dim), chol: Vec::new(), trial: vec![0.0; dim] };
        derivatives(&data, None, &theta, &mut ws);
        assert!(ws.grad.iter().all(|g| g.abs() < 1e-6), "{:?}", ws.grad);
        // Total expected goals match the observed totals at the MLE without rho (Poisson score
        // equations); with rho they stay close.
        let pred = model.predict("A", "D");
        assert!((pred.p_home + pred.p_draw + pred.p_away - 1.0).abs() < 1e-12);
        assert!(pred.p_home > pred.p_away);
    }

    #[test]
    fn a_warm_start_reaches_the_same_optimum_in_fewer_iterations() {
        let hist = tiny_league();
        let refs: Vec<&MatchRecord> = hist.iter().collect();
        let config = DixonColesConfig::default();
        // The previous date's fit: all but the last match, a day earlier.
        let mut warm = DcWarmStart::default();
        let earlier =
            DixonColesModel::fit_sorted_warm(&refs[..refs.len() - 1], day(69), &config, &mut warm).expect("fit");
        assert!(warm.params.is_some());
        let (teams, data) = build_data(&refs, day(70), config.xi, None, config.shots_weight);
        let n = teams.len();
        let prior =
            DcPrior { strength: vec![config.prior_strength; n], attack_mean: vec![0.0; n], defence_mean: vec![0.0; n] };
        let start = warm.start_for(&teams).expect("start");
        let cold = fit_params(&data, Some(&prior), None, &FitOptions::default()).expect("cold");
        let hot = fit_params(&data, Some(&prior), Some(&start), &FitOptions::default()).expect("warm");
        assert!(hot.iterations < cold.iterations, "{} vs {}", hot.iterations, cold.iterations);
        for (a, b) in cold.attack.iter().chain(&cold.defence).zip(hot.attack.iter().chain(&hot.defence)) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        // The model: the same to the tolerance.
        let later = DixonColesModel::fit_sorted_warm(&refs, day(70), &config, &mut warm).expect("fit");
        let again = DixonColesModel::fit_sorted(&refs, day(70), &config).expect("fit");
        for (a, b) in later.teams.iter().zip(&again.teams) {
            assert!((a.attack - b.attack).abs() < 1e-9 && (a.defence - b.defence).abs() < 1e-9, "{a:?} {b:?}");
        }
        assert_ne!(earlier.teams, later.teams);
        // A team the previous fit did not have starts at the promoted-team strength.
        let with_new: Vec<String> = ["A", "B", "C", "D", "Newcomers"].iter().map(|s| s.to_string()).collect();
        let s = warm.start_for(&with_new).expect("start");
        let p = warm.params.as_ref().expect("params");
        let ma = p.attack.iter().sum::<f64>() / 4.0;
        assert!((s.attack[4] - (ma + warm.unknown.0)).abs() < 1e-12);
        assert_eq!(s.attack[..4], p.attack[..]);
        // A plain maximum-likelihood fit starts cold and leaves nothing behind.
        let mut unused = DcWarmStart::default();
        DixonColesModel::fit_sorted_warm(&refs, day(70), &DixonColesConfig::plain_mle(0.0), &mut unused).expect("fit");
        assert!(unused.params.is_none());
    }

    #[test]
    fn unknown_teams_get_the_weak_prior() {
        let hist = tiny_league();
        let model = DixonColesModel::fit_with(&hist, day(200), &DixonColesConfig::default()).expect("fit");
        let p = model.predict("Newcomers", "A");
        assert!(p.p_away > p.p_home);
        assert!(!model.knows("Newcomers"));
    }

    #[test]
    fn decay_weights_downweight_old_matches() {
        let refs_hist = tiny_league();
        let refs: Vec<&MatchRecord> = refs_hist.iter().collect();
        let (_, data) = build_data(&refs, day(100), 0.01, None, 0.0);
        assert!(data.weights.windows(2).all(|w| w[0] <= w[1] + 1e-15));
        // The last match was played on day 53: 47 days before day 100.
        let last = data.weights.last().copied().unwrap_or(0.0);
        assert!((last - (-0.01f64 * 47.0).exp()).abs() < 1e-9, "{last}");
    }

    #[test]
    fn shots_on_target_are_a_second_signal() {
        use crate::engine::data::MatchStats;
        // Same goals; C has many more shots on target than D in every match.
        let mut hist = tiny_league();
        for m in &mut hist {
            let on_target = |t: &str, g: u8| g + if t == "C" { 6 } else { 2 };
            m.stats = Some(MatchStats {
                home_shots: 12,
                away_shots: 12,
                home_shots_on_target: on_target(&m.home, m.home_goals),
                away_shots_on_target: on_target(&m.away, m.away_goals),
            });
        }
        let goals_config = DixonColesConfig { shots_weight: 0.0, ..DixonColesConfig::default() };
        let goals_only = DixonColesModel::fit_with(&hist, day(200), &goals_config).expect("fit");
        let plain: Vec<MatchRecord> = hist
            .iter()
            .cloned()
            .map(|mut m| {
                m.stats = None;
                m
            })
            .collect();
        assert_eq!(
            goals_only.teams,
            DixonColesModel::fit_with(&plain, day(200), &goals_config).expect("fit").teams,
            "shots_weight 0 reads goals only"
        );
        let config = DixonColesConfig { shots_weight: 0.5, ..DixonColesConfig::default() };
        let mixed = DixonColesModel::fit_with(&hist, day(200), &config).expect("fit");
        let gain = |m: &DixonColesModel, t: &str| m.team_strength(t).expect("team").0;
        assert!(gain(&mixed, "C") - gain(&mixed, "D") > gain(&goals_only, "C") - gain(&goals_only, "D") + 0.05);
        // Without statistics the mix is goals only.
        let no_stats = DixonColesModel::fit_with(&plain, day(200), &config).expect("fit");
        assert_eq!(no_stats.teams, goals_only.teams);
        // The analytic gradient holds for fractional targets too.
        let refs: Vec<&MatchRecord> = hist.iter().collect();
        let (_, data) = build_data(&refs, day(100), 0.01, None, 0.5);
        assert_eq!(data.home_target.len(), data.len());
        let theta: Vec<f64> = (0..2 * data.n_teams + 2).map(|i| 0.03 * (i as f64).cos() - 0.05).collect();
        let dim = theta.len();
        let mut ws =
            Workspace { grad: vec![0.0; dim], hess: Matrix::zeros(dim), chol: Vec::new(), trial: vec![0.0; dim] };
        derivatives(&data, None, &theta, &mut ws);
        for i in 0..dim {
            let (mut tp, mut tm) = (theta.clone(), theta.clone());
            tp[i] += 1e-6;
            tm[i] -= 1e-6;
            let fd = (objective(&data, None, &tp) - objective(&data, None, &tm)) / 2e-6;
            assert!((fd - ws.grad[i]).abs() < 1e-5, "grad {i}: {fd} vs {}", ws.grad[i]);
        }
    }
}
