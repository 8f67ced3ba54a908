//! Public ids: a type prefix and the database id (`match_123`, `team_65`, `pred_1`, `user_7`).
//! Parsing one is how a handler turns a path segment into a key, with a 400 for a malformed id.
//! The grammar is exactly the OpenAPI document's `pattern` of each kind ([`MatchId::PATTERN`]...):
//! the prefix, then a positive number without leading zeros, at most 18 digits.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kinds of public id and their prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Match,
    Team,
    Prediction,
    User,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Match => "match_",
            Kind::Team => "team_",
            Kind::Prediction => "pred_",
            Kind::User => "user_",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {expected} id (expected `{prefix}<number>`)")]
pub struct IdError {
    pub value: String,
    pub expected: &'static str,
    pub prefix: &'static str,
}

macro_rules! public_id {
    ($name:ident, $kind:expr, $prefix:literal, $what:literal) => {
        #[doc = concat!("A ", $what, " id: `", stringify!($kind), "` prefix and the database key.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl $name {
            pub const KIND: Kind = $kind;
            /// The id's grammar as a regular expression (the OpenAPI `pattern`).
            pub const PATTERN: &'static str = concat!("^", $prefix, "[1-9][0-9]{0,17}$");

            pub fn parse(value: &str) -> Result<Self, IdError> {
                value
                    .strip_prefix(Self::KIND.prefix())
                    .filter(|n| {
                        !n.is_empty() && n.len() <= 18 && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|n| n.parse::<i64>().ok())
                    .filter(|n| *n > 0)
                    .map(Self)
                    .ok_or_else(|| IdError {
                        value: value.chars().take(64).collect(),
                        expected: $what,
                        prefix: Self::KIND.prefix(),
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", Self::KIND.prefix(), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        /// The database key (a `BIGINT` column): what `sqlx::query_as!` calls `.into()` on when a
        /// row struct has a field of this type.
        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

public_id!(MatchId, Kind::Match, "match_", "match");
public_id!(TeamId, Kind::Team, "team_", "team");
public_id!(PredictionId, Kind::Prediction, "pred_", "prediction");
public_id!(UserId, Kind::User, "user_", "user");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_malformed_ids() {
        assert_eq!(MatchId::parse("match_123").unwrap(), MatchId(123));
        assert_eq!(MatchId(123).to_string(), "match_123");
        for bad in
            ["123", "match_", "match_-1", "match_0", "match_01", "team_1", "match_1x", "match_99999999999999999999"]
        {
            assert!(MatchId::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&UserId(7)).unwrap();
        assert_eq!(json, "\"user_7\"");
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), UserId(7));
        assert_eq!(MatchId::PATTERN, "^match_[1-9][0-9]{0,17}$");
        assert!(MatchId::KIND.prefix() == "match_" && PredictionId::PATTERN.starts_with("^pred_["));
    }
}
