//! "Did you mean" suggestions: the closest known name to a misspelled one, by edit distance.
//!
//! The distance counts edits of characters, a swap of two neighbours being one edit, with a case-only difference counted as the
//! closest possible match. A candidate is suggested only when it is close enough to be a likely
//! typo: at most one edit for short names and one edit per three characters for longer ones.

/// The candidate closest to `name`, if any is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let max_distance = (name.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
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

/// The edit distance between two strings, counted in characters: insertions, deletions,
/// substitutions and transpositions of two adjacent characters each count one (the "optimal
/// string alignment" distance).
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
    fn close_names_are_suggested() {
        assert_eq!(
            suggest("Usr", ["User", "Team", "Order"]).as_deref(),
            Some("User")
        );
        assert_eq!(
            suggest("owenr", ["owner", "total"]).as_deref(),
            Some("owner")
        );
        assert_eq!(suggest("user", ["User", "Users"]).as_deref(), Some("User"));
    }

    #[test]
    fn distant_names_are_not_suggested() {
        assert_eq!(suggest("x", ["owner", "total"]), None);
        assert_eq!(suggest("region", ["owner", "total"]), None);
        assert_eq!(suggest("same", ["same"]), None);
    }

    #[test]
    fn ties_are_broken_by_name() {
        assert_eq!(suggest("cat", ["bat", "hat", "at"]).as_deref(), Some("at"));
    }
}
