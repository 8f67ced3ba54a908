//! The prediction engine: pure model code (no I/O), shared by the service and `fp backtest`.
//!
//! # Strategies
//!
//! | [`Strategy`] | model | fitted type |
//! |---|---|---|
//! | `statistical` | Dixon-Coles goals model with time decay, fitted by Newton's method ([`dixon_coles`]) | [`DixonColesModel`] |
//! | `historical` | Elo with home advantage and goal-difference multiplier, form and head-to-head, ordered logit ([`historical`]) | [`HistoricalModel`] |
//! | `ml_model` | multinomial logistic regression on rolling features (Dixon-Coles, Elo, form, rest, market ratings from past odds) ([`ml_model`]) | [`MlModel`] + [`MlArtifact`] |
//! | `market` | `ml_model` combined with the match's own opening odds in logit space, weights learnt on earlier seasons (Benter 1994) ([`blend`]) | [`BlendedModel`] + [`MlArtifact`] |
//!
//! Every fitted type is `Serialize + Deserialize` (cache it in Redis), is fitted with
//! `fit(history, as_of)` on the matches of `history` whose results were known before `as_of`
//! ([`MatchRecord::known_before`]), and predicts with `predict(home, away) -> Prediction`.
//! Every output of a [`Prediction`] (1X2 probabilities summing to one, expected goals, most
//! likely score, over 2.5, both teams to score) comes from one score grid ([`ScoreGrid`]).
//! Teams absent from the history (promoted) get a prior: the average of the weakest established
//! teams.
//!
//! # Calling it
//!
//! ```no_run
//! use chrono::NaiveDate;
//! use shared::engine::{self, Strategy, csv_import, teams::TeamAliases};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let history = csv_import::parse_csv_str(
//!     "Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR\n12/08/2023,Arsenal,Everton,2,1,H\n",
//!     "inline.csv",
//!     &TeamAliases::builtin(),
//! )?;
//! let kickoff = NaiveDate::from_ymd_opt(2024, 5, 19)
//!     .and_then(|d| d.and_hms_opt(16, 0, 0))
//!     .ok_or("bad date")?;
//! let p = engine::predict(Strategy::Statistical, &history, "Arsenal FC", "Everton FC", kickoff, None)?;
//! assert!((p.p_home + p.p_draw + p.p_away - 1.0).abs() < 1e-9);
//! # Ok(())
//! # }
//! ```
//!
//! For many predictions at one date fit once with [`FittedModel::fit`] and call
//! [`FittedModel::predict`]; `ml_model` needs an [`MlArtifact`] ([`MlArtifact::from_json`],
//! trained by [`ml_model::train_artifact`]). [`csv_import`] reads football-data.co.uk files from
//! any reader; [`teams::TeamAliases`] maps their names to football-data.org's; [`backtest`]
//! scores a strategy over a season.

pub mod backtest;
pub mod blend;
pub mod calibration;
pub mod csv_import;
pub mod data;
pub mod devig;
pub mod dixon_coles;
pub mod error;
pub mod grid;
pub mod historical;
pub mod linalg;
pub mod market;
pub mod metrics;
pub mod ml_model;
pub mod optim;
pub mod regression;
pub mod teams;

#[cfg(test)]
mod tests;

use std::str::FromStr;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

pub use blend::{BlendedModel, MarketBlend};
pub use data::{MatchRecord, Odds1x2, Outcome};
pub use devig::Devig;
pub use dixon_coles::{DcWarmStart, DixonColesConfig, DixonColesModel};
pub use error::EngineError;
pub use grid::{Prediction, ScoreGrid};
pub use historical::{EloWarmStart, HistoricalConfig, HistoricalModel};
pub use ml_model::{MlArtifact, MlModel, MlTrainConfig};
pub use teams::TeamAliases;

/// The prediction strategies: three pure models and `market`, which also reads the match's own
/// opening odds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Statistical,
    Historical,
    MlModel,
    Market,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [Strategy::Statistical, Strategy::Historical, Strategy::MlModel, Strategy::Market];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Statistical => "statistical",
            Strategy::Historical => "historical",
            Strategy::MlModel => "ml_model",
            Strategy::Market => "market",
        }
    }

    /// Whether it needs an [`MlArtifact`] (`ml_model` and `market`, which builds on it).
    pub fn needs_artifact(self) -> bool {
        matches!(self, Strategy::MlModel | Strategy::Market)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "statistical" => Ok(Strategy::Statistical),
            "historical" => Ok(Strategy::Historical),
            "ml_model" => Ok(Strategy::MlModel),
            "market" => Ok(Strategy::Market),
            other => Err(EngineError::UnknownStrategy(other.to_string())),
        }
    }
}

/// Settings of every strategy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    pub statistical: DixonColesConfig,
    pub historical: HistoricalConfig,
}

/// What one fit of a rolling backtest leaves for the next (the history grows by the matches of
/// one date between two fits): the Elo/goal/shots-on-target rating pass, continued over the new
/// matches only (exactly the numbers of a replay from the start), and the parameters of the
/// penalised Dixon-Coles fits (statistical, historical's batch fit), which the next fit starts
/// its optimiser from (the same optimum to the optimiser's tolerance, in a fraction of the
/// iterations; ml_model's two feature fits are plain maximum likelihood and start cold, see
/// [`DixonColesModel::fit_sorted_warm`]). Used by [`FittedModel::fit_warm`]; the service and
/// training fit cold ([`FittedModel::fit`]). `'a`: the borrow of the history the rating pass has
/// read.
#[derive(Debug, Clone, Default)]
pub struct WarmStart<'a> {
    pub(crate) elo: EloWarmStart<'a>,
    /// statistical's fit, or historical's batch fit.
    pub(crate) dc: DcWarmStart,
    /// ml_model's (and market's) two Dixon-Coles features (used when their settings have a
    /// league-mean prior; the built-in ones have none).
    pub(crate) dc_long: DcWarmStart,
    pub(crate) dc_short: DcWarmStart,
}

/// A fitted model of any strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum FittedModel {
    Statistical(DixonColesModel),
    Historical(Box<HistoricalModel>),
    MlModel(Box<MlModel>),
    Market(Box<BlendedModel>),
}

impl FittedModel {
    /// Fits `strategy` on the matches of `history` known before `as_of`. `ml_model` and `market`
    /// need the trained artifact.
    pub fn fit(
        strategy: Strategy,
        history: &[MatchRecord],
        as_of: NaiveDateTime,
        config: &EngineConfig,
        ml_artifact: Option<&MlArtifact>,
    ) -> Result<Self, EngineError> {
        Self::fit_warm(strategy, history, as_of, config, ml_artifact, &mut WarmStart::default())
    }

    /// [`Self::fit`] continuing from the previous fit's `warm` state and leaving this fit's there
    /// (a rolling backtest: the same predictions as the cold fit, see [`WarmStart`]).
    pub fn fit_warm<'a>(
        strategy: Strategy,
        history: &'a [MatchRecord],
        as_of: NaiveDateTime,
        config: &EngineConfig,
        ml_artifact: Option<&MlArtifact>,
        warm: &mut WarmStart<'a>,
    ) -> Result<Self, EngineError> {
        let matches = data::history_before(history, as_of);
        Ok(match strategy {
            Strategy::Statistical => FittedModel::Statistical(DixonColesModel::fit_sorted_warm(
                &matches,
                as_of,
                &config.statistical,
                &mut warm.dc,
            )?),
            Strategy::Historical => FittedModel::Historical(Box::new(HistoricalModel::fit_sorted_warm(
                &matches,
                as_of,
                &config.historical,
                &config.statistical,
                &mut warm.elo,
                &mut warm.dc,
            )?)),
            Strategy::MlModel => {
                let artifact = ml_artifact.ok_or(EngineError::MissingArtifact)?;
                FittedModel::MlModel(Box::new(MlModel::fit_sorted_warm(&matches, as_of, artifact, warm)?))
            }
            Strategy::Market => {
                let artifact = ml_artifact.ok_or(EngineError::MissingArtifact)?;
                FittedModel::Market(Box::new(BlendedModel::fit_sorted_warm(&matches, as_of, artifact, warm)?))
            }
        })
    }

    /// Predicts without the match's own odds (`market` then falls back to its model).
    pub fn predict(&self, home: &str, away: &str) -> Prediction {
        self.predict_priced(home, away, None)
    }

    /// Predicts with the match's opening 1X2 odds when known (only `market` reads them; never
    /// pass closing odds, which exist only after kick-off).
    pub fn predict_priced(&self, home: &str, away: &str, opening: Option<&Odds1x2>) -> Prediction {
        match self {
            FittedModel::Statistical(m) => m.predict(home, away),
            FittedModel::Historical(m) => m.predict(home, away),
            FittedModel::MlModel(m) => m.predict(home, away),
            FittedModel::Market(m) => m.predict(home, away, opening),
        }
    }

    pub fn strategy(&self) -> Strategy {
        match self {
            FittedModel::Statistical(_) => Strategy::Statistical,
            FittedModel::Historical(_) => Strategy::Historical,
            FittedModel::MlModel(_) => Strategy::MlModel,
            FittedModel::Market(_) => Strategy::Market,
        }
    }
}

/// Predicts `home` v `away` kicking off at `kickoff` with the default settings, from the matches
/// of `history` known before the kick-off (later matches in `history` are ignored).
pub fn predict(
    strategy: Strategy,
    history: &[MatchRecord],
    home: &str,
    away: &str,
    kickoff: NaiveDateTime,
    ml_artifact: Option<&MlArtifact>,
) -> Result<Prediction, EngineError> {
    predict_with(strategy, history, home, away, kickoff, ml_artifact, &EngineConfig::default())
}

/// [`predict`] with explicit settings.
pub fn predict_with(
    strategy: Strategy,
    history: &[MatchRecord],
    home: &str,
    away: &str,
    kickoff: NaiveDateTime,
    ml_artifact: Option<&MlArtifact>,
    config: &EngineConfig,
) -> Result<Prediction, EngineError> {
    Ok(FittedModel::fit(strategy, history, kickoff, config, ml_artifact)?.predict(home, away))
}

/// [`predict`] with the match's opening odds (what `market` combines with its model).
pub fn predict_priced(
    strategy: Strategy,
    history: &[MatchRecord],
    home: &str,
    away: &str,
    kickoff: NaiveDateTime,
    ml_artifact: Option<&MlArtifact>,
    opening: Option<&Odds1x2>,
) -> Result<Prediction, EngineError> {
    Ok(FittedModel::fit(strategy, history, kickoff, &EngineConfig::default(), ml_artifact)?
        .predict_priced(home, away, opening))
}
