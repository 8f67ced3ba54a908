//! Engine-wide properties: no leakage of later results, probabilities summing to one, promoted
//! teams, deterministic training, artifact versioning.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use super::data::{BookOdds, MatchStats, Odds1x2, OddsOverUnder};
use super::ml_model::{MlTrainConfig, train_artifact};
use super::*;

/// Deterministic pseudo-random numbers in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn poisson(&mut self, lambda: f64) -> u8 {
        let l = (-lambda).exp();
        let (mut k, mut p) = (0u8, 1.0);
        loop {
            p *= self.next();
            if p <= l || k >= 12 {
                return k;
            }
            k += 1;
        }
    }
}

const TEAMS: [&str; 10] =
    ["Ajax", "Benfica", "Celtic", "Dynamo", "Eintracht", "Feyenoord", "Genk", "Hertha", "Inter", "Juventus"];

/// Four double round-robin seasons of a 10-team league with Poisson goals, 1X2 and over/under
/// odds, and weekly match days (five matches per date, afternoon kick-offs).
/// [`synthetic_league`] with every match in competition `code`.
fn synthetic_competition(code: &str) -> Vec<MatchRecord> {
    let mut league = synthetic_league();
    for m in &mut league {
        m.competition = Some(code.into());
    }
    league
}

fn synthetic_league() -> Vec<MatchRecord> {
    let mut rng = Lcg(2024);
    // Shots on target from their own stream (the goals stay those of the first version).
    let mut shots = Lcg(77);
    let strength: Vec<f64> = (0..TEAMS.len()).map(|i| 0.4 - 0.08 * i as f64).collect();
    let mut out = Vec::new();
    for season in 0..4 {
        let start = NaiveDate::from_ymd_opt(2019 + season, 8, 10).expect("date");
        let mut k = 0;
        for round in 0..2 {
            for i in 0..TEAMS.len() {
                for j in 0..TEAMS.len() {
                    if i == j {
                        continue;
                    }
                    let (h, a) = if round == 0 { (i, j) } else { (j, i) };
                    let lh = (0.25 + strength[h] - strength[a] + 0.1).exp();
                    let la = (0.1 + strength[a] - strength[h]).exp();
                    let date = start + Duration::days(7 * (k / 5) as i64);
                    let mut m = MatchRecord::new(date, TEAMS[h], TEAMS[a], rng.poisson(lh), rng.poisson(la));
                    m.time = NaiveTime::from_hms_opt(15, 0, 0);
                    let (sh, sa) = (m.home_goals + shots.poisson(2.0 * lh), m.away_goals + shots.poisson(2.0 * la));
                    m.stats = Some(MatchStats {
                        home_shots: sh + shots.poisson(4.0),
                        away_shots: sa + shots.poisson(4.0),
                        home_shots_on_target: sh,
                        away_shots_on_target: sa,
                    });
                    let g = ScoreGrid::dixon_coles(lh, la, 0.0, 10);
                    let p = g.outcome_probabilities();
                    let over = g.over(2.5);
                    m.odds.closing.push(BookOdds {
                        bookmaker: "PS".into(),
                        odds: Odds1x2 {
                            home: 1.0 / (p[0] * 1.03),
                            draw: 1.0 / (p[1] * 1.03),
                            away: 1.0 / (p[2] * 1.03),
                        },
                    });
                    // Opening odds: the same view, a wider margin.
                    m.odds.pre_match.push(BookOdds {
                        bookmaker: "PS".into(),
                        odds: Odds1x2 {
                            home: 1.0 / (p[0] * 1.05),
                            draw: 1.0 / (p[1] * 1.05),
                            away: 1.0 / (p[2] * 1.05),
                        },
                    });
                    m.odds.over_under_closing.push(BookOdds {
                        bookmaker: "P".into(),
                        odds: OddsOverUnder { over: 1.0 / (over * 1.03), under: 1.0 / ((1.0 - over) * 1.03) },
                    });
                    out.push(m);
                    k += 1;
                }
            }
        }
    }
    out
}

fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_time(NaiveTime::MIN)
}

fn small_train_config() -> MlTrainConfig {
    MlTrainConfig { burn_in_days: 200.0, ..MlTrainConfig::default() }
}

/// Rewrites every result and odds after `cut` (scores reversed, odds swapped).
fn tamper_after(history: &[MatchRecord], cut: NaiveDateTime) -> Vec<MatchRecord> {
    history
        .iter()
        .cloned()
        .map(|mut m| {
            if m.kickoff() >= cut {
                std::mem::swap(&mut m.home_goals, &mut m.away_goals);
                m.home_goals = m.home_goals.saturating_add(3);
                if let Some(s) = &mut m.stats {
                    std::mem::swap(&mut s.home_shots_on_target, &mut s.away_shots_on_target);
                    s.home_shots_on_target = s.home_shots_on_target.saturating_add(5);
                }
                for q in m.odds.closing.iter_mut().chain(m.odds.pre_match.iter_mut()) {
                    std::mem::swap(&mut q.odds.home, &mut q.odds.away);
                }
            }
            m
        })
        .collect()
}

/// Every match's closing odds reversed (home and away swapped, the draw lengthened).
fn tamper_closing(history: &[MatchRecord]) -> Vec<MatchRecord> {
    history
        .iter()
        .cloned()
        .map(|mut m| {
            for q in &mut m.odds.closing {
                std::mem::swap(&mut q.odds.home, &mut q.odds.away);
                q.odds.draw *= 1.7;
            }
            m
        })
        .collect()
}

#[test]
fn later_results_do_not_change_earlier_predictions() {
    let league = synthetic_league();
    let train_until = midnight(NaiveDate::from_ymd_opt(2021, 8, 1).expect("date"));
    let artifact = train_artifact(&league, train_until, &small_train_config()).expect("train");
    // A kick-off in the middle of season 3; later results get rewritten.
    let kickoff = NaiveDate::from_ymd_opt(2022, 1, 15).expect("date").and_hms_opt(15, 0, 0).expect("time");
    let tampered = tamper_after(&league, midnight(kickoff.date()));
    assert_ne!(league, tampered);
    for strategy in Strategy::ALL {
        let a = predict(strategy, &league, "Ajax", "Juventus", kickoff, Some(&artifact)).expect("predict");
        let b = predict(strategy, &tampered, "Ajax", "Juventus", kickoff, Some(&artifact)).expect("predict");
        assert_eq!(a, b, "{strategy} leaked later results");
        // ... while earlier results do matter.
        let earlier = tamper_after(&league, midnight(NaiveDate::from_ymd_opt(2021, 12, 1).expect("date")));
        let c = predict(strategy, &earlier, "Ajax", "Juventus", kickoff, Some(&artifact)).expect("predict");
        assert_ne!(a, c, "{strategy} ignores its history");
    }
}

#[test]
fn the_shots_and_provisional_options_read_no_later_shots_or_results() {
    // statistical with shots on target mixed in, historical with provisional ratings: a later
    // match's shots and score never change an earlier prediction; earlier shots do.
    let league = synthetic_league();
    let config = EngineConfig {
        statistical: DixonColesConfig { shots_weight: 0.3, xi: 0.0025, prior_strength: 1.0, ..Default::default() },
        historical: HistoricalConfig { provisional_matches: 8.0, ..Default::default() },
    };
    let kickoff = NaiveDate::from_ymd_opt(2022, 1, 15).expect("date").and_hms_opt(15, 0, 0).expect("time");
    // The whole history, and a new competition: its first half season only.
    let start = NaiveDate::from_ymd_opt(2021, 8, 1).expect("date");
    let half: Vec<MatchRecord> = league.iter().filter(|m| m.date >= start).cloned().collect();
    for strategy in [Strategy::Statistical, Strategy::Historical] {
        for (what, history) in [("history", &league), ("half season", &half)] {
            let fit = |h: &[MatchRecord]| {
                FittedModel::fit(strategy, h, kickoff, &config, None)
                    .expect("fit")
                    .predict_priced("Ajax", "Juventus", None)
            };
            let a = fit(history);
            let later = tamper_after(history, midnight(kickoff.date()));
            assert_ne!(&later, history);
            assert_eq!(a, fit(&later), "{strategy}, {what}: later shots or results leaked");
            let mut shots_only = history.clone();
            for m in shots_only.iter_mut().filter(|m| m.kickoff() < kickoff) {
                if let Some(s) = &mut m.stats {
                    s.home_shots_on_target = s.home_shots_on_target.saturating_add(4);
                }
            }
            assert_ne!(a, fit(&shots_only), "{strategy}, {what}: earlier shots on target are read");
        }
    }
}

#[test]
fn same_day_results_are_not_used() {
    let league = synthetic_league();
    // 15:00 kick-offs: a 15:00 match does not see the other 15:00 matches of its day.
    let m = &league[200];
    let kickoff = m.kickoff();
    let mut tampered = league.clone();
    for x in tampered.iter_mut().filter(|x| x.date == m.date) {
        x.home_goals = 9;
    }
    let a = predict(Strategy::Statistical, &league, &m.home, &m.away, kickoff, None).expect("p");
    let b = predict(Strategy::Statistical, &tampered, &m.home, &m.away, kickoff, None).expect("p");
    assert_eq!(a, b);
}

#[test]
fn backtest_rows_do_not_depend_on_later_results() {
    let league = synthetic_league();
    let split = midnight(NaiveDate::from_ymd_opt(2022, 8, 1).expect("date"));
    let (train, test): (Vec<_>, Vec<_>) = league.iter().cloned().partition(|m| m.kickoff() < split);
    let cut = midnight(NaiveDate::from_ymd_opt(2023, 1, 1).expect("date"));
    let tampered = tamper_after(&test, cut);
    let cfg = EngineConfig::default();
    let artifact = train_artifact(&train, split, &small_train_config()).expect("train");
    for strategy in Strategy::ALL {
        let a = backtest::run_backtest(strategy, &train, &test, &cfg, Some(&artifact)).expect("bt");
        let b = backtest::run_backtest(strategy, &train, &tampered, &cfg, Some(&artifact)).expect("bt");
        let before = |r: &&backtest::BacktestRow| midnight(r.date) < cut;
        let ra: Vec<_> = a.rows.iter().filter(before).map(|r| &r.prediction).collect();
        let rb: Vec<_> = b.rows.iter().filter(before).map(|r| &r.prediction).collect();
        assert!(!ra.is_empty());
        assert_eq!(ra, rb, "{strategy}");
        assert_eq!(a.summary.matches, test.len());
        // No closing price, not even the predicted match's own, changes any prediction.
        let c =
            backtest::run_backtest(strategy, &tamper_closing(&train), &tamper_closing(&test), &cfg, Some(&artifact))
                .expect("bt");
        let rows_a: Vec<_> = a.rows.iter().map(|r| &r.prediction).collect();
        let rows_c: Vec<_> = c.rows.iter().map(|r| &r.prediction).collect();
        if strategy.needs_artifact() {
            // Past closing prices are history for the market ratings (a feature): only the
            // predicted matches' own closing odds are checked for these two.
            let own = backtest::run_backtest(strategy, &train, &tamper_closing(&test), &cfg, Some(&artifact));
            let first_day: Vec<_> = own.expect("bt").rows.iter().take(5).map(|r| r.prediction.clone()).collect();
            let expected: Vec<_> = a.rows.iter().take(5).map(|r| r.prediction.clone()).collect();
            assert_eq!(first_day, expected, "{strategy} read the predicted matches' closing odds");
        } else {
            assert_eq!(rows_a, rows_c, "{strategy} read closing odds");
        }
    }
}

#[test]
fn market_combines_the_opening_odds_and_nothing_later() {
    let league = synthetic_league();
    let split = midnight(NaiveDate::from_ymd_opt(2022, 8, 1).expect("date"));
    let artifact = train_artifact(&league, split, &small_train_config()).expect("train");
    let blend = artifact.market_blend.clone().expect("blend fitted on the out-of-fold rows");
    assert!(blend.rows > 100 && blend.market_weight > 0.0, "{blend:?}");
    let m = league.iter().find(|m| m.kickoff() > split + Duration::days(60)).expect("a later match");
    let kickoff = m.kickoff();
    let model =
        FittedModel::fit(Strategy::Market, &league, kickoff, &EngineConfig::default(), Some(&artifact)).expect("fit");
    let opening = m.odds.best_pre_match().copied().expect("opening odds");
    let with = model.predict_priced(&m.home, &m.away, Some(&opening));
    let without = model.predict_priced(&m.home, &m.away, None);
    let ml = FittedModel::fit(Strategy::MlModel, &league, kickoff, &EngineConfig::default(), Some(&artifact))
        .expect("fit")
        .predict(&m.home, &m.away);
    // Without odds: the pure model's probabilities.
    assert!((without.p_home - ml.p_home).abs() < 1e-12 && (without.p_draw - ml.p_draw).abs() < 1e-12);
    assert!((with.p_home + with.p_draw + with.p_away - 1.0).abs() < 1e-9);
    assert_ne!(with.probabilities(), without.probabilities(), "the odds count");
    assert!(with.model_version.starts_with("market-benter-1+"));
    // Other opening odds move it; later results and every closing price do not.
    let reversed = Odds1x2 { home: opening.away, draw: opening.draw, away: opening.home };
    assert_ne!(model.predict_priced(&m.home, &m.away, Some(&reversed)).probabilities(), with.probabilities());
    // The match's own closing odds, and every result and price from its day on, rewritten.
    let tampered = tamper_after(&league, midnight(kickoff.date()));
    let own = tampered.iter().find(|x| x.kickoff() == kickoff && x.home == m.home).expect("the match");
    assert_ne!(own.odds.best_closing(), m.odds.best_closing());
    let again = FittedModel::fit(Strategy::Market, &tampered, kickoff, &EngineConfig::default(), Some(&artifact))
        .expect("fit")
        .predict_priced(&m.home, &m.away, Some(&opening));
    assert_eq!(again, with, "a later result or a closing price changed an earlier prediction");
}

#[test]
fn every_strategy_sums_to_one_and_handles_promoted_teams() {
    let league = synthetic_league();
    let as_of = midnight(NaiveDate::from_ymd_opt(2022, 8, 1).expect("date"));
    let artifact = train_artifact(&league, as_of, &small_train_config()).expect("train");
    for strategy in Strategy::ALL {
        let model = FittedModel::fit(strategy, &league, as_of, &EngineConfig::default(), Some(&artifact)).expect("fit");
        for (h, a) in [("Ajax", "Juventus"), ("Juventus", "Ajax"), ("Newcomers", "Ajax"), ("Ajax", "Newcomers")] {
            let p = model.predict(h, a);
            assert!((p.p_home + p.p_draw + p.p_away - 1.0).abs() < 1e-9, "{strategy} {p:?}");
            assert!(p.p_home > 0.0 && p.p_draw > 0.0 && p.p_away > 0.0);
            assert!(p.over_2_5 > 0.0 && p.over_2_5 < 1.0 && p.btts > 0.0 && p.btts < 1.0);
            assert!(p.expected_goals_home > 0.0 && p.expected_goals_away > 0.0);
            assert!(!p.model_version.is_empty());
        }
        // A promoted team is an underdog against the strongest team, home or away.
        let p = model.predict("Newcomers", "Ajax");
        assert!(p.p_away > p.p_home, "{strategy} {p:?}");
        let strong = model.predict("Ajax", "Juventus");
        assert!(strong.p_home > strong.p_away, "{strategy} {strong:?}");
        // The fitted model survives a serde round trip (cache).
        let json = serde_json::to_string(&model).expect("serialise");
        let back: FittedModel = serde_json::from_str(&json).expect("deserialise");
        let q = back.predict("Ajax", "Juventus");
        assert!((q.p_home - strong.p_home).abs() < 1e-9);
    }
}

#[test]
fn training_is_deterministic_and_artifacts_are_versioned() {
    let league = synthetic_league();
    let as_of = midnight(NaiveDate::from_ymd_opt(2022, 8, 1).expect("date"));
    let a = train_artifact(&league, as_of, &small_train_config()).expect("train");
    let b = train_artifact(&league, as_of, &small_train_config()).expect("train");
    let ja = a.to_json().expect("json");
    assert_eq!(ja, b.to_json().expect("json"));
    assert!(a.market_head.is_some());
    let back = MlArtifact::from_json(&ja).expect("parse");
    assert_eq!(back.model_version, a.model_version);
    let wrong = ja.replace(ml_model::ARTIFACT_FORMAT, "fp-ml-artifact/0");
    assert!(matches!(MlArtifact::from_json(&wrong), Err(EngineError::Artifact(_))));
    // An artifact trained on later matches than the kick-off is refused (it would leak).
    let early = NaiveDate::from_ymd_opt(2021, 1, 9).expect("date").and_hms_opt(15, 0, 0).expect("time");
    let err = predict(Strategy::MlModel, &league, "Ajax", "Genk", early, Some(&a));
    assert!(matches!(err, Err(EngineError::Artifact(_))), "{err:?}");
    assert!(matches!(
        predict(Strategy::MlModel, &league, "Ajax", "Genk", early, None),
        Err(EngineError::MissingArtifact)
    ));
}

#[test]
fn strategy_names_round_trip() {
    for s in Strategy::ALL {
        assert_eq!(s.as_str().parse::<Strategy>().expect("parse"), s);
        assert_eq!(serde_json::to_string(&s).expect("json"), format!("\"{}\"", s.as_str()));
    }
    assert!("neural".parse::<Strategy>().is_err());
}

#[test]
fn every_strategy_answers_from_the_first_matchday() {
    let league = synthetic_league();
    let late = midnight(NaiveDate::from_ymd_opt(2030, 1, 1).expect("date"));
    let config = MlTrainConfig::default();
    for n in [0usize, 1, 2, 5, 12, 25, 60, 200] {
        let history = &league[..n];
        // Too short to train on: the built-in prior artifact (other competitions' data).
        let artifact = ml_model::train_or_prior(history, late, &config).expect("an artifact");
        assert_eq!(artifact.model_version, ml_model::prior_artifact().expect("prior").model_version);
        for strategy in Strategy::ALL {
            let p = predict_priced(strategy, history, "Ajax", "Benfica", late, Some(&artifact), None)
                .unwrap_or_else(|e| panic!("{strategy} n={n}: {e}"));
            let s = p.p_home + p.p_draw + p.p_away;
            assert!((s - 1.0).abs() < 1e-9 && p.p_home.is_finite() && p.p_away > 0.0, "{strategy} n={n} {p:?}");
            if n == 0 {
                // Nothing known: the home side is favoured by the league prior's home advantage.
                assert!(p.p_home > p.p_away && p.p_draw > 0.2 && p.p_draw < 0.32, "{strategy} {p:?}");
            }
        }
    }
    // The prior artifact is never used for a kick-off before its own training data ended.
    let prior = ml_model::prior_artifact().expect("prior");
    let early = prior.trained_until - Duration::days(1);
    assert!(matches!(
        ml_model::train_or_prior(&league[..10], early, &config),
        Err(EngineError::InsufficientHistory(_))
    ));
}

#[test]
fn the_prior_artifact_matches_this_build() {
    let prior = ml_model::prior_artifact().expect("the built-in artifact parses");
    assert_eq!(prior.format, ml_model::ARTIFACT_FORMAT);
    let head = prior.market_head.as_ref().expect("market head");
    let names: Vec<&str> = head.feature_index.iter().map(|&i| ml_model::FEATURE_NAMES[i]).collect();
    assert_eq!(
        names,
        head.features.iter().map(String::as_str).collect::<Vec<_>>(),
        "feature order changed: retrain it"
    );
    assert!(prior.base_head.training_rows >= ml_model::MIN_OWN_ROWS);
    assert!(prior.market_blend.is_some());
    // Trained with this build's default training settings (`fp train-ml`): retrain it when
    // they change.
    assert!(prior.model_version.starts_with(&format!("{}+", ml_model::MODEL_VERSION)), "{}", prior.model_version);
    let defaults = MlTrainConfig::default();
    assert_eq!(defaults.l2_grid.len(), 1);
    for h in [&prior.base_head, head] {
        assert_eq!(h.l2, defaults.l2_grid[0], "head {}", h.name);
    }
    assert_eq!(prior.features, defaults.features);
}

#[test]
fn training_from_precomputed_rows_is_training_from_the_history() {
    let league = synthetic_competition("X");
    let as_of = midnight(NaiveDate::from_ymd_opt(2023, 8, 1).expect("date"));
    let config = small_train_config();
    let matches = data::history_before(&league, as_of);
    let rows = ml_model::rolling_rows_by_competition(&matches, &config.features, config.burn_in_days).expect("rows");
    // Fewer rows than a history needs to train its own artifact: both give the prior.
    assert!(rows.len() < ml_model::MIN_OWN_ROWS);
    let late = midnight(NaiveDate::from_ymd_opt(2030, 1, 1).expect("date"));
    assert_eq!(
        ml_model::train_or_prior_from_rows(&rows, late, &config).expect("prior"),
        ml_model::train_or_prior(&league, late, &config).expect("prior")
    );
    // The artifact trained from the rows is the one trained from the history.
    assert_eq!(
        ml_model::train_artifact_from_rows(&rows, as_of, &config).expect("from rows"),
        train_artifact(&league, as_of, &config).expect("from history")
    );
}

#[test]
fn the_market_blend_learns_from_rolling_predictions_per_competition() {
    let league = synthetic_competition("X");
    let as_of = midnight(NaiveDate::from_ymd_opt(2023, 8, 1).expect("date"));
    let config =
        MlTrainConfig { burn_in_days: 30.0, blend_years: 3, competition_blend_rows: 100, ..MlTrainConfig::default() };
    let artifact = train_artifact(&league, as_of, &config).expect("train");
    let pooled = artifact.market_blend.clone().expect("pooled blend");
    // Fitted on the true rolling predictions of the last years (fewer rows than every
    // out-of-fold row of the history), and for competition X on its own.
    let oof = train_artifact(&league, as_of, &MlTrainConfig { blend_years: 0, ..config.clone() }).expect("train");
    assert!(pooled.rows >= 100 && pooled.rows < oof.market_blend.expect("oof blend").rows, "{pooled:?}");
    let own = artifact.competition_blends.get("X").expect("X has its own blend");
    assert_eq!(artifact.blend_for(Some("X")), *own);
    assert_eq!(artifact.blend_for(Some("Y")), pooled);
    assert_eq!(artifact.blend_for(None), pooled);
    // A market prediction after as_of reads X's blend and no later result or price.
    let m = league.iter().rev().find(|m| m.kickoff() < as_of).expect("a match").clone();
    let kickoff = as_of + Duration::days(20) + Duration::hours(15);
    let opening = m.odds.best_pre_match().copied();
    let fit = |h: &[MatchRecord]| {
        FittedModel::fit(Strategy::Market, h, kickoff, &EngineConfig::default(), Some(&artifact))
            .expect("fit")
            .predict_priced(&m.home, &m.away, opening.as_ref())
    };
    let mut later = league.clone();
    let mut extra = m.clone();
    extra.date = kickoff.date() + Duration::days(1);
    extra.home_goals = 9;
    later.push(extra);
    assert_eq!(fit(&league), fit(&later));
    let back = MlArtifact::from_json(&artifact.to_json().expect("json")).expect("parse");
    assert_eq!(back.competition_blends.keys().collect::<Vec<_>>(), ["X"]);
}

/// The synthetic league with a team new to the data in its last season ("Kilmarnock" instead
/// of "Juventus" from August 2022): a warm start meets a team it has no parameters for.
fn league_with_a_new_team() -> Vec<MatchRecord> {
    let cut = NaiveDate::from_ymd_opt(2022, 8, 1).expect("date");
    synthetic_league()
        .into_iter()
        .map(|mut m| {
            for t in [&mut m.home, &mut m.away] {
                if m.date >= cut && t == "Juventus" {
                    *t = "Kilmarnock".into();
                }
            }
            m
        })
        .collect()
}

fn assert_close(a: &Prediction, b: &Prediction, tol: f64, what: &str) {
    let (pa, pb) = (a.probabilities(), b.probabilities());
    assert!(pa.iter().zip(&pb).all(|(x, y)| (x - y).abs() < tol), "{what}: {pa:?} vs {pb:?}");
    assert!((a.expected_goals_home - b.expected_goals_home).abs() < tol, "{what}");
    assert!((a.expected_goals_away - b.expected_goals_away).abs() < tol, "{what}");
    assert_eq!(a.model_version, b.model_version, "{what}");
}

/// Each date's warm fit (what the rolling backtest uses) against a cold fit of the same history:
/// the rating pass exactly equal, every Dixon-Coles fit at the same optimum to the optimiser's
/// tolerance, and so the same predictions; with a team new to the data, and when the history is
/// not an extension of the last one (the warm state starts again).
#[test]
fn warm_fits_agree_with_cold_fits() {
    let split = midnight(NaiveDate::from_ymd_opt(2022, 8, 1).expect("date"));
    let cfg = EngineConfig::default();
    for (name, league) in [("plain", synthetic_league()), ("new team", league_with_a_new_team())] {
        let train: Vec<MatchRecord> = league.iter().filter(|m| m.kickoff() < split).cloned().collect();
        let artifact = train_artifact(&train, split, &small_train_config()).expect("train");
        let mut dates: Vec<NaiveDate> = league.iter().filter(|m| m.kickoff() >= split).map(|m| m.date).collect();
        dates.dedup();
        // Every date of the test season, then an earlier date again (not an extension).
        let mut as_ofs: Vec<NaiveDateTime> = dates.iter().map(|d| midnight(*d)).collect();
        as_ofs.push(as_ofs[3]);
        for strategy in Strategy::ALL {
            let mut warm = WarmStart::default();
            for (k, &as_of) in as_ofs.iter().enumerate() {
                let w =
                    FittedModel::fit_warm(strategy, &league, as_of, &cfg, Some(&artifact), &mut warm).expect("warm");
                let c = FittedModel::fit(strategy, &league, as_of, &cfg, Some(&artifact)).expect("cold");
                let what = format!("{name}, {strategy}, fit {k} at {as_of}");
                match (&w, &c) {
                    (FittedModel::Historical(w), FittedModel::Historical(c)) => {
                        assert_eq!(w.ratings, c.ratings, "{what}: ratings");
                        assert_eq!(w.outcome_model, c.outcome_model, "{what}: ordered logit");
                        assert_eq!((&w.goals_home, &w.goals_away), (&c.goals_home, &c.goals_away), "{what}");
                        assert_eq!(w.training_matches, c.training_matches, "{what}");
                    }
                    (FittedModel::MlModel(w), FittedModel::MlModel(c)) => {
                        assert_eq!(w.state.ratings, c.state.ratings, "{what}: ratings");
                    }
                    (FittedModel::Market(w), FittedModel::Market(c)) => {
                        assert_eq!(w.base.state.ratings, c.base.state.ratings, "{what}: ratings");
                    }
                    _ => {}
                }
                let dc = |m: &FittedModel| -> Vec<DixonColesModel> {
                    match m {
                        FittedModel::Statistical(d) => vec![d.clone()],
                        FittedModel::Historical(h) => h.batch.iter().map(|b| b.model.clone()).collect(),
                        FittedModel::MlModel(m) => vec![m.state.dc_long.clone(), m.state.dc_short.clone()],
                        FittedModel::Market(b) => vec![b.base.state.dc_long.clone(), b.base.state.dc_short.clone()],
                    }
                };
                let (dw, dcold) = (dc(&w), dc(&c));
                assert_eq!(dw.len(), dcold.len(), "{what}");
                assert!(!dw.is_empty(), "{what}");
                for (a, b) in dw.iter().zip(&dcold) {
                    let names = |m: &DixonColesModel| m.teams.iter().map(|t| t.team.clone()).collect::<Vec<_>>();
                    assert_eq!(names(a), names(b), "{what}");
                    for (ta, tb) in a.teams.iter().zip(&b.teams) {
                        assert!((ta.attack - tb.attack).abs() < 1e-7, "{what}: {ta:?} {tb:?}");
                        assert!((ta.defence - tb.defence).abs() < 1e-7, "{what}: {ta:?} {tb:?}");
                    }
                    assert!((a.home_advantage - b.home_advantage).abs() < 1e-7, "{what}");
                    assert!((a.rho - b.rho).abs() < 1e-7, "{what}");
                }
                let mut pairs: Vec<(String, String)> = league
                    .iter()
                    .filter(|m| midnight(m.date) == as_of)
                    .map(|m| (m.home.clone(), m.away.clone()))
                    .collect();
                pairs.push(("Kilmarnock".into(), "Ajax".into()));
                pairs.push(("Ajax".into(), "Nobody".into()));
                for (h, a) in &pairs {
                    assert_close(&w.predict(h, a), &c.predict(h, a), 1e-9, &format!("{what}: {h} v {a}"));
                }
            }
        }
    }
}
