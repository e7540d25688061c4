//! `docs/diagnostics.md` lists every diagnostic code with its message and meaning. This test
//! rebuilds that list from the diagnostic enums' source (`lang/src/diagnostics.rs`,
//! `compiler/src/diagnostics.rs`) and the access proxy's refusal codes from its source
//! (`server/src/proxy`), and fails when the page is stale or when `docs/proxy.md` does not
//! explain a proxy code. To refresh the page, run
//! `AUTHZ_UPDATE_DOCS=1 cargo test -p authz-tests --test diagnostic_docs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

struct Entry {
    code: String,
    severity: &'static str,
    message: String,
    meaning: String,
}

/// Reads the variants of a diagnostic enum: doc lines, `#[error("…")]` and `code(…)`.
fn entries(source: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut doc = Vec::new();
    let mut attributes = String::new();
    for line in source.lines() {
        let trimmed = line.trim();
        if let Some(text) = trimmed.strip_prefix("/// ") {
            if line.starts_with("    ///") && !line.starts_with("        ") {
                if !attributes.is_empty() {
                    doc.clear();
                    attributes.clear();
                }
                doc.push(text.to_string());
            }
            continue;
        }
        if !doc.is_empty() && (trimmed.starts_with("#[") || !attributes.is_empty()) {
            attributes.push_str(trimmed);
            attributes.push(' ');
            if let Some(code) = between(&attributes, "code(", ")") {
                if trimmed.ends_with(']') && attributes.matches("#[").count() >= 2 {
                    let message = between(&attributes, "#[error(\"", "\")]").unwrap_or_default();
                    let severity = if attributes.contains("severity(Warning)") {
                        "warning"
                    } else {
                        "error"
                    };
                    entries.push(Entry {
                        code,
                        severity,
                        message,
                        meaning: doc.join(" "),
                    });
                    doc.clear();
                    attributes.clear();
                }
            }
            continue;
        }
        if !trimmed.is_empty() {
            doc.clear();
            attributes.clear();
        }
    }
    entries
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_string())
}

/// Every refusal code of the access proxy: the `"authz::proxy::…"` literals of its source, and
/// the names returned by the `fn code` of its error types (which the pipeline prefixes with
/// `authz::proxy::`).
fn proxy_codes(root: &Path) -> Vec<String> {
    let dir = root.join("server/src/proxy");
    let mut codes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let mut rest = source.as_str();
        while let Some(start) = rest.find("\"authz::proxy::") {
            let after = &rest[start + 1..];
            let end = after.find('"').unwrap();
            if !after[..end].contains('{') {
                codes.push(after[..end].to_string());
            }
            rest = &after[end..];
        }
        let prefixed = ["normalize.rs", "framing.rs", "headers.rs"];
        if !prefixed.iter().any(|name| path.ends_with(name)) {
            continue;
        }
        let mut in_code = false;
        for line in source.lines() {
            if line.contains("fn code(") {
                in_code = true;
                continue;
            }
            if in_code && line == "    }" {
                in_code = false;
            }
            if in_code {
                if let Some(name) = between(line, "\"", "\"") {
                    codes.push(format!("authz::proxy::{name}"));
                }
            }
        }
    }
    codes.sort_unstable();
    codes.dedup();
    codes
}

fn render_proxy(codes: &[String]) -> String {
    let mut out = String::from(
        "\n## Proxy refusals\n\nThe access proxy (`authz proxy`) answers a request it refuses with one of these codes in its\nJSON body and audit line. What each refuses, and with which status, is in\n[the proxy's trust boundary](proxy.md#the-trust-boundary) and the rest of `docs/proxy.md`;\nthis list is generated from the proxy's source, and a test fails when a code is missing there.\n\n",
    );
    for code in codes {
        out.push_str(&format!("- `{code}`\n"));
    }
    out
}

fn render(sections: &[(&str, Vec<Entry>)]) -> String {
    let mut out = String::from(
        "# Diagnostics\n\nEvery diagnostic authz reports has a stable code. `authz check --format json` prints it in\nthe `code` field. This page is generated from the diagnostic enums by\n`AUTHZ_UPDATE_DOCS=1 cargo test -p authz-tests --test diagnostic_docs`; a test fails when it is stale.\n",
    );
    for (title, entries) in sections {
        out.push_str(&format!(
            "\n## {title}\n\n| code | severity | message | meaning |\n|---|---|---|---|\n"
        ));
        for entry in entries {
            let message = entry.message.replace('|', "\\|").replace("\\\"", "\"");
            let meaning = entry.meaning.replace('|', "\\|");
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                entry.code, entry.severity, message, meaning
            ));
        }
    }
    out
}

#[test]
fn diagnostics_page_lists_every_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let syntax = entries(&std::fs::read_to_string(root.join("lang/src/diagnostics.rs")).unwrap());
    let check =
        entries(&std::fs::read_to_string(root.join("compiler/src/diagnostics.rs")).unwrap());
    assert!(
        syntax.len() >= 10,
        "found only {} syntax codes",
        syntax.len()
    );
    assert!(check.len() >= 20, "found only {} check codes", check.len());
    let mut codes: Vec<&str> = syntax
        .iter()
        .chain(&check)
        .map(|e| e.code.as_str())
        .collect();
    let total = codes.len();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), total, "a diagnostic code is used twice");
    let proxy = proxy_codes(&root);
    assert!(proxy.len() >= 30, "found only {} proxy codes", proxy.len());
    let proxy_page = std::fs::read_to_string(root.join("docs/proxy.md")).unwrap();
    let undocumented: Vec<&String> = proxy
        .iter()
        .filter(|code| {
            let short = code.trim_start_matches("authz::proxy::");
            !proxy_page.contains(&format!("`{code}`"))
                && !proxy_page.contains(&format!("`{short}`"))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/proxy.md does not explain {undocumented:?}"
    );
    let mut page = render(&[
        ("Syntax errors", syntax),
        ("Check errors and warnings", check),
    ]);
    page.push_str(&render_proxy(&proxy));
    let path = root.join("docs/diagnostics.md");
    if std::env::var_os("AUTHZ_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &page).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == page,
        "docs/diagnostics.md is stale; run AUTHZ_UPDATE_DOCS=1 cargo test -p authz-tests --test diagnostic_docs"
    );
}
