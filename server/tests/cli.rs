//! End-to-end tests of `authz check` and `authz fmt`: the real binary on real files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn authz(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authz"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the authz binary runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn examples() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A copy of `examples/docs` without its `*.test.toml` files, for tests that bring their own.
fn docs_example_without_tests() -> tempfile::TempDir {
    let temp = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/docs"), temp.path());
    for entry in std::fs::read_dir(temp.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".test.toml") {
            std::fs::remove_file(path).unwrap();
        }
    }
    temp
}

fn authz_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(authz_files(&path));
        } else if path.extension().is_some_and(|e| e == "authz") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn examples_check_clean() {
    let dirs = examples();
    assert!(dirs.len() >= 3, "expected at least three examples");
    let mut args = vec!["check"];
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let output = authz(&args, &repo());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("0 errors"), "{}", stderr(&output));
}

#[test]
fn garbage_appended_to_any_example_file_is_located() {
    for example in examples() {
        for file in authz_files(&example) {
            let temp = tempfile::tempdir().unwrap();
            let copy = temp.path().join("set");
            copy_dir(&example, &copy);
            let relative = file.strip_prefix(&example).unwrap();
            let target = copy.join(relative);
            let mut text = std::fs::read_to_string(&target).unwrap();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            let garbage_line = text.lines().count() + 1;
            text.push_str("this is not a policy }\n");
            std::fs::write(&target, text).unwrap();

            let output = authz(&["check", "--format", "json", "set"], temp.path());
            assert_eq!(
                output.status.code(),
                Some(1),
                "{}: {}",
                file.display(),
                stdout(&output)
            );
            let expected_name = Path::new("set").join(relative).display().to_string();
            let located = stdout(&output).lines().any(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["file"] == expected_name.as_str()
                    && value["line"] == garbage_line
                    && value["column"] == 1
                    && value["severity"] == "error"
            });
            assert!(
                located,
                "{}: no diagnostic at {expected_name}:{garbage_line}:1 in\n{}",
                file.display(),
                stdout(&output)
            );
        }
    }
}

const BROKEN: &str = r#"entity User { name: String, level: Long }
entity Doc { owner: User }
action read : User -> Doc;

permit principal: User, action: read, resource: Doc
when resource.owner == principal && principal.level > "3";

permit principal: User, action: raed, resource: Doc;
"#;

#[test]
fn check_reports_human_diagnostics_on_stderr() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("policies.authz"), BROKEN).unwrap();
    let output = authz(&["check", "policies.authz"], temp.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    insta::assert_snapshot!(stderr(&output));
}

#[test]
fn check_json_lines_carry_position_code_and_help() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("policies.authz"), BROKEN).unwrap();
    let output = authz(&["check", "--format", "json", "."], temp.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "");
    let values: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // Key order depends on serde_json's features in the build, so maps are sorted.
    insta::with_settings!({ sort_maps => true }, { insta::assert_json_snapshot!(values) });
}

#[test]
fn check_of_missing_path_fails_with_a_message() {
    let temp = tempfile::tempdir().unwrap();
    let output = authz(&["check", "nowhere"], temp.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot read `nowhere`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let temp = tempfile::tempdir().unwrap();
    let output = authz(&["check", "--no-such-flag"], temp.path());
    assert_eq!(output.status.code(), Some(1));
    let help = authz(&["check", "--help"], temp.path());
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("--deny-warnings"));
}

const UNFORMATTED: &str = "// Who may read.\npermit   principal : User,action:read ,resource:Doc when resource.owner==principal ;\n";

#[test]
fn fmt_check_names_files_and_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("a.authz");
    std::fs::write(&path, UNFORMATTED).unwrap();
    let output = authz(&["fmt", "--check", "a.authz"], temp.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output).trim(), "a.authz");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), UNFORMATTED);
}

#[test]
fn fmt_rewrites_then_check_passes_and_comments_survive() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("a.authz");
    std::fs::write(&path, UNFORMATTED).unwrap();
    let output = authz(&["fmt", "."], temp.path());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let formatted = std::fs::read_to_string(&path).unwrap();
    assert!(formatted.contains("// Who may read."));
    insta::assert_snapshot!(formatted);
    let again = authz(&["fmt", "--check", "."], temp.path());
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}

#[test]
fn fmt_refuses_files_with_syntax_errors() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("a.authz");
    std::fs::write(&path, "permit principal: User;\n").unwrap();
    let output = authz(&["fmt", "a.authz"], temp.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("authz::syntax::incomplete_scope"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "permit principal: User;\n"
    );
}

const ROADMAP_READ: &str = r#"{"principal":{"type":"User","id":"bob"},"action":"read","resource":{"type":"Document","id":"roadmap"}}"#;
const ROADMAP_SUSPENDED: &str = r#"{"principal":{"type":"User","id":"erin"},"action":"read","resource":{"type":"Document","id":"roadmap"}}"#;

#[test]
fn eval_exit_codes_say_allow_deny_and_error() {
    let root = repo();
    let eval = |request: &str| {
        authz(
            &[
                "eval",
                "-p",
                "examples/docs",
                "-e",
                "examples/docs/entities.json",
                "-r",
                request,
            ],
            &root,
        )
    };
    let allowed = eval(ROADMAP_READ);
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    assert_eq!(stdout(&allowed).trim(), r#"{"decision":"allow"}"#);
    let denied = eval(ROADMAP_SUSPENDED);
    assert_eq!(denied.status.code(), Some(2), "{}", stderr(&denied));
    let broken = eval(
        r#"{"principal":{"type":"Usr","id":"bob"},"action":"read","resource":{"type":"Document","id":"roadmap"}}"#,
    );
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        stderr(&broken).contains("principal.type"),
        "{}",
        stderr(&broken)
    );
}

#[test]
fn eval_explain_names_policies_and_reasons() {
    let output = authz(
        &[
            "eval",
            "-p",
            "examples/docs",
            "-e",
            "examples/docs/entities.json",
            "-r",
            ROADMAP_SUSPENDED,
            "--explain",
        ],
        &repo(),
    );
    assert_eq!(output.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    // Key order depends on serde_json's features in the build, so maps are sorted.
    insta::with_settings!({ sort_maps => true }, { insta::assert_json_snapshot!(value) });
}

#[test]
fn every_example_passes_its_tests() {
    for example in examples() {
        let output = authz(&["test", &example.display().to_string()], &repo());
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}\n{}",
            stdout(&output),
            stderr(&output)
        );
        assert!(
            stdout(&output).contains(" passed, 0 failed"),
            "{}",
            stdout(&output)
        );
    }
}

#[test]
fn test_failures_show_expected_and_actual() {
    let temp = docs_example_without_tests();
    std::fs::write(
        temp.path().join("wrong.test.toml"),
        r#"[[test]]
name = "erin reads the roadmap"
principal = { type = "User", id = "erin" }
action = "read"
resource = { type = "Document", id = "roadmap" }
decision = "allow"
policies = ["viewers-read"]
"#,
    )
    .unwrap();
    let output = authz(&["test", "."], temp.path());
    assert_eq!(output.status.code(), Some(1));
    let printed = stdout(&output);
    let failure: Vec<&str> = printed
        .lines()
        .skip_while(|line| !line.starts_with("FAIL"))
        .take(6)
        .collect();
    insta::assert_snapshot!(failure.join("\n"));
    assert!(
        printed.trim_end().ends_with("0 passed, 1 failed"),
        "{printed}"
    );
}

#[test]
fn test_files_bring_their_own_entities_and_check_obligations() {
    let temp = docs_example_without_tests();
    std::fs::write(
        temp.path().join("zed.json"),
        r#"[{"type": "User", "id": "zed", "attrs": {"tenant": {"type": "Tenant", "id": "acme"}, "email": "z@x", "clearance": 1, "trainings": []}, "parents": []}]"#,
    )
    .unwrap();
    std::fs::write(
        temp.path().join("new.test.toml"),
        r#"[[test]]
name = "zed, a viewer known only to this test, reads the roadmap"
principal = { type = "User", id = "zed" }
action = "read"
resource = { type = "Document", id = "roadmap" }
entities = [
  { type = "User", id = "zed", parents = [{ type = "Role", id = "acme-viewers" }], attrs = { tenant = { type = "Tenant", id = "acme" }, email = "z@x", clearance = 1, trainings = [] } },
]
decision = "allow"
policies = ["viewers-read"]
obligations = [{ limit = "tenant-api", key = 'Tenant("acme")' }]

[[test]]
name = "zed from a file, without the role, does not"
principal = { type = "User", id = "zed" }
action = "read"
resource = { type = "Document", id = "roadmap" }
entities = "zed.json"
decision = "deny"
obligations = []
"#,
    )
    .unwrap();
    let output = authz(&["test", "."], temp.path());
    let printed = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{printed}{}",
        stderr(&output)
    );
    assert!(
        printed.trim_end().ends_with("2 passed, 0 failed"),
        "{printed}"
    );

    // Untested policies fail the run when asked.
    let output = authz(&["test", ".", "--deny-uncovered"], temp.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("not covered by any test"),
        "{}",
        stderr(&output)
    );

    // A wrong obligation fails, and the failure shows everything that happened.
    std::fs::write(
        temp.path().join("new.test.toml"),
        r#"[[test]]
name = "an obligation that does not apply"
principal = { type = "User", id = "alice" }
action = "read"
resource = { type = "Document", id = "roadmap" }
decision = "allow"
obligations = [{ limit = "tenant-api", key = 'Tenant("globex")' }]
"#,
    )
    .unwrap();
    let output = authz(&["test", "."], temp.path());
    assert_eq!(output.status.code(), Some(1));
    let printed = stdout(&output);
    assert!(
        printed.contains(r#"obligations: expected ["tenant-api[Tenant(\"globex\")]"], got ["tenant-api[Tenant(\"acme\")]"]"#),
        "{printed}"
    );
    assert!(printed.contains("got: allow, policies ["), "{printed}");
}

#[test]
fn eval_explain_on_a_default_deny_names_each_candidate_and_its_failing_condition() {
    let output = authz(
        &[
            "eval",
            "-p",
            "examples/docs",
            "-e",
            "examples/docs/entities.json",
            "--explain",
            "-r",
            r#"{"principal": {"type": "User", "id": "dave"}, "action": "read", "resource": {"type": "Document", "id": "roadmap"}}"#,
        ],
        &repo(),
    );
    assert_eq!(output.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(value["policies"], serde_json::json!([]));
    let candidates = value["candidates"].as_array().unwrap();
    assert!(!candidates.is_empty());
    for candidate in candidates {
        assert_eq!(candidate["outcome"], "false", "{candidate}");
        assert!(
            candidate["condition"].as_str().unwrap().len() > 3,
            "{candidate}"
        );
        assert!(
            candidate["at"]
                .as_str()
                .unwrap()
                .starts_with("examples/docs/"),
            "{candidate}"
        );
    }
    let owners = candidates
        .iter()
        .find(|candidate| candidate["policy"] == "owners")
        .unwrap();
    assert_eq!(owners["condition"], "when resource.owner == principal");
    assert_eq!(owners["at"], "examples/docs/ownership.authz:6:1");
    // The same, readable, on stderr.
    let readable = stderr(&output);
    assert!(
        readable.contains("deny: no permit applied (default deny)"),
        "{readable}"
    );
    assert!(
        readable.contains(
            "permit `owners`: `when resource.owner == principal` is false (examples/docs/ownership.authz:6:1)"
        ),
        "{readable}"
    );
}

#[test]
fn overflow_errors_name_the_operation_and_its_operands() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(
        temp.path().join("sums.authz"),
        r#"entity User;
entity Doc;
action sum: User -> Doc with { max: Long, min: Long, two: Long };
@id("add") permit principal: User, action: sum, resource: Doc when context.max + context.two > 0;
@id("sub") permit principal: User, action: sum, resource: Doc when context.min - context.two > 0;
@id("mul") permit principal: User, action: sum, resource: Doc when context.max * context.two > 0;
@id("neg") permit principal: User, action: sum, resource: Doc when -context.min > 0;
"#,
    )
    .unwrap();
    std::fs::write(
        temp.path().join("entities.json"),
        r#"[{"type": "User", "id": "u"}, {"type": "Doc", "id": "d"}]"#,
    )
    .unwrap();
    let output = authz(
        &[
            "eval",
            "-p",
            ".",
            "-e",
            "entities.json",
            "-r",
            r#"{"principal": {"type": "User", "id": "u"}, "action": "sum", "resource": {"type": "Doc", "id": "d"}, "context": {"max": 9223372036854775807, "min": -9223372036854775808, "two": 2}}"#,
            "--explain",
        ],
        temp.path(),
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    insta::with_settings!({ sort_maps => true }, {
        insta::assert_json_snapshot!(value["errors"])
    });
}

#[test]
fn limits_on_attempts_apply_to_denied_requests_too() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(
        temp.path().join("login.authz"),
        r#"entity User { active: Bool };
entity Login;
action login: User -> Login with { ip: Ip };
action logout: User -> Login;
permit principal: User, action: [login, logout], resource: Login when principal.active;
limit "attempts" 5 per 10 seconds on attempts per context.ip when context has ip;
limit "per-user" 100 per hour per principal;
"#,
    )
    .unwrap();
    std::fs::write(
        temp.path().join("entities.json"),
        r#"[{"type": "User", "id": "ann", "attrs": {"active": true}},
            {"type": "User", "id": "bob", "attrs": {"active": false}},
            {"type": "Login", "id": "main"}]"#,
    )
    .unwrap();
    let eval = |user: &str, action: &str| {
        let context = if action == "login" {
            r#"{"ip": "192.0.2.7"}"#
        } else {
            "{}"
        };
        let request = format!(
            r#"{{"principal": {{"type": "User", "id": "{user}"}}, "action": "{action}", "resource": {{"type": "Login", "id": "main"}}, "context": {context}}}"#
        );
        let output = authz(
            &[
                "eval",
                "-p",
                ".",
                "-e",
                "entities.json",
                "-r",
                &request,
                "--explain",
            ],
            temp.path(),
        );
        let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        let obligations: Vec<String> = value["obligations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|obligation| format!("{}[{}]", obligation["limit"], obligation["key"]))
            .collect();
        (value["decision"].as_str().unwrap().to_string(), obligations)
    };
    // Allowed: every limit that applies.
    let (decision, obligations) = eval("ann", "login");
    assert_eq!(decision, "allow");
    assert_eq!(
        obligations,
        [
            r#""attempts"["ip(\"192.0.2.7\")"]"#,
            r#""per-user"["User(\"ann\")"]"#
        ]
    );
    // Denied: the limits on attempts only.
    let (decision, obligations) = eval("bob", "login");
    assert_eq!(decision, "deny");
    assert_eq!(obligations, [r#""attempts"["ip(\"192.0.2.7\")"]"#]);
    // An action without `ip` is not counted on attempts (`context has ip` is false there).
    let (decision, obligations) = eval("bob", "logout");
    assert_eq!((decision.as_str(), obligations.len()), ("deny", 0));

    // Such a limit cannot read who makes the request.
    std::fs::write(
        temp.path().join("login.authz"),
        r#"entity User;
entity Login;
action login: User -> Login;
limit "attempts" 5 per minute on attempts per principal;
"#,
    )
    .unwrap();
    let output = authz(&["check", "."], temp.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("authz::check::attempts_limit_reads_request"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn import_cedar_writes_a_set_that_checks_and_refuses_to_overwrite() {
    let temp = tempfile::tempdir().unwrap();
    let cedar = repo().join("tests/peers/cedar_examples/github");
    let out = temp.path().join("imported");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import".to_owned(),
            "cedar".to_owned(),
            "--schema".to_owned(),
            cedar.join("schema.cedarschema").display().to_string(),
            "--policies".to_owned(),
            cedar.join("policies.cedar").display().to_string(),
            "--out".to_owned(),
            out.display().to_string(),
        ];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        authz(&args, temp.path())
    };
    let first = import(&[]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("imported 21 policies")
            || stderr(&first).contains("imported 21 policies"),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let checked = authz(&["check", &out.display().to_string()], temp.path());
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    let again = import(&[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("pass --force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(import(&["--force"]).status.code(), Some(0));
}

#[test]
fn import_cedar_names_what_has_no_counterpart() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(
        temp.path().join("schema.cedarschema"),
        "entity User { balance: decimal, tags: Set<String> };\nentity Doc;\naction \"view-doc\" appliesTo { principal: User, resource: Doc };\naction view appliesTo { principal: User, resource: Doc };\n",
    )
    .unwrap();
    std::fs::write(
        temp.path().join("policies.cedar"),
        "@id(\"linked\")\npermit (principal == ?principal, action == Action::\"view\", resource);\n",
    )
    .unwrap();
    let output = authz(
        &[
            "import",
            "cedar",
            "--schema",
            "schema.cedarschema",
            "--policies",
            "policies.cedar",
            "--out",
            "out",
        ],
        temp.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(!temp.path().join("out").exists(), "nothing is written");
    insta::assert_snapshot!(stderr(&output));
}
