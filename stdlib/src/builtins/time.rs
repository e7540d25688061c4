//! Timestamps and durations: `timestamp(text)`, `duration(text)`, the timestamp methods `offset`,
//! `durationSince`, `toDate` and `toTime`, and the duration conversions `toDays` to
//! `toMilliseconds`.
//!
//! A timestamp is milliseconds since 1970-01-01T00:00:00Z and a duration a signed number of
//! milliseconds, both 64-bit. Days are UTC days of exactly 86,400 seconds (no leap seconds), so
//! `t.toDate()` is midnight UTC of the day `t` falls in, also before 1970 (it rounds toward the
//! past, not toward zero), and `t.toTime()` is the time since that midnight, from `0ms` to just
//! under `1d`. So `t.toDate().offset(t.toTime()) == t` for every `t` whose day starts in range.
//! Arithmetic that leaves the 64-bit range is [`EvalError::Overflow`], naming the operation and its operands. Duration conversions
//! truncate toward zero: `duration("-90m").toHours()` is `-1`.
//!
//! Local time is read in an IANA time zone named by its argument (`"Europe/Berlin"`), with the
//! tz database built into the binary (jiff's bundled copy), so a decision does not depend on the
//! machine's zoneinfo: `t.dayOfWeek(zone)` is the ISO weekday (1 Monday to 7 Sunday),
//! `t.timeOfDay(zone)` the wall-clock time as a duration (`9h30m` at half past nine, whatever a
//! daylight saving change did earlier that day), `t.date(zone)` the local date as `YYYY-MM-DD`.
//! An unknown zone is [`EvalError::Extension`].

use authz_runtime::eval::{EvalError, Evaluator, Overflow};
use authz_runtime::ext::{parse_duration, parse_timestamp};
use authz_runtime::value::Value;

use super::arguments;

const MILLIS_PER_SECOND: i64 = 1000;
const MILLIS_PER_MINUTE: i64 = 60 * MILLIS_PER_SECOND;
const MILLIS_PER_HOUR: i64 = 60 * MILLIS_PER_MINUTE;
const MILLIS_PER_DAY: i64 = 24 * MILLIS_PER_HOUR;

/// `timestamp(text)`: an RFC 3339 date-time.
pub(super) fn timestamp(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [text] = arguments(args)?;
    let millis = parse_timestamp(evaluator.text(text)?)
        .map_err(|_| EvalError::Extension("not an RFC 3339 timestamp"))?;
    Ok(Value::Timestamp(millis))
}

/// `duration(text)`: a duration such as `1h30m`.
pub(super) fn duration(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [text] = arguments(args)?;
    let millis = parse_duration(evaluator.text(text)?)
        .map_err(|_| EvalError::Extension("not a duration"))?;
    Ok(Value::Duration(millis))
}

/// `t.offset(d)`: the timestamp `d` after `t` (before it for a negative `d`).
pub(super) fn offset(_: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [instant, span] = arguments(args)?;
    let (instant, span) = (timestamp_millis(instant)?, duration_millis(span)?);
    let sum = instant
        .checked_add(span)
        .ok_or(EvalError::Overflow(Overflow::Offset(instant, span)))?;
    Ok(Value::Timestamp(sum))
}

/// `t.durationSince(u)`: the duration from `u` to `t`, negative when `u` is later.
pub(super) fn duration_since(_: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [later, earlier] = arguments(args)?;
    let (later, earlier) = (timestamp_millis(later)?, timestamp_millis(earlier)?);
    let difference = later
        .checked_sub(earlier)
        .ok_or(EvalError::Overflow(Overflow::DurationSince(later, earlier)))?;
    Ok(Value::Duration(difference))
}

/// `t.toDate()`: midnight UTC of the day `t` falls in.
pub(super) fn to_date(_: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [instant] = arguments(args)?;
    let millis = timestamp_millis(instant)?;
    let midnight = millis
        .checked_sub(millis.rem_euclid(MILLIS_PER_DAY))
        .ok_or(EvalError::Overflow(Overflow::Calendar(millis)))?;
    Ok(Value::Timestamp(midnight))
}

/// `t.toTime()`: the duration since midnight UTC of the day `t` falls in.
pub(super) fn to_time(_: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [instant] = arguments(args)?;
    Ok(Value::Duration(
        timestamp_millis(instant)?.rem_euclid(MILLIS_PER_DAY),
    ))
}

/// `t` as the date and time a clock in the IANA zone named by `zone` shows.
fn zoned(
    evaluator: &Evaluator<'_>,
    instant: Value,
    zone: Value,
) -> Result<jiff::civil::DateTime, EvalError> {
    let millis = timestamp_millis(instant)?;
    let name = evaluator.text(zone)?;
    let zone =
        jiff::tz::TimeZone::get(name).map_err(|_| EvalError::Extension("unknown time zone"))?;
    let instant = jiff::Timestamp::from_millisecond(millis)
        .map_err(|_| EvalError::Overflow(Overflow::Calendar(millis)))?;
    Ok(zone.to_datetime(instant))
}

/// `t.dayOfWeek(zone)`: 1 (Monday) to 7 (Sunday) in `zone`.
pub(super) fn day_of_week(
    evaluator: &mut Evaluator<'_>,
    args: &[Value],
) -> Result<Value, EvalError> {
    let [instant, zone] = arguments(args)?;
    let local = zoned(evaluator, instant, zone)?;
    Ok(Value::Long(i64::from(
        local.weekday().to_monday_one_offset(),
    )))
}

/// `t.timeOfDay(zone)`: the wall-clock time in `zone`, as the duration a clock shows since
/// midnight.
pub(super) fn time_of_day(
    evaluator: &mut Evaluator<'_>,
    args: &[Value],
) -> Result<Value, EvalError> {
    let [instant, zone] = arguments(args)?;
    let local = zoned(evaluator, instant, zone)?;
    let millis = i64::from(local.hour()) * MILLIS_PER_HOUR
        + i64::from(local.minute()) * MILLIS_PER_MINUTE
        + i64::from(local.second()) * MILLIS_PER_SECOND
        + i64::from(local.millisecond());
    Ok(Value::Duration(millis))
}

/// `t.date(zone)`: the date in `zone`, as `YYYY-MM-DD`.
pub(super) fn date(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [instant, zone] = arguments(args)?;
    let local = zoned(evaluator, instant, zone)?;
    let text = format!(
        "{:04}-{:02}-{:02}",
        local.year(),
        local.month(),
        local.day()
    );
    Ok(evaluator.make_string(&text))
}

/// `d.toDays()`
pub(super) fn to_days(_: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    in_units(args, MILLIS_PER_DAY)
}

/// `d.toHours()`
pub(super) fn to_hours(_: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    in_units(args, MILLIS_PER_HOUR)
}

/// `d.toMinutes()`
pub(super) fn to_minutes(_: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    in_units(args, MILLIS_PER_MINUTE)
}

/// `d.toSeconds()`
pub(super) fn to_seconds(_: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    in_units(args, MILLIS_PER_SECOND)
}

/// `d.toMilliseconds()`
pub(super) fn to_milliseconds(_: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    in_units(args, 1)
}

/// The duration receiver counted in whole units of `millis_per_unit`, truncated toward zero.
fn in_units(args: &[Value], millis_per_unit: i64) -> Result<Value, EvalError> {
    let [span] = arguments(args)?;
    // `millis_per_unit` is a positive constant: the division cannot overflow.
    Ok(Value::Long(duration_millis(span)? / millis_per_unit))
}

fn timestamp_millis(value: Value) -> Result<i64, EvalError> {
    match value {
        Value::Timestamp(millis) => Ok(millis),
        other => Err(EvalError::WrongType(other.kind_name())),
    }
}

fn duration_millis(value: Value) -> Result<i64, EvalError> {
    match value {
        Value::Duration(millis) => Ok(millis),
        other => Err(EvalError::WrongType(other.kind_name())),
    }
}
