//! Match records in memory: the input of every model.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

/// How long a match lasts, for the "result known before kick-off" rule (90 minutes, half time,
/// stoppage time, with margin).
pub const MATCH_DURATION_MINUTES: i64 = 120;

/// The result of a match from the home team's point of view, ordered home < draw < away (the
/// order the ranked probability score uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Home,
    Draw,
    Away,
}

impl Outcome {
    /// The outcome of a score.
    pub fn from_goals(home_goals: u8, away_goals: u8) -> Self {
        match home_goals.cmp(&away_goals) {
            std::cmp::Ordering::Greater => Outcome::Home,
            std::cmp::Ordering::Equal => Outcome::Draw,
            std::cmp::Ordering::Less => Outcome::Away,
        }
    }

    /// 0 for home, 1 for draw, 2 for away: the index into `[p_home, p_draw, p_away]`.
    pub fn index(self) -> usize {
        match self {
            Outcome::Home => 0,
            Outcome::Draw => 1,
            Outcome::Away => 2,
        }
    }

    /// football-data.co.uk's letter: `H`, `D` or `A`.
    pub fn as_letter(self) -> &'static str {
        match self {
            Outcome::Home => "H",
            Outcome::Draw => "D",
            Outcome::Away => "A",
        }
    }

    /// Parses `H`, `D` or `A`.
    pub fn from_letter(s: &str) -> Option<Self> {
        match s.trim() {
            "H" => Some(Outcome::Home),
            "D" => Some(Outcome::Draw),
            "A" => Some(Outcome::Away),
            _ => None,
        }
    }
}

/// Decimal 1X2 odds of one bookmaker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Odds1x2 {
    pub home: f64,
    pub draw: f64,
    pub away: f64,
}

impl Odds1x2 {
    /// Implied probabilities normalised multiplicatively (1/odds over their sum), ordered
    /// home, draw, away.
    pub fn implied_probabilities(&self) -> [f64; 3] {
        let inv = [1.0 / self.home, 1.0 / self.draw, 1.0 / self.away];
        let sum: f64 = inv.iter().sum();
        [inv[0] / sum, inv[1] / sum, inv[2] / sum]
    }

    /// The bookmaker's margin: sum of 1/odds minus one.
    pub fn overround(&self) -> f64 {
        1.0 / self.home + 1.0 / self.draw + 1.0 / self.away - 1.0
    }
}

/// Decimal over/under 2.5 goals odds of one bookmaker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OddsOverUnder {
    pub over: f64,
    pub under: f64,
}

impl OddsOverUnder {
    /// Normalised probability of more than 2.5 goals.
    pub fn implied_over(&self) -> f64 {
        let (o, u) = (1.0 / self.over, 1.0 / self.under);
        o / (o + u)
    }
}

/// Odds quoted by one bookmaker (football-data.co.uk's column prefix without the closing `C`:
/// `B365`, `PS` = Pinnacle, `Avg`, `Max`, `BbAv`, ...; Pinnacle's over/under prefix is `P`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookOdds<T> {
    pub bookmaker: String,
    pub odds: T,
}

/// All odds known for a match. Pre-match odds were published before kick-off (football-data.co.uk
/// collects them on the Friday/Tuesday before); closing odds are the last quotes before kick-off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchOdds {
    pub pre_match: Vec<BookOdds<Odds1x2>>,
    pub closing: Vec<BookOdds<Odds1x2>>,
    pub over_under_pre_match: Vec<BookOdds<OddsOverUnder>>,
    pub over_under_closing: Vec<BookOdds<OddsOverUnder>>,
}

/// Bookmakers in order of preference when one quote stands for "the market": Pinnacle (the sharpest),
/// then market averages, then Bet365, then the rest in file order.
const PREFERENCE_1X2: &[&str] = &["PS", "Avg", "BbAv", "B365", "WH", "Max", "BbMx"];
const PREFERENCE_OU: &[&str] = &["P", "Avg", "BbAv", "B365", "Max", "BbMx"];

fn preferred<'a, T>(quotes: &'a [BookOdds<T>], preference: &[&str]) -> Option<&'a T> {
    preference
        .iter()
        .find_map(|b| quotes.iter().find(|q| q.bookmaker == *b))
        .or_else(|| quotes.first())
        .map(|q| &q.odds)
}

impl MatchOdds {
    /// True when no odds at all are known.
    pub fn is_empty(&self) -> bool {
        self.pre_match.is_empty()
            && self.closing.is_empty()
            && self.over_under_pre_match.is_empty()
            && self.over_under_closing.is_empty()
    }

    /// The preferred closing 1X2 odds (Pinnacle closing first).
    pub fn best_closing(&self) -> Option<&Odds1x2> {
        preferred(&self.closing, PREFERENCE_1X2)
    }

    /// The preferred pre-match 1X2 odds (Pinnacle first).
    pub fn best_pre_match(&self) -> Option<&Odds1x2> {
        preferred(&self.pre_match, PREFERENCE_1X2)
    }

    /// The preferred closing over/under 2.5 odds, else the preferred pre-match ones.
    pub fn best_over_under(&self) -> Option<&OddsOverUnder> {
        preferred(&self.over_under_closing, PREFERENCE_OU)
            .or_else(|| preferred(&self.over_under_pre_match, PREFERENCE_OU))
    }

    /// The closing 1X2 odds of one bookmaker.
    pub fn closing_of(&self, bookmaker: &str) -> Option<&Odds1x2> {
        self.closing.iter().find(|q| q.bookmaker == bookmaker).map(|q| &q.odds)
    }

    /// The pre-match 1X2 odds of one bookmaker.
    pub fn pre_match_of(&self, bookmaker: &str) -> Option<&Odds1x2> {
        self.pre_match.iter().find(|q| q.bookmaker == bookmaker).map(|q| &q.odds)
    }
}

/// Match statistics beyond the score (football-data.co.uk's `HS,AS,HST,AST`), when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchStats {
    pub home_shots: u8,
    pub away_shots: u8,
    pub home_shots_on_target: u8,
    pub away_shots_on_target: u8,
}

/// One finished match. Team names are canonical names (see [`super::teams::TeamAliases`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRecord {
    /// Competition code when known (football-data.co.uk's `Div`, e.g. `E0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub competition: Option<String>,
    pub date: NaiveDate,
    /// Kick-off time (UK time in football-data.co.uk files) when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<NaiveTime>,
    pub home: String,
    pub away: String,
    pub home_goals: u8,
    pub away_goals: u8,
    #[serde(default, skip_serializing_if = "MatchOdds::is_empty")]
    pub odds: MatchOdds,
    /// Shots and shots on target, when the source has them (the CSV files do, and the database
    /// stores them at import: `history::load` reads them back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<MatchStats>,
}

impl MatchRecord {
    /// A match without odds, competition or kick-off time.
    pub fn new(
        date: NaiveDate,
        home: impl Into<String>,
        away: impl Into<String>,
        home_goals: u8,
        away_goals: u8,
    ) -> Self {
        MatchRecord {
            competition: None,
            date,
            time: None,
            home: home.into(),
            away: away.into(),
            home_goals,
            away_goals,
            odds: MatchOdds::default(),
            stats: None,
        }
    }

    /// Kick-off as a date-time; midnight when the time is unknown.
    pub fn kickoff(&self) -> NaiveDateTime {
        self.date.and_time(self.time.unwrap_or(NaiveTime::MIN))
    }

    /// The result.
    pub fn outcome(&self) -> Outcome {
        Outcome::from_goals(self.home_goals, self.away_goals)
    }

    /// Whether this match's result was known before `kickoff`: it kicked off at least
    /// [`MATCH_DURATION_MINUTES`] earlier, or, when its own time is unknown, on an earlier day.
    /// Every model uses only matches for which this holds.
    pub fn known_before(&self, kickoff: NaiveDateTime) -> bool {
        match self.time {
            Some(t) => self.date.and_time(t) + Duration::minutes(MATCH_DURATION_MINUTES) <= kickoff,
            None => self.date < kickoff.date(),
        }
    }
}

/// The matches of `history` whose results were known before `as_of`, in chronological order
/// (stable for equal kick-offs).
pub fn history_before(history: &[MatchRecord], as_of: NaiveDateTime) -> Vec<&MatchRecord> {
    let mut out: Vec<&MatchRecord> = history.iter().filter(|m| m.known_before(as_of)).collect();
    if !out.windows(2).all(|w| w[0].kickoff() <= w[1].kickoff()) {
        out.sort_by_key(|m| m.kickoff());
    }
    out
}

/// Fractional days from `earlier` to `later` (negative when `earlier` is later).
pub fn days_between(earlier: NaiveDateTime, later: NaiveDateTime) -> f64 {
    (later - earlier).num_seconds() as f64 / 86_400.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn outcome_from_goals_and_letters() {
        assert_eq!(Outcome::from_goals(2, 1), Outcome::Home);
        assert_eq!(Outcome::from_goals(0, 0), Outcome::Draw);
        assert_eq!(Outcome::from_goals(0, 3), Outcome::Away);
        assert_eq!(Outcome::from_letter("D"), Some(Outcome::Draw));
        assert_eq!(Outcome::from_letter("X"), None);
        assert_eq!(Outcome::Away.index(), 2);
    }

    #[test]
    fn implied_probabilities_are_normalised() {
        let o = Odds1x2 { home: 2.0, draw: 3.5, away: 4.0 };
        let p = o.implied_probabilities();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p[0] > p[1] && p[1] > p[2]);
        assert!(o.overround() > 0.0);
    }

    #[test]
    fn known_before_respects_time_and_duration() {
        let mut m = MatchRecord::new(d(2024, 1, 6), "A", "B", 1, 0);
        let same_day_evening = d(2024, 1, 6).and_hms_opt(20, 0, 0).expect("time");
        // Unknown time: only usable from the next day on.
        assert!(!m.known_before(same_day_evening));
        assert!(m.known_before(d(2024, 1, 7).and_hms_opt(0, 0, 0).expect("time")));
        m.time = NaiveTime::from_hms_opt(12, 30, 0);
        assert!(m.known_before(same_day_evening));
        // A match that kicked off 30 minutes earlier has no result yet.
        assert!(!m.known_before(d(2024, 1, 6).and_hms_opt(13, 0, 0).expect("time")));
    }
}
