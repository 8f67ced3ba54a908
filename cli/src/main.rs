//! `fp`: the operator's command line of football-prediction.

mod backtest;
mod db;
mod import;
mod models;
mod report;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "fp", version, about = "football-prediction's command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Database schema and demo data (DATABASE_URL).
    #[command(subcommand)]
    Db(db::DbCommand),
    // Help texts of these live on their argument structs.
    Backtest(Box<backtest::BacktestArgs>),
    FitDc(models::FitDcArgs),
    TrainMl(models::TrainMlArgs),
    Import(import::ImportArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Db(command) => db::run(command).await,
        Command::Backtest(args) => backtest::run(*args),
        Command::FitDc(args) => models::fit_dc(args),
        Command::TrainMl(args) => models::train_ml(args),
        Command::Import(args) => import::run(args).await,
    }
}
