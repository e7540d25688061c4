//! Cedar's entities JSON and request JSON as authz's.
//!
//! Cedar writes an entity `{"uid": {"type": "User", "id": "alice"}, "attrs": {...}, "parents":
//! [...]}` and may wrap references as `{"__entity": {...}}` and extension values as `{"__extn":
//! {"fn": "ip", "arg": "10.0.0.1"}}`; authz writes `{"type": "User", "id": "alice", ...}`, plain
//! references and extension values as strings. Namespaces are dropped from type names.

use serde_json::{Map, Value};

use super::base_name;
use crate::ImportError;

/// Translates a Cedar entities file (a JSON array of entities).
pub fn translate_entities(text: &str) -> Result<String, Vec<ImportError>> {
    let json: Value = serde_json::from_str(text).map_err(|error| {
        vec![ImportError::Json {
            what: "the entities file",
            message: error.to_string(),
        }]
    })?;
    let Some(entities) = json.as_array() else {
        return Err(vec![ImportError::Json {
            what: "the entities file",
            message: "expected a JSON array of entities".to_owned(),
        }]);
    };
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(entities.len());
    for entity in entities {
        // Actions are declared by the schema; Cedar lists them (with their groups) among the
        // entities it writes.
        let is_action = entity
            .get("uid")
            .and_then(uid_parts)
            .is_some_and(|(ty, _)| base_name(&ty) == "Action");
        if is_action {
            continue;
        }
        match translate_entity(entity) {
            Ok(entity) => out.push(entity),
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    drop_implied_parents(&mut out);
    // One entity per line: diffs of the file stay readable.
    let lines: Vec<String> = out.iter().map(Value::to_string).collect();
    Ok(format!("[\n{}\n]\n", lines.join(",\n")))
}

fn translate_entity(entity: &Value) -> Result<Value, ImportError> {
    let uid = entity.get("uid").ok_or_else(|| ImportError::Json {
        what: "the entities file",
        message: format!("an entity without `uid`: {entity}"),
    })?;
    let (ty, id) = uid_parts(uid).ok_or_else(|| ImportError::Json {
        what: "the entities file",
        message: format!("a `uid` that is not `{{\"type\": ..., \"id\": ...}}`: {uid}"),
    })?;
    let place = format!("entity `{ty}::{id:?}`");
    if entity
        .get("tags")
        .and_then(Value::as_object)
        .is_some_and(|tags| !tags.is_empty())
    {
        return Err(ImportError::Unsupported {
            place,
            construct: "entity tags".to_owned(),
            help: "store the tags as a record or set attribute".to_owned(),
        });
    }
    let mut out = Map::new();
    out.insert("type".to_owned(), Value::String(base_name(&ty).to_owned()));
    out.insert("id".to_owned(), Value::String(id));
    let attrs = match entity.get("attrs") {
        Some(attrs) => value(attrs, &place)?,
        None => Value::Object(Map::new()),
    };
    out.insert("attrs".to_owned(), attrs);
    let mut parents = Vec::new();
    for parent in entity
        .get("parents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (ty, id) = uid_parts(parent).ok_or_else(|| ImportError::Json {
            what: "the entities file",
            message: format!("a parent that is not an entity reference: {parent}"),
        })?;
        parents.push(serde_json::json!({"type": base_name(&ty), "id": id}));
    }
    out.insert("parents".to_owned(), Value::Array(parents));
    Ok(Value::Object(out))
}

/// Removes each listed parent that is also an ancestor through another listed parent: Cedar may
/// list every ancestor (it writes the transitive closure), authz lists the direct parents, whose
/// types the schema allows. The hierarchy is the same.
fn drop_implied_parents(entities: &mut [Value]) {
    type Uid = (String, String);
    let uid = |value: &Value| -> Option<Uid> {
        Some((
            value.get("type")?.as_str()?.to_owned(),
            value.get("id")?.as_str()?.to_owned(),
        ))
    };
    let mut parents_of: std::collections::HashMap<Uid, Vec<Uid>> = std::collections::HashMap::new();
    for entity in entities.iter() {
        if let Some(me) = uid(entity) {
            let parents = entity
                .get("parents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(uid)
                .collect();
            parents_of.insert(me, parents);
        }
    }
    let ancestors = |start: &Uid| {
        let mut seen: std::collections::HashSet<Uid> = std::collections::HashSet::new();
        let mut pending: Vec<Uid> = parents_of.get(start).cloned().unwrap_or_default();
        while let Some(next) = pending.pop() {
            if seen.insert(next.clone()) {
                pending.extend(parents_of.get(&next).cloned().unwrap_or_default());
            }
        }
        seen
    };
    for entity in entities.iter_mut() {
        let Some(Value::Array(parents)) = entity.get("parents").cloned() else {
            continue;
        };
        let listed: Vec<Option<Uid>> = parents.iter().map(uid).collect();
        let reach: Vec<std::collections::HashSet<Uid>> = listed
            .iter()
            .map(|parent| parent.as_ref().map(&ancestors).unwrap_or_default())
            .collect();
        let reaches = |from: usize, to: usize| match (reach.get(from), listed.get(to)) {
            (Some(reach), Some(Some(to))) => reach.contains(to),
            _ => false,
        };
        // `q` is implied by another listed parent `p` that reaches it, unless `q` reaches `p`
        // back (a cycle, where neither is redundant).
        let implied =
            |q: usize| (0..listed.len()).any(|p| p != q && reaches(p, q) && !reaches(q, p));
        let direct: Vec<Value> = parents
            .into_iter()
            .enumerate()
            .filter(|(index, _)| !implied(*index))
            .map(|(_, parent)| parent)
            .collect();
        if let Some(slot) = entity.get_mut("parents") {
            *slot = Value::Array(direct);
        }
    }
}

/// The type and id of `{"type": ..., "id": ...}`, `{"__entity": {...}}` or Cedar's string form
/// `User::"alice"`.
fn uid_parts(value: &Value) -> Option<(String, String)> {
    if let Some(text) = value.as_str() {
        let (ty, id) = text.rsplit_once("::")?;
        let id: String = serde_json::from_str(id).ok()?;
        return Some((ty.to_owned(), id));
    }
    let value = value.get("__entity").unwrap_or(value);
    let ty = value.get("type")?.as_str()?;
    let id = value.get("id")?.as_str()?;
    Some((ty.to_owned(), id.to_owned()))
}

/// An attribute or context value in authz's form.
fn value(value: &Value, place: &str) -> Result<Value, ImportError> {
    Ok(match value {
        Value::Array(elements) => Value::Array(
            elements
                .iter()
                .map(|element| self::value(element, place))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(object) => {
            if let Some(entity) = object.get("__entity") {
                let (ty, id) = uid_parts(entity).ok_or_else(|| ImportError::Json {
                    what: "the entities file",
                    message: format!("an `__entity` that is not an entity reference: {entity}"),
                })?;
                return Ok(serde_json::json!({"type": base_name(&ty), "id": id}));
            }
            if let Some(extension) = object.get("__extn") {
                return extension_value(extension, place);
            }
            let is_reference = object.len() == 2
                && object.get("type").is_some_and(Value::is_string)
                && object.get("id").is_some_and(Value::is_string);
            let mut out = Map::new();
            for (name, field) in object {
                let field = match (is_reference, name.as_str(), field.as_str()) {
                    (true, "type", Some(ty)) => Value::String(base_name(ty).to_owned()),
                    _ => self::value(field, place)?,
                };
                out.insert(name.clone(), field);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn extension_value(extension: &Value, place: &str) -> Result<Value, ImportError> {
    let function = extension
        .get("fn")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let arg = extension
        .get("arg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match function {
        "ip" | "ipaddr" | "duration" => Ok(Value::String(arg.to_owned())),
        "datetime" => Ok(Value::String(authz_runtime::json::cedar_datetime(arg))),
        other => Err(ImportError::Unsupported {
            place: place.to_owned(),
            construct: format!("a `{other}` value"),
            help:
                "authz has no decimal numbers: scale the values to a `Long` (cents, basis points)"
                    .to_owned(),
        }),
    }
}

/// A Cedar request (`principal`, `action`, `resource` as entity references in any of Cedar's
/// forms, `context` with `__entity` and `__extn` values) as an authz decision request.
pub fn translate_request(request: &Value) -> Result<Value, ImportError> {
    let reference = |key: &str| -> Result<Value, ImportError> {
        let value = request.get(key).ok_or_else(|| ImportError::Json {
            what: "the request",
            message: format!("no `{key}`"),
        })?;
        let (ty, id) = uid_parts(value).ok_or_else(|| ImportError::Json {
            what: "the request",
            message: format!("`{key}` is not an entity reference: {value}"),
        })?;
        Ok(serde_json::json!({"type": base_name(&ty), "id": id}))
    };
    let action = reference("action")?;
    let mut out = Map::new();
    out.insert("principal".to_owned(), reference("principal")?);
    out.insert(
        "action".to_owned(),
        action.get("id").cloned().unwrap_or(Value::Null),
    );
    out.insert("resource".to_owned(), reference("resource")?);
    if let Some(context) = request.get("context") {
        out.insert(
            "context".to_owned(),
            value(context, "the request's context")?,
        );
    }
    Ok(Value::Object(out))
}
