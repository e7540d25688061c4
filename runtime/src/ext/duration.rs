//! Durations: `duration("1h30m")`, `duration("250ms")`, `duration("-2d")`.
//!
//! A duration is an optional `-` followed by one or more `<digits><unit>` parts, with units `d`,
//! `h`, `m`, `s` and `ms`, each at most once and from largest to smallest. It is stored as a
//! number of milliseconds.

use std::fmt;

/// Why a string is not a duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// The text has no parts at all.
    Empty,
    /// A unit was expected to follow the digits at this byte offset.
    MissingUnit {
        /// The byte offset after the digits.
        offset: usize,
    },
    /// Digits were expected at this byte offset.
    MissingNumber {
        /// The byte offset.
        offset: usize,
    },
    /// A unit other than `d`, `h`, `m`, `s` and `ms`.
    UnknownUnit(String),
    /// A unit repeated or out of order, such as `30m1h`.
    UnitOrder(String),
    /// The total does not fit in 64-bit milliseconds.
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("a duration needs at least one part such as `1h`"),
            DurationError::MissingUnit { offset } => write!(f, "expected a unit at byte {offset}"),
            DurationError::MissingNumber { offset } => {
                write!(f, "expected digits at byte {offset}")
            }
            DurationError::UnknownUnit(unit) => {
                write!(
                    f,
                    "unknown unit `{unit}`; the units are `d`, `h`, `m`, `s` and `ms`"
                )
            }
            DurationError::UnitOrder(unit) => {
                write!(
                    f,
                    "unit `{unit}` is repeated or out of order; write units from `d` down to `ms`"
                )
            }
            DurationError::Overflow => f.write_str("the duration is too long"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Units from largest to smallest, with their length in milliseconds.
const UNITS: [(&str, i64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a duration into milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let (negative, body, mut pos) = match text.strip_prefix('-') {
        Some(rest) => (true, rest, 1),
        None => (false, text, 0),
    };
    if body.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut rest = body;
    let mut total: i64 = 0;
    // Index into `UNITS` of the smallest unit allowed next.
    let mut next_unit = 0usize;
    while !rest.is_empty() {
        let n_digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n_digits == 0 {
            return Err(DurationError::MissingNumber { offset: pos });
        }
        let (digits, after) = rest.split_at(n_digits);
        pos += n_digits;
        let n_letters = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        if n_letters == 0 {
            return Err(DurationError::MissingUnit { offset: pos });
        }
        let (unit, after) = after.split_at(n_letters);
        pos += n_letters;
        let Some(unit_index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(DurationError::UnknownUnit(unit.to_owned()));
        };
        if unit_index < next_unit {
            return Err(DurationError::UnitOrder(unit.to_owned()));
        }
        next_unit = unit_index + 1;
        let millis_per_unit = UNITS.get(unit_index).map_or(1, |(_, millis)| *millis);
        let amount: i64 = digits.parse().map_err(|_| DurationError::Overflow)?;
        total = amount
            .checked_mul(millis_per_unit)
            .and_then(|part| total.checked_add(part))
            .ok_or(DurationError::Overflow)?;
        rest = after;
    }
    Ok(if negative { -total } else { total })
}

/// Formats milliseconds as a duration with the largest units first: `1h30m`, `-250ms`, `0ms`.
/// The result parses back to the same value (except `i64::MIN`, whose magnitude has no `i64`).
pub fn format_duration(millis: i64) -> String {
    let mut text = String::new();
    if millis < 0 {
        text.push('-');
    }
    let mut rest = millis.unsigned_abs();
    for (name, unit) in UNITS {
        let unit = unit.unsigned_abs();
        let amount = rest / unit;
        rest %= unit;
        if amount > 0 {
            text.push_str(&format!("{amount}{name}"));
        }
    }
    if millis == 0 {
        text.push_str("0ms");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_units() {
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("2d"), Ok(172_800_000));
        assert_eq!(parse_duration("0s"), Ok(0));
    }

    #[test]
    fn combined_units_add_up() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("1d2h3m4s5ms"), Ok(93_784_005));
        assert_eq!(parse_duration("-1h"), Ok(-3_600_000));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("-"), Err(DurationError::Empty));
        assert_eq!(
            parse_duration("10"),
            Err(DurationError::MissingUnit { offset: 2 })
        );
        assert_eq!(
            parse_duration("h"),
            Err(DurationError::MissingNumber { offset: 0 })
        );
        assert_eq!(
            parse_duration("1 hour"),
            Err(DurationError::MissingUnit { offset: 1 })
        );
        assert_eq!(
            parse_duration("1w"),
            Err(DurationError::UnknownUnit("w".into()))
        );
        assert_eq!(
            parse_duration("30m1h"),
            Err(DurationError::UnitOrder("h".into()))
        );
        assert_eq!(
            parse_duration("1m1m"),
            Err(DurationError::UnitOrder("m".into()))
        );
        assert_eq!(
            parse_duration("--1h"),
            Err(DurationError::MissingNumber { offset: 1 })
        );
    }

    #[test]
    fn formatting_round_trips() {
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(-250), "-250ms");
        assert_eq!(format_duration(0), "0ms");
        for millis in [1, 93_784_005, -172_800_000, i64::MAX, i64::MIN + 1] {
            assert_eq!(parse_duration(&format_duration(millis)), Ok(millis));
        }
        assert_eq!(format_duration(i64::MIN), "-106751991167d7h12m55s808ms");
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(
            parse_duration("99999999999999999999ms"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("9999999999999999d"),
            Err(DurationError::Overflow)
        );
    }
}
