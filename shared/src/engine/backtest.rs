//! Rolling backtests: predict every match of a test set from the matches known before its date,
//! refitting once per match date, and score the forecasts against the results and the
//! bookmakers' closing odds. Pure: the caller reads the files and writes the output.

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use super::data::{MatchRecord, Outcome};
use super::error::EngineError;
use super::grid::Prediction;
use super::metrics::{ScoreSums, rps};
use super::{EngineConfig, FittedModel, MlArtifact, Strategy, WarmStart};

/// One predicted match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestRow {
    pub date: NaiveDate,
    pub time: Option<NaiveTime>,
    pub home: String,
    pub away: String,
    pub prediction: Prediction,
    pub outcome: Outcome,
    /// The bookmaker's normalised closing probabilities (Pinnacle first), when known.
    pub bookmaker: Option<[f64; 3]>,
    /// The bookmaker's normalised opening (pre-match) probabilities (Pinnacle first), when known:
    /// the market as it stood when the prediction could be made.
    #[serde(default)]
    pub opening: Option<[f64; 3]>,
}

/// The scores of a backtest: the JSON line `fp backtest` prints last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestSummary {
    pub strategy: String,
    pub matches: usize,
    pub rps: f64,
    pub log_loss: f64,
    pub brier: f64,
    /// Mean RPS of the bookmaker's closing probabilities over the matches that have them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bookmaker_rps: Option<f64>,
    /// The strategy's mean RPS over those same matches (equal to `rps` when every match has odds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rps_on_bookmaker_matches: Option<f64>,
    pub model_version: String,
}

/// Rows and summary of a backtest.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestReport {
    pub rows: Vec<BacktestRow>,
    pub summary: BacktestSummary,
}

/// Predicts every match of `test` from `train` plus the test matches known before its date
/// (refitting once per match date, at midnight of that date, so no same-day result is ever used).
pub fn run_backtest(
    strategy: Strategy,
    train: &[MatchRecord],
    test: &[MatchRecord],
    config: &EngineConfig,
    ml_artifact: Option<&MlArtifact>,
) -> Result<BacktestReport, EngineError> {
    run_backtest_with_progress(strategy, train, test, config, ml_artifact, &crate::progress::Silent)
}

/// [`run_backtest`], reporting the matches predicted so far to `progress` after each match date.
pub fn run_backtest_with_progress(
    strategy: Strategy,
    train: &[MatchRecord],
    test: &[MatchRecord],
    config: &EngineConfig,
    ml_artifact: Option<&MlArtifact>,
    progress: &dyn crate::progress::Progress,
) -> Result<BacktestReport, EngineError> {
    let mut all: Vec<MatchRecord> = train.iter().chain(test.iter()).cloned().collect();
    all.sort_by_key(|m| m.kickoff());
    let mut order: Vec<&MatchRecord> = test.iter().collect();
    order.sort_by_key(|m| m.kickoff());

    let mut rows = Vec::with_capacity(order.len());
    // Each date's fit continues from the previous one's (the same predictions as a cold fit).
    let mut warm = WarmStart::default();
    let mut i = 0;
    while i < order.len() {
        let date = order[i].date;
        let as_of = date.and_time(NaiveTime::MIN);
        let model = FittedModel::fit_warm(strategy, &all, as_of, config, ml_artifact, &mut warm)?;
        while i < order.len() && order[i].date == date {
            let m = order[i];
            // The match's own odds as they were before kick-off (only `market` reads them).
            let prediction = model.predict_priced(&m.home, &m.away, m.odds.best_pre_match());
            rows.push(BacktestRow {
                date: m.date,
                time: m.time,
                home: m.home.clone(),
                away: m.away.clone(),
                prediction,
                outcome: m.outcome(),
                bookmaker: m.odds.best_closing().map(|o| o.implied_probabilities()),
                opening: m.odds.best_pre_match().map(|o| o.implied_probabilities()),
            });
            i += 1;
        }
        progress.set(i as u64, &date.to_string());
    }
    let summary = summarise(strategy, &rows);
    Ok(BacktestReport { rows, summary })
}

/// Scores a set of predicted matches.
pub fn summarise(strategy: Strategy, rows: &[BacktestRow]) -> BacktestSummary {
    let mut all = ScoreSums::default();
    let mut book = ScoreSums::default();
    let mut model_on_book = ScoreSums::default();
    for r in rows {
        let p = r.prediction.probabilities();
        all.add(p, r.outcome);
        if let Some(b) = r.bookmaker {
            book.add(b, r.outcome);
            model_on_book.add(p, r.outcome);
        }
    }
    BacktestSummary {
        strategy: strategy.as_str().to_string(),
        matches: all.n,
        rps: all.mean_rps(),
        log_loss: all.mean_log_loss(),
        brier: all.mean_brier(),
        bookmaker_rps: (book.n > 0).then(|| book.mean_rps()),
        rps_on_bookmaker_matches: (book.n > 0).then(|| model_on_book.mean_rps()),
        model_version: rows.first().map(|r| r.prediction.model_version.clone()).unwrap_or_default(),
    }
}

/// RPS of one row (convenience for reports).
pub fn row_rps(row: &BacktestRow) -> f64 {
    rps(row.prediction.probabilities(), row.outcome)
}
