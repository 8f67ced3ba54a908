//! football-data.org v4 response shapes: only the fields the ingestion uses. Unknown fields are
//! ignored, optional ones default, so a new field in the API never breaks a run.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Area {
    pub name: Option<String>,
    pub code: Option<String>,
}

/// `GET /v4/competitions/{code}` (and the `competition` object of other responses).
#[derive(Debug, Clone, Deserialize)]
pub struct Competition {
    pub id: i64,
    pub name: String,
    pub code: Option<String>,
    #[serde(default)]
    pub area: Option<Area>,
}

/// A team as `/teams` lists it and as a match embeds it (ids are null in undrawn cup ties).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub short_name: Option<String>,
    pub tla: Option<String>,
}

/// `GET /v4/competitions/{code}/teams`.
#[derive(Debug, Clone, Deserialize)]
pub struct TeamsResponse {
    pub teams: Vec<Team>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Season {
    pub start_date: NaiveDate,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
pub struct Goals {
    pub home: Option<i16>,
    pub away: Option<i16>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    #[serde(default)]
    pub full_time: Goals,
    #[serde(default)]
    pub half_time: Goals,
}

/// One match of `GET /v4/competitions/{code}/matches`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    pub id: i64,
    pub utc_date: DateTime<Utc>,
    pub status: String,
    pub matchday: Option<i32>,
    pub stage: Option<String>,
    pub season: Option<Season>,
    pub home_team: Team,
    pub away_team: Team,
    #[serde(default)]
    pub score: Score,
}

/// `GET /v4/competitions/{code}/matches`.
#[derive(Debug, Clone, Deserialize)]
pub struct MatchesResponse {
    pub matches: Vec<Match>,
}

/// An error body: `{"message": ..., "errorCode": 429}`; some documented bodies say `error`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub message: Option<String>,
    pub error: Option<String>,
}

impl ErrorBody {
    pub fn text(&self) -> Option<&str> {
        self.message.as_deref().or(self.error.as_deref())
    }
}

/// The database's status for football-data.org's: live sub-states (extra time, penalties) are
/// `IN_PLAY`; `None` for a status the service does not know.
pub fn db_status(status: &str) -> Option<&'static str> {
    Some(match status {
        "SCHEDULED" => "SCHEDULED",
        "TIMED" => "TIMED",
        "IN_PLAY" | "EXTRA_TIME" | "PENALTY_SHOOTOUT" | "LIVE" => "IN_PLAY",
        "PAUSED" => "PAUSED",
        "FINISHED" => "FINISHED",
        "POSTPONED" => "POSTPONED",
        "SUSPENDED" => "SUSPENDED",
        "CANCELLED" => "CANCELLED",
        "AWARDED" => "AWARDED",
        _ => return None,
    })
}
