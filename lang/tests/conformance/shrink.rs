//! Shrinking a failing input to a small one that still fails the same way.
//!
//! The input is cut into rough tokens (words, strings, comments, whitespace runs, single
//! punctuation characters). Shrinking then removes runs of tokens of every length at every
//! offset, removes whole items and matching bracket pairs (to peel parentheses), and finally single characters,
//! keeping each removal after which the input still fails, until nothing more can go.

/// The most candidates [`shrink`] tries, so that a slow failure cannot stall the test.
const MAX_ATTEMPTS: usize = 50_000;

/// Shrinks `text` while `still_fails` holds. `still_fails(text)` must be true.
pub fn shrink(text: &str, still_fails: impl Fn(&str) -> bool) -> String {
    let mut attempts = 0;
    let mut try_candidate = |candidate: &str| {
        attempts += 1;
        attempts <= MAX_ATTEMPTS && still_fails(candidate)
    };
    let mut pieces = rough_tokens(text);
    loop {
        let before = pieces.len();
        remove_items(&mut pieces, &mut try_candidate);
        remove_runs(&mut pieces, &mut try_candidate);
        remove_bracket_pairs(&mut pieces, &mut try_candidate);
        if pieces.len() == before {
            break;
        }
    }
    // Single characters, then whitespace made plain for readability.
    let mut chars: Vec<String> = pieces.concat().chars().map(String::from).collect();
    remove_runs(&mut chars, &mut try_candidate);
    let mut text = chars.concat();
    for from in ["\r\n", "\n", "\t", "  "] {
        let candidate = text.replace(from, " ");
        if candidate != text && try_candidate(&candidate) {
            text = candidate;
        }
    }
    text
}

/// Removes runs of pieces, longest first, at every offset, while the result still fails.
fn remove_runs(pieces: &mut Vec<String>, still_fails: &mut impl FnMut(&str) -> bool) {
    let mut length = pieces.len();
    while length > 0 {
        let mut start = 0;
        while start + length <= pieces.len() {
            let candidate: String = pieces[..start].concat() + &pieces[start + length..].concat();
            if still_fails(&candidate) {
                pieces.drain(start..start + length);
            } else {
                start += 1;
            }
        }
        length = if length > 8 {
            length * 3 / 4
        } else {
            length - 1
        };
    }
}

/// Removes runs of whole items (the pieces between two `;`), while the result still fails.
fn remove_items(pieces: &mut Vec<String>, still_fails: &mut impl FnMut(&str) -> bool) {
    let mut start = 0;
    while start < pieces.len() {
        let ends: Vec<usize> = (start..pieces.len())
            .filter(|&index| pieces[index] == ";")
            .map(|index| index + 1)
            .chain([pieces.len()])
            .collect();
        let removed = ends.iter().rev().find(|&&end| {
            let candidate: String = pieces[..start].concat() + &pieces[end..].concat();
            still_fails(&candidate)
        });
        match removed {
            Some(&end) => {
                pieces.drain(start..end);
            }
            None => {
                start = ends.first().copied().unwrap_or(pieces.len());
            }
        }
    }
}

/// Removes an opening bracket together with its matching closing one, while the result still
/// fails.
fn remove_bracket_pairs(pieces: &mut Vec<String>, still_fails: &mut impl FnMut(&str) -> bool) {
    let mut open = 0;
    while open < pieces.len() {
        let Some(close) = matching_close(pieces, open) else {
            open += 1;
            continue;
        };
        let mut candidate = pieces.clone();
        candidate.remove(close);
        candidate.remove(open);
        if still_fails(&candidate.concat()) {
            *pieces = candidate;
        } else {
            open += 1;
        }
    }
}

fn matching_close(pieces: &[String], open: usize) -> Option<usize> {
    let closing = match pieces[open].as_str() {
        "(" => ")",
        "[" => "]",
        "{" => "}",
        "<" => ">",
        _ => return None,
    };
    let mut depth = 0usize;
    for (index, piece) in pieces.iter().enumerate().skip(open) {
        if *piece == pieces[open] {
            depth += 1;
        } else if piece == closing {
            depth -= 1;
            if depth == 0 {
                return Some(index);
            }
        }
    }
    None
}

/// Cuts `text` into words, strings, comments, whitespace runs and single other characters;
/// concatenated, the pieces give back `text`.
fn rough_tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let start = index;
        let c = chars[index];
        index += 1;
        if c.is_ascii_alphanumeric() || c == '_' {
            while index < chars.len()
                && (chars[index].is_ascii_alphanumeric() || chars[index] == '_')
            {
                index += 1;
            }
        } else if c.is_whitespace() {
            while index < chars.len() && chars[index].is_whitespace() {
                index += 1;
            }
        } else if c == '/' && chars.get(index) == Some(&'/') {
            while index < chars.len() && chars[index] != '\n' {
                index += 1;
            }
        } else if c == '"' {
            while index < chars.len() && chars[index] != '"' && chars[index] != '\n' {
                if chars[index] == '\\' {
                    index += 1;
                }
                index += 1;
            }
            index = (index + 1).min(chars.len());
        }
        pieces.push(chars[start..index].iter().collect());
    }
    pieces
}
