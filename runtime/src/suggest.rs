//! "Did you mean" suggestions for misspelled names, in policies (the compiler), entity files and
//! requests: the closest known name by edit distance.
//!
//! A candidate is suggested only when it is close enough to be a likely typo: at most one edit
//! for short names and one edit per three characters for longer ones. Names longer than
//! [`MAX_NAME_CHARS`] get no suggestion, so that hostile input cannot make the quadratic distance
//! computation expensive.

/// Names longer than this (in characters) are not compared with the candidates.
const MAX_NAME_CHARS: usize = 64;

/// The candidate closest to `name`, if any is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let n_chars = name.chars().count();
    if n_chars > MAX_NAME_CHARS {
        return None;
    }
    let max_distance = (n_chars / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name || candidate.chars().count() > MAX_NAME_CHARS {
            continue;
        }
        let distance = if candidate.eq_ignore_ascii_case(name) {
            0
        } else {
            edit_distance(name, candidate)
        };
        if distance > max_distance {
            continue;
        }
        // Ties go to the smaller name in byte order, so that suggestions are deterministic.
        let better = match best {
            None => true,
            Some((best_distance, best_name)) => {
                distance < best_distance || (distance == best_distance && candidate < best_name)
            }
        };
        if better {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate.to_owned())
}

/// The help line for a suggestion.
pub fn did_you_mean(suggestion: Option<String>) -> Option<String> {
    suggestion.map(|name| format!("did you mean `{name}`?"))
}

/// The optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters each count one.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    // Three rows of the dynamic-programming table: two rows back, the previous one, the current.
    let mut before: Vec<usize> = vec![0; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current: Vec<usize> = vec![0; width];
    for (i, a_char) in a.iter().enumerate() {
        if let Some(first) = current.first_mut() {
            *first = i + 1;
        }
        for (j, b_char) in b.iter().enumerate() {
            let cost = usize::from(a_char != b_char);
            let substitution = previous.get(j).map_or(usize::MAX, |d| d + cost);
            let deletion = previous.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let insertion = current.get(j).map_or(usize::MAX, |d| d + 1);
            let mut best = substitution.min(deletion).min(insertion);
            let transposed =
                i > 0 && j > 0 && a.get(i - 1) == Some(b_char) && b.get(j - 1) == Some(a_char);
            if transposed {
                best = best.min(before.get(j - 1).map_or(usize::MAX, |d| d + 1));
            }
            if let Some(cell) = current.get_mut(j + 1) {
                *cell = best;
            }
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested() {
        assert_eq!(suggest("Usr", ["User", "Team"]), Some("User".into()));
        assert_eq!(suggest("raed", ["read", "write"]), Some("read".into()));
        assert_eq!(suggest("user", ["User"]), Some("User".into()));
    }

    #[test]
    fn distant_and_huge_names_get_no_suggestion() {
        assert_eq!(suggest("Order", ["User", "Team"]), None);
        let long = "x".repeat(10_000);
        let near = format!("{long}y");
        assert_eq!(suggest(&long, [near.as_str()]), None);
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("Usr", "User"), 1);
        assert_eq!(edit_distance("über", "uber"), 1);
        assert_eq!(edit_distance("owenr", "owner"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3);
    }

    #[test]
    fn ties_are_broken_by_name() {
        assert_eq!(suggest("cat", ["bat", "hat", "at"]).as_deref(), Some("at"));
    }
}
