//! The prediction engine: pure model code (no I/O), shared by the service and `fp backtest`.

pub mod backtest;
pub mod csv_import;
pub mod data;
pub mod dixon_coles;
pub mod error;
pub mod grid;
pub mod historical;
pub mod linalg;
pub mod metrics;
pub mod optim;
pub mod regression;
pub mod teams;

use std::str::FromStr;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

pub use data::{MatchRecord, Outcome};
pub use dixon_coles::{DixonColesConfig, DixonColesModel};
pub use error::EngineError;
pub use grid::{Prediction, ScoreGrid};
pub use historical::{HistoricalConfig, HistoricalModel};

/// The three prediction strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Statistical,
    Historical,
    MlModel,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [
        Strategy::Statistical,
        Strategy::Historical,
        Strategy::MlModel,
    ];

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
}

impl FittedModel {
    /// Fits `strategy` on the matches of `history` known before `as_of`.
    pub fn fit(
        strategy: Strategy,
        history: &[MatchRecord],
        as_of: NaiveDateTime,
        config: &EngineConfig,
    ) -> Result<Self, EngineError> {
        match strategy {
            Strategy::Statistical => Ok(FittedModel::Statistical(DixonColesModel::fit_with(
                history,
                as_of,
                &config.statistical,
            )?)),
            Strategy::Historical => Ok(FittedModel::Historical(HistoricalModel::fit_with(
                history,
                as_of,
                &config.historical,
            )?)),
            _ => Err(EngineError::UnknownStrategy(strategy.as_str().into())),
        }
    }

    pub fn predict(&self, home: &str, away: &str) -> Prediction {
        match self {
            FittedModel::Statistical(m) => m.predict(home, away),
            FittedModel::Historical(m) => m.predict(home, away),
        }
    }
}
