//! football-data.co.uk CSV files into [`MatchRecord`]s.
//!
//! Columns are found by header name (they vary between seasons and leagues): `Div`, `Date`, `Time`,
//! `HomeTeam`/`Home`, `AwayTeam`/`Away`, `FTHG`/`HG`, `FTAG`/`AG`, `FTR`/`Res`; every 1X2 triple
//! `<book>H,<book>D,<book>A` (closing odds are `<book>CH`...), and every over/under pair
//! `<book>>2.5,<book><2.5` (closing `<book>C>2.5`...). Dates are `dd/mm/yy`, `dd/mm/yyyy` or
//! `yyyy-mm-dd`. A row that cannot be read is an [`ImportError::BadRow`] naming the source and the
//! line; blank rows (every field empty, as some published files end) are skipped; incomplete odds
//! triples (a bookmaker without one of the three prices, or a price of `0`, the files' way of
//! saying "no quote") are left out rather than guessed.
//!
//! The functions read from any [`std::io::Read`] or `&str`, so the same code imports a local file,
//! an S3 object body or a test string; `source_name` is what errors call the input.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use chrono::{Datelike, NaiveDate, NaiveTime};

use super::data::{BookOdds, MatchOdds, MatchRecord, MatchStats, Odds1x2, OddsOverUnder, Outcome};
use super::teams::TeamAliases;

/// Why a CSV could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input could not be read at all (I/O error, not CSV, no header).
    #[error("{source_name}: cannot read: {message}")]
    Read { source_name: String, message: String },
    /// A column every file must have is absent.
    #[error("{source_name}: missing column {column}")]
    MissingColumn { source_name: String, column: String },
    /// One row is unreadable.
    #[error("{source_name}, line {line}, column {column_number}: {column}: {reason} (value {value:?})")]
    BadRow {
        source_name: String,
        /// 1-based line number in the file (the header is line 1).
        line: u64,
        /// 1-based column number (0 when the row itself is malformed).
        column_number: usize,
        /// The column's header.
        column: String,
        value: String,
        reason: String,
    },
}

impl ImportError {
    /// The 1-based line of a bad row.
    pub fn line(&self) -> Option<u64> {
        match self {
            ImportError::BadRow { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Reads a football-data.co.uk CSV file from disk.
pub fn read_csv_file(path: &Path, aliases: &TeamAliases) -> Result<Vec<MatchRecord>, ImportError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| ImportError::Read { source_name: name.clone(), message: e.to_string() })?;
    read_csv(std::io::BufReader::new(file), &name, aliases)
}

/// Parses a football-data.co.uk CSV held in memory.
pub fn parse_csv_str(text: &str, source_name: &str, aliases: &TeamAliases) -> Result<Vec<MatchRecord>, ImportError> {
    read_csv(text.as_bytes(), source_name, aliases)
}

/// football-data.co.uk's bookmaker prefixes: a `C` after one of these marks closing odds even
/// when the file lacks the matching pre-match column.
const KNOWN_BOOKMAKERS: &[&str] = &[
    "B365", "BW", "IW", "PS", "P", "WH", "VC", "Max", "Avg", "BF", "BFE", "1XB", "LB", "SJ", "GB", "BS", "SB", "SO",
    "SY", "CL",
];

/// Column positions of one file.
struct Columns {
    div: Option<usize>,
    date: usize,
    time: Option<usize>,
    home: usize,
    away: usize,
    home_goals: usize,
    away_goals: usize,
    result: Option<usize>,
    /// (bookmaker, closing, [h, d, a])
    odds_1x2: Vec<(String, bool, [usize; 3])>,
    /// (bookmaker, closing, [over, under])
    odds_ou: Vec<(String, bool, [usize; 2])>,
    /// `HS, AS, HST, AST` when all four are present.
    stats: Option<[usize; 4]>,
}

impl Columns {
    fn find(headers: &[String], source_name: &str) -> Result<Self, ImportError> {
        let index: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
        let any = |names: &[&str]| names.iter().find_map(|n| index.get(n).copied());
        let need = |names: &[&str]| {
            any(names).ok_or_else(|| ImportError::MissingColumn {
                source_name: source_name.to_string(),
                column: names.join(" or "),
            })
        };

        let mut odds_1x2 = Vec::new();
        let mut odds_ou = Vec::new();
        for h in headers {
            if let Some(prefix) = h.strip_suffix('H') {
                if prefix.is_empty() {
                    continue;
                }
                if let (Some(&ih), Some(&id), Some(&ia)) = (
                    index.get(h.as_str()),
                    index.get(format!("{prefix}D").as_str()),
                    index.get(format!("{prefix}A").as_str()),
                ) {
                    // `PSCH` is Pinnacle closing because `PSH` exists; `VCH` is VC Bet pre-match
                    // because `VH` does not.
                    let (book, closing) = match prefix.strip_suffix('C') {
                        Some(b)
                            if KNOWN_BOOKMAKERS.contains(&b)
                                || (!b.is_empty() && index.contains_key(format!("{b}H").as_str())) =>
                        {
                            (b.to_string(), true)
                        }
                        _ => (prefix.to_string(), false),
                    };
                    odds_1x2.push((book, closing, [ih, id, ia]));
                }
            }
            // `P>2.5,P<2.5`, or as some published files mangle them, `P_2_5,P_2_5_1`.
            let ou_pair = h
                .strip_suffix(">2.5")
                .map(|p| (p, format!("{p}<2.5")))
                .or_else(|| h.strip_suffix("_2_5").map(|p| (p, format!("{p}_2_5_1"))));
            if let Some((prefix, under)) = ou_pair
                && let (Some(&io), Some(&iu)) = (index.get(h.as_str()), index.get(under.as_str()))
            {
                let (book, closing) = match prefix.strip_suffix('C') {
                    Some(b)
                        if KNOWN_BOOKMAKERS.contains(&b)
                            || (!b.is_empty()
                                && (index.contains_key(format!("{b}>2.5").as_str())
                                    || index.contains_key(format!("{b}_2_5").as_str()))) =>
                    {
                        (b.to_string(), true)
                    }
                    _ => (prefix.to_string(), false),
                };
                odds_ou.push((book, closing, [io, iu]));
            }
        }

        Ok(Columns {
            div: any(&["Div"]),
            date: need(&["Date"])?,
            time: any(&["Time"]),
            home: need(&["HomeTeam", "Home", "HT"])?,
            away: need(&["AwayTeam", "Away", "AT"])?,
            home_goals: need(&["FTHG", "HG"])?,
            away_goals: need(&["FTAG", "AG"])?,
            result: any(&["FTR", "Res"]),
            odds_1x2,
            odds_ou,
            stats: match (any(&["HS"]), any(&["AS"]), any(&["HST"]), any(&["AST"])) {
                (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
                _ => None,
            },
        })
    }
}

/// Parses `dd/mm/yy`, `dd/mm/yyyy` or `yyyy-mm-dd`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.contains('-') {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    }
    let year_len = s.rsplit('/').next().map(str::len)?;
    match year_len {
        2 => NaiveDate::parse_from_str(s, "%d/%m/%y").ok(),
        4 => NaiveDate::parse_from_str(s, "%d/%m/%Y").ok(),
        _ => None,
    }
}

/// Parses `HH:MM` or `HH:MM:SS`.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S")).ok()
}

/// The ranges a row's values must fall in: what the database stores (goals 0 to 99, odds with 5
/// integer digits) and the years the service handles. A value outside is a bad row naming its
/// line and column, never a constraint violation in the middle of a batch write.
const MAX_GOALS: u8 = 99;
const MAX_ODDS: f64 = 10_000.0;
const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 2100;

/// One row being read: turns field problems into [`ImportError::BadRow`].
struct Row<'a> {
    record: &'a csv::StringRecord,
    headers: &'a [String],
    source_name: &'a str,
    line: u64,
}

impl Row<'_> {
    fn get(&self, i: usize) -> &str {
        self.record.get(i).unwrap_or("").trim()
    }

    fn bad(&self, i: usize, reason: &str) -> ImportError {
        ImportError::BadRow {
            source_name: self.source_name.to_string(),
            line: self.line,
            column_number: i + 1,
            column: self.headers.get(i).cloned().unwrap_or_default(),
            value: self.get(i).to_string(),
            reason: reason.to_string(),
        }
    }

    fn required(&self, i: usize) -> Result<&str, ImportError> {
        let v = self.get(i);
        if v.is_empty() { Err(self.bad(i, "empty")) } else { Ok(v) }
    }

    fn goals(&self, i: usize) -> Result<u8, ImportError> {
        let v = self.required(i)?;
        // Some published files write goals as `2.0`: whole numbers only.
        v.parse::<u8>()
            .ok()
            .or_else(|| {
                v.parse::<f64>().ok().filter(|x| x.fract() == 0.0 && (0.0..=255.0).contains(x)).map(|x| x as u8)
            })
            .filter(|g| *g <= MAX_GOALS)
            .ok_or_else(|| self.bad(i, "not a number of goals (0 to 99)"))
    }

    /// A team name: 1 to 200 characters, no control characters.
    fn team(&self, i: usize) -> Result<&str, ImportError> {
        let v = self.required(i)?;
        if v.chars().count() > 200 || v.chars().any(char::is_control) {
            return Err(self.bad(i, "not a team name (1 to 200 characters, no control characters)"));
        }
        Ok(v)
    }

    /// Decimal odds: `None` when empty or not above 1 (football-data.co.uk writes `0` for a
    /// missing quote); an error when not a number at all.
    fn odds(&self, i: usize) -> Result<Option<f64>, ImportError> {
        let v = self.get(i);
        if v.is_empty() {
            return Ok(None);
        }
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x > MAX_ODDS => Err(self.bad(i, "decimal odds above 10000")),
            Ok(x) if x.is_finite() && x > 1.0 => Ok(Some(x)),
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(None),
            _ => Err(self.bad(i, "not decimal odds")),
        }
    }
}

/// Turns `\r\n` and lone `\r` line endings into `\n`, so the CSV reader's line numbers are
/// those an editor shows (football-data.co.uk publishes CRLF files).
struct LfReader<R> {
    inner: R,
    last_was_cr: bool,
}

impl<R: Read> LfReader<R> {
    fn new(inner: R) -> Self {
        LfReader { inner, last_was_cr: false }
    }
}

impl<R: Read> Read for LfReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut out = 0;
            for i in 0..n {
                let b = buf[i];
                if b == b'\n' && self.last_was_cr {
                    self.last_was_cr = false;
                    continue;
                }
                self.last_was_cr = b == b'\r';
                buf[out] = if b == b'\r' { b'\n' } else { b };
                out += 1;
            }
            if out > 0 {
                return Ok(out);
            }
        }
    }
}

/// Reads a football-data.co.uk CSV from any reader. Team names go through `aliases`.
pub fn read_csv<R: Read>(reader: R, source_name: &str, aliases: &TeamAliases) -> Result<Vec<MatchRecord>, ImportError> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(LfReader::new(reader));
    let read_err = |e: csv::Error| ImportError::Read { source_name: source_name.to_string(), message: e.to_string() };
    let headers: Vec<String> =
        rdr.headers().map_err(read_err)?.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_string()).collect();
    let cols = Columns::find(&headers, source_name)?;

    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let more = rdr.read_record(&mut record).map_err(|e| {
            let line = e.position().map(|p| p.line());
            match line {
                Some(line) => ImportError::BadRow {
                    source_name: source_name.to_string(),
                    line,
                    column_number: 0,
                    column: String::new(),
                    value: String::new(),
                    reason: e.to_string(),
                },
                None => read_err(e),
            }
        })?;
        if !more {
            break;
        }
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let row = Row { record: &record, headers: &headers, source_name, line };

        let date = parse_date(row.required(cols.date)?)
            .ok_or_else(|| row.bad(cols.date, "not a date (dd/mm/yy, dd/mm/yyyy, yyyy-mm-dd)"))?;
        if !(MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
            return Err(row.bad(cols.date, "a year outside 1900 to 2100"));
        }
        let time = match cols.time {
            Some(i) if !row.get(i).is_empty() => {
                Some(parse_time(row.get(i)).ok_or_else(|| row.bad(i, "not a time (HH:MM)"))?)
            }
            _ => None,
        };
        let home = aliases.canonical(row.team(cols.home)?);
        let away = aliases.canonical(row.team(cols.away)?);
        if home == away {
            return Err(row.bad(cols.away, "same team as the home team"));
        }
        let home_goals = row.goals(cols.home_goals)?;
        let away_goals = row.goals(cols.away_goals)?;
        if let Some(i) = cols.result {
            let v = row.get(i);
            if !v.is_empty() {
                let r = Outcome::from_letter(v).ok_or_else(|| row.bad(i, "not H, D or A"))?;
                if r != Outcome::from_goals(home_goals, away_goals) {
                    return Err(row.bad(i, "does not match the goals"));
                }
            }
        }

        let mut odds = MatchOdds::default();
        for (book, closing, [ih, id, ia]) in &cols.odds_1x2 {
            if let (Some(home), Some(draw), Some(away)) = (row.odds(*ih)?, row.odds(*id)?, row.odds(*ia)?) {
                let q = BookOdds { bookmaker: book.clone(), odds: Odds1x2 { home, draw, away } };
                if *closing {
                    odds.closing.push(q);
                } else {
                    odds.pre_match.push(q);
                }
            }
        }
        for (book, closing, [io, iu]) in &cols.odds_ou {
            if let (Some(over), Some(under)) = (row.odds(*io)?, row.odds(*iu)?) {
                let q = BookOdds { bookmaker: book.clone(), odds: OddsOverUnder { over, under } };
                if *closing {
                    odds.over_under_closing.push(q);
                } else {
                    odds.over_under_pre_match.push(q);
                }
            }
        }

        // Statistics are optional: a blank or unreadable one leaves the match without them.
        let stats = cols.stats.and_then(|[hs, as_, hst, ast]| {
            let n = |i: usize| row.get(i).parse::<f64>().ok().filter(|x| (0.0..=255.0).contains(x)).map(|x| x as u8);
            Some(MatchStats {
                home_shots: n(hs)?,
                away_shots: n(as_)?,
                home_shots_on_target: n(hst)?,
                away_shots_on_target: n(ast)?,
            })
        });
        out.push(MatchRecord {
            competition: cols.div.map(|i| row.get(i).to_string()).filter(|s| !s.is_empty()),
            date,
            time,
            home,
            away,
            home_goals,
            away_goals,
            odds,
            stats,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,B365H,B365D,B365A,PSH,PSD,PSA,VCH,VCD,VCA,PSCH,PSCD,PSCA,AvgCH,AvgCD,AvgCA,P>2.5,P<2.5,PC>2.5,PC<2.5,AHh,B365AHH,B365AHA";

    fn parse(body: &str) -> Result<Vec<MatchRecord>, ImportError> {
        parse_csv_str(&format!("{HEADER}\r\n{body}"), "test.csv", &TeamAliases::builtin())
    }

    #[test]
    fn reads_a_row_with_odds_and_aliases() {
        let rows = parse(
            "E0,11/08/2023,20:00,Burnley,Man City,0,3,A,8.0,5.5,1.33,8.58,5.51,1.37,9.5,5.25,1.33,9.62,5.81,1.33,9.27,5.45,1.33,1.68,2.29,1.65,2.35,1.5,1.86,2.07\r\n",
        )
        .expect("valid row");
        assert_eq!(rows.len(), 1);
        let m = &rows[0];
        assert_eq!(m.home, "Burnley FC");
        assert_eq!(m.away, "Manchester City FC");
        assert_eq!(m.date, NaiveDate::from_ymd_opt(2023, 8, 11).expect("date"));
        assert_eq!(m.time, NaiveTime::from_hms_opt(20, 0, 0));
        assert_eq!((m.home_goals, m.away_goals), (0, 3));
        assert_eq!(m.competition.as_deref(), Some("E0"));
        let books: Vec<_> = m.odds.pre_match.iter().map(|q| q.bookmaker.as_str()).collect();
        assert_eq!(books, ["B365", "PS", "VC"]);
        let closing: Vec<_> = m.odds.closing.iter().map(|q| q.bookmaker.as_str()).collect();
        assert_eq!(closing, ["PS", "Avg"]);
        assert_eq!(m.odds.best_closing().map(|o| o.home), Some(9.62));
        assert_eq!(m.odds.over_under_pre_match[0].bookmaker, "P");
        assert_eq!(m.odds.over_under_closing[0].odds.over, 1.65);
    }

    #[test]
    fn reads_mangled_over_under_headers_and_shots() {
        let text = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR,HS,AS,HST,AST,P_2_5,P_2_5_1,AvgC_2_5,AvgC_2_5_1\n\
                    D1,05/08/2022,Frankfurt,Bayern,1,6,A,9,22,2,11,1.44,2.9,1.40,3.0\n\
                    D1,06/08/2022,Bochum,Mainz,1,2,A,,,,,0,0,,\n";
        let rows = parse_csv_str(text, "d1.csv", &TeamAliases::builtin()).expect("valid rows");
        let m = &rows[0];
        assert_eq!(m.odds.over_under_pre_match.len(), 1);
        assert_eq!(m.odds.over_under_pre_match[0].bookmaker, "P");
        assert_eq!((m.odds.over_under_pre_match[0].odds.over, m.odds.over_under_pre_match[0].odds.under), (1.44, 2.9));
        assert_eq!(m.odds.over_under_closing[0].bookmaker, "Avg");
        let s = m.stats.expect("shots");
        assert_eq!((s.home_shots, s.away_shots, s.home_shots_on_target, s.away_shots_on_target), (9, 22, 2, 11));
        assert!(rows[1].stats.is_none() && rows[1].odds.is_empty());
    }

    #[test]
    fn accepts_every_date_format_and_missing_odds() {
        let rows = parse(
            "E0,18/08/12,,Arsenal,Sunderland,0,0,D,,,,,,,,,,,,,,,,,,,,,,\r\n\
             E0,2024-05-19,16:00,Arsenal,Everton,2,1,H,,,,,,,,,,,,,,,,,,,,,,\r\n\
             ,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\r\n",
        )
        .expect("valid rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].date, NaiveDate::from_ymd_opt(2012, 8, 18).expect("date"));
        assert_eq!(rows[0].time, None);
        assert!(rows[0].odds.is_empty());
        assert_eq!(rows[1].date, NaiveDate::from_ymd_opt(2024, 5, 19).expect("date"));
    }

    fn bad_row(body: &str) -> (u64, String) {
        match parse(body) {
            Err(ImportError::BadRow { source_name, line, column, .. }) => {
                assert_eq!(source_name, "test.csv");
                (line, column)
            }
            other => panic!("expected a bad row, got {other:?}"),
        }
    }

    #[test]
    fn bad_rows_name_file_line_and_column() {
        let good = "E0,11/08/2023,20:00,Burnley,Man City,0,3,A,,,,,,,,,,,,,,,,,,,,,,\r\n";
        assert_eq!(bad_row(&format!("{good}E0,31/02/2023,20:00,A,B,0,3,A\r\n")), (3, "Date".into()));
        assert_eq!(bad_row(&format!("{good}{good}E0,01/02/2023,20:00,A,B,x,3,A\r\n")), (4, "FTHG".into()));
        assert_eq!(bad_row("E0,01/02/2023,20:00,A,B,1,3,H\r\n"), (2, "FTR".into()));
        assert_eq!(bad_row("E0,01/02/2023,20:00,,B,1,3,A\r\n"), (2, "HomeTeam".into()));
        assert_eq!(bad_row("E0,01/02/2023,25:99,A,B,1,3,A\r\n"), (2, "Time".into()));
        assert_eq!(bad_row("E0,01/02/2023,20:00,A,B,1,3,A,2.0,abc,3.0\r\n"), (2, "B365D".into()));
        let err = parse("E0,01/02/2023,20:00,A,B,1,3,H\r\n").expect_err("bad row");
        assert!(err.to_string().starts_with("test.csv, line 2, column 8: FTR"), "{err}");
        // Values the database would refuse are bad rows too, not constraint violations.
        assert_eq!(bad_row("E0,01/02/2023,20:00,A,B,100,3,H\r\n"), (2, "FTHG".into()));
        assert_eq!(bad_row("E0,01/02/1850,20:00,A,B,1,3,A\r\n"), (2, "Date".into()));
        assert_eq!(bad_row("E0,01/02/2023,20:00,A,B,1,3,A,2.0,3.0,100000\r\n"), (2, "B365A".into()));
        assert_eq!(bad_row(&format!("E0,01/02/2023,20:00,{},B,1,3,A\r\n", "x".repeat(201))), (2, "HomeTeam".into()));
    }

    #[test]
    fn missing_required_column_is_an_error() {
        let err = parse_csv_str("Div,Date,HomeTeam,FTHG,FTAG\nE0,01/02/2023,A,1,0\n", "x.csv", &TeamAliases::new())
            .expect_err("no AwayTeam");
        assert!(matches!(err, ImportError::MissingColumn { .. }), "{err}");
    }
}
