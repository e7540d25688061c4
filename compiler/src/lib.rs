//! The authz compiler: it resolves names across the files of a policy set, builds the schema,
//! type-checks every policy, route and limit, and lowers checked policies to decision programs.
//!
//! The entry points are [`check_sources`], which parses and checks the files of one policy set,
//! and [`check`], which checks trees that are already parsed. Both return a [`Checked`]: the
//! [`Schema`], what was learned about each policy and limit, and every diagnostic found, syntax
//! errors and type errors alike, in file order. Checking never stops at the first problem.

pub mod diagnostics;
pub mod index;
pub mod lower;
pub mod routes;
pub mod schema;
pub mod share;
pub mod typeck;
pub mod types;

use std::collections::HashMap;
use std::fmt;

use authz_lang::ast;
use authz_lang::{FileId, SourceFile, Span};

use crate::diagnostics::{did_you_mean, CheckError, CompileError, Internal, Reporter};
use crate::schema::{Location, Schema};
use crate::typeck::{CheckedLimit, CheckedPolicy, ExprTypes};
use authz_runtime::suggest::suggest;

/// The result of checking a policy set.
#[derive(Debug)]
pub struct Checked {
    /// The entity types, actions and routes of the set.
    pub schema: Schema,
    /// Every policy, in file and source order, with what the checker learned about it.
    pub policies: Vec<CheckedPolicy>,
    /// Every limit, in file and source order.
    pub limits: Vec<CheckedLimit>,
    /// The type of every checked expression, for lowering the same trees.
    pub types: ExprTypes,
    /// Every problem found, ordered by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether any diagnostic is an error (warnings do not count).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// A problem in one file of a policy set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the spans point into.
    pub file: FileId,
    /// What is wrong.
    pub kind: DiagnosticKind,
    /// For a problem found in some of the environments a policy is checked in (not all), which
    /// ones: "action `read` with principal `User` and resource `Order`".
    pub environment: Option<String>,
}

/// A syntax error or a check error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiagnosticKind {
    /// Found by the parser.
    Syntax(authz_lang::SyntaxError),
    /// Found by the checker.
    Check(CheckError),
    /// Found while building the program of a set that checked clean: a bug in authz.
    Compile(CompileError),
}

impl Diagnostic {
    /// The diagnostic as a `miette` diagnostic, whatever its kind.
    pub fn inner(&self) -> &(dyn miette::Diagnostic + Send + Sync + 'static) {
        match &self.kind {
            DiagnosticKind::Syntax(error) => error,
            DiagnosticKind::Check(error) => error,
            DiagnosticKind::Compile(error) => error,
        }
    }

    /// Whether this is an error rather than a warning.
    pub fn is_error(&self) -> bool {
        !matches!(self.inner().severity(), Some(miette::Severity::Warning))
    }

    /// The start offset of the first label, for ordering.
    fn offset(&self) -> usize {
        self.inner()
            .labels()
            .and_then(|mut labels| labels.next())
            .map_or(0, |label| label.offset())
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.inner(), f)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner().code()
    }

    fn severity(&self) -> Option<miette::Severity> {
        self.inner().severity()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let Some(environment) = &self.environment else {
            return self.inner().help();
        };
        let found = format!("found checking {environment}");
        Some(Box::new(match self.inner().help() {
            Some(help) => format!("{help}\n{found}"),
            None => found,
        }))
    }

    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner().url()
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.inner().source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.inner().labels()
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        self.inner().related()
    }

    fn diagnostic_source(&self) -> Option<&dyn miette::Diagnostic> {
        self.inner().diagnostic_source()
    }
}

/// Parses every file (the [`FileId`] of a file is its index) and checks them together: the
/// result holds the syntax errors of all files and the check errors of every item that parsed.
pub fn check_sources(sources: &[SourceFile]) -> Checked {
    parse_and_check(sources).1
}

/// Parses every file and checks them together; the trees are returned for lowering.
fn parse_and_check(sources: &[SourceFile]) -> (Vec<authz_lang::Parse>, Checked) {
    let parses: Vec<authz_lang::Parse> = sources
        .iter()
        .map(|source| authz_lang::parse(&source.text))
        .collect();
    let files: Vec<(FileId, &ast::File)> = parses
        .iter()
        .enumerate()
        .map(|(index, parse)| (file_id(index), &parse.file))
        .collect();
    let mut checked = check_files(&files, Some(sources));
    for (index, parse) in parses.iter().enumerate() {
        checked
            .diagnostics
            .extend(parse.errors.iter().map(|error| Diagnostic {
                file: file_id(index),
                kind: DiagnosticKind::Syntax(error.clone()),
                environment: None,
            }));
    }
    sort_diagnostics(&mut checked.diagnostics);
    (parses, checked)
}

/// A policy set checked and, when it has no errors, compiled.
#[derive(Debug)]
pub struct Compiled {
    /// Everything the checker found; warnings may be present even with a program.
    pub checked: Checked,
    /// The decision program; `None` when the set has errors, including an internal error
    /// (`authz::compile::internal`) found while building the program.
    pub program: Option<authz_runtime::program::Program>,
}

/// Parses, checks and (when there are no errors) compiles the files of one policy set into a
/// decision program.
///
/// Building the program trusts nothing it cannot verify: when the checked trees and what the
/// checker recorded about them disagree (a bug), the result has no program and its diagnostics
/// hold an `authz::compile::internal` error ([`CompileError::Internal`]) saying what was missing.
pub fn compile_sources(sources: &[SourceFile]) -> Compiled {
    let (parses, mut checked) = parse_and_check(sources);
    if checked.has_errors() {
        return Compiled {
            checked,
            program: None,
        };
    }
    let trees: Vec<&ast::File> = parses.iter().map(|parse| &parse.file).collect();
    match build_program(&checked, &trees, sources) {
        Ok(program) => Compiled {
            checked,
            program: Some(program),
        },
        Err(internal) => {
            checked.diagnostics.push(internal.into_diagnostic());
            sort_diagnostics(&mut checked.diagnostics);
            Compiled {
                checked,
                program: None,
            }
        }
    }
}

/// Lowers, indexes and shares: the passes after checking, in order. `trees` must be the trees
/// `checked` was made from, by [`FileId`] index; anything else is an internal error.
fn build_program(
    checked: &Checked,
    trees: &[&ast::File],
    sources: &[SourceFile],
) -> Result<authz_runtime::program::Program, Internal> {
    let mut lowered = lower::run(
        &checked.schema,
        trees,
        sources,
        &checked.policies,
        &checked.limits,
        &checked.types,
    )?;
    let routes = lower::routes(
        &checked.schema,
        &lowered.schema,
        &mut lowered.interner,
        sources,
    )?;
    let mut index = index::run(&lowered.schema, &lowered.policies)?;
    let mut policies: Vec<authz_runtime::program::Policy> = lowered
        .policies
        .into_iter()
        .map(|lowered| lowered.policy)
        .collect();
    let mut limits = lowered.limits;
    let mut sharing = share::Sharing::default();
    let value_keys = || {
        index
            .bucket_list
            .iter()
            .flat_map(|bucket| [&bucket.forbids, &bucket.permits])
    };
    for key in value_keys().flat_map(|group| &group.by_value) {
        sharing.count(&key.key);
    }
    for policy in &policies {
        if let Some(condition) = &policy.condition {
            sharing.count(condition);
        }
    }
    for limit in &limits {
        limit
            .keys
            .iter()
            .chain(&limit.condition)
            .for_each(|expr| sharing.count(expr));
    }
    for bucket in &mut index.bucket_list {
        for group in [&mut bucket.forbids, &mut bucket.permits] {
            for key in &mut group.by_value {
                sharing.rewrite(&mut key.key)?;
            }
        }
    }
    for policy in &mut policies {
        if let Some(condition) = &mut policy.condition {
            sharing.rewrite(condition)?;
        }
    }
    for limit in &mut limits {
        for expr in limit.keys.iter_mut().chain(&mut limit.condition) {
            sharing.rewrite(expr)?;
        }
    }
    Ok(authz_runtime::program::Program {
        interner: lowered.interner,
        schema: lowered.schema,
        pool: lowered.pool,
        policies,
        limits,
        shared: sharing.shared,
        index,
        routes,
    })
}

/// Checks parsed files together. Messages that refer to another file name it by number; use
/// [`check_sources`] to have file names instead.
pub fn check(files: &[(FileId, &ast::File)]) -> Checked {
    let mut checked = check_files(files, None);
    sort_diagnostics(&mut checked.diagnostics);
    checked
}

fn file_id(index: usize) -> FileId {
    FileId(u32::try_from(index).unwrap_or(u32::MAX))
}

fn sort_diagnostics(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by_cached_key(|diagnostic| (diagnostic.file, diagnostic.offset()));
}

/// The annotations meaningful on policies.
const ANNOTATIONS: [&str; 2] = ["id", "reason"];

fn check_files(files: &[(FileId, &ast::File)], sources: Option<&[SourceFile]>) -> Checked {
    let mut reporter = Reporter::new(sources);
    let schema = Schema::build(files, &mut reporter);
    let mut policies = Vec::new();
    let mut limits = Vec::new();
    let mut types = ExprTypes::default();
    let mut policy_ids: HashMap<&str, Location> = HashMap::new();
    let mut limit_names: HashMap<&str, Location> = HashMap::new();
    for &(file, tree) in files {
        for (index, item) in tree.items.iter().enumerate() {
            let id = check_annotations(&mut reporter, file, item);
            match &item.kind {
                ast::ItemKind::Policy(policy) => {
                    if let Some(annotation) = id {
                        if let Some(value) = &annotation.value {
                            let location = Location {
                                file,
                                span: value.span,
                            };
                            if let Some(first) = policy_ids.get(value.value.as_str()) {
                                let (previous, help) = reporter.first_declared(file, *first);
                                reporter.report(
                                    file,
                                    CheckError::DuplicatePolicyId {
                                        id: value.value.clone(),
                                        span: value.span.into(),
                                        previous,
                                        help: help.map(|help| help.replace("declared", "used")),
                                    },
                                );
                            } else {
                                policy_ids.insert(&value.value, location);
                            }
                        }
                    }
                    let id = id.and_then(|annotation| annotation.value.as_ref());
                    let id = id.map(|value| value.value.clone());
                    policies.push(typeck::check_policy(
                        &schema,
                        &mut reporter,
                        &mut types,
                        file,
                        index,
                        policy,
                        id,
                    ));
                }
                ast::ItemKind::Limit(limit) => {
                    let location = Location {
                        file,
                        span: limit.name.span,
                    };
                    if let Some(first) = limit_names.get(limit.name.value.as_str()) {
                        let (previous, help) = reporter.first_declared(file, *first);
                        reporter.report(
                            file,
                            CheckError::DuplicateLimit {
                                name: limit.name.value.clone(),
                                span: limit.name.span.into(),
                                previous,
                                help,
                            },
                        );
                    } else {
                        limit_names.insert(&limit.name.value, location);
                    }
                    limits.push(typeck::check_limit(
                        &schema,
                        &mut reporter,
                        &mut types,
                        file,
                        index,
                        limit,
                    ));
                }
                ast::ItemKind::Entity(_)
                | ast::ItemKind::Action(_)
                | ast::ItemKind::Route(_)
                | ast::ItemKind::TypeAlias(_) => {}
            }
        }
    }
    Checked {
        schema,
        policies,
        limits,
        types,
        diagnostics: reporter.diagnostics,
    }
}

/// Checks the annotations of one item; returns its first `@id` annotation.
fn check_annotations<'t>(
    reporter: &mut Reporter<'_>,
    file: FileId,
    item: &'t ast::Item,
) -> Option<&'t ast::Annotation> {
    let mut seen: Vec<(&str, Span)> = Vec::new();
    let mut id = None;
    for annotation in &item.annotations {
        let name = annotation.name.name.as_str();
        if let Some((_, previous)) = seen.iter().find(|(seen, _)| *seen == name) {
            reporter.report(
                file,
                CheckError::DuplicateAnnotation {
                    name: name.to_owned(),
                    span: annotation.span.into(),
                    previous: (*previous).into(),
                },
            );
            continue;
        }
        seen.push((name, annotation.span));
        if !ANNOTATIONS.contains(&name) {
            let help = did_you_mean(suggest(name, ANNOTATIONS).map(|name| format!("@{name}")))
                .or_else(|| Some("the annotations are `@id` and `@reason`".to_owned()));
            reporter.report(
                file,
                CheckError::UnknownAnnotation {
                    name: name.to_owned(),
                    span: annotation.span.into(),
                    help,
                },
            );
            continue;
        }
        let item_kind = match &item.kind {
            ast::ItemKind::Policy(_) => None,
            ast::ItemKind::Entity(_) => Some("an entity declaration"),
            ast::ItemKind::Action(_) => Some("an action declaration"),
            ast::ItemKind::Route(_) => Some("a route"),
            ast::ItemKind::Limit(_) => Some("a limit"),
            ast::ItemKind::TypeAlias(_) => Some("a type declaration"),
        };
        if let Some(item_kind) = item_kind {
            reporter.report(
                file,
                CheckError::AnnotationIgnored {
                    name: name.to_owned(),
                    item: item_kind.to_owned(),
                    span: annotation.span.into(),
                },
            );
            continue;
        }
        if annotation.value.is_none() {
            reporter.report(
                file,
                CheckError::MissingAnnotationValue {
                    name: name.to_owned(),
                    span: annotation.span.into(),
                },
            );
            continue;
        }
        if name == "id" {
            id = Some(annotation);
        }
    }
    id
}
