//! The ranges every value from a client must fall in before it reaches a query. PostgreSQL and
//! chrono disagree at the edges (chrono takes signed years up to ±262,143; PostgreSQL refuses
//! timestamps before 4713 BC and after 294,276 AD), so an instant outside the range is a 400
//! naming its field, never a database error answered as a 500.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};

use super::ApiError;

/// The earliest and latest year a client may write in a date filter: the four-digit years of
/// RFC 3339 (`format: date` / `date-time` in the OpenAPI document, so the document and the code
/// agree exactly). chrono also takes signed and longer years (`-9999-01-01`, `+262143-12-31`),
/// which are 400s here; every instant of years 0000-9999, offset included, is one PostgreSQL takes.
pub const MIN_YEAR: i32 = 0;
pub const MAX_YEAR: i32 = 9999;

fn out_of_range(field: &str) -> ApiError {
    ApiError::invalid_field(field, format!("out of range: expected a year from {MIN_YEAR} to {MAX_YEAR}"))
}

/// `date` when its year is within [`MIN_YEAR`]..=[`MAX_YEAR`], else a 400 naming `field`.
pub fn check_date(field: &str, date: NaiveDate) -> Result<NaiveDate, ApiError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&date.year()) { Ok(date) } else { Err(out_of_range(field)) }
}

/// `at` when its year as written (before any offset is applied) is within
/// [`MIN_YEAR`]..=[`MAX_YEAR`], else a 400 naming `field`.
pub fn check_instant(field: &str, at: DateTime<FixedOffset>) -> Result<DateTime<Utc>, ApiError> {
    check_date(field, at.date_naive()).map(|_| at.with_timezone(&Utc))
}

/// Refuses text with a NUL character (PostgreSQL cannot store or compare one in `text`).
pub fn check_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') { Err(ApiError::invalid_field(field, "must not contain a NUL character")) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_outside_the_range_are_400s_naming_the_field() {
        let ok = NaiveDate::from_ymd_opt(2024, 8, 16).unwrap();
        assert_eq!(check_date("date_from", ok).unwrap(), ok);
        for good in [NaiveDate::from_ymd_opt(0, 1, 1).unwrap(), NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()] {
            assert_eq!(check_date("date_from", good).unwrap(), good);
        }
        for bad in [NaiveDate::from_ymd_opt(-9999, 1, 1).unwrap(), NaiveDate::from_ymd_opt(10000, 1, 1).unwrap()] {
            let e = check_date("date_from", bad).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().starts_with("date_from:"), "{e}");
        }
        // The year as written counts: the first instant of year 0 east of Greenwich is in 1 BC (UTC).
        let early = DateTime::parse_from_rfc3339("0000-01-01T00:00:00+23:59").unwrap();
        assert_eq!(check_instant("date_from", early).unwrap(), early.with_timezone(&Utc));
        let far = DateTime::from_timestamp(-300_000_000_000, 0).unwrap().fixed_offset();
        assert!(check_instant("date_from", far).is_err());
        assert!(check_text("username", "a\0b").is_err());
        assert!(check_text("username", "ann").is_ok());
    }
}
