//! Criterion benchmarks of the prediction engine on real data (EPL, football-data.co.uk).
//!
//! Data: `$FP_DATA_DIR` or `../shared/data/football-data-co-uk/E0` beside the repository.
//! Run: `cargo bench -p shared --bench engine`.

use std::hint::black_box;
use std::path::PathBuf;

use chrono::{NaiveDateTime, NaiveTime};
use criterion::{Criterion, criterion_group, criterion_main};
use shared::engine::backtest::run_backtest;
use shared::engine::csv_import::read_csv_file;
use shared::engine::data::history_before;
use shared::engine::dixon_coles::DixonColesConfig;
use shared::engine::{DixonColesModel, EngineConfig, FittedModel, MatchRecord, MlTrainConfig, Strategy, TeamAliases};

fn data_dir() -> PathBuf {
    std::env::var_os("FP_DATA_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/football-data-co-uk/E0"),
        PathBuf::from,
    )
}

fn load(seasons: &[&str]) -> Vec<MatchRecord> {
    let aliases = TeamAliases::builtin();
    seasons
        .iter()
        .flat_map(|s| {
            let path = data_dir().join(format!("E0_{s}.csv"));
            read_csv_file(&path, &aliases).unwrap_or_else(|e| panic!("benchmark data {}: {e}", path.display()))
        })
        .collect()
}

fn after_last(matches: &[MatchRecord]) -> NaiveDateTime {
    matches.iter().map(|m| m.date).max().and_then(|d| d.succ_opt()).expect("matches").and_time(NaiveTime::MIN)
}

fn bench_fit(c: &mut Criterion) {
    let matches = load(&["2122", "2223", "2324"]);
    let as_of = after_last(&matches);
    let history = history_before(&matches, as_of);
    assert_eq!(history.len(), 1140);
    let plain = DixonColesConfig::plain_mle(0.0018);
    c.bench_function("dixon_coles_fit_1140_matches_plain_mle", |b| {
        b.iter(|| DixonColesModel::fit_sorted(black_box(&history), as_of, &plain).expect("fit"))
    });
    let default = DixonColesConfig::default();
    c.bench_function("dixon_coles_fit_1140_matches_with_promoted_prior", |b| {
        b.iter(|| DixonColesModel::fit_sorted(black_box(&history), as_of, &default).expect("fit"))
    });
}

fn bench_predict(c: &mut Criterion) {
    let train = load(&["1920", "2021", "2122", "2223"]);
    let as_of = after_last(&train);
    let artifact = shared::engine::ml_model::train_artifact(&train, as_of, &MlTrainConfig::default()).expect("train");
    let config = EngineConfig::default();
    for strategy in Strategy::ALL {
        let model = FittedModel::fit(strategy, &train, as_of, &config, Some(&artifact)).expect("fit");
        c.bench_function(&format!("predict_one_match_{strategy}"), |b| {
            b.iter(|| model.predict(black_box("Manchester City FC"), black_box("Arsenal FC")))
        });
    }
    let history = train.clone();
    c.bench_function("fit_and_predict_one_match_historical_4_seasons", |b| {
        b.iter(|| {
            shared::engine::predict(
                Strategy::Historical,
                black_box(&history),
                "Manchester City FC",
                "Arsenal FC",
                as_of,
                None,
            )
            .expect("predict")
        })
    });
}

fn bench_backtest(c: &mut Criterion) {
    let train = load(&["2021", "2122", "2223"]);
    let test = load(&["2324"]);
    let config = EngineConfig::default();
    let mut group = c.benchmark_group("rolling_backtest_one_season");
    group.sample_size(10);
    for strategy in [Strategy::Statistical, Strategy::Historical] {
        group.bench_function(strategy.as_str(), |b| {
            b.iter(|| run_backtest(strategy, &train, black_box(&test), &config, None).expect("bt"))
        });
    }
    let first = test.iter().map(|m| m.date).min().expect("test").and_time(NaiveTime::MIN);
    let artifact = shared::engine::ml_model::train_artifact(&train, first, &MlTrainConfig::default()).expect("train");
    group.bench_function("ml_model", |b| {
        b.iter(|| run_backtest(Strategy::MlModel, &train, black_box(&test), &config, Some(&artifact)).expect("bt"))
    });
    group.finish();
}

criterion_group!(benches, bench_fit, bench_predict, bench_backtest);
criterion_main!(benches);
