//! Route path templates: parsing, and the overlap and subset tests behind the ambiguity check.
//!
//! A template such as `/orders/{id}/items/*/**` is a `/` followed by segments separated by `/`.
//! A segment is a literal (`orders`), a parameter (`{id}`, one whole segment, bound by name), `*`
//! (any one segment) or `**` (zero or more segments, allowed only last). The template `/` has no
//! segments. A path is the sequence of its non-empty segments after normalization.
//!
//! Two routes are ambiguous when some request matches both and neither route's request set is a
//! strict subset of the other's: then neither is more specific. [`overlaps`] and [`is_subset`]
//! decide this exactly over segment patterns; since `**` can only be last, both are a single
//! linear walk over the two templates.

use std::fmt;

use authz_runtime::route::Method;

/// One segment pattern of a path template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Exactly this text.
    Literal(String),
    /// `{name}`: any one segment, bound to the parameter `name`.
    Param(String),
    /// `*`: any one segment.
    Star,
    /// `**`: zero or more segments; only last.
    Rest,
}

impl Segment {
    /// Whether the segment matches exactly one path segment of any text.
    fn is_single_wildcard(&self) -> bool {
        matches!(self, Segment::Param(_) | Segment::Star)
    }
}

/// A parsed path template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathTemplate {
    /// The segments after the leading `/`.
    pub segments: Vec<Segment>,
}

impl PathTemplate {
    /// The parameter names in order, each with its segment's byte offset in the template.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Param(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The template with parameter names erased, so that `/a/{x}` and `/a/{y}` read the same.
    pub fn shape(&self) -> String {
        let mut shape = String::new();
        for segment in &self.segments {
            shape.push('/');
            match segment {
                Segment::Literal(text) => shape.push_str(text),
                Segment::Param(_) => shape.push_str("{}"),
                Segment::Star => shape.push('*'),
                Segment::Rest => shape.push_str("**"),
            }
        }
        if shape.is_empty() {
            shape.push('/');
        }
        shape
    }
}

/// Why a path template is invalid, with the byte range of the offending part of the template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub kind: TemplateErrorKind,
    /// Byte offset into the template text.
    pub offset: usize,
    /// Length in bytes of the offending part.
    pub len: usize,
}

/// The kinds of template errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// The template does not start with `/`.
    NoLeadingSlash,
    /// Two `/` in a row, or a `/` at the end.
    EmptySegment,
    /// `{...}` whose inside is not an identifier.
    BadParamName,
    /// A segment that mixes text with `{`, `}` or `*`, such as `a{id}` or `v*`.
    MixedSegment,
    /// `**` before the last segment.
    RestNotLast,
    /// A character that cannot appear in a path template: `?`, `#`, `%`, or white space.
    BadCharacter(char),
}

impl fmt::Display for TemplateErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateErrorKind::NoLeadingSlash => f.write_str("a path template must start with `/`"),
            TemplateErrorKind::EmptySegment => {
                f.write_str("a path template cannot have an empty segment")
            }
            TemplateErrorKind::BadParamName => {
                f.write_str("a parameter must be an identifier in braces, such as `{id}`")
            }
            TemplateErrorKind::MixedSegment => f.write_str(
                "a segment is either literal text, a `{parameter}`, `*` or `**`, never a mix",
            ),
            TemplateErrorKind::RestNotLast => f.write_str("`**` may only be the last segment"),
            TemplateErrorKind::BadCharacter(c) => {
                write!(f, "a path template cannot contain {c:?}")
            }
        }
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a path template; the first problem found is returned.
pub fn parse_template(text: &str) -> Result<PathTemplate, TemplateError> {
    if let Some((offset, c)) = text
        .char_indices()
        .find(|(_, c)| matches!(c, '?' | '#' | '%') || c.is_whitespace())
    {
        let kind = TemplateErrorKind::BadCharacter(c);
        return Err(TemplateError {
            kind,
            offset,
            len: c.len_utf8(),
        });
    }
    let Some(rest) = text.strip_prefix('/') else {
        let len = text.chars().next().map_or(0, char::len_utf8);
        return Err(TemplateError {
            kind: TemplateErrorKind::NoLeadingSlash,
            offset: 0,
            len,
        });
    };
    let mut segments = Vec::new();
    if rest.is_empty() {
        return Ok(PathTemplate { segments });
    }
    let mut offset = 1;
    let pieces: Vec<&str> = rest.split('/').collect();
    let n_pieces = pieces.len();
    for (index, piece) in pieces.into_iter().enumerate() {
        let error = |kind| TemplateError {
            kind,
            offset,
            len: piece.len(),
        };
        let segment = match piece {
            "" => {
                // Point at the slash that starts the empty segment.
                return Err(TemplateError {
                    kind: TemplateErrorKind::EmptySegment,
                    offset: offset - 1,
                    len: 1,
                });
            }
            "*" => Segment::Star,
            "**" if index + 1 == n_pieces => Segment::Rest,
            "**" => return Err(error(TemplateErrorKind::RestNotLast)),
            _ => {
                if let Some(inner) = piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    if !is_identifier(inner) {
                        return Err(error(TemplateErrorKind::BadParamName));
                    }
                    Segment::Param(inner.to_owned())
                } else if piece.contains(['{', '}', '*']) {
                    return Err(error(TemplateErrorKind::MixedSegment));
                } else {
                    Segment::Literal(piece.to_owned())
                }
            }
        };
        segments.push(segment);
        offset += piece.len() + 1;
    }
    Ok(PathTemplate { segments })
}

/// Whether some path matches both templates.
pub fn overlaps(a: &[Segment], b: &[Segment]) -> bool {
    match (a.split_first(), b.split_first()) {
        (None, None) => true,
        // `**` matches every remaining path, and every template matches at least one path.
        (Some((Segment::Rest, _)), _) | (_, Some((Segment::Rest, _))) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((a_first, a_rest)), Some((b_first, b_rest))) => {
            let first_overlaps = match (a_first, b_first) {
                (Segment::Literal(x), Segment::Literal(y)) => x == y,
                _ => true,
            };
            first_overlaps && overlaps(a_rest, b_rest)
        }
    }
}

/// Whether every path that matches `a` also matches `b`.
pub fn is_subset(a: &[Segment], b: &[Segment]) -> bool {
    match (a.split_first(), b.split_first()) {
        (_, Some((Segment::Rest, _))) => true,
        (None, None) => true,
        // Only `**` on the right covers what `**` on the left matches, handled above.
        (Some((Segment::Rest, _)), _) => false,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((a_first, a_rest)), Some((b_first, b_rest))) => {
            let first_covered = match (a_first, b_first) {
                (Segment::Literal(x), Segment::Literal(y)) => x == y,
                (_, b_first) if b_first.is_single_wildcard() => true,
                _ => false,
            };
            first_covered && is_subset(a_rest, b_rest)
        }
    }
}

/// Whether two routes, given by method and template, are ambiguous: some request matches both and
/// neither request set is a strict subset of the other.
pub fn are_ambiguous(a: (Method, &[Segment]), b: (Method, &[Segment])) -> bool {
    if !a.0.overlaps(b.0) || !overlaps(a.1, b.1) {
        return false;
    }
    let a_in_b = a.0.is_subset(b.0) && is_subset(a.1, b.1);
    let b_in_a = b.0.is_subset(a.0) && is_subset(b.1, a.1);
    // Exactly one direction holding means one route is strictly more specific.
    a_in_b == b_in_a
}

/// A request path that matches both templates, for messages; `None` when they do not overlap.
/// Wildcards are filled with `x`.
pub fn common_path(a: &[Segment], b: &[Segment]) -> Option<String> {
    let mut path = String::new();
    let (mut a, mut b) = (a, b);
    loop {
        match (a.split_first(), b.split_first()) {
            (None, None) => break,
            (Some((Segment::Rest, _)), _) => {
                push_concrete(&mut path, b);
                break;
            }
            (_, Some((Segment::Rest, _))) => {
                push_concrete(&mut path, a);
                break;
            }
            (None, Some(_)) | (Some(_), None) => return None,
            (Some((a_first, a_rest)), Some((b_first, b_rest))) => {
                let text = match (a_first, b_first) {
                    (Segment::Literal(x), Segment::Literal(y)) if x != y => return None,
                    (Segment::Literal(x), _) | (_, Segment::Literal(x)) => x.as_str(),
                    _ => "x",
                };
                path.push('/');
                path.push_str(text);
                a = a_rest;
                b = b_rest;
            }
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    Some(path)
}

/// Appends one concrete path matched by the segments, with wildcards filled with `x` and `**`
/// matching nothing.
fn push_concrete(path: &mut String, segments: &[Segment]) {
    for segment in segments {
        match segment {
            Segment::Literal(text) => {
                path.push('/');
                path.push_str(text);
            }
            Segment::Param(_) | Segment::Star => path.push_str("/x"),
            Segment::Rest => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Vec<Segment> {
        parse_template(text).unwrap().segments
    }

    fn error(text: &str) -> (TemplateErrorKind, usize, usize) {
        let err = parse_template(text).unwrap_err();
        (err.kind, err.offset, err.len)
    }

    #[test]
    fn templates_parse_into_segments() {
        assert_eq!(template("/"), vec![]);
        assert_eq!(
            template("/a/{id}/*/**"),
            vec![
                Segment::Literal("a".into()),
                Segment::Param("id".into()),
                Segment::Star,
                Segment::Rest
            ]
        );
    }

    #[test]
    fn bad_templates_point_at_the_problem() {
        assert_eq!(error("orders"), (TemplateErrorKind::NoLeadingSlash, 0, 1));
        assert_eq!(error(""), (TemplateErrorKind::NoLeadingSlash, 0, 0));
        assert_eq!(error("/a//b"), (TemplateErrorKind::EmptySegment, 2, 1));
        assert_eq!(error("/a/"), (TemplateErrorKind::EmptySegment, 2, 1));
        assert_eq!(error("/a/{}"), (TemplateErrorKind::BadParamName, 3, 2));
        assert_eq!(error("/a/{1x}"), (TemplateErrorKind::BadParamName, 3, 4));
        assert_eq!(error("/a/x{id}"), (TemplateErrorKind::MixedSegment, 3, 5));
        assert_eq!(error("/**/a"), (TemplateErrorKind::RestNotLast, 1, 2));
        assert_eq!(error("/a?b"), (TemplateErrorKind::BadCharacter('?'), 2, 1));
    }

    #[test]
    fn overlap_of_literals_and_wildcards() {
        assert!(overlaps(&template("/a/{id}"), &template("/a/b")));
        assert!(overlaps(&template("/a/*"), &template("/{x}/b")));
        assert!(!overlaps(&template("/a/b"), &template("/a/c")));
        assert!(!overlaps(&template("/a"), &template("/a/b")));
        assert!(overlaps(&template("/a/**"), &template("/a")));
        assert!(overlaps(&template("/a/**"), &template("/a/b/c")));
        assert!(!overlaps(&template("/a/**"), &template("/b/**")));
        assert!(overlaps(&template("/"), &template("/**")));
        assert!(!overlaps(&template("/"), &template("/*")));
    }

    #[test]
    fn subset_of_literals_and_wildcards() {
        assert!(is_subset(&template("/a/b"), &template("/a/{id}")));
        assert!(!is_subset(&template("/a/{id}"), &template("/a/b")));
        assert!(is_subset(&template("/a/{x}"), &template("/a/*")));
        assert!(is_subset(&template("/a/*"), &template("/a/{x}")));
        assert!(is_subset(&template("/a/b/c"), &template("/a/**")));
        assert!(is_subset(&template("/a"), &template("/a/**")));
        assert!(!is_subset(&template("/a/**"), &template("/a/*")));
        assert!(is_subset(&template("/a/**"), &template("/**")));
        assert!(!is_subset(&template("/**"), &template("/a/**")));
    }

    #[test]
    fn common_paths_match_both_templates() {
        let common = |a: &str, b: &str| common_path(&template(a), &template(b));
        assert_eq!(common("/a/{x}/c", "/a/b/{y}").as_deref(), Some("/a/b/c"));
        assert_eq!(common("/a/**", "/a/{id}").as_deref(), Some("/a/x"));
        assert_eq!(common("/**", "/").as_deref(), Some("/"));
        assert_eq!(common("/a", "/b"), None);
    }

    #[test]
    fn ambiguity_needs_overlap_without_strict_specificity() {
        let get = Method::Get;
        let (a, b) = (template("/orders/{id}"), template("/orders/{key}"));
        assert!(are_ambiguous((get, &a), (get, &b)));
        let (a, b) = (template("/orders/new"), template("/orders/{id}"));
        assert!(!are_ambiguous((get, &a), (get, &b)));
        let (a, b) = (template("/a/{x}/c"), template("/a/b/{y}"));
        assert!(are_ambiguous((get, &a), (get, &b)));
        let (a, b) = (template("/a/{x}"), template("/a/{x}"));
        assert!(!are_ambiguous((get, &a), (Method::Post, &b)));
        assert!(!are_ambiguous((get, &a), (Method::Any, &b)));
        assert!(are_ambiguous((Method::Any, &a), (Method::Any, &b)));
        let (a, b) = (template("/a/**"), template("/a/b"));
        assert!(!are_ambiguous((Method::Any, &a), (get, &b)));
        assert!(are_ambiguous((get, &a), (Method::Any, &b)));
    }
}
