//! Random whitespace and comments between the tokens of a text.
//!
//! [`noisy`] takes a text of the language without comments (such as the formatter's output for a
//! generated tree) and gives texts that differ from it only between tokens: whitespace replaced by
//! other whitespace and, when asked, `//` comments inserted. Whitespace noise never holds more
//! than one line break, so it adds no blank lines, which the formatter keeps between items.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// Whitespace that may stand where whitespace stood; at most one line break each.
const WHITESPACE: &[&str] = &[" ", "  ", "\t", "\n", "\r\n", " \n\t ", "\t \t", "\n    "];

/// What goes into one gap between tokens.
#[derive(Clone, Debug)]
pub enum Gap {
    /// The gap as it was.
    Keep,
    /// Other whitespace.
    Whitespace(&'static str),
    /// A comment, with whitespace before and after it.
    Comment {
        before: &'static str,
        text: String,
        after: &'static str,
    },
}

/// The byte ranges of the tokens of `text`, which has no comments. It knows the language's
/// tokens only well enough to find the gaps between them.
pub fn token_ranges(text: &str) -> Vec<(usize, usize)> {
    const TWO_CHAR: &[&str] = &["->", "=>", "==", "!=", "<=", ">=", "&&", "||"];
    let mut ranges = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let mut end = start + c.len_utf8();
        if c == '"' {
            while let Some((index, c)) = chars.next() {
                end = index + c.len_utf8();
                if c == '\\' {
                    if let Some((index, c)) = chars.next() {
                        end = index + c.len_utf8();
                    }
                } else if c == '"' {
                    break;
                }
            }
        } else if c.is_ascii_alphanumeric() || c == '_' {
            while let Some(&(index, c)) = chars.peek() {
                if !(c.is_ascii_alphanumeric() || c == '_') {
                    break;
                }
                end = index + c.len_utf8();
                chars.next();
            }
        } else if let Some(&(index, next)) = chars.peek() {
            let pair: String = [c, next].iter().collect();
            if TWO_CHAR.contains(&pair.as_str()) {
                end = index + next.len_utf8();
                chars.next();
            }
        }
        ranges.push((start, end));
    }
    ranges
}

/// `text` with each gap around and between its tokens replaced as `gaps` say (one gap before
/// the first token, one after each token; missing gaps are kept).
pub fn apply(text: &str, gaps: &[Gap]) -> String {
    let ranges = token_ranges(text);
    let mut out = String::new();
    let mut previous_end = 0;
    for (index, (start, end)) in ranges
        .iter()
        .copied()
        .chain([(text.len(), text.len())])
        .enumerate()
    {
        let original = &text[previous_end..start];
        match gaps.get(index).unwrap_or(&Gap::Keep) {
            Gap::Keep => out.push_str(original),
            Gap::Whitespace(whitespace) => out.push_str(whitespace),
            Gap::Comment {
                before,
                text,
                after,
            } => {
                out.push_str(before);
                out.push_str("//");
                out.push_str(text);
                out.push('\n');
                out.push_str(after);
            }
        }
        out.push_str(&text[start..end]);
        previous_end = end;
    }
    out
}

fn whitespace() -> impl Strategy<Value = &'static str> {
    select(WHITESPACE.to_vec())
}

fn comment_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => select(vec![' ', '/', '"', '\\', '*', 'é', '😀', '\t', '\r', '{', ';']),
        1 => any::<char>().prop_filter("comments end at a line break", |c| *c != '\n'),
    ];
    vec(c, 0..12).prop_map(String::from_iter)
}

fn gap(comments: bool) -> BoxedStrategy<Gap> {
    let keep_or_whitespace = prop_oneof![
        2 => Just(Gap::Keep),
        1 => whitespace().prop_map(Gap::Whitespace),
    ];
    if !comments {
        return keep_or_whitespace.boxed();
    }
    let comment = (whitespace(), comment_text(), whitespace()).prop_map(|(before, text, after)| {
        Gap::Comment {
            before,
            text,
            after,
        }
    });
    prop_oneof![9 => keep_or_whitespace, 1 => comment].boxed()
}

/// Texts that differ from `text` only in the whitespace between tokens, and in inserted comments
/// when `comments` is true.
pub fn noisy(text: String, comments: bool) -> impl Strategy<Value = String> {
    let gaps = token_ranges(&text).len() + 1;
    vec(gap(comments), gaps..=gaps).prop_map(move |gaps| apply(&text, &gaps))
}
