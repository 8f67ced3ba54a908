//! The prediction engine: pure model code (no I/O), shared by the service and `fp backtest`.
//!
//! # Strategies
//!
//! | [`Strategy`] | model | fitted type |
//! |---|---|---|
//! | `statistical` | Dixon-Coles goals model with time decay, fitted by Newton's method ([`dixon_coles`]) | [`DixonColesModel`] |
//! | `historical` | Elo with home advantage and goal-difference multiplier, form and head-to-head, ordered logit ([`historical`]) | [`HistoricalModel`] |
//! | `ml_model` | multinomial logistic regression on rolling features (Dixon-Coles, Elo, form, rest, market ratings from past odds) ([`ml_model`]) | [`MlModel`] + [`MlArtifact`] |
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
pub mod csv_import;
pub mod data;
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

pub use data::{MatchRecord, Outcome};
pub use dixon_coles::{DixonColesConfig, DixonColesModel};
pub use error::EngineError;
pub use grid::{Prediction, ScoreGrid};
pub use historical::{HistoricalConfig, HistoricalModel};
pub use ml_model::{MlArtifact, MlModel, MlTrainConfig};
pub use teams::TeamAliases;

/// The three prediction strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Statistical,
    Historical,
    MlModel,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Statistical, Strategy::Historical, Strategy::MlModel];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Statistical => "statistical",
            Strategy::Historical => "historical",
            Strategy::MlModel => "ml_model",
        }
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

/// A fitted model of any strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum FittedModel {
    Statistical(DixonColesModel),
    Historical(HistoricalModel),
    MlModel(Box<MlModel>),
}

impl FittedModel {
    /// Fits `strategy` on the matches of `history` known before `as_of`. `ml_model` needs the
    /// trained artifact.
    pub fn fit(
        strategy: Strategy,
        history: &[MatchRecord],
        as_of: NaiveDateTime,
        config: &EngineConfig,
        ml_artifact: Option<&MlArtifact>,
    ) -> Result<Self, EngineError> {
        let matches = data::history_before(history, as_of);
        Ok(match strategy {
            Strategy::Statistical => {
                FittedModel::Statistical(DixonColesModel::fit_sorted(&matches, as_of, &config.statistical)?)
            }
            Strategy::Historical => {
                FittedModel::Historical(HistoricalModel::fit_sorted(&matches, as_of, &config.historical)?)
            }
            Strategy::MlModel => {
                let artifact = ml_artifact.ok_or(EngineError::MissingArtifact)?;
                FittedModel::MlModel(Box::new(MlModel::fit_sorted(&matches, as_of, artifact)?))
            }
        })
    }

    pub fn predict(&self, home: &str, away: &str) -> Prediction {
        match self {
            FittedModel::Statistical(m) => m.predict(home, away),
            FittedModel::Historical(m) => m.predict(home, away),
            FittedModel::MlModel(m) => m.predict(home, away),
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
