//! `fp import [--competition PL] <csv>...`: football-data.co.uk files into the database named by
//! `DATABASE_URL` (idempotent; teams reconciled with football-data.org's).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Import football-data.co.uk CSV files (results and odds) into the database (DATABASE_URL).
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// football-data.org competition code (PL, ELC...); default: from the files' Div column.
    #[arg(long)]
    pub competition: Option<String>,
    /// CSV files, or folders whose *.csv files are imported in name order.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    anyhow::ensure!(!files.is_empty(), "no CSV file in {:?}", args.paths);
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
    let pool = sqlx::PgPool::connect(&url).await.context("cannot connect to DATABASE_URL")?;
    let progress = shared::progress::for_stderr();
    let report =
        shared::import::import_files_with_progress(&pool, &files, args.competition.as_deref(), progress.as_ref())
            .await?;
    for f in &report.files {
        println!(
            "[fp] {}: {} {} rows, matches +{} ~{}, odds +{} ~{}",
            f.source, f.competition, f.rows, f.matches.inserted, f.matches.updated, f.odds.inserted, f.odds.updated
        );
    }
    println!(
        "[fp] import: {} files, matches +{} ~{} ={}, odds +{} ~{} ={}, teams changed {}, {} ms",
        report.files.len(),
        report.matches.inserted,
        report.matches.updated,
        report.matches.unchanged,
        report.odds.inserted,
        report.odds.updated,
        report.odds.unchanged,
        report.teams_changed,
        report.elapsed_ms
    );
    Ok(())
}
