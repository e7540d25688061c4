//! Tests of request-scoped entities: the overlay's closure on its own, then requests with
//! entities loaded from JSON and decided against the docs example's store.

use std::borrow::Cow;

use miette::Diagnostic;

use super::{Overlay, OverlayEntity};
use crate::decision::Decision;
use crate::eval::{decide, Evaluator, Scratch};
use crate::explain::Namer;
use crate::index::{Bucket, PolicyIdx};
use crate::intern::Sym;
use crate::json::{fixture, load_entities, load_request, RequestError};
use crate::program::{Effect, Expr, Limit, Policy, Program, ScopeTest, Var};
use crate::request::Request;
use crate::store::EntityStore;
use crate::value::{EntityUid, TypeId, Value};

// ---- The closure ----

fn uid(n: u32) -> EntityUid {
    EntityUid {
        ty: TypeId(0),
        id: Sym(n),
    }
}

fn entity(n: u32, parents: &[u32]) -> OverlayEntity {
    OverlayEntity {
        uid: uid(n),
        attrs_start: 0,
        attrs_len: 0,
        parents: parents.iter().map(|p| uid(*p)).collect(),
    }
}

fn uids(ns: &[u32]) -> Vec<EntityUid> {
    ns.iter().map(|n| uid(*n)).collect()
}

/// 1 in 2 in 3 in 4; 5 in 6; 7 in 4.
fn store() -> EntityStore {
    let mut store = EntityStore::default();
    for (n, parents) in [
        (1, vec![2]),
        (2, vec![3]),
        (3, vec![4]),
        (4, vec![]),
        (5, vec![6]),
        (6, vec![]),
        (7, vec![4]),
    ] {
        store.insert(uid(n), 0, 0, uids(&parents)).unwrap();
    }
    store.finish();
    store
}

#[test]
fn unchanged_store_entities_borrow_the_stores_ancestors() {
    let store = store();
    let overlay = Overlay::new(&store, vec![entity(10, &[5])], &[]);
    assert!(matches!(overlay.ancestors(&store, uid(1)), Cow::Borrowed(a) if a == uids(&[2, 3, 4])));
    assert_eq!(overlay.ancestors(&store, uid(10)).as_ref(), uids(&[5, 6]));
    assert_eq!(overlay.ancestors(&store, uid(99)).as_ref(), &[]);
}

#[test]
fn a_replaced_ancestor_changes_its_descendants() {
    let store = store();
    // 2 now sits under 5 instead of 3.
    let overlay = Overlay::new(&store, vec![entity(2, &[5])], &[uid(1)]);
    assert_eq!(overlay.ancestors(&store, uid(1)).as_ref(), uids(&[2, 5, 6]));
    assert!(matches!(
        overlay.ancestors(&store, uid(1)),
        Cow::Borrowed(_)
    ));
    assert_eq!(overlay.ancestors(&store, uid(2)).as_ref(), uids(&[5, 6]));
    // 7 does not go through 2.
    assert_eq!(overlay.ancestors(&store, uid(7)).as_ref(), uids(&[4]));
    assert!(!overlay.is_ancestor(&store, uid(1), uid(3)));
    assert!(overlay.is_ancestor(&store, uid(1), uid(6)));
    // The store is unchanged.
    assert_eq!(store.ancestors(uid(1)), uids(&[2, 3, 4]));
}

#[test]
fn a_dangling_parent_given_by_the_request_extends_the_closure() {
    let mut store = EntityStore::default();
    store.insert(uid(1), 0, 0, uids(&[2])).unwrap();
    store.insert(uid(3), 0, 0, vec![]).unwrap();
    store.finish();
    let overlay = Overlay::new(&store, vec![entity(2, &[3])], &[]);
    assert_eq!(overlay.ancestors(&store, uid(1)).as_ref(), uids(&[2, 3]));
}

#[test]
fn cycles_through_the_request_are_tolerated() {
    let store = store();
    let overlay = Overlay::new(&store, vec![entity(4, &[1]), entity(8, &[8])], &[uid(3)]);
    assert_eq!(overlay.ancestors(&store, uid(3)).as_ref(), uids(&[1, 2, 4]));
    assert_eq!(overlay.ancestors(&store, uid(8)).as_ref(), &[]);
}

#[test]
fn the_last_of_duplicates_wins() {
    let store = store();
    let overlay = Overlay::new(&store, vec![entity(10, &[5]), entity(10, &[1])], &[]);
    assert_eq!(overlay.len(), 1);
    assert_eq!(
        overlay.ancestors(&store, uid(10)).as_ref(),
        uids(&[1, 2, 3, 4])
    );
}

// ---- Requests with entities ----

const DOCS_ENTITIES: &str = include_str!("../../../examples/docs/entities.json");

/// The loaders' test program, whose interner also holds `g` (so that `Group("g")` can key a
/// policy), with policies and an index built by hand:
/// - 0 `members-of-g`: permit `read` when `principal in Group("g")` (keyed by principal);
/// - 1 `budget-readers`: permit `read` when `principal in Group("acme-budget-readers")`
///   (keyed by principal);
///
/// and the docs example's store.
fn setup() -> (Program, EntityStore) {
    let mut program = fixture::program();
    let g = program.interner.intern("g");
    let budget = program.interner.intern("acme-budget-readers");
    let schema = &program.schema;
    let group = schema.type_id("Group").unwrap();
    let user = schema.type_id("User").unwrap();
    let document = schema.type_id("Document").unwrap();
    let read = schema
        .action_index(program.interner.get("read").unwrap())
        .unwrap();
    let permit = |id: &str, scope: EntityUid| Policy {
        id: id.to_owned(),
        effect: Effect::Permit,
        actions: None,
        principal: ScopeTest::In(scope),
        resource: ScopeTest::Any,
        condition: None,
        reason: None,
        parts: Vec::new(),
    };
    let g = EntityUid { ty: group, id: g };
    let budget = EntityUid {
        ty: group,
        id: budget,
    };
    program.policies = vec![permit("members-of-g", g), permit("budget-readers", budget)];
    let mut bucket = Bucket::default();
    bucket.permits.by_principal.insert(g, vec![0]);
    bucket.permits.by_principal.insert(budget, vec![1]);
    program.index.bucket_list.push(bucket);
    program
        .index
        .buckets
        .insert((u32::try_from(read).unwrap(), user, document), 0);
    let store = load_entities(&program, DOCS_ENTITIES).unwrap();
    (program, store)
}

/// A `read` request by `principal` (a user id) on `resource` (a document id), with `entities`
/// (the JSON array's text, or nothing).
fn read(principal: &str, resource: &str, entities: Option<&str>) -> String {
    let entities = entities.map_or(String::new(), |e| format!(r#", "entities": {e}"#));
    format!(
        r#"{{"principal": {{"type": "User", "id": "{principal}"}}, "action": "read", "resource": {{"type": "Document", "id": "{resource}"}}{entities}}}"#
    )
}

/// An entity reference as JSON.
fn json_ref(ty: &str, id: &str) -> String {
    format!(r#"{{"type": "{ty}", "id": "{id}"}}"#)
}

/// A group entity as JSON.
fn group(id: &str, parents: &[&str]) -> String {
    let parents: Vec<String> = parents.iter().map(|p| json_ref("Group", p)).collect();
    format!(
        r#"{{"type": "Group", "id": "{id}", "attrs": {{"tenant": {{"type": "Tenant", "id": "acme"}}, "name": "{id}"}}, "parents": [{}]}}"#,
        parents.join(", ")
    )
}

/// A user entity as JSON, with its clearance and its parents (groups).
fn user(id: &str, clearance: i64, groups: &[&str]) -> String {
    let parents: Vec<String> = groups.iter().map(|p| json_ref("Group", p)).collect();
    format!(
        r#"{{"type": "User", "id": "{id}", "attrs": {{"tenant": {{"type": "Tenant", "id": "acme"}}, "email": "{id}@request.example", "clearance": {clearance}, "trainings": ["{id}-training"], "suspended": true}}, "parents": [{}]}}"#,
        parents.join(", ")
    )
}

fn load(program: &Program, store: &EntityStore, json: &str) -> Request {
    match load_request(program, store, json) {
        Ok(request) => request,
        Err(errors) => panic!("{errors:?}"),
    }
}

/// An entity of the store by type and id.
fn stored(program: &Program, store: &EntityStore, ty: &str, id: &str) -> EntityUid {
    EntityUid {
        ty: program.schema.type_id(ty).unwrap(),
        id: store.interner.get(id).unwrap(),
    }
}

fn attr(program: &Program, base: Expr, name: &str) -> Expr {
    Expr::Attr(Box::new(base), program.schema.attr_id(name).unwrap())
}

fn has(program: &Program, base: Expr, name: &str) -> Expr {
    Expr::Has(Box::new(base), program.schema.attr_id(name).unwrap())
}

fn is_in(lhs: Expr, entity: EntityUid) -> Expr {
    Expr::InHierarchy(Box::new(lhs), Box::new(Expr::Lit(Value::Entity(entity))))
}

fn principal() -> Expr {
    Expr::Var(Var::Principal)
}

fn eval(program: &Program, store: &EntityStore, request: &Request, expr: &Expr) -> Value {
    let mut scratch = Scratch::new();
    let mut evaluator = Evaluator::new(program, store, request, &mut scratch);
    evaluator.eval(expr).unwrap()
}

/// The ids of the policies that allowed the request; empty for a denial.
fn allowed_by(program: &Program, store: &EntityStore, request: &Request) -> Vec<String> {
    let mut scratch = Scratch::new();
    let mut decision = Decision::default();
    decide(program, store, request, &mut scratch, &mut decision);
    assert!(decision.errors.is_empty(), "{:?}", decision.errors);
    let mut ids: Vec<String> = decision
        .determining
        .iter()
        .map(|&index: &PolicyIdx| program.policies[index as usize].id.clone())
        .collect();
    ids.sort();
    assert_eq!(decision.allow, !ids.is_empty());
    ids
}

#[test]
fn requests_without_entities_have_none() {
    let (program, store) = setup();
    let request = load(&program, &store, &read("alice", "roadmap", None));
    assert!(request.entities.is_none());
    let request = load(&program, &store, &read("alice", "roadmap", Some("[]")));
    assert!(request.entities.is_none());
    let request = load(
        &program,
        &store,
        &read("alice", "roadmap", Some(&format!("[{}]", group("g", &[])))),
    );
    assert_eq!(request.entities.as_ref().map(|e| e.len()), Some(1));
}

#[test]
fn attributes_given_only_in_the_request_are_used() {
    let (program, store) = setup();
    let entities = format!("[{}]", user("zed", 7, &[]));
    let request = load(&program, &store, &read("zed", "roadmap", Some(&entities)));
    let clearance = attr(&program, principal(), "clearance");
    assert_eq!(eval(&program, &store, &request, &clearance), Value::Long(7));
    let suspended = has(&program, principal(), "suspended");
    assert_eq!(
        eval(&program, &store, &request, &suspended),
        Value::Bool(true)
    );
    let note = has(&program, principal(), "suspensionNote");
    assert_eq!(eval(&program, &store, &request, &note), Value::Bool(false));
    // Strings and sets of request entities are the request's.
    let email = eval(
        &program,
        &store,
        &request,
        &attr(&program, principal(), "email"),
    );
    let mut scratch = Scratch::new();
    let evaluator = Evaluator::new(&program, &store, &request, &mut scratch);
    assert_eq!(evaluator.text(email), Ok("zed@request.example"));
    assert!(store.interner.get("zed@request.example").is_none());
    let trainings = eval(
        &program,
        &store,
        &request,
        &attr(&program, principal(), "trainings"),
    );
    let Value::Set(set) = trainings else {
        panic!("trainings is not a set: {trainings:?}");
    };
    assert_eq!(set.pool, Request::POOL);
    // Without the entity, `zed` does not exist.
    let request = load(&program, &store, &read("zed", "roadmap", None));
    let mut scratch = Scratch::new();
    let mut evaluator = Evaluator::new(&program, &store, &request, &mut scratch);
    assert!(matches!(
        evaluator.eval(&clearance),
        Err(crate::eval::EvalError::EntityNotFound(_))
    ));
    assert_eq!(evaluator.eval(&suspended), Ok(Value::Bool(false)));
}

#[test]
fn request_entities_override_the_store() {
    let (program, store) = setup();
    let alice = stored(&program, &store, "User", "alice");
    let admins = stored(&program, &store, "Role", "acme-admins");
    let before = store.ancestors(alice).to_vec();
    let clearance = attr(&program, principal(), "clearance");
    let in_admins = is_in(principal(), admins);
    // Alice given with clearance 9 and no parents.
    let entities = format!("[{}]", user("alice", 9, &[]));
    let with = load(&program, &store, &read("alice", "roadmap", Some(&entities)));
    assert_eq!(with.principal, alice);
    assert_eq!(eval(&program, &store, &with, &clearance), Value::Long(9));
    assert_eq!(
        eval(&program, &store, &with, &in_admins),
        Value::Bool(false)
    );
    // Attributes are replaced whole: `suspended`, absent in the store, is given.
    let suspended = has(&program, principal(), "suspended");
    assert_eq!(eval(&program, &store, &with, &suspended), Value::Bool(true));
    // Another request, and the store, still see the stored alice.
    let without = load(&program, &store, &read("alice", "roadmap", None));
    assert_eq!(eval(&program, &store, &without, &clearance), Value::Long(3));
    assert_eq!(
        eval(&program, &store, &without, &in_admins),
        Value::Bool(true)
    );
    assert_eq!(
        eval(&program, &store, &without, &suspended),
        Value::Bool(false)
    );
    assert_eq!(store.ancestors(alice), before);
    assert_eq!(store.len(), 32);
}

#[test]
fn membership_given_only_by_the_request_reaches_the_index() {
    let (program, store) = setup();
    let g = stored(&program, &store, "Group", "g");
    let engineering = stored(&program, &store, "Group", "acme-engineering");
    let roadmap_readers = stored(&program, &store, "Group", "acme-roadmap-readers");
    let acme = stored(&program, &store, "Tenant", "acme");
    // A new user in a new group `g`, itself in the stored `acme-engineering`.
    let entities = format!(
        "[{}, {}]",
        user("zed", 1, &["g"]),
        group("g", &["acme-engineering"])
    );
    let request = load(&program, &store, &read("zed", "roadmap", Some(&entities)));
    for (target, expected) in [
        (g, true),
        (engineering, true),
        (roadmap_readers, true),
        (acme, true),
    ] {
        assert_eq!(
            eval(&program, &store, &request, &is_in(principal(), target)),
            Value::Bool(expected)
        );
    }
    assert_eq!(allowed_by(&program, &store, &request), ["members-of-g"]);
    // A stored user given membership of `g` by the request alone.
    let entities = format!("[{}]", user("frank", 3, &["g"]));
    let request = load(&program, &store, &read("frank", "roadmap", Some(&entities)));
    assert_eq!(allowed_by(&program, &store, &request), ["members-of-g"]);
    // Without the request's entities, no policy applies.
    let request = load(&program, &store, &read("frank", "roadmap", None));
    assert!(allowed_by(&program, &store, &request).is_empty());
}

#[test]
fn mixed_chains_go_through_store_and_request_entities() {
    let (program, store) = setup();
    let budget_readers = stored(&program, &store, "Group", "acme-budget-readers");
    let engineering = stored(&program, &store, "Group", "acme-engineering");
    let viewers = stored(&program, &store, "Role", "acme-viewers");
    let bob = stored(&program, &store, "User", "bob");
    // Bob (stored) is in `acme-frontend`, which the request moves from `acme-engineering` to
    // the new `g`, which is in the stored `acme-finance-team`, in `acme-budget-readers`:
    // store, request, request, store, store.
    let entities = format!(
        "[{}, {}]",
        group("acme-frontend", &["g"]),
        group("g", &["acme-finance-team"])
    );
    let request = load(&program, &store, &read("bob", "roadmap", Some(&entities)));
    let cases = [
        (budget_readers, true),
        (engineering, false),
        (viewers, true),
    ];
    for (target, expected) in cases {
        assert_eq!(
            eval(&program, &store, &request, &is_in(principal(), target)),
            Value::Bool(expected),
            "{target:?}"
        );
    }
    assert_eq!(
        allowed_by(&program, &store, &request),
        ["budget-readers", "members-of-g"]
    );
    // The same holds for an entity reached through an attribute, whose ancestors are computed
    // when asked: the owner of `design-doc` is bob.
    let request = load(
        &program,
        &store,
        &read("alice", "design-doc", Some(&entities)),
    );
    let owner = attr(&program, Expr::Var(Var::Resource), "owner");
    assert_eq!(eval(&program, &store, &request, &owner), Value::Entity(bob));
    for (target, expected) in cases {
        assert_eq!(
            eval(&program, &store, &request, &is_in(owner.clone(), target)),
            Value::Bool(expected),
            "{target:?}"
        );
    }
    let set = Expr::SetLit(
        vec![
            Expr::Lit(Value::Entity(engineering)),
            Expr::Lit(Value::Entity(budget_readers)),
        ]
        .into_boxed_slice(),
    );
    let in_set = Expr::InHierarchy(Box::new(owner.clone()), Box::new(set));
    assert_eq!(eval(&program, &store, &request, &in_set), Value::Bool(true));
    // The store still has bob under engineering.
    assert!(store.is_ancestor(bob, engineering));
    assert!(!store.is_ancestor(bob, budget_readers));
    let request = load(&program, &store, &read("alice", "design-doc", None));
    assert_eq!(
        eval(&program, &store, &request, &is_in(owner, budget_readers)),
        Value::Bool(false)
    );
}

#[test]
fn other_requests_are_unaffected() {
    let (program, store) = setup();
    let entities = format!("[{}]", user("frank", 3, &["acme-budget-readers"]));
    let with = load(&program, &store, &read("frank", "roadmap", Some(&entities)));
    let without = load(&program, &store, &read("frank", "roadmap", None));
    let clearance = attr(&program, principal(), "clearance");
    // One scratch for all decisions, as a server thread has.
    let mut scratch = Scratch::new();
    let mut decision = Decision::default();
    for _ in 0..3 {
        decide(&program, &store, &with, &mut scratch, &mut decision);
        assert!(decision.allow);
        decide(&program, &store, &without, &mut scratch, &mut decision);
        assert!(!decision.allow);
        let mut evaluator = Evaluator::new(&program, &store, &without, &mut scratch);
        let suspended = has(&program, principal(), "suspended");
        assert_eq!(evaluator.eval(&suspended), Ok(Value::Bool(false)));
        assert_eq!(evaluator.eval(&clearance), Ok(Value::Long(3)));
    }
}

#[test]
fn explanations_name_request_entities_and_their_values() {
    let (mut program, store) = setup();
    let email = attr(&program, principal(), "email");
    let trainings = attr(&program, principal(), "trainings");
    program.limits.push(Limit {
        name: "per-user".to_owned(),
        count: 10,
        period_seconds: 60,
        burst: 10,
        on_attempts: false,
        keys: vec![principal(), email, trainings],
        condition: None,
    });
    let entities = format!(
        "[{}, {}]",
        user("zed", 1, &["g"]),
        group("g", &["acme-engineering"])
    );
    let request = load(&program, &store, &read("zed", "roadmap", Some(&entities)));
    let mut scratch = Scratch::new();
    let mut decision = Decision::default();
    decide(&program, &store, &request, &mut scratch, &mut decision);
    let namer = Namer {
        program: &program,
        store: &store,
        request: &request,
    };
    let json = namer.decision_json(&decision);
    assert_eq!(json["decision"], "allow");
    assert_eq!(json["policies"], serde_json::json!(["members-of-g"]));
    assert_eq!(
        json["obligations"][0]["key"],
        r#"User("zed"),"zed@request.example",["zed-training"]"#
    );
    let missing = EntityUid {
        ty: program.schema.type_id("Group").unwrap(),
        id: request.principal.id,
    };
    assert_eq!(
        namer.error(&crate::eval::EvalError::EntityNotFound(missing)),
        r#"entity `Group("zed")` does not exist"#
    );
}

/// Loads `json` and returns the errors as `field: message [code] (help)`.
fn errors(json: &str) -> Vec<String> {
    let (program, store) = setup();
    match load_request(&program, &store, json) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(render).collect(),
    }
}

fn render(error: &RequestError) -> String {
    let code = Diagnostic::code(error)
        .map(|code| code.to_string())
        .unwrap_or_default();
    let mut text = format!("{}: {} [{code}]", error.field, error.message);
    if let Some(help) = &error.help {
        text.push_str(&format!(" ({help})"));
    }
    text
}

#[test]
fn invalid_request_entities_name_the_field() {
    let check = |entities: &str, expected: &[&str]| {
        assert_eq!(errors(&read("alice", "roadmap", Some(entities))), expected);
    };
    check(
        r#"{"type": "User"}"#,
        &[
            r#"entities: expected an array of entities, found an object [authz::request::type_mismatch] (an entity is written `{"type": "User", "id": "alice", "attrs": {...}, "parents": [...]}`)"#,
        ],
    );
    let zed = user("zed", 1, &[]);
    check(
        &format!(
            "[{}, {}, 5, {}]",
            zed,
            zed.replace(r#""clearance": 1"#, r#""clearance": "high", "clearence": 2"#)
                .replace(r#""id": "zed""#, r#""id": "yan""#),
            zed.replace(r#""type": "User""#, r#""type": "Usr""#)
        ),
        &[
            r#"entities[1].attrs.clearance: expected `Long`, found the string `"high"` [authz::request::type_mismatch]"#,
            "entities[1].attrs.clearence: unknown field [authz::request::unknown_field] (did you mean `clearance`?)",
            r#"entities[2]: expected an entity object, found the integer `5` [authz::request::type_mismatch] (an entity is written `{"type": "User", "id": "alice", "attrs": {...}, "parents": [...]}`)"#,
            "entities[3].type: unknown entity type `Usr` [authz::request::unknown_type] (did you mean `User`?)",
        ],
    );
    check(
        &format!(
            "[{}, {}]",
            zed,
            zed.replace(r#", "trainings": ["zed-training"]"#, "")
        ),
        &[
            r#"entities[1]: `User("zed")` is given more than once [authz::request::duplicate_entity] (it is first given at `entities[0]`)"#,
        ],
    );
    check(
        &format!(
            "[{}]",
            zed.replace(r#", "trainings": ["zed-training"]"#, "")
                .replace(r#"[{"type": "Tenant", "id": "acme"}]"#, "")
        ),
        &["entities[0].attrs.trainings: missing; expected `Set<String>` [authz::request::missing_field]"],
    );
    check(
        r#"[{"type": "User", "id": "zed", "attrs": {}, "parents": [{"type": "Folder", "id": "f"}, {"type": "Grup", "id": "g"}, {"type": "Group"}], "atrs": 1},
            {"id": 7}, {"type": "Action", "id": "read"}, {"type": "Group", "id": "g", "attrs": [], "parents": {}}]"#,
        &[
            "entities[0].atrs: unknown member; an entity has `type`, `id`, `attrs` and `parents` [authz::request::unknown_field] (did you mean `attrs`?)",
            "entities[0].attrs.tenant: missing; expected `Tenant` [authz::request::missing_field]",
            "entities[0].attrs.email: missing; expected `String` [authz::request::missing_field]",
            "entities[0].attrs.clearance: missing; expected `Long` [authz::request::missing_field]",
            "entities[0].attrs.trainings: missing; expected `Set<String>` [authz::request::missing_field]",
            r#"entities[0].parents[0]: `User("zed")` cannot be in `Folder("f")`: a `User` may only be in `Role`, `Group` or `Tenant` [authz::request::parent_type]"#,
            "entities[0].parents[1].type: unknown entity type `Grup` [authz::request::unknown_type] (did you mean `Group`?)",
            "entities[0].parents[2].id: missing; expected `String` [authz::request::missing_field]",
            "entities[1].type: missing; expected `String` [authz::request::missing_field]",
            "entities[1].id: expected `String`, found the integer `7` [authz::request::type_mismatch]",
            "entities[2].type: `Action` is the type of actions; actions are declared in the schema, not given as entities [authz::request::type_mismatch]",
            "entities[3].attrs: expected an object, found an array [authz::request::type_mismatch]",
            "entities[3].parents: expected an array, found an object [authz::request::type_mismatch]",
        ],
    );
}

#[test]
fn request_entities_share_the_requests_bounds() {
    // Errors are bounded with the rest of the request's.
    let many: Vec<String> = (0..50).map(|_| "5".to_owned()).collect();
    let found = errors(&read(
        "alice",
        "roadmap",
        Some(&format!("[{}]", many.join(","))),
    ));
    assert_eq!(found.len(), crate::json::request::MAX_REQUEST_ERRORS);
    // Values count with the rest of the request's.
    let groups: Vec<String> = (0..2_000).map(|n| group(&format!("g{n}"), &[])).collect();
    let found = errors(&read(
        "alice",
        "roadmap",
        Some(&format!("[{}]", groups.join(","))),
    ));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].ends_with("[authz::request::too_large]"),
        "{found:?}"
    );
}

#[test]
fn mutated_requests_with_entities_never_panic() {
    let (program, store) = setup();
    let json = read(
        "zed",
        "design-doc",
        Some(&format!(
            "[{}, {}, {}]",
            user("zed", 1, &["g"]),
            group("g", &["acme-engineering"]),
            group("acme-frontend", &["g"])
        )),
    );
    let owner = attr(&program, Expr::Var(Var::Resource), "owner");
    let bob_in_g = is_in(owner, stored(&program, &store, "Group", "g"));
    let mut rng = fixture::Rng(0x1234_5678_9abc_def1);
    let mut scratch = Scratch::new();
    let mut decision = Decision::default();
    let mut decided = 0;
    for _ in 0..2_000 {
        let mutant = fixture::mutate(&mut rng, &json);
        match load_request(&program, &store, &mutant) {
            Ok(request) => {
                decided += 1;
                decide(&program, &store, &request, &mut scratch, &mut decision);
                let mut evaluator = Evaluator::new(&program, &store, &request, &mut scratch);
                let _ = evaluator.eval(&bob_in_g);
            }
            Err(errors) => assert!(!errors.is_empty()),
        }
    }
    // Some mutants are still valid requests, and were decided.
    assert!(decided > 0, "{decided}");
}
