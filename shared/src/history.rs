//! Finished matches as the engine's records: the one reader of match history that predictions
//! (one competition, before a kick-off) and training (every competition) share.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::engine::{
    MatchRecord,
    data::{BookOdds, MatchOdds, MatchStats, Odds1x2, OddsOverUnder},
};

/// Which finished matches to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryQuery {
    /// One competition, or every competition.
    pub competition_id: Option<i64>,
    /// Only matches that kicked off strictly before this instant.
    pub before: Option<DateTime<Utc>>,
    /// Read the matches' odds too (the `ml_model` features need them).
    pub with_odds: bool,
}

struct HistoryRow {
    id: i64,
    code: String,
    kickoff_at: DateTime<Utc>,
    home: String,
    away: String,
    home_goals: i16,
    away_goals: i16,
    home_shots: Option<i16>,
    away_shots: Option<i16>,
    home_shots_on_target: Option<i16>,
    away_shots_on_target: Option<i16>,
}

/// Finished matches with a score, in kick-off order (ties by id).
pub async fn load(pool: &PgPool, q: HistoryQuery) -> Result<Vec<MatchRecord>, sqlx::Error> {
    // The WHERE clause makes the scores non-null; the `!` overrides tell the macro so.
    let rows = sqlx::query_as!(
        HistoryRow,
        r#"SELECT m.id, c.code, m.kickoff_at, ht.name AS home, at.name AS away,
                  m.home_goals AS "home_goals!", m.away_goals AS "away_goals!",
                  m.home_shots, m.away_shots, m.home_shots_on_target, m.away_shots_on_target
         FROM matches m JOIN competitions c ON c.id = m.competition_id
           JOIN teams ht ON ht.id = m.home_team_id JOIN teams at ON at.id = m.away_team_id
         WHERE m.status = 'FINISHED' AND m.home_goals IS NOT NULL AND m.away_goals IS NOT NULL
           AND ($1::bigint IS NULL OR m.competition_id = $1)
           AND ($2::timestamptz IS NULL OR m.kickoff_at < $2)
         ORDER BY m.kickoff_at, m.id"#,
        q.competition_id,
        q.before,
    )
    .fetch_all(pool)
    .await?;
    let mut odds: HashMap<i64, MatchOdds> = HashMap::new();
    if q.with_odds {
        let quotes = sqlx::query!(
            r#"SELECT o.match_id, o.bookmaker, o.market, o.phase, o.outcome, o.price::float8 AS "price!"
             FROM match_odds o JOIN matches m ON m.id = o.match_id
             WHERE m.status = 'FINISHED'
               AND ($1::bigint IS NULL OR m.competition_id = $1)
               AND ($2::timestamptz IS NULL OR m.kickoff_at < $2)"#,
            q.competition_id,
            q.before,
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|o| (o.match_id, o.bookmaker, o.market, o.phase, o.outcome, o.price))
        .collect();
        odds = group_odds(quotes);
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let k = r.kickoff_at.naive_utc();
            let stats = stats_of(&r);
            MatchRecord {
                competition: Some(r.code),
                date: k.date(),
                time: Some(k.time()),
                home: r.home,
                away: r.away,
                home_goals: r.home_goals.clamp(0, 99) as u8,
                away_goals: r.away_goals.clamp(0, 99) as u8,
                odds: odds.remove(&r.id).unwrap_or_default(),
                stats,
            }
        })
        .collect())
}

/// A row's shots and shots on target: all four, or none (the schema keeps them together).
fn stats_of(r: &HistoryRow) -> Option<MatchStats> {
    let n = |x: Option<i16>| x.and_then(|v| u8::try_from(v).ok());
    Some(MatchStats {
        home_shots: n(r.home_shots)?,
        away_shots: n(r.away_shots)?,
        home_shots_on_target: n(r.home_shots_on_target)?,
        away_shots_on_target: n(r.away_shots_on_target)?,
    })
}

/// football-data.co.uk's column prefix (what the engine calls a bookmaker) for a bookmaker name
/// as stored in `match_odds`.
pub fn engine_bookmaker(name: &str, market: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let code = match (lower.as_str(), market) {
        ("pinnacle" | "ps" | "p", "over_under_2_5") => "P",
        ("pinnacle" | "ps" | "p", _) => "PS",
        ("market_average" | "average" | "avg", _) => "Avg",
        ("market_max" | "maximum" | "max", _) => "Max",
        ("bet365" | "b365", _) => "B365",
        ("william_hill" | "williamhill" | "wh", _) => "WH",
        ("betbrain_average" | "bbav", _) => "BbAv",
        ("betbrain_max" | "bbmx", _) => "BbMx",
        _ => return name.to_string(),
    };
    code.to_string()
}

/// `(match, bookmaker, market, phase, outcome, price)` rows -> each match's quotes, in a stable
/// order (so that the same rows always give the same records).
pub fn group_odds(quotes: Vec<(i64, String, String, String, String, f64)>) -> HashMap<i64, MatchOdds> {
    // (match, bookmaker, market, phase) -> outcome -> price
    let mut grouped: HashMap<(i64, String, String, String), HashMap<String, f64>> = HashMap::new();
    for (match_id, bookmaker, market, phase, outcome, price) in quotes {
        grouped.entry((match_id, bookmaker, market, phase)).or_default().insert(outcome, price);
    }
    let mut out: HashMap<i64, MatchOdds> = HashMap::new();
    let mut keys: Vec<_> = grouped.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let prices = &grouped[&key];
        let (match_id, bookmaker, market, phase) = key.clone();
        let odds = out.entry(match_id).or_default();
        let bookmaker = engine_bookmaker(&bookmaker, &market);
        let closing = phase == "closing";
        match market.as_str() {
            "1x2" => {
                if let (Some(&home), Some(&draw), Some(&away)) =
                    (prices.get("home"), prices.get("draw"), prices.get("away"))
                {
                    let quote = BookOdds { bookmaker, odds: Odds1x2 { home, draw, away } };
                    if closing { odds.closing.push(quote) } else { odds.pre_match.push(quote) }
                }
            }
            "over_under_2_5" => {
                if let (Some(&over), Some(&under)) = (prices.get("over"), prices.get("under")) {
                    let quote = BookOdds { bookmaker, odds: OddsOverUnder { over, under } };
                    if closing { odds.over_under_closing.push(quote) } else { odds.over_under_pre_match.push(quote) }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odds_rows_become_engine_quotes() {
        let rows = vec![
            (1, "pinnacle".to_string(), "1x2".to_string(), "closing".to_string(), "home".to_string(), 2.0),
            (1, "pinnacle".into(), "1x2".into(), "closing".into(), "draw".into(), 3.4),
            (1, "pinnacle".into(), "1x2".into(), "closing".into(), "away".into(), 4.1),
            (1, "pinnacle".into(), "over_under_2_5".into(), "opening".into(), "over".into(), 1.9),
            (1, "pinnacle".into(), "over_under_2_5".into(), "opening".into(), "under".into(), 2.0),
            // an incomplete 1x2 quote is dropped
            (2, "bet365".into(), "1x2".into(), "opening".into(), "home".into(), 1.5),
        ];
        let odds = group_odds(rows);
        let m1 = &odds[&1];
        assert_eq!(m1.closing.len(), 1);
        assert_eq!(m1.closing_of("PS").map(|o| (o.home, o.draw, o.away)), Some((2.0, 3.4, 4.1)));
        assert_eq!(m1.over_under_pre_match[0].bookmaker, "P");
        assert!(odds[&2].pre_match.is_empty());
    }

    #[test]
    fn schema_bookmakers_map_to_the_engine_prefixes() {
        assert_eq!(engine_bookmaker("market_average", "1x2"), "Avg");
        assert_eq!(engine_bookmaker("pinnacle", "1x2"), "PS");
        assert_eq!(engine_bookmaker("pinnacle", "over_under_2_5"), "P");
        assert_eq!(engine_bookmaker("Some Book", "1x2"), "Some Book");
    }
}
