//! Timestamps in answers: RFC 3339 in UTC (`2026-11-26T04:02:37Z`), written here once.
//! A dozen lines of calendar arithmetic instead of a date crate in every component.

use crate::ports::Timestamp;

const MS_PER_DAY: i64 = 86_400_000;

/// `ms` since the Unix epoch as an RFC 3339 UTC date-time, to the second (milliseconds are
/// dropped, not rounded, so a time never lands in the next second).
pub fn rfc3339(ms: Timestamp) -> String {
    let (days, ms_of_day) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `YYYY-MM-DD` (a real date) as the ms of its midnight UTC.
pub fn parse_date(s: &str) -> Option<Timestamp> {
    let mut parts = s.trim().splitn(3, '-');
    let mut next = |len: usize| parts.next().filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))?.parse::<i64>().ok();
    let (year, month, day) = (next(4)?, next(2)?, next(2)?);
    if !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    // Howard Hinnant's `days_from_civil`, the inverse of `civil_from_days` below.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    // A day past its month's end (2026-02-30) comes back as another date: refused.
    (civil_from_days(days) == (year, month, day)).then_some(days * MS_PER_DAY)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): shifts the year to start in March so the leap day is the year's last,
/// then splits into 400-year eras of 146 097 days.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_back_to_their_midnight_and_refuses_others() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(rfc3339(parse_date("2026-11-26").unwrap()), "2026-11-26T00:00:00Z");
        assert_eq!(rfc3339(parse_date("2024-02-29").unwrap()), "2024-02-29T00:00:00Z");
        for bad in ["2026-02-30", "2025-02-29", "2026-13-01", "2026-1-01", "26-01-01", "2026-01-01T00:00", "", "yesterday"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_the_epoch_and_an_ordinary_date() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_665_757_999), "2026-11-26T04:02:37Z");
    }

    #[test]
    fn knows_leap_days_and_century_rules() {
        assert_eq!(rfc3339(1_709_251_199_000), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(1_709_251_200_000), "2024-03-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z", "2000 is a leap year");
        assert_eq!(rfc3339(4_107_542_400_000), "2100-03-01T00:00:00Z", "2100 is not");
        assert_eq!(rfc3339(1_735_689_599_000), "2024-12-31T23:59:59Z", "day 366");
    }

    #[test]
    fn counts_back_before_the_epoch() {
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
