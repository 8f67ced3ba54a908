//! `historical`: strength from the results history alone.
//!
//! An Elo rating with home advantage and a goal-difference multiplier (the World Football Elo
//! rule: ×1.5 for a two-goal win, ×(11+n)/8 for n ≥ 3), partial regression to the mean over the
//! summer break, and promoted teams entering at the average rating of the weakest established
//! teams. Recent form (points per game over the last matches) and head-to-head (shrunk mean goal
//! difference of recent meetings) join the rating difference as covariates of an ordered logit
//! fitted by weighted maximum likelihood on the pre-match values of past matches (after a burn-in
//! season); expected goals come from Poisson regressions on the rating difference. The score grid
//! (Poisson goals, its home/draw/away regions rescaled to the ordered logit's probabilities)
//! gives every output.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a: the Elo pass looks team names up several times per match, and SipHash (the standard
/// map's DoS-resistant hasher, pointless for our own team names) was a fifth of a backtest's time.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::data::{MatchRecord, days_between, history_before};
use super::dixon_coles::{DcWarmStart, DixonColesConfig, DixonColesModel};
use super::error::EngineError;
use super::grid::{DEFAULT_MAX_GOALS, Prediction, ScoreGrid};
use super::regression::{Design, OrderedLogit, PoissonRegression};

/// Elo settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EloConfig {
    /// Update step (rating points per unit of surprise).
    pub k: f64,
    /// Home advantage in rating points.
    pub home_advantage: f64,
    /// Scale updates by the goal-difference multiplier.
    pub goal_difference: bool,
    /// Rating of the teams present when the history starts.
    pub initial: f64,
    /// Fraction of a team's distance to the mean removed after a break of `break_days`.
    pub season_regression: f64,
    /// A gap at least this long between two matches of a team is a season break.
    pub break_days: f64,
    /// A gap at least this long means the team was out of the league (relegated); it comes back
    /// at the promoted-team rating.
    pub absence_days: f64,
    /// How many of the weakest active teams define the promoted-team rating.
    pub promoted_reference_teams: usize,
}

impl Default for EloConfig {
    fn default() -> Self {
        EloConfig {
            k: 15.0,
            home_advantage: 65.0,
            goal_difference: true,
            initial: 1500.0,
            season_regression: 0.0,
            break_days: 45.0,
            absence_days: 200.0,
            promoted_reference_teams: 3,
        }
    }
}

/// Online attack and defence ratings on the log scale of a count (goals, or shots on target),
/// moved after each match by a step of the Poisson log-likelihood's gradient:
/// `log λ_home = base + home + attack[home] + defence[away]`, `log λ_away = base + attack[away] +
/// defence[home]`; after the match each rating moves by `k × (count − λ)`. A recency-weighted
/// Poisson fit in one pass, cheap enough to run over every match of a history.
#[derive(Debug, Clone, Default)]
pub struct OnlineRatings {
    k: f64,
    base: f64,
    home: f64,
    teams: FastMap<String, (f64, f64, NaiveDateTime)>,
    updates: usize,
    /// See [`HistoricalConfig::provisional_matches`] (0: a constant step).
    provisional: f64,
    /// Matches of each team since it (re-)entered the league.
    played: FastMap<String, usize>,
}

impl OnlineRatings {
    /// Ratings with step `k`, starting from `home_mean` and `away_mean` counts per match.
    pub fn new(k: f64, home_mean: f64, away_mean: f64) -> Self {
        OnlineRatings {
            k,
            base: away_mean.ln(),
            home: (home_mean / away_mean).ln(),
            teams: FastMap::default(),
            updates: 0,
            provisional: 0.0,
            played: FastMap::default(),
        }
    }

    /// The step of a team's first matches is `k × provisional / (n + 1)` while that exceeds `k`
    /// (n: its matches since it entered the league): a new rating moves like a running mean.
    pub fn with_provisional(mut self, provisional_matches: f64) -> Self {
        self.provisional = provisional_matches;
        self
    }

    /// (attack, defence) of a team at `now`: its own when it played within `absence_days`, else
    /// the mean of the three weakest active teams (a promoted team).
    fn get(&self, team: &str, now: NaiveDateTime, absence_days: f64) -> (f64, f64) {
        if let Some(&(a, d, last)) = self.teams.get(team)
            && days_between(last, now) < absence_days
        {
            return (a, d);
        }
        let mut active: Vec<(f64, f64)> = self
            .teams
            .iter()
            .filter(|(name, t)| name.as_str() != team && days_between(t.2, now) < absence_days)
            .map(|(_, t)| (t.0, t.1))
            .collect();
        if active.len() < 6 {
            return (0.0, 0.0);
        }
        active.sort_by(|x, y| (x.0 - x.1).total_cmp(&(y.0 - y.1)));
        let w = &active[..3];
        (w.iter().map(|t| t.0).sum::<f64>() / 3.0, w.iter().map(|t| t.1).sum::<f64>() / 3.0)
    }

    /// `log λ_home − log λ_away` of a match.
    pub fn supremacy(&self, home: &str, away: &str, now: NaiveDateTime, absence_days: f64) -> f64 {
        let (ah, dh) = self.get(home, now, absence_days);
        let (aa, da) = self.get(away, now, absence_days);
        self.home + ah + da - aa - dh
    }

    /// Whether both teams have ratings of their own.
    pub fn knows(&self, home: &str, away: &str) -> bool {
        self.teams.contains_key(home) && self.teams.contains_key(away)
    }

    pub fn update(
        &mut self,
        home: &str,
        away: &str,
        home_count: f64,
        away_count: f64,
        now: NaiveDateTime,
        absence_days: f64,
    ) {
        let (ah, dh) = self.get(home, now, absence_days);
        let (aa, da) = self.get(away, now, absence_days);
        let lh = (self.base + self.home + ah + da).exp();
        let la = (self.base + aa + dh).exp();
        let (rh, ra) = (self.k * (home_count - lh), self.k * (away_count - la));
        let (gh, ga) = if self.provisional > 0.0 {
            let mut gain = |team: &str| {
                let present = self.teams.get(team).is_some_and(|t| days_between(t.2, now) < absence_days);
                let n = self.played.entry(team.to_string()).or_default();
                if !present {
                    *n = 0;
                }
                let g = provisional_gain(self.provisional, *n);
                *n += 1;
                g
            };
            (gain(home), gain(away))
        } else {
            (1.0, 1.0)
        };
        // A team's own ratings move by its own gain; the league's level by the plain step.
        let value_home = (ah + gh * rh, dh + gh * ra, now);
        let value_away = (aa + ga * ra, da + ga * rh, now);
        for (team, value) in [(home, value_home), (away, value_away)] {
            match self.teams.get_mut(team) {
                Some(t) => *t = value,
                None => {
                    self.teams.insert(team.to_string(), value);
                }
            }
        }
        // The league's level and home advantage move slowly.
        self.base += 0.02 * (rh + ra) / 2.0;
        self.home += 0.02 * (rh - ra) / 2.0;
        self.updates += 1;
    }
}

/// The multiplier of a rating step for a team with `n` matches since it entered the league:
/// `provisional / (n + 1)` while above 1 (0 or less: always 1).
pub fn provisional_gain(provisional: f64, n: usize) -> f64 {
    (provisional / (n as f64 + 1.0)).max(1.0)
}

/// Settings of the `historical` strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoricalConfig {
    pub elo: EloConfig,
    /// Matches of recent form per team.
    pub form_matches: usize,
    /// Recent meetings used for head-to-head.
    pub h2h_matches: usize,
    /// Meetings older than this are ignored.
    pub h2h_days: f64,
    /// The first matches of the history only warm the ratings up; the logit learns from the rest.
    pub burn_in_matches: usize,
    /// Decay per day of the training weights of the ordered logit.
    pub sample_xi: f64,
    /// L2 penalty of the ordered logit's slopes (towards the league prior's).
    pub l2: f64,
    /// How many matches the league prior ([`LeaguePrior`]: other competitions' fit of the
    /// ordered logit and the goals regressions) is worth: it decides a new competition's first
    /// predictions and fades as its own matches accumulate.
    pub prior_matches: f64,
    /// Step of the online goal ratings ([`OnlineRatings`]): their supremacy is a covariate.
    pub goal_k: f64,
    /// Step of the online shots-on-target ratings (when the history has shots); without shots
    /// the covariate is the goal supremacy.
    pub shots_k: f64,
    pub max_goals: usize,
    /// Provisional ratings: the Elo, goal and shots steps of a team's first matches in the
    /// league (from the start of the history, or after an absence) are multiplied by
    /// `provisional_matches / (n + 1)` while that exceeds 1 (n: its matches so far), so that a
    /// new competition's ratings converge within its first half season instead of over several
    /// seasons. 0: a constant step (absent from a JSON config: 0, so configs and the `ml_model`
    /// artifacts written before keep their meaning).
    #[serde(default)]
    pub provisional_matches: f64,
    /// A short history's prior: the outcome probabilities are pooled with those of a batch
    /// Dixon-Coles fit of the same history (the `statistical` fit, with its settings), the
    /// batch fit weighing `batch_matches / (batch_matches + n)` for a history of n matches. An
    /// Elo pass and online ratings need seasons to converge; a batch fit of half a season is
    /// already usable, so a new competition's `historical` leans on it and leaves it as its own
    /// ratings mature. 0: off (absent from a JSON config: 0).
    #[serde(default)]
    pub batch_matches: f64,
}

impl Default for HistoricalConfig {
    fn default() -> Self {
        HistoricalConfig {
            elo: EloConfig::default(),
            form_matches: 6,
            h2h_matches: 6,
            h2h_days: 1500.0,
            burn_in_matches: 300,
            sample_xi: 0.0005,
            l2: 1.0,
            prior_matches: 50.0,
            goal_k: 0.04,
            shots_k: 0.02,
            max_goals: DEFAULT_MAX_GOALS,
            provisional_matches: 0.0,
            // Chosen on the validation seasons 2017/18-2019/20 of five leagues: whole seasons
            // 0.19820 -> 0.19740, second halves from the first 0.20409 -> 0.19863.
            batch_matches: 3000.0,
        }
    }
}

/// What `historical` assumes before a competition has results of its own: its ordered logit and
/// goals regressions fitted on other competitions (the five leagues of `../shared/data`,
/// 2012/13-2019/20: home 45.6%, draw 24.9%, away 29.6%, 1.55 and 1.19 goals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaguePrior {
    pub outcome_model: OrderedLogit,
    pub goals_home: PoissonRegression,
    pub goals_away: PoissonRegression,
}

impl LeaguePrior {
    pub fn builtin() -> Self {
        LeaguePrior {
            outcome_model: OrderedLogit { thresholds: [-0.44, 0.60], beta: vec![1.3, 0.05, 0.02, 0.3, 0.3] },
            goals_home: PoissonRegression { coefficients: vec![0.292, 0.9] },
            goals_away: PoissonRegression { coefficients: vec![0.32, -0.9] },
        }
    }
}

/// Covariates of the ordered logit: rating difference, form, head-to-head, goal supremacy,
/// shots-on-target supremacy.
pub const N_COVARIATES: usize = 5;

/// League-average points per game, the padding of short form histories.
const AVERAGE_PPG: f64 = 1.37;
/// Pseudo-meetings of zero goal difference that shrink head-to-head means.
const H2H_SHRINK: f64 = 3.0;

#[derive(Debug, Clone)]
struct TeamState {
    rating: f64,
    last: NaiveDateTime,
    matches: usize,
    recent_points: VecDeque<f64>,
}

/// Elo ratings, form and head-to-head, updated match by match in chronological order.
#[derive(Debug, Clone)]
pub struct EloTracker {
    config: EloConfig,
    form_matches: usize,
    h2h_matches: usize,
    teams: FastMap<String, TeamState>,
    goals: OnlineRatings,
    shots: OnlineRatings,
    /// [`HistoricalConfig::provisional_matches`].
    provisional: f64,
    /// Meetings per (alphabetically first, second) pair: (kick-off, goal difference of the first).
    h2h: FastMap<(String, String), VecDeque<(NaiveDateTime, i32)>>,
}

/// Goal-difference multiplier of the World Football Elo ratings.
pub fn goal_difference_multiplier(gd: u32) -> f64 {
    match gd {
        0 | 1 => 1.0,
        2 => 1.5,
        n => (11.0 + n as f64) / 8.0,
    }
}

/// Elo expected score of a side `diff` rating points stronger.
pub fn elo_expected(diff: f64) -> f64 {
    1.0 / (1.0 + 10f64.powf(-diff / 400.0))
}

impl EloTracker {
    pub fn new(config: &HistoricalConfig) -> Self {
        EloTracker {
            config: config.elo.clone(),
            form_matches: config.form_matches.max(1),
            h2h_matches: config.h2h_matches,
            teams: FastMap::default(),
            h2h: FastMap::default(),
            goals: OnlineRatings::new(config.goal_k, 1.5, 1.2).with_provisional(config.provisional_matches),
            shots: OnlineRatings::new(config.shots_k, 4.8, 3.9).with_provisional(config.provisional_matches),
            provisional: config.provisional_matches,
        }
    }

    /// Goal supremacy (`log λ_home − log λ_away`) by the online goal ratings.
    pub fn goal_supremacy(&self, home: &str, away: &str, now: NaiveDateTime) -> f64 {
        self.goals.supremacy(home, away, now, self.config.absence_days)
    }

    /// Shots-on-target supremacy when both teams have shot statistics, else the goal supremacy.
    pub fn shots_supremacy(&self, home: &str, away: &str, now: NaiveDateTime) -> f64 {
        if self.shots.knows(home, away) {
            self.shots.supremacy(home, away, now, self.config.absence_days)
        } else {
            self.goal_supremacy(home, away, now)
        }
    }

    /// The rating a team gets when it (re-)enters the league at `now`: the mean of the weakest
    /// active teams, or the initial rating while too few teams have played.
    pub fn promoted_rating(&self, now: NaiveDateTime, exclude: &str) -> f64 {
        let mut active: Vec<f64> = self
            .teams
            .iter()
            .filter(|(name, t)| {
                name.as_str() != exclude && t.matches >= 10 && days_between(t.last, now) < self.config.absence_days
            })
            .map(|(_, t)| t.rating)
            .collect();
        let k = self.config.promoted_reference_teams.max(1);
        if active.len() < k.max(4) {
            return self.config.initial;
        }
        active.sort_by(f64::total_cmp);
        active[..k].iter().sum::<f64>() / k as f64
    }

    /// The rating `team` would have at `now` (before playing), applying absence and break rules.
    pub fn rating_at(&self, team: &str, now: NaiveDateTime) -> f64 {
        match self.teams.get(team) {
            None => self.promoted_rating(now, team),
            Some(t) => {
                let gap = days_between(t.last, now);
                if gap >= self.config.absence_days {
                    self.promoted_rating(now, team)
                } else if gap >= self.config.break_days {
                    let m = self.config.initial;
                    m + (t.rating - m) * (1.0 - self.config.season_regression)
                } else {
                    t.rating
                }
            }
        }
    }

    /// Points per game over the team's last matches, padded with the league average.
    pub fn form(&self, team: &str, now: NaiveDateTime) -> f64 {
        let n = self.form_matches;
        match self.teams.get(team) {
            Some(t) if days_between(t.last, now) < self.config.absence_days => {
                let s: f64 = t.recent_points.iter().sum();
                (s + AVERAGE_PPG * (n - t.recent_points.len()) as f64) / n as f64
            }
            _ => AVERAGE_PPG,
        }
    }

    /// Shrunk mean goal difference of `home` in its recent meetings with `away`.
    pub fn head_to_head(&self, home: &str, away: &str, now: NaiveDateTime, max_days: f64) -> f64 {
        let (key, sign) = if home <= away {
            ((home.to_string(), away.to_string()), 1.0)
        } else {
            ((away.to_string(), home.to_string()), -1.0)
        };
        match self.h2h.get(&key) {
            None => 0.0,
            Some(q) => {
                let (s, n) = q
                    .iter()
                    .filter(|(k, _)| days_between(*k, now) <= max_days)
                    .fold((0.0, 0.0), |(s, n), (_, gd)| (s + *gd as f64, n + 1.0));
                sign * s / (n + H2H_SHRINK)
            }
        }
    }

    /// The rating difference (home minus away, with home advantage) in units of 400 points.
    pub fn rating_difference(&self, home: &str, away: &str, now: NaiveDateTime) -> f64 {
        (self.rating_at(home, now) + self.config.home_advantage - self.rating_at(away, now)) / 400.0
    }

    /// Updates ratings, form and head-to-head with a finished match.
    pub fn update(&mut self, m: &MatchRecord) {
        let now = m.kickoff();
        let rh = self.rating_at(&m.home, now);
        let ra = self.rating_at(&m.away, now);
        let expected = elo_expected(rh + self.config.home_advantage - ra);
        let score = match m.outcome() {
            super::data::Outcome::Home => 1.0,
            super::data::Outcome::Draw => 0.5,
            super::data::Outcome::Away => 0.0,
        };
        let gd = (m.home_goals as i32 - m.away_goals as i32).unsigned_abs();
        let mult = if self.config.goal_difference { goal_difference_multiplier(gd) } else { 1.0 };
        let delta = self.config.k * mult * (score - expected);
        let (ph, pa) = match m.outcome() {
            super::data::Outcome::Home => (3.0, 0.0),
            super::data::Outcome::Draw => (1.0, 1.0),
            super::data::Outcome::Away => (0.0, 3.0),
        };
        let absence = self.config.absence_days;
        self.goals.update(&m.home, &m.away, f64::from(m.home_goals), f64::from(m.away_goals), now, absence);
        if let Some(s) = m.stats {
            let (h, a) = (f64::from(s.home_shots_on_target), f64::from(s.away_shots_on_target));
            self.shots.update(&m.home, &m.away, h, a, now, absence);
        }
        // Provisional ratings: a team new to the league moves faster (each by its own gain).
        let gain = |team: &str| {
            if self.provisional <= 0.0 {
                return 1.0;
            }
            let n = self.teams.get(team).filter(|t| days_between(t.last, now) < absence).map_or(0, |t| t.matches);
            provisional_gain(self.provisional, n)
        };
        let (gh, ga) = (gain(&m.home), gain(&m.away));
        let n = self.form_matches;
        for (team, rating, points) in [(&m.home, rh + gh * delta, ph), (&m.away, ra - ga * delta, pa)] {
            let st = self.teams.entry(team.clone()).or_insert_with(|| TeamState {
                rating,
                last: now,
                matches: 0,
                recent_points: VecDeque::new(),
            });
            if days_between(st.last, now) >= self.config.absence_days {
                st.matches = 0;
                st.recent_points.clear();
            }
            st.rating = rating;
            st.last = now;
            st.matches += 1;
            st.recent_points.push_back(points);
            while st.recent_points.len() > n {
                st.recent_points.pop_front();
            }
        }
        if self.h2h_matches > 0 {
            let (key, gd) = if m.home <= m.away {
                ((m.home.clone(), m.away.clone()), m.home_goals as i32 - m.away_goals as i32)
            } else {
                ((m.away.clone(), m.home.clone()), m.away_goals as i32 - m.home_goals as i32)
            };
            let q = self.h2h.entry(key).or_default();
            q.push_back((now, gd));
            while q.len() > self.h2h_matches {
                q.pop_front();
            }
        }
    }

    /// The covariates of a match at `now`: rating difference, form difference, head-to-head,
    /// goal supremacy, shots-on-target supremacy.
    pub fn features(&self, home: &str, away: &str, now: NaiveDateTime, h2h_days: f64) -> [f64; N_COVARIATES] {
        [
            self.rating_difference(home, away, now),
            self.form(home, now) - self.form(away, now),
            self.head_to_head(home, away, now, h2h_days),
            self.goal_supremacy(home, away, now),
            self.shots_supremacy(home, away, now),
        ]
    }

    /// Current ratings of the teams active at `now`.
    pub fn active_ratings(&self, now: NaiveDateTime) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .teams
            .iter()
            .filter(|(_, t)| days_between(t.last, now) < self.config.absence_days)
            .map(|(name, _)| (name.clone(), self.rating_at(name, now)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// A team's state in a fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamRating {
    pub team: String,
    pub rating: f64,
    pub form: f64,
}

/// Head-to-head value of a pair (from `team_a`'s point of view; `team_a < team_b`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadToHead {
    pub team_a: String,
    pub team_b: String,
    pub value: f64,
}

/// Ratings, form and head-to-head of every active team at one moment: what the Elo pass knows,
/// in a serialisable form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatingSnapshot {
    pub as_of: NaiveDateTime,
    /// Sorted by team name.
    pub teams: Vec<TeamRating>,
    /// Rating of a team absent from the history (promoted).
    pub unknown_rating: f64,
    /// Sorted by (team_a, team_b).
    pub head_to_head: Vec<HeadToHead>,
    pub home_advantage: f64,
    /// Last kick-off of each team (sorted like `teams`), for rest days.
    pub last_played: Vec<NaiveDateTime>,
    /// The online goal ratings at `as_of`.
    #[serde(default)]
    pub goals: RatingTable,
    /// The online shots-on-target ratings (teams without shot statistics are absent).
    #[serde(default)]
    pub shots: RatingTable,
}

/// [`OnlineRatings`] frozen at one moment, serialisable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RatingTable {
    pub home: f64,
    /// (team, attack, defence), sorted by team: the teams active at the moment.
    pub teams: Vec<(String, f64, f64)>,
    /// (attack, defence) of a team not in `teams` (promoted).
    pub unknown: (f64, f64),
}

impl RatingTable {
    fn of(r: &OnlineRatings, now: NaiveDateTime, absence_days: f64) -> Self {
        let mut teams: Vec<(String, f64, f64)> = r
            .teams
            .iter()
            .filter(|(_, t)| days_between(t.2, now) < absence_days)
            .map(|(name, t)| (name.clone(), t.0, t.1))
            .collect();
        teams.sort_by(|a, b| a.0.cmp(&b.0));
        RatingTable { home: r.home, teams, unknown: r.get("", now, absence_days) }
    }

    fn get(&self, team: &str) -> Option<(f64, f64)> {
        self.teams.binary_search_by(|t| t.0.as_str().cmp(team)).ok().map(|i| (self.teams[i].1, self.teams[i].2))
    }

    pub fn supremacy(&self, home: &str, away: &str) -> f64 {
        let (ah, dh) = self.get(home).unwrap_or(self.unknown);
        let (aa, da) = self.get(away).unwrap_or(self.unknown);
        self.home + ah + da - aa - dh
    }

    pub fn knows(&self, home: &str, away: &str) -> bool {
        self.get(home).is_some() && self.get(away).is_some()
    }
}

impl RatingSnapshot {
    /// The state of `tracker` at `as_of`.
    pub fn from_tracker(tracker: &EloTracker, as_of: NaiveDateTime, h2h_days: f64) -> Self {
        let active = tracker.active_ratings(as_of);
        let last_played = active.iter().map(|(t, _)| tracker.teams.get(t).map_or(as_of, |s| s.last)).collect();
        let teams: Vec<TeamRating> = active
            .into_iter()
            .map(|(team, rating)| {
                let form = tracker.form(&team, as_of);
                TeamRating { team, rating, form }
            })
            .collect();
        let mut head_to_head: Vec<HeadToHead> = tracker
            .h2h
            .keys()
            .map(|(a, b)| HeadToHead {
                team_a: a.clone(),
                team_b: b.clone(),
                value: tracker.head_to_head(a, b, as_of, h2h_days),
            })
            .filter(|h| h.value != 0.0)
            .collect();
        head_to_head.sort_by(|x, y| (&x.team_a, &x.team_b).cmp(&(&y.team_a, &y.team_b)));
        RatingSnapshot {
            as_of,
            teams,
            unknown_rating: tracker.promoted_rating(as_of, ""),
            head_to_head,
            home_advantage: tracker.config.home_advantage,
            last_played,
            goals: RatingTable::of(&tracker.goals, as_of, tracker.config.absence_days),
            shots: RatingTable::of(&tracker.shots, as_of, tracker.config.absence_days),
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.teams.binary_search_by(|t| t.team.as_str().cmp(name)).ok()
    }

    /// A team's rating (the promoted-team rating when unknown).
    pub fn rating(&self, team: &str) -> f64 {
        self.index(team).map_or(self.unknown_rating, |i| self.teams[i].rating)
    }

    /// Whether the team is active in the snapshot.
    pub fn knows(&self, team: &str) -> bool {
        self.index(team).is_some()
    }

    /// Days since the team's last match (None when unknown).
    pub fn rest_days(&self, team: &str) -> Option<f64> {
        self.index(team).map(|i| days_between(self.last_played[i], self.as_of))
    }

    fn h2h(&self, home: &str, away: &str) -> f64 {
        let (a, b, sign) = if home <= away { (home, away, 1.0) } else { (away, home, -1.0) };
        self.head_to_head
            .binary_search_by(|h| (h.team_a.as_str(), h.team_b.as_str()).cmp(&(a, b)))
            .map_or(0.0, |i| sign * self.head_to_head[i].value)
    }

    /// The covariates of a match: rating difference (with home advantage, in 400 points), form
    /// difference, head-to-head, goal supremacy, shots-on-target supremacy (the goal supremacy
    /// when a team has no shot statistics).
    pub fn features(&self, home: &str, away: &str) -> [f64; N_COVARIATES] {
        let form = |t: &str| self.index(t).map_or(AVERAGE_PPG, |i| self.teams[i].form);
        let goals = self.goals.supremacy(home, away);
        [
            (self.rating(home) + self.home_advantage - self.rating(away)) / 400.0,
            form(home) - form(away),
            self.h2h(home, away),
            goals,
            if self.shots.knows(home, away) { self.shots.supremacy(home, away) } else { goals },
        ]
    }
}

/// A fitted `historical` model: serialisable, so a service can cache it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoricalModel {
    pub model_version: String,
    pub as_of: NaiveDateTime,
    pub ratings: RatingSnapshot,
    pub outcome_model: OrderedLogit,
    pub goals_home: PoissonRegression,
    pub goals_away: PoissonRegression,
    pub training_matches: usize,
    pub config: HistoricalConfig,
    /// The batch fit pooled in (see [`HistoricalConfig::batch_matches`]) and its weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchPrior>,
}

/// The batch Dixon-Coles fit a short history's `historical` pools its probabilities with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPrior {
    pub weight: f64,
    pub model: DixonColesModel,
}

/// Version string of this implementation; 2: pooled with the batch prior
/// ([`HistoricalConfig::batch_matches`], 3000 by default).
pub const HISTORICAL_VERSION: &str = "historical-elo-ologit-2";

/// Pre-match covariates and results of a chronological history, as the Elo pass sees them.
#[derive(Debug, Clone)]
pub struct HistoricalSamples {
    pub design: Design,
    pub outcomes: Vec<super::data::Outcome>,
    pub home_goals: Vec<f64>,
    pub away_goals: Vec<f64>,
    pub kickoffs: Vec<NaiveDateTime>,
}

impl HistoricalSamples {
    fn new() -> Self {
        HistoricalSamples {
            design: Design::new(N_COVARIATES),
            outcomes: Vec::new(),
            home_goals: Vec::new(),
            away_goals: Vec::new(),
            kickoffs: Vec::new(),
        }
    }

    /// The samples from index `from` on.
    fn tail(&self, from: usize) -> HistoricalSamples {
        let from = from.min(self.outcomes.len());
        HistoricalSamples {
            design: Design {
                n_features: self.design.n_features,
                x: self.design.x[from * self.design.n_features..].to_vec(),
            },
            outcomes: self.outcomes[from..].to_vec(),
            home_goals: self.home_goals[from..].to_vec(),
            away_goals: self.away_goals[from..].to_vec(),
            kickoffs: self.kickoffs[from..].to_vec(),
        }
    }
}

/// The Elo pass carried from one fit to the next (a rolling backtest refits at every match date
/// on a history that only grows at its end): the tracker after the matches seen so far and the
/// pre-match covariates of every one of them. [`EloWarmStart::advance`] continues the pass over
/// the new matches only. The pass is a pure function of the chronological history (each update
/// reads the tracker and the match alone; covariates are taken at the match's own kick-off, never
/// at the fit's date), so the state is the very one a replay from the start reaches, bit for bit.
/// When the history is not an extension of what was seen (other matches, another order, other
/// settings) it starts again from scratch. The borrow of the matches (`'a`) keeps them alive and
/// unchanged while the state refers to them, so identity of the references is identity of the
/// matches.
#[derive(Debug, Clone, Default)]
pub struct EloWarmStart<'a> {
    state: Option<EloState<'a>>,
}

#[derive(Debug, Clone)]
struct EloState<'a> {
    /// The settings of the pass (the burn-in, which only selects samples, set to 0).
    config: HistoricalConfig,
    /// Whether covariates are collected (the `historical` fit needs them, ml_model's ratings not).
    collect: bool,
    seen: Vec<&'a MatchRecord>,
    tracker: EloTracker,
    /// Covariates of every seen match (empty unless `collect`).
    samples: HistoricalSamples,
}

impl<'a> EloWarmStart<'a> {
    /// Brings the pass up to the end of chronological `matches` and returns its tracker and the
    /// covariates of all of them (from the first match; the caller applies its burn-in).
    pub fn advance(
        &mut self,
        matches: &[&'a MatchRecord],
        config: &HistoricalConfig,
        collect: bool,
    ) -> (&EloTracker, &HistoricalSamples) {
        let key = HistoricalConfig { burn_in_matches: 0, ..config.clone() };
        let reusable = self.state.as_ref().is_some_and(|s| {
            s.config == key
                && s.collect == collect
                && s.seen.len() <= matches.len()
                && s.seen.iter().zip(matches).all(|(a, b)| std::ptr::eq(*a, *b))
        });
        if !reusable {
            self.state = None;
        }
        let st = self.state.get_or_insert_with(|| EloState {
            tracker: EloTracker::new(&key),
            config: key,
            collect,
            seen: Vec::with_capacity(matches.len()),
            samples: HistoricalSamples::new(),
        });
        for m in &matches[st.seen.len()..] {
            if collect {
                let s = &mut st.samples;
                let f = st.tracker.features(&m.home, &m.away, m.kickoff(), st.config.h2h_days);
                s.design.push(&f);
                s.outcomes.push(m.outcome());
                s.home_goals.push(m.home_goals as f64);
                s.away_goals.push(m.away_goals as f64);
                s.kickoffs.push(m.kickoff());
            }
            st.tracker.update(m);
            st.seen.push(m);
        }
        (&st.tracker, &st.samples)
    }
}

/// Ratings, form and head-to-head at `as_of` after the Elo pass over chronological `matches`
/// (all known before `as_of`).
pub fn rating_snapshot(matches: &[&MatchRecord], as_of: NaiveDateTime, config: &HistoricalConfig) -> RatingSnapshot {
    rating_snapshot_warm(matches, as_of, config, &mut EloWarmStart::default())
}

/// [`rating_snapshot`], continuing the Elo pass of `warm` (see [`EloWarmStart`]).
pub fn rating_snapshot_warm<'a>(
    matches: &[&'a MatchRecord],
    as_of: NaiveDateTime,
    config: &HistoricalConfig,
    warm: &mut EloWarmStart<'a>,
) -> RatingSnapshot {
    let (tracker, _) = warm.advance(matches, config, false);
    RatingSnapshot::from_tracker(tracker, as_of, config.h2h_days)
}

/// Runs the Elo pass over chronological `matches`, collecting pre-match covariates of the matches
/// after the burn-in, and returns the tracker at the end.
pub fn elo_pass(matches: &[&MatchRecord], config: &HistoricalConfig) -> (EloTracker, HistoricalSamples) {
    let mut warm = EloWarmStart::default();
    let (tracker, samples) = warm.advance(matches, config, true);
    (tracker.clone(), samples.tail(config.burn_in_matches))
}

impl HistoricalModel {
    /// Fits on the matches of `history` known before `as_of`, with the default configuration.
    pub fn fit(history: &[MatchRecord], as_of: NaiveDateTime) -> Result<Self, EngineError> {
        Self::fit_with(history, as_of, &HistoricalConfig::default())
    }

    /// Fits on the matches of `history` known before `as_of`.
    pub fn fit_with(
        history: &[MatchRecord],
        as_of: NaiveDateTime,
        config: &HistoricalConfig,
    ) -> Result<Self, EngineError> {
        let matches = history_before(history, as_of);
        Self::fit_sorted(&matches, as_of, config)
    }

    /// Fits on chronological `matches` known before `as_of` (a batch prior, when configured,
    /// with the default `statistical` settings).
    pub fn fit_sorted(
        matches: &[&MatchRecord],
        as_of: NaiveDateTime,
        config: &HistoricalConfig,
    ) -> Result<Self, EngineError> {
        Self::fit_sorted_with_batch(matches, as_of, config, &DixonColesConfig::default())
    }

    /// [`Self::fit_sorted`], the batch prior fitted with `batch` (the `statistical` settings).
    pub fn fit_sorted_with_batch(
        matches: &[&MatchRecord],
        as_of: NaiveDateTime,
        config: &HistoricalConfig,
        batch: &DixonColesConfig,
    ) -> Result<Self, EngineError> {
        Self::fit_sorted_warm(matches, as_of, config, batch, &mut EloWarmStart::default(), &mut DcWarmStart::default())
    }

    /// [`Self::fit_sorted_with_batch`] in a rolling backtest: the Elo pass continues from `elo`
    /// over the new matches only (the same numbers as a replay from the start) and the batch
    /// Dixon-Coles fit starts from the previous fit's parameters (`dc`; the same optimum to the
    /// optimiser's tolerance).
    pub fn fit_sorted_warm<'a>(
        matches: &[&'a MatchRecord],
        as_of: NaiveDateTime,
        config: &HistoricalConfig,
        batch: &DixonColesConfig,
        elo: &mut EloWarmStart<'a>,
        dc: &mut DcWarmStart,
    ) -> Result<Self, EngineError> {
        // With a short history, shorten the burn-in so something is left to learn from.
        let burn_in = config.burn_in_matches.min(matches.len() / 2);
        let (tracker, all_samples) = elo.advance(matches, config, true);
        let ratings = RatingSnapshot::from_tracker(tracker, as_of, config.h2h_days);
        let samples = all_samples.tail(burn_in);
        // Every fit is pulled towards the league prior, worth `prior_matches` matches: with no
        // history at all it is the prior.
        let prior = LeaguePrior::builtin();
        let w: Vec<f64> =
            samples.kickoffs.iter().map(|k| (-config.sample_xi * days_between(*k, as_of).max(0.0)).exp()).collect();
        let outcome_model = OrderedLogit::fit_towards(
            &samples.design,
            &samples.outcomes,
            &w,
            config.l2,
            &prior.outcome_model,
            0.2 * config.prior_matches,
        )?;
        let mut diff_only = Design::new(1);
        for i in 0..samples.outcomes.len() {
            diff_only.push(&samples.design.row(i)[..1]);
        }
        let k = config.prior_matches;
        let goals_home =
            PoissonRegression::fit_towards(&diff_only, &samples.home_goals, &w, 0.1 * k, &prior.goals_home, 1.5 * k)?;
        let goals_away =
            PoissonRegression::fit_towards(&diff_only, &samples.away_goals, &w, 0.1 * k, &prior.goals_away, 1.2 * k)?;

        // Without a usable batch fit (no history yet), the Elo model alone, as before.
        let batch = (config.batch_matches > 0.0 && !matches.is_empty())
            .then(|| DixonColesModel::fit_sorted_warm(matches, as_of, batch, dc).ok())
            .flatten()
            .map(|model| BatchPrior {
                weight: config.batch_matches / (config.batch_matches + matches.len() as f64),
                model,
            });
        let mut model_version = format!("{HISTORICAL_VERSION}+k{}+h{}", config.elo.k, config.elo.home_advantage);
        if config.batch_matches > 0.0 {
            model_version.push_str(&format!("+b{}", config.batch_matches));
        }
        Ok(HistoricalModel {
            model_version,
            as_of,
            ratings,
            outcome_model,
            goals_home,
            goals_away,
            training_matches: samples.outcomes.len(),
            config: config.clone(),
            batch,
        })
    }

    /// A team's rating (the promoted-team rating when unknown).
    pub fn rating(&self, team: &str) -> f64 {
        self.ratings.rating(team)
    }

    /// The covariates of a match.
    pub fn features(&self, home: &str, away: &str) -> [f64; N_COVARIATES] {
        self.ratings.features(home, away)
    }

    /// The score grid of a match.
    pub fn grid(&self, home: &str, away: &str) -> ScoreGrid {
        let x = self.features(home, away);
        let mut p = self.outcome_model.predict(&x);
        if let Some(b) = &self.batch {
            let q = b.model.grid(home, away).outcome_probabilities();
            for (pi, qi) in p.iter_mut().zip(q) {
                *pi = (1.0 - b.weight) * *pi + b.weight * qi;
            }
        }
        let lh = self.goals_home.predict(&x[..1]);
        let la = self.goals_away.predict(&x[..1]);
        let mut g = ScoreGrid::dixon_coles(lh, la, 0.0, self.config.max_goals);
        g.rescale_outcomes(p);
        g
    }

    /// Predicts a match; teams absent from the history get the promoted-team rating.
    pub fn predict(&self, home: &str, away: &str) -> Prediction {
        self.grid(home, away).to_prediction(&self.model_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(day: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 1, day).expect("date").and_hms_opt(15, 0, 0).expect("time")
    }

    #[test]
    fn elo_update_by_hand() {
        let cfg = HistoricalConfig {
            elo: EloConfig { k: 20.0, home_advantage: 100.0, goal_difference: true, ..EloConfig::default() },
            ..HistoricalConfig::default()
        };
        let mut t = EloTracker::new(&cfg);
        let mut m = MatchRecord::new(at(1).date(), "A", "B", 3, 0);
        m.time = Some(at(1).time());
        t.update(&m);
        // Both start at 1500; home expected score with +100 home advantage is
        // 1 / (1 + 10^(-100/400)) = 0.640065; a 3-goal win multiplies K by (11+3)/8 = 1.75.
        let e = 1.0 / (1.0 + 10f64.powf(-0.25));
        let delta = 20.0 * 1.75 * (1.0 - e);
        assert!((t.rating_at("A", at(2)) - (1500.0 + delta)).abs() < 1e-9);
        assert!((t.rating_at("B", at(2)) - (1500.0 - delta)).abs() < 1e-9);
        assert!((delta - 12.5977).abs() < 1e-3, "{delta}");
        // Form: A has 3 points in 1 of 6 matches, padded with the average.
        assert!((t.form("A", at(2)) - (3.0 + 5.0 * AVERAGE_PPG) / 6.0).abs() < 1e-12);
        // Head-to-head: +3 shrunk by 3 pseudo-meetings -> 0.75 for A, -0.75 for B.
        assert!((t.head_to_head("A", "B", at(2), 1000.0) - 0.75).abs() < 1e-12);
        assert!((t.head_to_head("B", "A", at(2), 1000.0) + 0.75).abs() < 1e-12);
    }

    #[test]
    fn provisional_ratings_move_faster_for_new_teams_only() {
        assert_eq!(provisional_gain(0.0, 0), 1.0);
        assert_eq!(provisional_gain(8.0, 0), 8.0);
        assert_eq!(provisional_gain(8.0, 3), 2.0);
        assert_eq!(provisional_gain(8.0, 7), 1.0);
        assert_eq!(provisional_gain(8.0, 30), 1.0);
        let cfg = |p: f64| HistoricalConfig {
            elo: EloConfig { k: 20.0, home_advantage: 100.0, ..EloConfig::default() },
            provisional_matches: p,
            ..HistoricalConfig::default()
        };
        let (mut plain, mut fast) = (EloTracker::new(&cfg(0.0)), EloTracker::new(&cfg(4.0)));
        // A's first match (n = 0): 4 times the Elo step, and about 4 times the goal ratings'.
        for (day, (h, a, gh, ga)) in (1..).zip([("A", "B", 3, 0), ("C", "A", 0, 1)]) {
            let mut m = MatchRecord::new(at(day).date(), h, a, gh, ga);
            m.time = Some(at(day).time());
            let before = (plain.rating_at("A", at(day)), fast.rating_at("A", at(day)));
            let (sp, sf) = (plain.goal_supremacy("A", "Z", at(day)), fast.goal_supremacy("A", "Z", at(day)));
            plain.update(&m);
            fast.update(&m);
            let moved = (plain.rating_at("A", at(day + 1)) - before.0, fast.rating_at("A", at(day + 1)) - before.1);
            if day == 1 {
                assert!((moved.1 - 4.0 * moved.0).abs() < 1e-9, "{moved:?}");
                let goals = (plain.goal_supremacy("A", "Z", at(2)) - sp, fast.goal_supremacy("A", "Z", at(2)) - sf);
                assert!(goals.1 > 3.0 * goals.0 && goals.0 > 0.0, "{goals:?}");
            }
        }
    }

    #[test]
    fn multipliers_and_expectations() {
        assert_eq!(goal_difference_multiplier(1), 1.0);
        assert_eq!(goal_difference_multiplier(2), 1.5);
        assert_eq!(goal_difference_multiplier(4), 15.0 / 8.0);
        assert!((elo_expected(0.0) - 0.5).abs() < 1e-15);
        assert!((elo_expected(400.0) - 10.0 / 11.0).abs() < 1e-12);
    }

    #[test]
    fn fits_and_predicts_a_small_league() {
        let teams = ["A", "B", "C", "D", "E", "F"];
        let mut hist = Vec::new();
        let mut day = 0i64;
        for _ in 0..6 {
            for (i, h) in teams.iter().enumerate() {
                for (j, a) in teams.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    // The earlier in the alphabet, the stronger; home teams score one more.
                    let hg = (1 + (j as i64 - i as i64).max(0) / 2) as u8;
                    let ag = ((i as i64 - j as i64).max(0) / 2) as u8;
                    let d = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date") + chrono::Duration::days(day / 3);
                    hist.push(MatchRecord::new(d, *h, *a, hg, ag));
                    day += 1;
                }
            }
        }
        let as_of = NaiveDate::from_ymd_opt(2020, 3, 15).expect("date").and_hms_opt(0, 0, 0).expect("time");
        let cfg = HistoricalConfig { burn_in_matches: 30, ..HistoricalConfig::default() };
        let model = HistoricalModel::fit_with(&hist, as_of, &cfg).expect("fit");
        let p = model.predict("A", "F");
        let q = model.predict("F", "A");
        assert!((p.p_home + p.p_draw + p.p_away - 1.0).abs() < 1e-12);
        assert!(p.p_home > 0.6 && q.p_away > q.p_home, "{p:?} {q:?}");
        assert!(model.rating("A") > model.rating("F"));
        assert!(p.expected_goals_home > p.expected_goals_away);
        // A promoted team is rated like the weakest teams.
        assert!(model.rating("Newcomers") < model.rating("C"));
        let json = serde_json::to_string(&model).expect("serialise");
        let back: HistoricalModel = serde_json::from_str(&json).expect("deserialise");
        assert!((back.predict("A", "F").p_home - p.p_home).abs() < 1e-12);
    }
}
