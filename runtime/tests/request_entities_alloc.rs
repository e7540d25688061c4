//! Request-scoped entities cost nothing to requests that bring none: such requests keep
//! `entities: None` and are decided without allocating, and so are requests whose entities
//! change the principal's or the resource's ancestors (those are computed when the request is
//! built).
//!
//! The allocation count uses a counting global allocator that counts only on the thread that
//! turned it on, so other tests running in parallel do not disturb it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use authz_runtime::decision::Decision;
use authz_runtime::eval::{decide, Scratch};
use authz_runtime::index::Bucket;
use authz_runtime::intern::Interner;
use authz_runtime::json::{load_entities, load_request};
use authz_runtime::program::{Effect, Expr, Policy, Program, ScopeTest, Var};
use authz_runtime::request::Request;
use authz_runtime::schema::{ActionDef, FieldDef, Layout, Schema, ValueType};
use authz_runtime::store::EntityStore;
use authz_runtime::value::{EntityUid, Value};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to the system allocator unchanged; counting has no effect on
// the memory handed out.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// How many allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|counting| counting.set(true));
    f();
    COUNTING.with(|counting| counting.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// `entity User in Group { level: Long }; entity Group; entity Doc;
/// action read: User -> Doc;` with
/// - `permit principal in Group("staff"), action: read, resource: *` (keyed by principal);
/// - `permit principal, action: read, resource: * when principal.level > 5` (unkeyed);
///
/// and a store with `Group("staff")`, `User("alice") in Group("staff")` and `Doc("d")`.
fn setup() -> (Program, EntityStore) {
    let mut schema = Schema::new();
    let mut interner = Interner::new();
    let empty = schema.add_layout(Layout::default());
    let group = schema.add_entity_type("Group", empty, vec![]);
    let level = schema.attr("level");
    let user_layout = schema.add_layout(Layout::new(vec![FieldDef {
        attr: level,
        ty: ValueType::Long,
        optional: false,
    }]));
    let user = schema.add_entity_type("User", user_layout, vec![group]);
    let doc = schema.add_entity_type("Doc", empty, vec![]);
    let read = EntityUid {
        ty: schema.action_type,
        id: interner.intern("read"),
    };
    schema.add_action(ActionDef {
        name: "read".to_owned(),
        uid: read,
        principals: vec![user],
        resources: vec![doc],
        context: empty,
    });
    let staff = EntityUid {
        ty: group,
        id: interner.intern("staff"),
    };
    let policy = |id: &str, principal: ScopeTest, condition: Option<Expr>| Policy {
        id: id.to_owned(),
        effect: Effect::Permit,
        actions: None,
        principal,
        resource: ScopeTest::Any,
        condition,
        reason: None,
        parts: Vec::new(),
    };
    let high_level = Expr::Cmp(
        authz_runtime::program::CmpOp::Gt,
        Box::new(Expr::Attr(Box::new(Expr::Var(Var::Principal)), level)),
        Box::new(Expr::Lit(Value::Long(5))),
    );
    let mut program = Program {
        interner,
        schema,
        policies: vec![
            policy("staff", ScopeTest::In(staff), None),
            policy("high-level", ScopeTest::Any, Some(high_level)),
        ],
        ..Program::default()
    };
    let mut bucket = Bucket::default();
    bucket.permits.by_principal.insert(staff, vec![0]);
    bucket.permits.unkeyed.push(1);
    program.index.bucket_list.push(bucket);
    program.index.buckets.insert((0, user, doc), 0);
    let store = load_entities(
        &program,
        r#"[{"type": "Group", "id": "staff"},
            {"type": "User", "id": "alice", "attrs": {"level": 1}, "parents": [{"type": "Group", "id": "staff"}]},
            {"type": "Doc", "id": "d"}]"#,
    )
    .unwrap();
    (program, store)
}

fn load(program: &Program, store: &EntityStore, principal: &str, entities: &str) -> Request {
    let json = format!(
        r#"{{"principal": {{"type": "User", "id": "{principal}"}}, "action": "read", "resource": {{"type": "Doc", "id": "d"}}{entities}}}"#
    );
    load_request(program, store, &json).unwrap()
}

/// Decides `request` many times after a warm-up; returns the policies that allowed it and the
/// allocations made after the warm-up.
fn decide_counting(program: &Program, store: &EntityStore, request: &Request) -> (Vec<u32>, usize) {
    let mut scratch = Scratch::new();
    let mut decision = Decision::default();
    decide(program, store, request, &mut scratch, &mut decision);
    let count = allocations(|| {
        for _ in 0..100 {
            decide(program, store, request, &mut scratch, &mut decision);
        }
    });
    (decision.determining.clone(), count)
}

#[test]
fn requests_without_entities_keep_none_and_allocate_nothing() {
    // The counter counts.
    assert!(allocations(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8)))) > 0);
    let (program, store) = setup();
    let request = load(&program, &store, "alice", "");
    assert!(request.entities.is_none());
    let (determining, count) = decide_counting(&program, &store, &request);
    assert_eq!(determining, [0]);
    assert_eq!(count, 0);
}

#[test]
fn requests_whose_entities_change_the_principal_allocate_nothing() {
    let (program, store) = setup();
    // A new user in the stored group, with a level of its own.
    let entities = r#", "entities": [{"type": "User", "id": "zed", "attrs": {"level": 9}, "parents": [{"type": "Group", "id": "staff"}]}]"#;
    let request = load(&program, &store, "zed", entities);
    assert!(request.entities.is_some());
    let (mut determining, count) = decide_counting(&program, &store, &request);
    determining.sort_unstable();
    assert_eq!(determining, [0, 1]);
    assert_eq!(count, 0);
    // The stored alice, taken out of the group by the request.
    let entities = r#", "entities": [{"type": "User", "id": "alice", "attrs": {"level": 1}}]"#;
    let request = load(&program, &store, "alice", entities);
    let (determining, count) = decide_counting(&program, &store, &request);
    assert!(determining.is_empty());
    assert_eq!(count, 0);
}
