//! Keyset cursors: a position `(timestamp, id)` in a list ordered by those two columns, written
//! `v1.<microseconds since 1970>.<id>` (a token for clients to give back, not to build). A cursor
//! names the last row a page returned; the next page starts strictly after it, so rows inserted
//! between two requests never make a page repeat or skip a row that was already there. The grammar
//! is exactly [`PATTERN`], the OpenAPI document's `pattern` for every `cursor` of this kind: so a
//! string the document allows is a position, and anything else is a 400.

use chrono::{DateTime, Utc};

use crate::http::ApiError;

const VERSION: &str = "v1";
/// Every cursor, and only cursors: microseconds of at most 16 digits (about 317 years either side
/// of 1970, always a valid instant), an id as in [`crate::ids`].
pub const PATTERN: &str = r"^v1\.(0|-?[1-9][0-9]{0,15})\.[1-9][0-9]{0,17}$";

/// A position in a list ordered by `(at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: i64,
}

impl Cursor {
    pub fn new(at: DateTime<Utc>, id: i64) -> Self {
        Self { at, id }
    }

    /// The token.
    pub fn encode(&self) -> String {
        format!("{VERSION}.{}.{}", self.at.timestamp_micros(), self.id)
    }

    /// Parses a token of [`PATTERN`]; anything else is a 400 naming the `field` it came in.
    pub fn decode(token: &str, field: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::invalid_field(field, "not a cursor returned by this API");
        let mut parts = token.split('.');
        let (Some(VERSION), Some(micros), Some(id), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let digits = micros.strip_prefix('-').unwrap_or(micros);
        let canonical = |n: &str, max: usize| {
            !n.is_empty()
                && n.len() <= max
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'))
        };
        if !canonical(digits, 16) || (micros.starts_with('-') && digits == "0") || !canonical(id, 18) || id == "0" {
            return Err(bad());
        }
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        Ok(Self { at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let c = Cursor::new(at, 42);
        assert_eq!(Cursor::decode(&c.encode(), "cursor").unwrap(), c);
        assert_eq!(c.encode(), "v1.1700000000123456.42");
        for good in ["v1.0.1", "v1.-5.7", "v1.9999999999999999.999999999999999999"] {
            assert!(Cursor::decode(good, "cursor").is_ok(), "{good}");
        }
        for bad in [
            "",
            "x",
            "!!!",
            "v2.1.2",
            "v1.1.-2",
            "v1.1.0",
            "v1.01.2",
            "v1.-0.2",
            "v1.1.2.3",
            "v1..2",
            " v1.1.2",
            "v1.99999999999999999.1",
            "djE6MTox",
            // observed as a 500 (issue 12): a timestamp PostgreSQL refuses
            "v1.-300000000000000000.1",
            "v1.9223372036854775807.1",
            &"a".repeat(200),
        ] {
            let err = Cursor::decode(bad, "cursor").unwrap_err();
            assert!(err.to_string().starts_with("cursor:"), "{bad}: {err}");
        }
    }
}
