//! String methods: `startsWith`, `endsWith`, `contains`, `toLower`, `toUpper` and `length`.
//!
//! Strings are compared by Unicode scalar values, without normalization: `"é"` written as one
//! code point does not start with `"e"`, and written as `e` plus a combining accent it does. Case
//! mapping is Unicode's full, locale-independent mapping (`"ß".toUpper()` is `"SS"`, `"İ".toLower()`
//! is `"i̇"`), so the result may be longer than the input. `length` counts Unicode scalar values
//! (Rust `char`s), not bytes and not grapheme clusters.

use authz_runtime::eval::{EvalError, Evaluator, Overflow};
use authz_runtime::value::Value;

use super::arguments;

/// `s.startsWith(prefix)`
pub(super) fn starts_with(
    evaluator: &mut Evaluator<'_>,
    args: &[Value],
) -> Result<Value, EvalError> {
    let [text, prefix] = arguments(args)?;
    let text = evaluator.text(text)?;
    let prefix = evaluator.text(prefix)?;
    Ok(Value::Bool(text.starts_with(prefix)))
}

/// `s.endsWith(suffix)`
pub(super) fn ends_with(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [text, suffix] = arguments(args)?;
    let text = evaluator.text(text)?;
    let suffix = evaluator.text(suffix)?;
    Ok(Value::Bool(text.ends_with(suffix)))
}

/// `s.contains(part)`: `part` occurs in `s`; the empty string occurs in every string.
pub(super) fn contains(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [text, part] = arguments(args)?;
    let text = evaluator.text(text)?;
    let part = evaluator.text(part)?;
    Ok(Value::Bool(text.contains(part)))
}

/// `s.toLower()`
pub(super) fn to_lower(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [receiver] = arguments(args)?;
    let text = evaluator.text(receiver)?;
    // A string that is already lower case is returned as it is, without allocating.
    if text
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        return Ok(receiver);
    }
    let lowered = text.to_lowercase();
    if lowered == text {
        return Ok(receiver);
    }
    Ok(evaluator.make_string(&lowered))
}

/// `s.toUpper()`
pub(super) fn to_upper(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [receiver] = arguments(args)?;
    let text = evaluator.text(receiver)?;
    // A string that is already upper case is returned as it is, without allocating.
    if text
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_lowercase())
    {
        return Ok(receiver);
    }
    let raised = text.to_uppercase();
    if raised == text {
        return Ok(receiver);
    }
    Ok(evaluator.make_string(&raised))
}

/// `s.length()`: the number of Unicode scalar values.
pub(super) fn length(evaluator: &mut Evaluator<'_>, args: &[Value]) -> Result<Value, EvalError> {
    let [receiver] = arguments(args)?;
    let count = evaluator.text(receiver)?.chars().count();
    let count = i64::try_from(count).map_err(|_| EvalError::Overflow(Overflow::Length))?;
    Ok(Value::Long(count))
}
