//! `fp backtest`: rolling backtest of a strategy on football-data.co.uk CSV files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use shared::engine::backtest::{BacktestReport, run_backtest};
use shared::engine::csv_import::read_csv_file;
use shared::engine::ml_model::train_artifact;
use shared::engine::{EngineConfig, MatchRecord, MlArtifact, MlTrainConfig, Strategy, TeamAliases};

const LONG_ABOUT: &str = "\
Rolling backtest of one prediction strategy on football-data.co.uk CSV files.

Every match of the --test file is predicted from the --train files plus the test matches played
on earlier dates: the model is refitted once per match date, at midnight, so no result of the same
day or later is ever used. Writes one CSV row per test match:

  date,home_team,away_team,p_home,p_draw,p_away,result[,book_p_home,book_p_draw,book_p_away]

(the book_* columns are the bookmaker's closing probabilities, Pinnacle first, normalised
multiplicatively, present when the test file has closing odds) and prints as its last line one
JSON object: strategy, matches, rps (ranked probability score, outcomes ordered
home < draw < away), log_loss, brier, bookmaker_rps (when odds are present).

ml_model needs a trained artifact: --artifact loads one; without it one is trained on the --train
files (rolling features, deterministic for --seed) and --save-artifact keeps it.

Example:
  fp backtest --strategy statistical \\
     --train ../shared/data/football-data-co-uk/E0/E0_{1213,1314,1415,1516,1617,1718,1819,1920,2021}.csv \\
     --test ../shared/data/football-data-co-uk/E0/E0_2122.csv --out predictions_2122.csv";

/// Arguments of `fp backtest`.
#[derive(Debug, Args)]
#[command(about = "Rolling backtest of a strategy on football-data.co.uk CSV files", long_about = LONG_ABOUT)]
pub struct BacktestArgs {
    /// statistical, historical or ml_model.
    #[arg(long, value_parser = parse_strategy)]
    pub strategy: Strategy,
    /// Training CSV files (earlier seasons), in any order.
    #[arg(long, num_args = 1.., required = true)]
    pub train: Vec<PathBuf>,
    /// The CSV file whose matches are predicted.
    #[arg(long)]
    pub test: PathBuf,
    /// Where to write the predictions CSV.
    #[arg(long)]
    pub out: PathBuf,
    /// ml_model: a trained artifact (JSON) to use instead of training one.
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// ml_model: where to save the artifact trained on --train.
    #[arg(long)]
    pub save_artifact: Option<PathBuf>,
    /// ml_model: training seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Engine settings as JSON (an EngineConfig; missing fields take their defaults).
    #[arg(long)]
    pub config: Option<String>,
}

pub fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse::<Strategy>().map_err(|e| e.to_string())
}

/// Reads and concatenates football-data.co.uk files.
pub fn read_files(paths: &[PathBuf], aliases: &TeamAliases) -> anyhow::Result<Vec<MatchRecord>> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(read_csv_file(p, aliases)?);
    }
    Ok(out)
}

/// Reads an artifact file.
pub fn read_artifact(path: &Path) -> anyhow::Result<MlArtifact> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    MlArtifact::from_json(&text).with_context(|| format!("{}", path.display()))
}

pub fn run(args: BacktestArgs) -> anyhow::Result<()> {
    let aliases = TeamAliases::builtin();
    let train = read_files(&args.train, &aliases)?;
    let test = read_files(std::slice::from_ref(&args.test), &aliases)?;
    anyhow::ensure!(!test.is_empty(), "{} has no matches", args.test.display());
    let config: EngineConfig = match &args.config {
        Some(j) => serde_json::from_str(j).context("--config is not a valid EngineConfig")?,
        None => EngineConfig::default(),
    };

    let artifact = match (args.strategy, &args.artifact) {
        (Strategy::MlModel, Some(path)) => Some(read_artifact(path)?),
        (Strategy::MlModel, None) => {
            let first = test.iter().map(|m| m.date).min().context("empty test file")?.and_time(chrono::NaiveTime::MIN);
            let started = Instant::now();
            let train_config = MlTrainConfig { seed: args.seed, ..MlTrainConfig::default() };
            let a = train_artifact(&train, first, &train_config)?;
            eprintln!(
                "[fp] trained {} on {} matches in {:.1}s (cv rps {:.4})",
                a.model_version,
                train.len(),
                started.elapsed().as_secs_f64(),
                a.market_head.as_ref().unwrap_or(&a.base_head).cv_rps
            );
            if let Some(path) = &args.save_artifact {
                std::fs::write(path, a.to_json()?).with_context(|| format!("cannot write {}", path.display()))?;
            }
            Some(a)
        }
        _ => None,
    };

    let started = Instant::now();
    let report = run_backtest(args.strategy, &train, &test, &config, artifact.as_ref())?;
    eprintln!("[fp] {} matches predicted in {:.2}s", report.rows.len(), started.elapsed().as_secs_f64());
    write_predictions(&args.out, &report)?;
    println!("{}", serde_json::to_string(&summary_json(&report))?);
    Ok(())
}

/// The summary line, in this field order.
#[derive(Debug, serde::Serialize)]
struct SummaryLine<'a> {
    strategy: &'a str,
    matches: usize,
    rps: f64,
    log_loss: f64,
    brier: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    bookmaker_rps: Option<f64>,
    model_version: &'a str,
}

fn summary_json(report: &BacktestReport) -> SummaryLine<'_> {
    let s = &report.summary;
    SummaryLine {
        strategy: &s.strategy,
        matches: s.matches,
        rps: round6(s.rps),
        log_loss: round6(s.log_loss),
        brier: round6(s.brier),
        bookmaker_rps: s.bookmaker_rps.map(round6),
        model_version: &s.model_version,
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn write_predictions(path: &Path, report: &BacktestReport) -> anyhow::Result<()> {
    let with_book = report.rows.iter().any(|r| r.bookmaker.is_some());
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut header = vec!["date", "home_team", "away_team", "p_home", "p_draw", "p_away", "result"];
    if with_book {
        header.extend(["book_p_home", "book_p_draw", "book_p_away"]);
    }
    w.write_record(&header)?;
    for r in &report.rows {
        let p = &r.prediction;
        let mut rec = vec![
            r.date.format("%Y-%m-%d").to_string(),
            r.home.clone(),
            r.away.clone(),
            format!("{:.6}", p.p_home),
            format!("{:.6}", p.p_draw),
            format!("{:.6}", p.p_away),
            r.outcome.as_letter().to_string(),
        ];
        if with_book {
            match r.bookmaker {
                Some(b) => rec.extend(b.iter().map(|x| format!("{x:.6}"))),
                None => rec.extend(std::iter::repeat_n(String::new(), 3)),
            }
        }
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}
