//! The ranges every value from a client must fall in before it reaches a query. PostgreSQL and
//! chrono disagree at the edges (chrono takes signed years up to ±262,143; PostgreSQL refuses
//! timestamps before 4713 BC and after 294,276 AD), so an instant outside the range is a 400
//! naming its field, never a database error answered as a 500.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::ApiError;

/// The earliest and latest year a client may name (a date filter, a cursor's position). Football
/// data starts in the 19th century; nothing of this service is planned beyond 2100.
pub const MIN_YEAR: i32 = 1900;
pub const MAX_YEAR: i32 = 2100;

fn out_of_range(field: &str) -> ApiError {
    ApiError::invalid_field(field, format!("out of range: expected a year from {MIN_YEAR} to {MAX_YEAR}"))
}

/// `date` when its year is within [`MIN_YEAR`]..=[`MAX_YEAR`], else a 400 naming `field`.
pub fn check_date(field: &str, date: NaiveDate) -> Result<NaiveDate, ApiError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&date.year()) { Ok(date) } else { Err(out_of_range(field)) }
}

/// `at` when its year (UTC) is within [`MIN_YEAR`]..=[`MAX_YEAR`], else a 400 naming `field`.
pub fn check_instant(field: &str, at: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    check_date(field, at.date_naive()).map(|_| at)
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
        for bad in [NaiveDate::from_ymd_opt(-9999, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2101, 1, 1).unwrap()] {
            let e = check_date("date_from", bad).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().starts_with("date_from:"), "{e}");
        }
        assert!(check_instant("cursor", DateTime::from_timestamp(-300_000_000_000, 0).unwrap()).is_err());
        assert!(check_text("username", "a\0b").is_err());
        assert!(check_text("username", "ann").is_ok());
    }
}
