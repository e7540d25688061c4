//! Whole-set behavior of the checker: many errors per run, cross-file names, scale, and no
//! panics on generated programs.

// Test helpers may panic: a panic is a test failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use authz_compiler::check_sources;
use authz_lang::SourceFile;
use proptest::prelude::*;

const SCHEMA: &str = r#"
entity Team;
entity User in Team { email: String, roles: Set<String>, tier: String, clearance: Long, suspended?: Bool }
entity Service { team: Team, tier: Long }
entity Order { owner: User, total: Long, region: String }
action read, list : User | Service -> Order;
action refund : User -> Order with { mfa: Bool, amount: Long };
"#;

fn check_one(text: &str) -> authz_compiler::Checked {
    check_sources(&[SourceFile::new("policies.authz", text)])
}

fn codes(checked: &authz_compiler::Checked) -> Vec<String> {
    use miette::Diagnostic;
    checked
        .diagnostics
        .iter()
        .map(|d| d.code().unwrap().to_string())
        .collect()
}

#[test]
fn five_independent_errors_are_all_reported() {
    let text = format!(
        "{SCHEMA}
permit principal: Usr, action: read, resource: Order;
permit principal: User, action: read, resource: Order when resource.owenr == principal;
permit principal: User, action: read, resource: Order when principal.suspended;
permit principal: User, action: read, resource: Order when resource.total + \"1\" > 2;
permit principal: Service, action: refund, resource: Order;
"
    );
    let checked = check_one(&text);
    assert_eq!(
        codes(&checked),
        [
            "authz::check::unknown_entity_type",
            "authz::check::unknown_attribute",
            "authz::check::unguarded_optional_attribute",
            "authz::check::type_mismatch",
            "authz::check::action_principal_mismatch",
        ]
    );
}

#[test]
fn one_mistake_is_reported_once() {
    // The unknown attribute makes the comparison, the `&&` and the `when` ill-typed too, but only
    // the attribute is reported.
    let text = format!(
        "{SCHEMA}
permit principal: User, action: read, resource: Order
when resource.totl.foo + 1 > 2 && resource.totl.bar.baz();
"
    );
    let checked = check_one(&text);
    assert_eq!(
        codes(&checked),
        [
            "authz::check::unknown_attribute",
            "authz::check::unknown_attribute"
        ]
    );
}

#[test]
fn syntax_errors_and_type_errors_are_reported_together() {
    let text = format!(
        "{SCHEMA}
permit principal: User, action: read, resource: Order when resource.totl > 1;
permit principal: User action: read, resource: Order;
"
    );
    let checked = check_one(&text);
    let codes = codes(&checked);
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert_eq!(codes[0], "authz::check::unknown_attribute");
    assert!(codes[1].starts_with("authz::syntax::"), "{codes:?}");
}

#[test]
fn names_resolve_across_files_in_any_order() {
    let policies = "permit principal: User, action: refund, resource: Order when context.mfa;";
    let forward = check_sources(&[
        SourceFile::new("policies.authz", policies),
        SourceFile::new("schema.authz", SCHEMA),
    ]);
    assert!(forward.diagnostics.is_empty(), "{:?}", forward.diagnostics);
    let backward = check_sources(&[
        SourceFile::new("schema.authz", SCHEMA),
        SourceFile::new("policies.authz", policies),
    ]);
    assert!(
        backward.diagnostics.is_empty(),
        "{:?}",
        backward.diagnostics
    );
}

#[test]
fn duplicates_in_another_file_name_that_file() {
    let checked = check_sources(&[
        SourceFile::new("schema.authz", SCHEMA),
        SourceFile::new("more.authz", "\nentity Order;"),
    ]);
    let help = checked.diagnostics.iter().find_map(|d| {
        use miette::Diagnostic;
        d.help().map(|help| help.to_string())
    });
    assert_eq!(
        help.as_deref(),
        Some("first declared in `schema.authz` at line 5, column 8")
    );
}

#[test]
fn checked_policies_keep_their_environment() {
    let text = format!(
        "{SCHEMA}\n@id(\"p\") permit principal: *, action: [read, refund], resource: Order;"
    );
    let checked = check_one(&text);
    assert!(checked.diagnostics.is_empty());
    let policy = &checked.policies[0];
    assert_eq!(policy.id.as_deref(), Some("p"));
    assert_eq!(policy.environment.principal.to_string(), "Service | User");
    assert_eq!(policy.environment.context.to_string(), "{}");
    assert!(!policy.has_errors);
}

/// A policy set of `n` policies over a small schema, in the shapes real sets use.
fn generated_set(n: usize) -> String {
    let mut text = String::from(SCHEMA);
    for i in 0..n {
        let policy = match i % 4 {
            0 => format!(
                "@id(\"p{i}\") permit principal: User, action: read, resource: Order when resource.region == \"r{i}\" && principal.clearance > {i};\n"
            ),
            1 => format!(
                "@id(\"p{i}\") forbid principal: *, action: [read, list], resource: Order when principal is User && principal has suspended && principal.suspended;\n"
            ),
            2 => format!(
                "@id(\"p{i}\") permit principal in Team(\"t{i}\"), action: refund, resource: Order when context.amount <= {i} || context.mfa;\n"
            ),
            _ => format!(
                "@id(\"p{i}\") permit principal == Service(\"s{i}\"), action: *, resource: * unless \"x{i}\" in [\"a\", \"b\"];\n"
            ),
        };
        text.push_str(&policy);
    }
    text
}

#[test]
fn ten_thousand_policies_check_without_diagnostics() {
    let text = generated_set(10_000);
    let start = Instant::now();
    let checked = check_one(&text);
    let elapsed = start.elapsed();
    assert!(
        checked.diagnostics.is_empty(),
        "{:?}",
        checked.diagnostics.first()
    );
    assert_eq!(checked.policies.len(), 10_000);
    eprintln!("parsed and checked 10,000 policies in {elapsed:?} (debug build)");
}

/// Expressions built from the language's forms, well-formed or not in type, over the schema.
fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("principal".to_owned()),
        Just("resource".to_owned()),
        Just("context".to_owned()),
        Just("action".to_owned()),
        Just("true".to_owned()),
        Just("1".to_owned()),
        Just("\"x\"".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("User(\"a\")".to_owned()),
        Just("Action(\"read\")".to_owned()),
        Just("ip(\"::1\")".to_owned()),
        Just("duration(\"1h\")".to_owned()),
        Just("timestamp(\"bad\")".to_owned()),
        Just("nope(1)".to_owned()),
    ];
    let attrs = prop::sample::select(vec![
        "email",
        "roles",
        "tier",
        "clearance",
        "suspended",
        "team",
        "owner",
        "total",
        "mfa",
        "x",
    ]);
    let methods = prop::sample::select(vec![
        "contains",
        "containsAll",
        "isEmpty",
        "startsWith",
        "isIpv4",
        "toDays",
        "offset",
        "zz",
    ]);
    let ops = prop::sample::select(vec!["&&", "||", "==", "!=", "<", ">=", "in", "+", "-", "*"]);
    let types = prop::sample::select(vec!["User", "Service", "Order", "Team", "Nope"]);
    leaf.prop_recursive(5, 48, 3, move |inner| {
        prop_oneof![
            (inner.clone(), attrs.clone()).prop_map(|(e, a)| format!("{e}.{a}")),
            (inner.clone(), attrs.clone()).prop_map(|(e, a)| format!("({e} has {a})")),
            (inner.clone(), types.clone()).prop_map(|(e, t)| format!("({e} is {t})")),
            (
                inner.clone(),
                methods.clone(),
                prop::collection::vec(inner.clone(), 0..2)
            )
                .prop_map(|(e, m, args)| format!("{e}.{m}({})", args.join(", "))),
            (inner.clone(), ops.clone(), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("(if {c} then {a} else {b})")),
            prop::collection::vec(inner.clone(), 0..3)
                .prop_map(|es| format!("[{}]", es.join(", "))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{{a: {a}, b: {b}}}")),
            inner.clone().prop_map(|e| format!("!{e}")),
            inner.clone().prop_map(|e| format!("({e} like \"*\")")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn checking_generated_policies_never_panics(
        condition in expr(),
        key in expr(),
        scope in prop::sample::select(vec![
            "principal: *, action: *, resource: *",
            "principal: User, action: refund, resource: Order",
            "principal: Service, action: [read, refund], resource: Team",
        ]),
    ) {
        let text = format!(
            "{SCHEMA}\npermit {scope} when {condition};\nlimit \"l\" 1 per minute per {key} when {condition};\n"
        );
        let checked = check_one(&text);
        // Every diagnostic renders without panicking too.
        for diagnostic in &checked.diagnostics {
            let _ = diagnostic.to_string();
        }
    }
}
