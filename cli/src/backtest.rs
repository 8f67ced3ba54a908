//! `fp backtest`: rolling backtest of a strategy on football-data.co.uk CSV files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveTime;
use clap::Args;
use shared::engine::backtest::{BacktestReport, run_backtest_with_progress, summarise};
use shared::engine::csv_import::read_csv_file;
use shared::engine::ml_model::{
    FeatureRow, N_FEATURES, rolling_rows, rows_by_competition, train_or_prior, train_or_prior_from_rows,
};
use shared::engine::{EngineConfig, MatchRecord, MlArtifact, MlTrainConfig, Strategy, TeamAliases};

const LONG_ABOUT: &str = "\
Rolling backtest of prediction strategies on football-data.co.uk CSV files.

Every match of a --test file is predicted from the --train files, the earlier --test files and
the test matches played on earlier dates: the model is refitted once per match date, at
midnight, so no result of the same day or later is ever used. `market` also reads the match's
own opening (pre-match) odds, never its closing odds. Writes one CSV row per test match:

  date,home_team,away_team,p_home,p_draw,p_away,result[,book_p_home,book_p_draw,book_p_away]
    [,open_p_home,open_p_draw,open_p_away]

(the book_* columns are the bookmaker's closing probabilities, Pinnacle first, normalised
multiplicatively, present when the test file has closing odds; the open_* columns the same for
the opening (pre-match) odds, present when it has them) and prints as its last line one
JSON object per strategy and test file (and one with season \"all\" pooling them): strategy,
season, matches, rps (ranked probability score, outcomes ordered home < draw < away), log_loss,
brier, bookmaker_rps and opening_rps (the closing and opening odds, when present).

ml_model and market need a trained artifact: --artifact loads one; without it one is trained on
the history before each test file (rolling features, deterministic for --seed; the built-in prior
artifact when the history is too short) and --save-artifact keeps the first.

--report DIR writes DIR/index.md: RPS per season with a paired bootstrap interval of the
difference to --reference, log loss, Brier, expected calibration error, and per strategy an SVG
reliability diagram (home, draw, away) with the closing odds' curve beside it.

Example:
  fp backtest --strategy statistical \\
     --train ../shared/data/football-data-co-uk/E0/E0_{1213,1314,1415,1516,1617,1718,1819,1920,2021}.csv \\
     --test ../shared/data/football-data-co-uk/E0/E0_2122.csv --out predictions_2122.csv";

/// Arguments of `fp backtest`.
#[derive(Debug, Args)]
#[command(about = "Rolling backtest of strategies on football-data.co.uk CSV files", long_about = LONG_ABOUT)]
pub struct BacktestArgs {
    /// statistical, historical, ml_model or market; several separated by commas.
    #[arg(long, value_parser = parse_strategy, value_delimiter = ',', num_args = 1.., required = true)]
    pub strategy: Vec<Strategy>,
    /// Training CSV files (earlier seasons), in any order. None: a competition from its first
    /// matchday.
    #[arg(long, num_args = 0..)]
    pub train: Vec<PathBuf>,
    /// ml_model, market: other competitions' CSV files the artifact also learns from (each
    /// competition's features on its own; only matches before each test file's first date).
    /// The predictions themselves come from --train and the test files only.
    #[arg(long, num_args = 0..)]
    pub other: Vec<PathBuf>,
    /// The CSV files whose matches are predicted: one season each, in order; each is predicted
    /// from --train and the test files before it.
    #[arg(long, num_args = 1.., required = true)]
    pub test: Vec<PathBuf>,
    /// Where to write the predictions CSV. With several strategies or test files, `{strategy}`
    /// and `{season}` in the name are replaced (else `_<strategy>_<season>` goes before `.csv`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write a calibration report (index.md and SVG reliability diagrams) into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The reference of the report's paired bootstrap: `closing` (the bookmaker's closing
    /// odds), `opening`, or a strategy of --strategy.
    #[arg(long, default_value = "closing")]
    pub reference: String,
    /// Only test matches on or after this date (YYYY-MM-DD, or `median`: the median match date
    /// of each test file); the earlier test matches are history, not predicted.
    #[arg(long)]
    pub from: Option<String>,
    /// ml_model, market: a trained artifact (JSON) to use instead of training one.
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// ml_model, market: where to save the artifact trained on --train (first test file).
    #[arg(long)]
    pub save_artifact: Option<PathBuf>,
    /// ml_model, market: training seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Engine settings as JSON (an EngineConfig; missing fields take their defaults).
    #[arg(long)]
    pub config: Option<String>,
    /// ml_model, market: training settings as JSON (an MlTrainConfig; missing fields take their
    /// defaults; --seed wins over its seed).
    #[arg(long)]
    pub train_config: Option<String>,
    /// ml_model, market: keep the rolling training rows of each competition in this directory,
    /// keyed by a hash of the feature settings and the competition's matches, and reuse them
    /// (for sweeps of training settings on the same data; the rows are the same either way).
    #[arg(long)]
    pub rows_cache: Option<PathBuf>,
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

/// A test season: its name (the file stem) and matches.
pub struct Season {
    pub name: String,
    pub matches: Vec<MatchRecord>,
}

/// One strategy's backtest of one season.
pub struct SeasonRun {
    pub strategy: Strategy,
    pub season: String,
    pub report: BacktestReport,
    pub seconds: f64,
}

pub fn run(args: BacktestArgs) -> anyhow::Result<()> {
    let aliases = TeamAliases::builtin();
    let train = read_files(&args.train, &aliases)?;
    let other = read_files(&args.other, &aliases)?;
    let mut seasons = Vec::new();
    for path in &args.test {
        let matches = read_files(std::slice::from_ref(path), &aliases)?;
        anyhow::ensure!(!matches.is_empty(), "{} has no matches", path.display());
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        seasons.push(Season { name, matches });
    }
    let config: EngineConfig = match &args.config {
        Some(j) => serde_json::from_str(j).context("--config is not a valid EngineConfig")?,
        None => EngineConfig::default(),
    };
    let given_artifact = args.artifact.as_deref().map(read_artifact).transpose()?;
    let mut train_config: MlTrainConfig = match &args.train_config {
        Some(j) => serde_json::from_str(j).context("--train-config is not a valid MlTrainConfig")?,
        None => MlTrainConfig::default(),
    };
    train_config.seed = args.seed;

    let progress = shared::progress::for_stderr();
    let mut runs = Vec::new();
    // ml_model and market use the same artifact for a season: trained once.
    let mut trained: std::collections::HashMap<usize, MlArtifact> = std::collections::HashMap::new();
    for &strategy in &args.strategy {
        let mut history = train.clone();
        for (k, season) in seasons.iter().enumerate() {
            // --from: the season's earlier matches are history, not predicted.
            let from = match args.from.as_deref() {
                None => None,
                Some("median") => {
                    let mut dates: Vec<_> = season.matches.iter().map(|m| m.date).collect();
                    dates.sort_unstable();
                    Some(dates[dates.len() / 2])
                }
                Some(d) => Some(
                    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                        .with_context(|| format!("--from {d:?}: expected YYYY-MM-DD or median"))?,
                ),
            };
            let (earlier, test): (Vec<MatchRecord>, Vec<MatchRecord>) =
                season.matches.iter().cloned().partition(|m| from.is_some_and(|f| m.date < f));
            history.extend(earlier);
            anyhow::ensure!(!test.is_empty(), "{} has no matches to predict", season.name);
            let artifact = match (strategy.needs_artifact(), &given_artifact) {
                (false, _) => None,
                (true, Some(a)) => Some(a.clone()),
                (true, None) if trained.contains_key(&k) => trained.get(&k).cloned(),
                (true, None) => {
                    let first = test.iter().map(|m| m.date).min().context("empty test file")?.and_time(NaiveTime::MIN);
                    let started = Instant::now();
                    let mut learn_from = history.clone();
                    learn_from.extend(other.iter().filter(|m| m.kickoff() < first).cloned());
                    let a = match &args.rows_cache {
                        Some(dir) => {
                            let rows = cached_rolling_rows(&learn_from, first, &train_config, dir)?;
                            train_or_prior_from_rows(&rows, first, &train_config)?
                        }
                        None => train_or_prior(&learn_from, first, &train_config)?,
                    };
                    eprintln!(
                        "[fp] {strategy} {}: artifact {} ({} training rows) in {:.1}s",
                        season.name,
                        a.model_version,
                        a.base_head.training_rows,
                        started.elapsed().as_secs_f64(),
                    );
                    if let (Some(path), 0) = (&args.save_artifact, k) {
                        std::fs::write(path, a.to_json()?)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                    trained.insert(k, a.clone());
                    Some(a)
                }
            };
            let started = Instant::now();
            progress.stage(&format!("backtest {strategy} {}", season.name), test.len() as u64);
            let report =
                run_backtest_with_progress(strategy, &history, &test, &config, artifact.as_ref(), progress.as_ref())?;
            progress.finish();
            let seconds = started.elapsed().as_secs_f64();
            eprintln!("[fp] {strategy} {}: {} matches predicted in {seconds:.2}s", season.name, report.rows.len());
            if let Some(out) = &args.out {
                let path = out_path(out, strategy, &season.name, args.strategy.len() > 1, seasons.len() > 1);
                write_predictions(&path, &report)?;
            }
            println!("{}", serde_json::to_string(&summary_json(&report, &season.name))?);
            runs.push(SeasonRun { strategy, season: season.name.clone(), report, seconds });
            history.extend(test);
        }
        if seasons.len() > 1 {
            let rows: Vec<_> =
                runs.iter().filter(|r| r.strategy == strategy).flat_map(|r| r.report.rows.clone()).collect();
            let pooled = BacktestReport { summary: summarise(strategy, &rows), rows };
            println!("{}", serde_json::to_string(&summary_json(&pooled, "all"))?);
        }
    }
    if let Some(dir) = &args.report {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        crate::report::write(dir, &runs, &args.reference, &command)?;
        eprintln!("[fp] report written to {}", dir.join("index.md").display());
    }
    Ok(())
}

fn out_path(out: &Path, strategy: Strategy, season: &str, many_strategies: bool, many_seasons: bool) -> PathBuf {
    let text = out.to_string_lossy();
    if text.contains("{strategy}") || text.contains("{season}") {
        return PathBuf::from(text.replace("{strategy}", strategy.as_str()).replace("{season}", season));
    }
    let mut suffix = String::new();
    if many_strategies {
        suffix.push_str(&format!("_{strategy}"));
    }
    if many_seasons {
        suffix.push_str(&format!("_{season}"));
    }
    if suffix.is_empty() {
        return out.to_path_buf();
    }
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = out.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    out.with_file_name(format!("{stem}{suffix}{ext}"))
}

/// The summary line, in this field order.
#[derive(Debug, serde::Serialize)]
struct SummaryLine<'a> {
    strategy: &'a str,
    season: &'a str,
    matches: usize,
    rps: f64,
    log_loss: f64,
    brier: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    bookmaker_rps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    opening_rps: Option<f64>,
    model_version: &'a str,
}

fn summary_json<'a>(report: &'a BacktestReport, season: &'a str) -> SummaryLine<'a> {
    let s = &report.summary;
    let opening: Vec<f64> =
        report.rows.iter().filter_map(|r| r.opening.map(|p| shared::engine::metrics::rps(p, r.outcome))).collect();
    SummaryLine {
        strategy: &s.strategy,
        season,
        matches: s.matches,
        rps: round6(s.rps),
        log_loss: round6(s.log_loss),
        brier: round6(s.brier),
        bookmaker_rps: s.bookmaker_rps.map(round6),
        opening_rps: (!opening.is_empty()).then(|| round6(opening.iter().sum::<f64>() / opening.len() as f64)),
        model_version: &s.model_version,
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn write_predictions(path: &Path, report: &BacktestReport) -> anyhow::Result<()> {
    let with_book = report.rows.iter().any(|r| r.bookmaker.is_some());
    let with_opening = report.rows.iter().any(|r| r.opening.is_some());
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut header = vec!["date", "home_team", "away_team", "p_home", "p_draw", "p_away", "result"];
    if with_book {
        header.extend(["book_p_home", "book_p_draw", "book_p_away"]);
    }
    if with_opening {
        header.extend(["open_p_home", "open_p_draw", "open_p_away"]);
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
            rec.extend(probability_fields(r.bookmaker));
        }
        if with_opening {
            rec.extend(probability_fields(r.opening));
        }
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}

/// Three probability columns, empty when the match has no such odds.
fn probability_fields(p: Option<[f64; 3]>) -> Vec<String> {
    match p {
        Some(p) => p.iter().map(|x| format!("{x:.6}")).collect(),
        None => vec![String::new(); 3],
    }
}

/// A cached row: the floats as bits (exact round trip).
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedRow {
    row: FeatureRow,
    x: Vec<u64>,
    odds: Option<[u64; 3]>,
}

/// The rows of `shared::engine::ml_model::rolling_rows_by_competition` on the history before
/// `as_of`, each competition's read from `dir` when computed before with the same settings and
/// matches.
fn cached_rolling_rows(
    history: &[MatchRecord],
    as_of: chrono::NaiveDateTime,
    config: &MlTrainConfig,
    dir: &Path,
) -> anyhow::Result<Vec<FeatureRow>> {
    use std::hash::{Hash, Hasher};
    std::fs::create_dir_all(dir)?;
    let matches = shared::engine::data::history_before(history, as_of);
    rows_by_competition(&matches, |code, group| -> anyhow::Result<Vec<FeatureRow>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}|{}|{:?}", config.features, config.burn_in_days.to_bits(), group).hash(&mut h);
        let path = dir.join(format!("rows_{}_{:016x}.json", code.unwrap_or("none"), h.finish()));
        if path.exists() {
            let cached: Vec<CachedRow> = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            return Ok(cached
                .into_iter()
                .map(|c| {
                    let mut r = c.row;
                    for (k, b) in c.x.iter().enumerate() {
                        r.x[k] = f64::from_bits(*b);
                    }
                    if let (Some(o), Some(b)) = (r.opening.as_mut(), c.odds) {
                        (o.home, o.draw, o.away) = (f64::from_bits(b[0]), f64::from_bits(b[1]), f64::from_bits(b[2]));
                    }
                    r
                })
                .collect());
        }
        let computed = rolling_rows(group, &config.features, config.burn_in_days)?;
        let cached: Vec<CachedRow> = computed
            .iter()
            .map(|r| CachedRow {
                row: r.clone(),
                x: r.x.iter().map(|v| v.to_bits()).collect(),
                odds: r.opening.map(|o| [o.home.to_bits(), o.draw.to_bits(), o.away.to_bits()]),
            })
            .collect();
        std::fs::write(&path, serde_json::to_string(&cached)?)?;
        debug_assert!(computed.iter().all(|r| r.x.len() == N_FEATURES));
        Ok(computed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::engine::data::{BookOdds, Odds1x2};

    /// Two competitions of six teams, a match day a week for 80 weeks, goals and opening odds
    /// from a fixed pseudo-random sequence.
    fn two_leagues() -> Vec<MatchRecord> {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        let start = chrono::NaiveDate::from_ymd_opt(2020, 8, 8).expect("date");
        let mut out = Vec::new();
        for week in 0..80 {
            for code in ["A1", "B1"] {
                for k in 0..3 {
                    let home = format!("{code} team {}", (week + 2 * k) % 6);
                    let away = format!("{code} team {}", (week + 2 * k + 1) % 6);
                    let mut m = MatchRecord::new(
                        start + chrono::Duration::days(7 * week as i64),
                        home,
                        away,
                        (next() % 4) as u8,
                        (next() % 3) as u8,
                    );
                    m.competition = Some(code.to_string());
                    m.time = NaiveTime::from_hms_opt(15, k, 0);
                    let h = 1.6 + (next() % 100) as f64 / 100.0;
                    m.odds.pre_match.push(BookOdds {
                        bookmaker: "PS".into(),
                        odds: Odds1x2 { home: h, draw: 3.3, away: 1.0 / (1.03 - 1.0 / h - 1.0 / 3.3) },
                    });
                    out.push(m);
                }
            }
        }
        out
    }

    #[test]
    fn cached_rows_are_the_computed_rows_bit_for_bit() {
        let history = two_leagues();
        let as_of = chrono::NaiveDate::from_ymd_opt(2021, 12, 1).expect("date").and_time(NaiveTime::MIN);
        let config = MlTrainConfig { burn_in_days: 60.0, ..MlTrainConfig::default() };
        let matches = shared::engine::data::history_before(&history, as_of);
        let expected =
            shared::engine::ml_model::rolling_rows_by_competition(&matches, &config.features, config.burn_in_days)
                .expect("rows");
        assert!(expected.len() > 100 && expected.iter().any(|r| r.opening.is_some()));
        let dir = std::env::temp_dir().join(format!("fp-rows-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = cached_rolling_rows(&history, as_of, &config, &dir).expect("computed");
        assert_eq!(std::fs::read_dir(&dir).expect("cache dir").count(), 2, "one file per competition");
        let second = cached_rolling_rows(&history, as_of, &config, &dir).expect("read back");
        for got in [&first, &second] {
            assert_eq!(got, &expected);
            for (a, b) in got.iter().zip(&expected) {
                assert!(a.x.iter().zip(&b.x).all(|(u, v)| u.to_bits() == v.to_bits()));
            }
        }
        // Other settings or other matches: other files.
        let other = MlTrainConfig { burn_in_days: 90.0, ..config.clone() };
        cached_rolling_rows(&history, as_of, &other, &dir).expect("other settings");
        cached_rolling_rows(&history[..300], as_of, &config, &dir).expect("other matches");
        assert_eq!(std::fs::read_dir(&dir).expect("cache dir").count(), 6);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn the_predictions_file_carries_the_closing_and_opening_probabilities_where_the_match_has_them() {
        let matches = two_leagues();
        let (train, test) = matches.split_at(matches.len() - 6);
        let mut test = test.to_vec();
        test[0]
            .odds
            .closing
            .push(BookOdds { bookmaker: "PS".into(), odds: Odds1x2 { home: 2.0, draw: 3.5, away: 4.0 } });
        test[1].odds.pre_match.clear();
        let report =
            shared::engine::backtest::run_backtest(Strategy::Statistical, train, &test, &EngineConfig::default(), None)
                .expect("backtest");
        let path = std::env::temp_dir().join(format!("fp-predictions-test-{}.csv", std::process::id()));
        write_predictions(&path, &report).expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::remove_file(&path).expect("clean up");
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(
            lines[0],
            [
                "date",
                "home_team",
                "away_team",
                "p_home",
                "p_draw",
                "p_away",
                "result",
                "book_p_home",
                "book_p_draw",
                "book_p_away",
                "open_p_home",
                "open_p_draw",
                "open_p_away"
            ]
        );
        assert_eq!(lines.len(), 7);
        let row = |home: &str| lines.iter().find(|l| l[1] == home).expect("row of the match");
        let first = row(&test[0].home);
        let closing: Vec<f64> = first[7..10].iter().map(|v| v.parse().expect("number")).collect();
        // 1/2, 1/3.5, 1/4 normalised.
        assert!((closing[0] - 0.5 / (0.5 + 1.0 / 3.5 + 0.25)).abs() < 1e-5, "{closing:?}");
        assert!(first[10..13].iter().all(|v| v.parse::<f64>().is_ok_and(|p| p > 0.0 && p < 1.0)));
        let second = row(&test[1].home);
        assert_eq!(&second[7..13], ["", "", "", "", "", ""], "no closing odds and no opening odds");
    }
}
