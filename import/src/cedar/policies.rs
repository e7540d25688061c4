//! Cedar policies as authz policies.
//!
//! The file is split into its policies here (so that the comments before each one can be kept),
//! each policy is parsed by Cedar and read in Cedar's JSON form (the EST), and its scope and
//! conditions are written in authz syntax. A policy keeps its `@id`; one without gets the id Cedar
//! itself gives it in a policy set (`policy0`, `policy1`, ... by position), so that decisions
//! name the same policies in both languages. `@reason` is kept; other annotations become comments.

use serde_json::Value;

use super::base_name;
use super::schema::Names;
use crate::ImportError;
use authz_lang::field_name;

/// Translates the policies of a `.cedar` file: the authz text and the number of policies.
pub fn translate(text: &str, names: &Names) -> Result<(String, usize), Vec<ImportError>> {
    let mut out = String::new();
    let mut errors = Vec::new();
    let pieces = split(text);
    for (index, piece) in pieces.policies.iter().enumerate() {
        let id = format!("policy{index}");
        let policy = match cedar_policy::Policy::parse(
            Some(cedar_policy::PolicyId::new(&id)),
            &piece.text,
        ) {
            Ok(policy) => policy,
            Err(error) => {
                let template = cedar_policy::Template::parse(
                    Some(cedar_policy::PolicyId::new(&id)),
                    &piece.text,
                );
                errors.push(match template {
                    Ok(template) => ImportError::Unsupported {
                        place: match template.annotation("id") {
                            Some(given) => format!("policy `{given}`"),
                            None => format!("policy {index} (`{id}`)"),
                        },
                        construct: "a policy template (a policy with slots)".to_owned(),
                        help: "write one policy per linked template, with the entity in place of the slot"
                            .to_owned(),
                    },
                    Err(_) => ImportError::PolicySyntax {
                        index,
                        message: error.to_string(),
                    },
                });
                continue;
            }
        };
        let place = match policy.annotation("id") {
            Some(given) => format!("policy `{given}`"),
            None => format!("policy {index} (`{id}`)"),
        };
        let est = match policy.to_json() {
            Ok(est) => est,
            Err(error) => {
                errors.push(ImportError::PolicySyntax {
                    index,
                    message: error.to_string(),
                });
                continue;
            }
        };
        let mut writer = Writer {
            names,
            place,
            errors: Vec::new(),
        };
        let translated = writer.policy(&est, &id);
        errors.append(&mut writer.errors);
        if let Some(translated) = translated {
            if !out.is_empty() {
                out.push('\n');
            }
            for comment in &piece.comments {
                out.push_str(comment);
                out.push('\n');
            }
            out.push_str(&translated);
            out.push('\n');
        }
    }
    if !pieces.trailing_comments.is_empty() {
        out.push('\n');
        for comment in &pieces.trailing_comments {
            out.push_str(comment);
            out.push('\n');
        }
    }
    if errors.is_empty() {
        Ok((out, pieces.policies.len()))
    } else {
        Err(errors)
    }
}

/// One policy's text and the `//` comments before it.
struct Piece {
    comments: Vec<String>,
    text: String,
}

struct Pieces {
    policies: Vec<Piece>,
    trailing_comments: Vec<String>,
}

/// Splits a `.cedar` file at the `;` that end its policies (outside strings, comments and
/// brackets), keeping the whole-line comments before each policy.
fn split(text: &str) -> Pieces {
    let mut policies = Vec::new();
    let mut comments = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                current.push(c);
                while let Some(s) = chars.next() {
                    current.push(s);
                    match s {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                current.push(escaped);
                            }
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                let mut comment = String::from("/");
                for s in chars.by_ref() {
                    if s == '\n' {
                        break;
                    }
                    comment.push(s);
                }
                // A comment before the policy's first token is kept; one inside it is dropped
                // (the EST has no place for it).
                if current.trim().is_empty() {
                    comments.push(comment.trim_end().to_owned());
                }
                current.push('\n');
            }
            '(' | '[' | '{' => {
                depth += 1;
                current.push(c);
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ';' if depth == 0 => {
                current.push(c);
                policies.push(Piece {
                    comments: std::mem::take(&mut comments),
                    text: std::mem::take(&mut current),
                });
            }
            c => current.push(c),
        }
    }
    Pieces {
        policies,
        trailing_comments: comments,
    }
}

/// Binding levels of authz expressions, loosest first.
const IF: u8 = 0;
const OR: u8 = 1;
const AND: u8 = 2;
const COMPARE: u8 = 3;
const SUM: u8 = 4;
const PRODUCT: u8 = 5;
const UNARY: u8 = 6;
const POSTFIX: u8 = 7;
const PRIMARY: u8 = 8;

/// An authz expression's text and how tightly it binds.
struct Text(String, u8);

impl Text {
    /// The text, in parentheses unless it binds at least as tightly as `level`.
    fn at(self, level: u8) -> String {
        if self.1 >= level {
            self.0
        } else {
            format!("({})", self.0)
        }
    }
}

struct Writer<'n> {
    names: &'n Names,
    place: String,
    errors: Vec<ImportError>,
}

impl Writer<'_> {
    fn unsupported(&mut self, construct: &str, help: &str) {
        self.errors.push(ImportError::Unsupported {
            place: self.place.clone(),
            construct: construct.to_owned(),
            help: help.to_owned(),
        });
    }

    fn policy(&mut self, est: &Value, default_id: &str) -> Option<String> {
        let mut out = String::new();
        let annotations = est.get("annotations").and_then(Value::as_object);
        let id = annotations
            .and_then(|annotations| annotations.get("id"))
            .and_then(Value::as_str)
            .unwrap_or(default_id);
        out.push_str(&format!("@id({})\n", authz_lang::quote(id)));
        for (name, value) in annotations.into_iter().flatten() {
            let value = value.as_str().unwrap_or_default();
            match name.as_str() {
                "id" => {}
                "reason" => out.push_str(&format!("@reason({})\n", authz_lang::quote(value))),
                other => out.push_str(&format!(
                    "// @{other}({}) (a Cedar annotation authz does not use)\n",
                    authz_lang::quote(value)
                )),
            }
        }
        let effect = est
            .get("effect")
            .and_then(Value::as_str)
            .unwrap_or("permit");
        let principal = self.scope("principal", est.get("principal")?)?;
        let action = self.action_scope(est.get("action")?)?;
        let resource = self.scope("resource", est.get("resource")?)?;
        out.push_str(&format!("{effect} {principal}, {action}, {resource}"));
        for condition in est
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = condition
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("when");
            let body = self.expr(condition.get("body")?)?;
            out.push_str(&format!("\n{kind} {}", body.0));
        }
        out.push(';');
        Some(out)
    }

    fn scope(&mut self, var: &str, scope: &Value) -> Option<String> {
        if scope.get("slot").is_some()
            || scope
                .get("in")
                .is_some_and(|inner| inner.get("slot").is_some())
        {
            self.unsupported(
                "a policy template slot",
                "write one policy per linked template, with the entity in place of the slot",
            );
            return None;
        }
        let entity = |value: Option<&Value>| value.and_then(entity_ref);
        Some(match scope.get("op").and_then(Value::as_str)? {
            "All" => format!("{var}: *"),
            "==" => format!("{var} == {}", entity(scope.get("entity"))?),
            "in" => format!("{var} in {}", entity(scope.get("entity"))?),
            "is" => {
                let ty = base_name(scope.get("entity_type").and_then(Value::as_str)?);
                match scope.get("in") {
                    Some(inner) => format!("{var}: {ty} in {}", entity(inner.get("entity"))?),
                    None => format!("{var}: {ty}"),
                }
            }
            other => {
                self.unsupported(&format!("the scope operator `{other}`"), "");
                return None;
            }
        })
    }

    fn action_scope(&mut self, scope: &Value) -> Option<String> {
        let name = |value: &Value| value.get("id").and_then(Value::as_str).map(str::to_owned);
        match scope.get("op").and_then(Value::as_str)? {
            "All" => Some("action: *".to_owned()),
            "==" => {
                let action = name(scope.get("entity")?)?;
                if self.names.groups.contains(&action) {
                    self.unsupported(
                        &format!("`action == Action::\"{action}\"` on an action group"),
                        "a request never names a group, so the policy never applies; write `action in`",
                    );
                    return None;
                }
                Some(format!("action: {action}"))
            }
            "in" => match (scope.get("entity"), scope.get("entities")) {
                (Some(entity), _) => Some(format!("action in {}", name(entity)?)),
                (None, Some(entities)) => {
                    let list: Option<Vec<String>> = entities.as_array()?.iter().map(name).collect();
                    Some(format!("action in [{}]", list?.join(", ")))
                }
                (None, None) => None,
            },
            other => {
                self.unsupported(&format!("the action scope operator `{other}`"), "");
                None
            }
        }
    }

    fn expr(&mut self, expr: &Value) -> Option<Text> {
        let object = expr.as_object()?;
        let (key, body) = object.iter().next()?;
        let binary = |writer: &mut Self, op: &str, level: u8, left: u8, right: u8| {
            let l = writer.expr(body.get("left")?)?.at(left);
            let r = writer.expr(body.get("right")?)?.at(right);
            Some(Text(format!("{l} {op} {r}"), level))
        };
        match key.as_str() {
            "Value" => self.value(body),
            "Var" => Some(Text(body.as_str()?.to_owned(), PRIMARY)),
            "Slot" => {
                self.unsupported(
                    "a policy template slot",
                    "write one policy per linked template, with the entity in place of the slot",
                );
                None
            }
            "!" => {
                let arg = self.expr(body.get("arg")?)?.at(UNARY);
                Some(Text(format!("!{arg}"), UNARY))
            }
            "neg" => {
                let arg = self.expr(body.get("arg")?)?.at(UNARY);
                // `- -x` and `-(-5)`: keep the minus signs apart.
                let arg = if arg.starts_with('-') {
                    format!("({arg})")
                } else {
                    arg
                };
                Some(Text(format!("-{arg}"), UNARY))
            }
            "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" => binary(self, key, COMPARE, SUM, SUM),
            "&&" => binary(self, "&&", AND, AND, COMPARE),
            "||" => binary(self, "||", OR, OR, AND),
            "+" | "-" => binary(self, key, SUM, SUM, PRODUCT),
            "*" => binary(self, "*", PRODUCT, PRODUCT, UNARY),
            "contains" | "containsAll" | "containsAny" => {
                let receiver = self.expr(body.get("left")?)?.at(POSTFIX);
                let argument = self.expr(body.get("right")?)?.at(IF);
                Some(Text(format!("{receiver}.{key}({argument})"), POSTFIX))
            }
            "isEmpty" => {
                let receiver = self.expr(body.get("arg")?)?.at(POSTFIX);
                Some(Text(format!("{receiver}.isEmpty()"), POSTFIX))
            }
            "getTag" | "hasTag" => {
                self.unsupported("entity tags", "store the tags as a record or set attribute");
                None
            }
            "." => {
                let base = self.expr(body.get("left")?)?.at(POSTFIX);
                let attr = body.get("attr")?.as_str()?;
                Some(Text(format!("{base}.{}", field_name(attr)), POSTFIX))
            }
            "has" => {
                let base = self.expr(body.get("left")?)?.at(POSTFIX);
                let path: Vec<&str> = match body.get("attr")? {
                    Value::String(attr) => vec![attr.as_str()],
                    Value::Array(path) => path.iter().filter_map(Value::as_str).collect(),
                    _ => return None,
                };
                // `e has a.b` is `e has a && e.a has b`.
                let mut tests = Vec::new();
                let mut prefix = base;
                for attr in path {
                    tests.push(format!("{prefix} has {}", field_name(attr)));
                    prefix = format!("{prefix}.{}", field_name(attr));
                }
                match tests.len() {
                    1 => Some(Text(tests.concat(), COMPARE)),
                    _ => Some(Text(tests.join(" && "), AND)),
                }
            }
            "like" => {
                let base = self.expr(body.get("left")?)?.at(SUM);
                let pattern = like_pattern(body.get("pattern")?)?;
                Some(Text(
                    format!("{base} like {}", authz_lang::quote(&pattern)),
                    COMPARE,
                ))
            }
            "is" => {
                let base = self.expr(body.get("left")?)?.at(SUM);
                let ty = base_name(body.get("entity_type")?.as_str()?);
                match body.get("in") {
                    Some(inner) => {
                        let inner = self.expr(inner)?.at(SUM);
                        Some(Text(format!("{base} is {ty} in {inner}"), COMPARE))
                    }
                    None => Some(Text(format!("{base} is {ty}"), COMPARE)),
                }
            }
            "if-then-else" => {
                let cond = self.expr(body.get("if")?)?.at(IF);
                let then = self.expr(body.get("then")?)?.at(IF);
                let otherwise = self.expr(body.get("else")?)?.at(IF);
                Some(Text(format!("if {cond} then {then} else {otherwise}"), IF))
            }
            "Set" => {
                let elements: Option<Vec<String>> = body
                    .as_array()?
                    .iter()
                    .map(|element| self.expr(element).map(|text| text.at(IF)))
                    .collect();
                Some(Text(format!("[{}]", elements?.join(", ")), PRIMARY))
            }
            "Record" => {
                let mut fields = Vec::new();
                for (name, value) in body.as_object()? {
                    let value = self.expr(value)?.at(IF);
                    fields.push(format!("{}: {value}", field_name(name)));
                }
                Some(Text(format!("{{{}}}", fields.join(", ")), PRIMARY))
            }
            function => self.extension_call(function, body),
        }
    }

    fn extension_call(&mut self, function: &str, body: &Value) -> Option<Text> {
        let args = body.as_array()?;
        match function {
            "ip" | "duration" | "datetime" => {
                let [arg] = args.as_slice() else {
                    return None;
                };
                let name = if function == "datetime" {
                    "timestamp"
                } else {
                    function
                };
                let arg = match (function, arg.get("Value").and_then(Value::as_str)) {
                    ("datetime", Some(text)) => {
                        authz_lang::quote(&authz_runtime::json::cedar_datetime(text))
                    }
                    _ => self.expr(arg)?.at(IF),
                };
                Some(Text(format!("{name}({arg})"), PRIMARY))
            }
            "isIpv4" | "isIpv6" | "isLoopback" | "isMulticast" | "isInRange" | "offset"
            | "durationSince" | "toDate" | "toTime" | "toDays" | "toHours" | "toMinutes"
            | "toSeconds" | "toMilliseconds" => {
                let (receiver, rest) = args.split_first()?;
                let receiver = self.expr(receiver)?.at(POSTFIX);
                let rest: Option<Vec<String>> = rest
                    .iter()
                    .map(|arg| self.expr(arg).map(|text| text.at(IF)))
                    .collect();
                Some(Text(
                    format!("{receiver}.{function}({})", rest?.join(", ")),
                    POSTFIX,
                ))
            }
            "decimal" | "lessThan" | "lessThanOrEqual" | "greaterThan" | "greaterThanOrEqual" => {
                self.unsupported(
                    "the `decimal` extension",
                    "authz has no decimal numbers: scale the values to a `Long` (cents, basis points)",
                );
                None
            }
            other => {
                self.unsupported(&format!("the function `{other}`"), "");
                None
            }
        }
    }

    fn value(&mut self, value: &Value) -> Option<Text> {
        match value {
            Value::Bool(b) => Some(Text(b.to_string(), PRIMARY)),
            Value::Number(n) => {
                let n = n.as_i64()?;
                if n == i64::MIN {
                    Some(Text("(-9223372036854775807 - 1)".to_owned(), PRIMARY))
                } else if n < 0 {
                    Some(Text(format!("-{}", n.unsigned_abs()), UNARY))
                } else {
                    Some(Text(n.to_string(), PRIMARY))
                }
            }
            Value::String(s) => Some(Text(authz_lang::quote(s), PRIMARY)),
            Value::Array(elements) => {
                let elements: Option<Vec<String>> = elements
                    .iter()
                    .map(|element| self.value(element).map(|text| text.at(IF)))
                    .collect();
                Some(Text(format!("[{}]", elements?.join(", ")), PRIMARY))
            }
            Value::Object(object) => {
                if let Some(entity) = object.get("__entity") {
                    return Some(Text(entity_ref(&Value::clone(entity))?, PRIMARY));
                }
                if let Some(extension) = object.get("__extn") {
                    let function = extension.get("fn")?.as_str()?;
                    let arg = extension.get("arg")?.clone();
                    let call = serde_json::json!({ function: [{ "Value": arg }] });
                    return self.expr(&call);
                }
                let mut fields = Vec::new();
                for (name, value) in object {
                    let value = self.value(value)?.at(IF);
                    fields.push(format!("{}: {value}", field_name(name)));
                }
                Some(Text(format!("{{{}}}", fields.join(", ")), PRIMARY))
            }
            Value::Null => None,
        }
    }
}

/// `{"type": "Shop::User", "id": "alice"}` (or wrapped in `__entity`) as `User("alice")`.
fn entity_ref(value: &Value) -> Option<String> {
    let value = value.get("__entity").unwrap_or(value);
    let ty = base_name(value.get("type")?.as_str()?);
    let id = value.get("id")?.as_str()?;
    Some(format!("{ty}({})", authz_lang::quote(id)))
}

/// A Cedar `like` pattern (literal parts and wildcards) as an authz pattern, where `*` is the
/// wildcard and `\*` and `\\` stand for a star and a backslash.
fn like_pattern(pattern: &Value) -> Option<String> {
    let mut out = String::new();
    for part in pattern.as_array()? {
        if part.as_str() == Some("Wildcard") {
            out.push('*');
            continue;
        }
        for c in part.get("Literal")?.as_str()?.chars() {
            match c {
                '*' => out.push_str("\\*"),
                '\\' => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
    }
    Some(out)
}
