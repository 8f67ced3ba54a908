//! The engine on the real football-data.co.uk files beside the repository
//! (`../shared/data/football-data-co-uk/E0`, or `$FP_DATA_DIR`). Skipped when the data is absent.

use std::path::PathBuf;

use chrono::NaiveDate;
use shared::engine::backtest::run_backtest;
use shared::engine::csv_import::read_csv_file;
use shared::engine::{EngineConfig, MatchRecord, Strategy, TeamAliases};

const SEASONS: [&str; 12] =
    ["1213", "1314", "1415", "1516", "1617", "1718", "1819", "1920", "2021", "2122", "2223", "2324"];

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FP_DATA_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/football-data-co-uk/E0"),
        PathBuf::from,
    );
    if dir.join("E0_2324.csv").exists() {
        Some(dir)
    } else {
        eprintln!("skipped: no data at {}", dir.display());
        None
    }
}

fn load(dir: &std::path::Path, seasons: &[&str]) -> Vec<MatchRecord> {
    let aliases = TeamAliases::builtin();
    let mut out = Vec::new();
    for s in seasons {
        match read_csv_file(&dir.join(format!("E0_{s}.csv")), &aliases) {
            Ok(rows) => out.extend(rows),
            Err(e) => panic!("E0_{s}.csv: {e}"),
        }
    }
    out
}

#[test]
fn every_published_season_imports_with_canonical_names_and_odds() {
    let Some(dir) = data_dir() else { return };
    let all = load(&dir, &SEASONS);
    assert_eq!(all.len(), 4560);
    let aliases = TeamAliases::builtin();
    for m in &all {
        for team in [&m.home, &m.away] {
            let known = aliases.find(team).map(|t| t.name.as_str());
            assert_eq!(known, Some(team.as_str()), "{team} is not a canonical name");
        }
        assert!(m.odds.best_closing().is_some(), "no closing odds: {m:?}");
        assert_eq!(m.competition.as_deref(), Some("E0"));
    }
    // Kick-off times from 2019/20 on.
    let from = NaiveDate::from_ymd_opt(2019, 8, 1).expect("date");
    assert!(all.iter().filter(|m| m.date >= from).all(|m| m.time.is_some()));
}

#[test]
fn statistical_backtest_of_2023_24_is_close_to_the_reference() {
    let Some(dir) = data_dir() else { return };
    let train = load(&dir, &SEASONS[..11]);
    let test = load(&dir, &SEASONS[11..]);
    let report = run_backtest(Strategy::Statistical, &train, &test, &EngineConfig::default(), None).expect("backtest");
    let s = &report.summary;
    assert_eq!(s.matches, 380);
    // Reference: penaltyblog's Dixon-Coles 0.1881, Pinnacle closing 0.1805.
    assert!(s.rps < 0.1901, "rps {}", s.rps);
    assert!((s.bookmaker_rps.unwrap_or(0.0) - 0.1805).abs() < 1e-4, "{s:?}");
    for r in &report.rows {
        let p = r.prediction.probabilities();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
}
