//! `fp fit-dc` (fit and time Dixon-Coles, for the penaltyblog comparison) and `fp train-ml`
//! (train and save an ml_model artifact).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use clap::Args;
use shared::engine::data::{days_between, history_before};
use shared::engine::dixon_coles::DixonColesConfig;
use shared::engine::ml_model::train_artifact;
use shared::engine::{DixonColesModel, MatchRecord, MlTrainConfig, TeamAliases};

use crate::backtest::read_files;

/// Arguments of `fp fit-dc`.
#[derive(Debug, Args)]
#[command(
    about = "Fit Dixon-Coles (plain maximum likelihood, time-decay weights) and time the fit",
    long_about = "Fits the statistical strategy's Dixon-Coles model by plain weighted maximum \
likelihood (no team priors) on the given CSV files, repeats the fit to time it, and prints the \
parameters in penaltyblog's layout (attacks summing to the number of teams), the matches and their \
weights. infra/bench/penaltyblog_compare.py feeds the same matches and weights to penaltyblog."
)]
pub struct FitDcArgs {
    /// football-data.co.uk CSV files.
    #[arg(long, num_args = 1.., required = true)]
    pub csv: Vec<PathBuf>,
    /// Time decay per day.
    #[arg(long, default_value_t = 0.0018)]
    pub xi: f64,
    /// Fit as of this date (YYYY-MM-DD, midnight); default: the day after the last match.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// How many timed fits.
    #[arg(long, default_value_t = 50)]
    pub repeat: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn as_of_default(matches: &[MatchRecord], as_of: Option<NaiveDate>) -> anyhow::Result<NaiveDateTime> {
    let d = match as_of {
        Some(d) => d,
        None => matches.iter().map(|m| m.date).max().context("no matches")?.succ_opt().context("date overflow")?,
    };
    Ok(d.and_time(NaiveTime::MIN))
}

pub fn fit_dc(args: FitDcArgs) -> anyhow::Result<()> {
    let matches = read_files(&args.csv, &TeamAliases::new())?;
    let as_of = as_of_default(&matches, args.as_of)?;
    let history = history_before(&matches, as_of);
    let config = DixonColesConfig::plain_mle(args.xi);
    let mut model = DixonColesModel::fit_sorted(&history, as_of, &config)?;
    let mut times = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        model = std::hint::black_box(DixonColesModel::fit_sorted(std::hint::black_box(&history), as_of, &config)?);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let med = median(&mut times);
    // penaltyblog's layout: attacks sum to the number of teams (ours sum to zero).
    let shift = 1.0 - model.teams.iter().map(|t| t.attack).sum::<f64>() / model.teams.len() as f64;
    if args.json {
        let out = serde_json::json!({
            "xi": args.xi,
            "as_of": as_of.to_string(),
            "matches": history.iter().map(|m| serde_json::json!({
                "date": m.date.to_string(),
                "home": m.home, "away": m.away,
                "home_goals": m.home_goals, "away_goals": m.away_goals,
                "weight": (-args.xi * days_between(m.kickoff(), as_of)).exp(),
            })).collect::<Vec<_>>(),
            "params": {
                "attack": model.teams.iter().map(|t| (t.team.clone(), serde_json::Value::from(t.attack + shift))).collect::<serde_json::Map<_, _>>(),
                "defence": model.teams.iter().map(|t| (t.team.clone(), serde_json::Value::from(t.defence - shift))).collect::<serde_json::Map<_, _>>(),
                "home_advantage": model.home_advantage,
                "rho": model.rho,
            },
            "log_likelihood": model.log_likelihood,
            "fit_ms": {"median": med, "min": min, "runs": args.repeat.max(1)},
        });
        println!("{out}");
    } else {
        println!("{:<26} {:>8} {:>8}", "team", "attack", "defence");
        for t in &model.teams {
            println!("{:<26} {:>8.4} {:>8.4}", t.team, t.attack + shift, t.defence - shift);
        }
        println!(
            "home advantage {:.4}, rho {:.4}, log-likelihood {:.3}",
            model.home_advantage, model.rho, model.log_likelihood
        );
        println!("{} matches, fit median {med:.3} ms (min {min:.3} ms, {} runs)", history.len(), args.repeat.max(1));
    }
    Ok(())
}

/// Arguments of `fp train-ml`.
#[derive(Debug, Args)]
#[command(about = "Train an ml_model artifact on football-data.co.uk CSV files")]
pub struct TrainMlArgs {
    /// Training CSV files.
    #[arg(long, num_args = 1.., required = true)]
    pub train: Vec<PathBuf>,
    /// Where to write the artifact (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Use only matches known before this date (YYYY-MM-DD); default: all.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn train_ml(args: TrainMlArgs) -> anyhow::Result<()> {
    let matches = read_files(&args.train, &TeamAliases::builtin())?;
    let as_of = as_of_default(&matches, args.as_of)?;
    let started = Instant::now();
    let config = MlTrainConfig { seed: args.seed, ..MlTrainConfig::default() };
    let artifact = train_artifact(&matches, as_of, &config)?;
    std::fs::write(&args.out, artifact.to_json()?).with_context(|| format!("cannot write {}", args.out.display()))?;
    let head = artifact.market_head.as_ref().unwrap_or(&artifact.base_head);
    println!(
        "{}",
        serde_json::json!({
            "model_version": artifact.model_version,
            "trained_until": artifact.trained_until.to_string(),
            "training_rows": head.training_rows,
            "cv_rps": head.cv_rps,
            "cv_log_loss": head.cv_log_loss,
            "seconds": started.elapsed().as_secs_f64(),
            "out": args.out.display().to_string(),
        })
    );
    Ok(())
}
