//! RFC 3339 timestamps: `timestamp("2024-01-31T12:00:00Z")`, `timestamp("2024-01-31T12:00:00.250+02:00")`.
//!
//! A timestamp is stored as milliseconds since the Unix epoch (1970-01-01T00:00:00Z). Digits of a
//! fraction beyond milliseconds are accepted and dropped. Leap seconds (`:60`) are not accepted.

use std::fmt;

/// Why a string is not an RFC 3339 timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimestampError {
    /// The text does not have the shape `YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)`; the field
    /// names what was expected at the first byte that did not fit.
    Malformed {
        /// What was expected, such as "a two-digit month".
        expected: &'static str,
        /// The byte offset where it was expected.
        offset: usize,
    },
    /// A field is outside its range, such as month 13 or February 30.
    OutOfRange {
        /// The field: "month", "day", "hour", "minute", "second" or "offset".
        field: &'static str,
        /// The value written.
        value: u32,
    },
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampError::Malformed { expected, offset } => {
                write!(
                    f,
                    "expected {expected} at byte {offset} of an RFC 3339 timestamp"
                )
            }
            TimestampError::OutOfRange { field, value } => {
                write!(f, "{field} {value} is out of range")
            }
        }
    }
}

impl std::error::Error for TimestampError {}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, count: usize, expected: &'static str) -> Result<u32, TimestampError> {
        let mut value = 0u32;
        for _ in 0..count {
            match self.bytes.get(self.pos) {
                Some(b) if b.is_ascii_digit() => {
                    value = value * 10 + u32::from(b - b'0');
                    self.pos += 1;
                }
                _ => {
                    return Err(TimestampError::Malformed {
                        expected,
                        offset: self.pos,
                    })
                }
            }
        }
        Ok(value)
    }

    fn byte(&mut self, allowed: &[u8], expected: &'static str) -> Result<u8, TimestampError> {
        match self.bytes.get(self.pos) {
            Some(b) if allowed.contains(b) => {
                self.pos += 1;
                Ok(*b)
            }
            _ => Err(TimestampError::Malformed {
                expected,
                offset: self.pos,
            }),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }
}

fn check_range(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), TimestampError> {
    if value < min || value > max {
        return Err(TimestampError::OutOfRange { field, value });
    }
    Ok(())
}

fn is_leap_year(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses an RFC 3339 date-time into milliseconds since the Unix epoch.
pub fn parse_timestamp(text: &str) -> Result<i64, TimestampError> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year = cursor.digits(4, "a four-digit year")?;
    cursor.byte(b"-", "`-`")?;
    let month = cursor.digits(2, "a two-digit month")?;
    check_range("month", month, 1, 12)?;
    cursor.byte(b"-", "`-`")?;
    let day = cursor.digits(2, "a two-digit day")?;
    check_range("day", day, 1, days_in_month(year, month))?;
    cursor.byte(b"Tt ", "`T` between date and time")?;
    let hour = cursor.digits(2, "a two-digit hour")?;
    check_range("hour", hour, 0, 23)?;
    cursor.byte(b":", "`:`")?;
    let minute = cursor.digits(2, "two-digit minutes")?;
    check_range("minute", minute, 0, 59)?;
    cursor.byte(b":", "`:`")?;
    let second = cursor.digits(2, "two-digit seconds")?;
    check_range("second", second, 0, 59)?;
    let mut millis = 0u32;
    if cursor.peek() == Some(b'.') {
        cursor.pos += 1;
        let mut n_digits = 0usize;
        while let Some(b) = cursor.peek().filter(u8::is_ascii_digit) {
            if n_digits < 3 {
                millis = millis * 10 + u32::from(b - b'0');
            }
            n_digits += 1;
            cursor.pos += 1;
        }
        if n_digits == 0 {
            return Err(TimestampError::Malformed {
                expected: "fraction digits after `.`",
                offset: cursor.pos,
            });
        }
        for _ in n_digits..3 {
            millis *= 10;
        }
    }
    let offset_minutes: i64 = match cursor.byte(b"Zz+-", "`Z` or a `+HH:MM` offset")? {
        b'Z' | b'z' => 0,
        sign => {
            let hours = cursor.digits(2, "a two-digit offset hour")?;
            check_range("offset", hours, 0, 23)?;
            cursor.byte(b":", "`:`")?;
            let minutes = cursor.digits(2, "two-digit offset minutes")?;
            check_range("offset", minutes, 0, 59)?;
            let total = i64::from(hours * 60 + minutes);
            if sign == b'-' {
                -total
            } else {
                total
            }
        }
    };
    if cursor.pos != cursor.bytes.len() {
        return Err(TimestampError::Malformed {
            expected: "the end of the timestamp",
            offset: cursor.pos,
        });
    }
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    let seconds =
        days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    Ok(seconds * 1000 + i64::from(millis))
}

/// The civil date of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // The day is 1 to 31 and the month 1 to 12 by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Formats milliseconds since the Unix epoch as an RFC 3339 date-time in UTC, with milliseconds
/// only when there are some: `2024-01-31T12:00:00Z`, `1970-01-01T00:00:00.250Z`. The result parses
/// back to the same instant for the years 0000 to 9999.
pub fn format_timestamp(millis: i64) -> String {
    format(millis, false)
}

/// Formats milliseconds since the Unix epoch like [`format_timestamp`], but always with three
/// digits of milliseconds, so that every result has the same width (for log lines):
/// `2024-01-31T12:00:00.000Z`.
pub fn format_timestamp_millis(millis: i64) -> String {
    format(millis, true)
}

fn format(millis: i64, always_millis: bool) -> String {
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (minute, rest) = (rest / 60_000, rest % 60_000);
    let (second, milli) = (rest / 1000, rest % 1000);
    let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    if milli != 0 || always_millis {
        text.push_str(&format!(".{milli:03}"));
    }
    text.push('Z');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_zero() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
    }

    #[test]
    fn known_instants() {
        assert_eq!(
            parse_timestamp("2024-01-31T12:00:00Z"),
            Ok(1_706_702_400_000)
        );
        assert_eq!(parse_timestamp("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
        assert_eq!(parse_timestamp("1969-12-31T23:59:59Z"), Ok(-1000));
    }

    #[test]
    fn offsets_shift_to_utc() {
        assert_eq!(parse_timestamp("1970-01-01T02:00:00+02:00"), Ok(0));
        assert_eq!(parse_timestamp("1969-12-31T23:30:00-00:30"), Ok(0));
    }

    #[test]
    fn fractions_keep_milliseconds() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.25Z"), Ok(250));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.123456Z"), Ok(123));
    }

    #[test]
    fn malformed_text_is_rejected() {
        assert!(matches!(
            parse_timestamp("2024-01-31"),
            Err(TimestampError::Malformed { offset: 10, .. })
        ));
        assert!(parse_timestamp("").is_err());
        assert!(parse_timestamp("2024-1-31T00:00:00Z").is_err());
        assert!(parse_timestamp("2024-01-31T00:00:00").is_err());
        assert!(parse_timestamp("2024-01-31T00:00:00.Z").is_err());
        assert!(parse_timestamp("2024-01-31T00:00:00Zjunk").is_err());
        assert!(parse_timestamp("2024-01-31T00:00:00+0200").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(-1000), "1969-12-31T23:59:59Z");
        assert_eq!(
            format_timestamp(951_782_400_250),
            "2000-02-29T00:00:00.250Z"
        );
        for millis in [
            0,
            -1,
            1_706_702_400_000,
            -62_167_219_200_000,
            253_402_300_799_999,
        ] {
            assert_eq!(parse_timestamp(&format_timestamp(millis)), Ok(millis));
        }
        // Extreme values format without overflow, even if they cannot parse back.
        let _ = format_timestamp(i64::MIN);
        let _ = format_timestamp(i64::MAX);
    }

    #[test]
    fn out_of_range_fields_are_rejected() {
        assert_eq!(
            parse_timestamp("2023-02-29T00:00:00Z"),
            Err(TimestampError::OutOfRange {
                field: "day",
                value: 29
            })
        );
        assert_eq!(
            parse_timestamp("2024-13-01T00:00:00Z"),
            Err(TimestampError::OutOfRange {
                field: "month",
                value: 13
            })
        );
        assert!(parse_timestamp("2024-01-01T24:00:00Z").is_err());
        assert!(parse_timestamp("2024-01-01T00:60:00Z").is_err());
        assert!(parse_timestamp("2024-01-01T00:00:60Z").is_err());
        assert!(parse_timestamp("2024-01-01T00:00:00+24:00").is_err());
    }
}
