//! Team alias table: one club, one canonical name, whatever the source calls it.
//!
//! The canonical name is football-data.org's `name` ("Manchester City FC"), because the service's
//! database is keyed by football-data.org teams; football-data.co.uk's short names ("Man City"),
//! football-data.org's `shortName` and its three-letter code (`tla`, "MCI") are aliases. The table is
//! plain data (serde), so the database importer can load, extend or store it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One club and the names sources use for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    /// Canonical name: football-data.org's `name`.
    pub name: String,
    /// football-data.org's `tla` (three-letter code) when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tla: Option<String>,
    /// Other names: football-data.co.uk's short names, football-data.org's `shortName`, ...
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Lookup table from any known name (case- and whitespace-insensitive) or TLA to a [`Team`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<Team>", into = "Vec<Team>")]
pub struct TeamAliases {
    teams: Vec<Team>,
    by_name: HashMap<String, usize>,
    by_tla: HashMap<String, usize>,
}

impl From<Vec<Team>> for TeamAliases {
    fn from(teams: Vec<Team>) -> Self {
        let mut t = TeamAliases::default();
        for team in teams {
            t.insert(team);
        }
        t
    }
}

impl From<TeamAliases> for Vec<Team> {
    fn from(t: TeamAliases) -> Self {
        t.teams
    }
}

/// Lower-case, single-spaced key for name lookups.
fn key(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// (football-data.org name, TLA, aliases). English Premier League clubs since 2012/13 plus the
/// 2024/25 newcomers.
const BUILTIN: &[(&str, &str, &[&str])] = &[
    ("AFC Bournemouth", "BOU", &["Bournemouth"]),
    ("Arsenal FC", "ARS", &["Arsenal"]),
    ("Aston Villa FC", "AVL", &["Aston Villa"]),
    ("Brentford FC", "BRE", &["Brentford"]),
    ("Brighton & Hove Albion FC", "BHA", &["Brighton", "Brighton Hove", "Brighton & Hove Albion"]),
    ("Burnley FC", "BUR", &["Burnley"]),
    ("Cardiff City FC", "CAR", &["Cardiff", "Cardiff City"]),
    ("Chelsea FC", "CHE", &["Chelsea"]),
    ("Crystal Palace FC", "CRY", &["Crystal Palace"]),
    ("Everton FC", "EVE", &["Everton"]),
    ("Fulham FC", "FUL", &["Fulham"]),
    ("Huddersfield Town AFC", "HUD", &["Huddersfield", "Huddersfield Town"]),
    ("Hull City AFC", "HUL", &["Hull", "Hull City"]),
    ("Ipswich Town FC", "IPS", &["Ipswich", "Ipswich Town"]),
    ("Leeds United FC", "LEE", &["Leeds", "Leeds United"]),
    ("Leicester City FC", "LEI", &["Leicester", "Leicester City"]),
    ("Liverpool FC", "LIV", &["Liverpool"]),
    ("Luton Town FC", "LUT", &["Luton", "Luton Town"]),
    ("Manchester City FC", "MCI", &["Man City", "Manchester City"]),
    ("Manchester United FC", "MUN", &["Man United", "Man Utd", "Manchester United"]),
    ("Middlesbrough FC", "MID", &["Middlesbrough"]),
    ("Newcastle United FC", "NEW", &["Newcastle", "Newcastle United"]),
    ("Norwich City FC", "NOR", &["Norwich", "Norwich City"]),
    ("Nottingham Forest FC", "NOT", &["Nott'm Forest", "Nottingham", "Nottingham Forest"]),
    ("Queens Park Rangers FC", "QPR", &["QPR", "Queens Park Rangers"]),
    ("Reading FC", "REA", &["Reading"]),
    ("Sheffield United FC", "SHU", &["Sheffield United", "Sheffield Utd", "Sheff Utd"]),
    ("Southampton FC", "SOU", &["Southampton"]),
    ("Stoke City FC", "STK", &["Stoke", "Stoke City"]),
    ("Sunderland AFC", "SUN", &["Sunderland"]),
    ("Swansea City AFC", "SWA", &["Swansea", "Swansea City"]),
    ("Tottenham Hotspur FC", "TOT", &["Tottenham", "Spurs"]),
    ("Watford FC", "WAT", &["Watford"]),
    ("West Bromwich Albion FC", "WBA", &["West Brom", "West Bromwich Albion"]),
    ("West Ham United FC", "WHU", &["West Ham", "West Ham United"]),
    ("Wigan Athletic FC", "WIG", &["Wigan", "Wigan Athletic"]),
    ("Wolverhampton Wanderers FC", "WOL", &["Wolves", "Wolverhampton", "Wolverhampton Wanderers"]),
];

impl TeamAliases {
    /// An empty table: every name is its own canonical name.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in table (English Premier League clubs since 2012/13).
    pub fn builtin() -> Self {
        BUILTIN
            .iter()
            .map(|(name, tla, aliases)| Team {
                name: (*name).to_string(),
                tla: Some((*tla).to_string()),
                aliases: aliases.iter().map(|a| (*a).to_string()).collect(),
            })
            .collect::<Vec<_>>()
            .into()
    }

    /// Adds a team, or merges its aliases and TLA into the team that already has its canonical
    /// name. A name already mapped to another team keeps its first mapping.
    pub fn insert(&mut self, team: Team) {
        let idx = match self.by_name.get(&key(&team.name)) {
            Some(&i) if self.teams[i].name == team.name => {
                let existing = &mut self.teams[i];
                for a in &team.aliases {
                    if !existing.aliases.contains(a) {
                        existing.aliases.push(a.clone());
                    }
                }
                if existing.tla.is_none() {
                    existing.tla = team.tla.clone();
                }
                i
            }
            _ => {
                self.teams.push(team);
                self.teams.len() - 1
            }
        };
        let team = &self.teams[idx];
        for name in std::iter::once(&team.name).chain(team.aliases.iter()) {
            self.by_name.entry(key(name)).or_insert(idx);
        }
        if let Some(tla) = &team.tla {
            self.by_tla.entry(tla.to_uppercase()).or_insert(idx);
        }
    }

    /// All teams.
    pub fn teams(&self) -> &[Team] {
        &self.teams
    }

    /// The team known by `name` (canonical name or alias), if any.
    pub fn find(&self, name: &str) -> Option<&Team> {
        self.by_name.get(&key(name)).map(|&i| &self.teams[i])
    }

    /// The team with this three-letter code, if any.
    pub fn find_by_tla(&self, tla: &str) -> Option<&Team> {
        self.by_tla.get(&tla.trim().to_uppercase()).map(|&i| &self.teams[i])
    }

    /// The canonical name of `name`: the table's name when known, else `name` trimmed.
    pub fn canonical(&self, name: &str) -> String {
        match self.find(name) {
            Some(t) => t.name.clone(),
            None => name.trim().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co_uk_and_org_names_meet() {
        let t = TeamAliases::builtin();
        assert_eq!(t.canonical("Man City"), "Manchester City FC");
        assert_eq!(t.canonical("manchester city fc"), "Manchester City FC");
        assert_eq!(t.canonical("  Nott'm   Forest "), "Nottingham Forest FC");
        assert_eq!(t.find_by_tla("mci").map(|x| x.name.as_str()), Some("Manchester City FC"));
        assert_eq!(t.canonical("Unknown Rovers"), "Unknown Rovers");
    }

    #[test]
    fn serde_round_trip_and_insert_merges() {
        let mut t = TeamAliases::builtin();
        t.insert(Team { name: "Arsenal FC".into(), tla: None, aliases: vec!["The Arsenal".into()] });
        assert_eq!(t.canonical("the arsenal"), "Arsenal FC");
        let json = serde_json::to_string(&t).expect("serialise");
        let back: TeamAliases = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back.canonical("The Arsenal"), "Arsenal FC");
        assert_eq!(back.teams().len(), t.teams().len());
    }
}
