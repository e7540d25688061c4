//! Byte ranges into one source file, and the files they point into.

/// A half-open byte range `start..end` into the text of one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// The range `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: clamp_u32(start),
            end: clamp_u32(end.max(start)),
        }
    }

    /// The smallest span that covers both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the span covers no bytes.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The start offset as `usize`.
    pub fn start(self) -> usize {
        self.start as usize
    }

    /// The end offset as `usize`.
    pub fn end(self) -> usize {
        self.end as usize
    }
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> miette::SourceSpan {
        miette::SourceSpan::new(span.start().into(), span.len())
    }
}

/// Index of a file in a policy set, as handed out by whoever loads the files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// One `.authz` file: its display name and its text.
///
/// Lines and columns ([`SourceFile::line_col`]) come from an index of where each line starts,
/// built on first use, so that naming the positions of many items costs a binary search each
/// rather than a scan from the file's start.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name shown in diagnostics, usually the path as the user gave it.
    pub name: String,
    /// The whole text of the file.
    pub text: String,
    /// The offsets at which lines start, for the text of this length.
    lines: std::sync::OnceLock<LineStarts>,
}

/// Where each line of a text starts, and the length of the text it was built for.
#[derive(Clone, Debug)]
struct LineStarts {
    text_len: usize,
    starts: Vec<usize>,
}

impl PartialEq for SourceFile {
    fn eq(&self, other: &SourceFile) -> bool {
        self.name == other.name && self.text == other.text
    }
}

impl Eq for SourceFile {}

/// A 1-based line and column (column counted in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
}

impl SourceFile {
    /// A file with this name and text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
            lines: std::sync::OnceLock::new(),
        }
    }

    /// The line and column of a byte offset; offsets past the end map to the end.
    pub fn line_col(&self, offset: usize) -> LineCol {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let lines = self.lines.get_or_init(|| LineStarts::of(&self.text));
        let (line, line_start) = if lines.text_len == self.text.len() {
            // The last line starting at or before `offset`.
            let line = lines.starts.partition_point(|start| *start <= offset);
            (line, lines.starts.get(line - 1).copied().unwrap_or(0))
        } else {
            // The text changed since the index was built: count afresh.
            let before = self.text.get(..offset).unwrap_or("");
            (
                before.matches('\n').count() + 1,
                before.rfind('\n').map_or(0, |i| i + 1),
            )
        };
        let column = self
            .text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        LineCol { line, column }
    }
}

impl LineStarts {
    fn of(text: &str) -> LineStarts {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, byte)| *byte == b'\n')
                .map(|(index, _)| index + 1),
        );
        LineStarts {
            text_len: text.len(),
            starts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let file = SourceFile::new("a.authz", "ab\ncdé\n\nx");
        let at = |offset| {
            let position = file.line_col(offset);
            (position.line, position.column)
        };
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(2), (1, 3));
        assert_eq!(at(3), (2, 1));
        // `é` is two bytes, one character; an offset inside it goes back to its start.
        assert_eq!(at(5), (2, 3));
        assert_eq!(at(6), (2, 3));
        assert_eq!(at(7), (2, 4));
        assert_eq!(at(8), (3, 1));
        assert_eq!(at(9), (4, 1));
        assert_eq!(at(100), (4, 2));
    }

    #[test]
    fn a_changed_text_is_counted_afresh() {
        let mut file = SourceFile::new("a.authz", "a\nb");
        assert_eq!(file.line_col(2).line, 2);
        file.text = "a\n\n\nb".to_string();
        assert_eq!(file.line_col(4).line, 4);
    }
}
