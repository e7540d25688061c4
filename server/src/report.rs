//! Printing diagnostics: labelled snippets for people on stderr, or JSON lines on stdout.

use std::io::{IsTerminal, Write};

use authz_lang::SourceFile;
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, NamedSource, Severity};
use serde_json::json;

use crate::cli::{Color, Format, OutputArgs};

/// Prints diagnostics in the chosen format and counts them.
pub struct Reporter {
    format: Format,
    handler: GraphicalReportHandler,
    /// Errors printed so far.
    pub errors: usize,
    /// Warnings printed so far.
    pub warnings: usize,
}

impl Reporter {
    /// A reporter for the given output options.
    pub fn new(output: &OutputArgs) -> Reporter {
        let color = match output.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        Reporter {
            format: output.format,
            handler,
            errors: 0,
            warnings: 0,
        }
    }

    /// Prints one diagnostic about `source`.
    pub fn source_diagnostic(
        &mut self,
        source: &SourceFile,
        diagnostic: &(dyn Diagnostic + Send + Sync),
    ) {
        self.count(diagnostic);
        match self.format {
            Format::Human => {
                let named = NamedSource::new(source.name.clone(), source.text.clone());
                let mut out = String::new();
                let rendered = self.handler.render_report(
                    &mut out,
                    &WithSource {
                        inner: diagnostic,
                        source: &named,
                    },
                );
                if rendered.is_err() {
                    out = format!("{diagnostic}\n");
                }
                eprintln!("{out}");
            }
            Format::Json => print_json_line(&json_diagnostic(Some(source), diagnostic)),
        }
    }

    /// Prints a diagnostic that belongs to no source file, such as an unreadable path.
    pub fn plain_diagnostic(&mut self, diagnostic: &(dyn Diagnostic + Send + Sync)) {
        self.count(diagnostic);
        match self.format {
            Format::Human => {
                let mut out = String::new();
                if self.handler.render_report(&mut out, diagnostic).is_err() {
                    out = format!("{diagnostic}\n");
                }
                eprint!("{out}");
            }
            Format::Json => print_json_line(&json_diagnostic(None, diagnostic)),
        }
    }

    fn count(&mut self, diagnostic: &dyn Diagnostic) {
        match diagnostic.severity().unwrap_or(Severity::Error) {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
            Severity::Advice => {}
        }
    }

    /// Prints a closing summary line for people (JSON output has none).
    pub fn summary(&self, what: &str) {
        if self.format != Format::Human {
            return;
        }
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("1 {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        eprintln!(
            "{what}: {}, {}",
            plural(self.errors, "error"),
            plural(self.warnings, "warning")
        );
    }
}

fn print_json_line(value: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{value}");
}

/// A diagnostic as one JSON object: file, position, severity, code, message, help and labels.
pub fn json_diagnostic(
    source: Option<&SourceFile>,
    diagnostic: &dyn Diagnostic,
) -> serde_json::Value {
    let severity = match diagnostic.severity().unwrap_or(Severity::Error) {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Advice => "advice",
    };
    let labels: Vec<_> = diagnostic
        .labels()
        .map(|labels| labels.collect())
        .unwrap_or_default();
    let position = |offset: usize| {
        source.map(|source| {
            let at = source.line_col(offset);
            json!({ "line": at.line, "column": at.column })
        })
    };
    let primary = labels
        .iter()
        .find(|label| label.primary())
        .or(labels.first());
    let start = primary.and_then(|label| position(label.offset()));
    let end = primary.and_then(|label| position(label.offset() + label.len()));
    let json_labels: Vec<_> = labels
        .iter()
        .map(|label| {
            json!({
                "start": position(label.offset()),
                "end": position(label.offset() + label.len()),
                "message": label.label(),
            })
        })
        .collect();
    json!({
        "file": source.map(|source| source.name.clone()),
        "line": start.as_ref().map(|p| p["line"].clone()),
        "column": start.as_ref().map(|p| p["column"].clone()),
        "end": end,
        "severity": severity,
        "code": diagnostic.code().map(|code| code.to_string()),
        "message": diagnostic.to_string(),
        "help": diagnostic.help().map(|help| help.to_string()),
        "labels": json_labels,
    })
}

/// A diagnostic about `source`, rendered without color at a fixed width.
pub fn render_plain(source: &SourceFile, diagnostic: &(dyn Diagnostic + Send + Sync)) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    let named = NamedSource::new(source.name.clone(), source.text.clone());
    let mut out = String::new();
    if handler
        .render_report(
            &mut out,
            &WithSource {
                inner: diagnostic,
                source: &named,
            },
        )
        .is_err()
    {
        out = format!("{diagnostic}\n");
    }
    out
}

/// Attaches a source file to a diagnostic that carries only spans.
struct WithSource<'a> {
    inner: &'a (dyn Diagnostic + Send + Sync),
    source: &'a NamedSource<String>,
}

impl std::fmt::Debug for WithSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.inner, f)
    }
}

impl std::fmt::Display for WithSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.inner, f)
    }
}

impl std::error::Error for WithSource<'_> {}

impl Diagnostic for WithSource<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.inner.code()
    }
    fn severity(&self) -> Option<Severity> {
        self.inner.severity()
    }
    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.inner.help()
    }
    fn url<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.inner.url()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn Diagnostic> + 'b>> {
        self.inner.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.inner.diagnostic_source()
    }
}
