//! `docs/stdlib.md`, the reference of the standard library, is generated from the signature table
//! (`stdlib/src/signatures.rs`: every function and method with its types, semantics and an
//! example) and from the built-in forms listed here. This test fails when the page is stale, and
//! decides every example with the engine: each must compile and evaluate to `true` without an
//! error. To refresh the page, run
//! `AUTHZ_UPDATE_DOCS=1 cargo test -p authz-tests --test stdlib_docs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/engine.rs"]
#[allow(dead_code)]
mod engine;

use std::fmt::Write as _;
use std::path::Path;

use authz_stdlib::signatures::{FUNCTIONS, METHODS};
use authz_stdlib::Type;

/// A form built into the language rather than the standard library, documented on the same page.
struct Form {
    /// How it is written.
    syntax: &'static str,
    /// What it means, edge cases included.
    semantics: &'static str,
    /// An expression using it that evaluates to `true`.
    example: &'static str,
}

const FORMS: &[Form] = &[
    Form {
        syntax: "s like \"pattern\"",
        semantics: "Whether the whole string `s` matches the pattern, where `*` matches any \
            run of characters (none included) and every other character matches itself, compared \
            by Unicode scalar values. The pattern is a string literal. A literal `*` is written \
            `\\*` inside the pattern, and so `\"\\\\*\"` in the source (the string escape `\\\\` \
            makes the backslash); a literal backslash is `\\\\\\\\`. There are no other wildcards \
            (`?` and `[` match themselves).",
        example: r#""release/1.2" like "release/*" && "a*b" like "a\\*b" && !("axb" like "a\\*b") && "" like "*""#,
    },
    Form {
        syntax: "set.contains(x)",
        semantics: "Whether `x` is an element of the set (the same as `x in set` for a \
            non-entity `x`); elements compare structurally.",
        example: r#"[1, 2, 3].contains(2) && [{a: 1}].contains({a: 1})"#,
    },
    Form {
        syntax: "set.containsAll(other)",
        semantics: "Whether every element of `other` is in `set`; true for an empty `other`.",
        example: r#"[1, 2, 3].containsAll([3, 1]) && [1].containsAll([])"#,
    },
    Form {
        syntax: "set.containsAny(other)",
        semantics: "Whether some element of `other` is in `set`; false for an empty `other`.",
        example: r#"[1, 2, 3].containsAny([5, 3]) && !([1].containsAny([]))"#,
    },
    Form {
        syntax: "set.isEmpty()",
        semantics: "Whether the set has no elements.",
        example: r#"[].isEmpty() && ![1].isEmpty()"#,
    },
    Form {
        syntax: "a + b, a - b, a * b, -a",
        semantics: "`Long` arithmetic on 64-bit signed integers. A result outside \
            -9223372036854775808..=9223372036854775807 is an evaluation error that names the \
            operation and its operands (`integer overflow: \\`9223372036854775807 + 1\\` does \
            not fit in a \\`Long\\``); a `permit` whose condition overflows does not apply, a \
            `forbid` does.",
        example: r#"9223372036854775806 + 1 == 9223372036854775807 && -(3 * 4) == -12"#,
    },
];

/// A type as the page writes it.
fn type_name(ty: Type) -> &'static str {
    ty.name()
}

fn params(types: &[Type]) -> String {
    types
        .iter()
        .map(|ty| type_name(*ty))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page, rendered from the signature table and [`FORMS`].
fn render() -> String {
    let mut page = String::new();
    page.push_str(
        "# The standard library\n\n\
         <!-- Generated from stdlib/src/signatures.rs by tests/tests/stdlib_docs.rs; do not edit. \
         Refresh with `AUTHZ_UPDATE_DOCS=1 cargo test -p authz-tests --test stdlib_docs`. -->\n\n\
         Every function and method a policy may call, with its type, what it means (edge cases \
         included) and an example. Each example is an expression that evaluates to `true`; a \
         test decides every one of them with the engine. The language itself is described in \
         [language.md](language.md).\n\n\
         A string argument that is a literal (`ip(\"10.0.0.1\")`) is checked when the policy set \
         is compiled; a computed one (`ip(context.addr)`) that is malformed is an evaluation \
         error at run time. An evaluation error never allows a request: a `permit` whose \
         condition fails does not apply, and a `forbid` whose condition fails applies.\n\n",
    );
    page.push_str("## Contents\n\n| call | type |\n|---|---|\n");
    for function in FUNCTIONS {
        let _ = writeln!(
            page,
            "| [`{name}`](#{name}) | `({params}) -> {ret}` |",
            name = function.name,
            params = params(function.params),
            ret = type_name(function.ret),
        );
    }
    for method in METHODS {
        let receiver = type_name(method.receiver);
        let _ = writeln!(
            page,
            "| [`{receiver}.{name}`](#{anchor}) | `{receiver}.({params}) -> {ret}` |",
            name = method.name,
            anchor = format!("{receiver}{}", method.name).to_lowercase(),
            params = params(method.params),
            ret = type_name(method.ret),
        );
    }
    page.push_str("\n## Functions\n");
    for function in FUNCTIONS {
        let _ = write!(
            page,
            "\n### {name}\n\n`{name}({params}) -> {ret}`\n\n{semantics}\n\n```\n{example}\n```\n",
            name = function.name,
            params = params(function.params),
            ret = type_name(function.ret),
            semantics = function.semantics,
            example = function.example,
        );
    }
    let mut receiver = None;
    page.push_str("\n## Methods\n");
    for method in METHODS {
        let name = type_name(method.receiver);
        if receiver != Some(method.receiver) {
            receiver = Some(method.receiver);
            let _ = writeln!(page, "\n### On `{name}`");
        }
        let _ = write!(
            page,
            "\n#### {name}.{method}\n\n`{name}.{method}({params}) -> {ret}`\n\n{semantics}\n\n```\n{example}\n```\n",
            method = method.name,
            params = params(method.params),
            ret = type_name(method.ret),
            semantics = method.semantics,
            example = method.example,
        );
    }
    page.push_str(
        "\n## Built into the language\n\nThese are forms of the language, not library calls, \
         listed here for completeness.\n",
    );
    for form in FORMS {
        let _ = write!(
            page,
            "\n### `{syntax}`\n\n{semantics}\n\n```\n{example}\n```\n",
            syntax = form.syntax,
            semantics = form.semantics,
            example = form.example,
        );
    }
    page
}

fn examples() -> Vec<(String, &'static str)> {
    let functions = FUNCTIONS
        .iter()
        .map(|function| (function.name.to_owned(), function.example));
    let methods = METHODS.iter().map(|method| {
        (
            format!("{}.{}", type_name(method.receiver), method.name),
            method.example,
        )
    });
    let forms = FORMS
        .iter()
        .map(|form| (form.syntax.to_owned(), form.example));
    functions.chain(methods).chain(forms).collect()
}

#[test]
fn stdlib_page_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/stdlib.md");
    let page = render();
    if std::env::var_os("AUTHZ_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == page,
        "docs/stdlib.md is stale; run `AUTHZ_UPDATE_DOCS=1 cargo test -p authz-tests --test stdlib_docs`"
    );
}

#[test]
fn every_example_evaluates_to_true() {
    let mut policies = String::from("entity E;\naction a: E -> E;\n");
    for (index, (_, example)) in examples().iter().enumerate() {
        let _ = writeln!(
            policies,
            "@id(\"example-{index}\") permit principal, action, resource when {example};"
        );
    }
    // The scope needs the three variables' constraints.
    let policies = policies.replace(
        "permit principal, action, resource",
        "permit principal: *, action: *, resource: *",
    );
    let engine = engine::Engine::new(
        &[("examples.authz".to_owned(), policies)],
        r#"[{"type": "E", "id": "e"}]"#,
    )
    .unwrap();
    let decision = engine
        .decide(r#"{"principal": {"type": "E", "id": "e"}, "action": "a", "resource": {"type": "E", "id": "e"}}"#)
        .unwrap();
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);
    let determining = decision.determining_set();
    for (index, (name, example)) in examples().iter().enumerate() {
        assert!(
            determining.contains(&format!("example-{index}")),
            "the example of `{name}` is not true: {example}"
        );
    }
}
