//! The engine on the shared benchmark workload: it agrees with the generator's own reading of the
//! rules on every request, compiles 10,000 policies quickly, and decides without allocating.
//!
//! The allocation count uses a counting global allocator that counts only on the thread that
//! turned it on, so other tests running in parallel do not disturb it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::Command;

use authz_lang::SourceFile;
use authz_runtime::decision::Decision;
use authz_runtime::eval::{decide, Scratch};
use authz_runtime::program::Program;
use authz_runtime::request::Request;
use authz_runtime::store::EntityStore;

struct CountingAllocator;

thread_local! {
    // Whether this thread counts, and its count: per thread, so that tests running side by side
    // do not count each other's allocations.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    }
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method forwards to the system allocator unchanged; counting has no effect on
// the memory handed out.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

struct Loaded {
    program: Program,
    store: EntityStore,
    requests: Vec<Request>,
    expected: Vec<bool>,
}

fn load(policies: usize, requests: usize) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_gen-workload"))
        .args([
            "--policies",
            &policies.to_string(),
            "--requests",
            &requests.to_string(),
            "--out",
        ])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut sources = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "authz"))
    {
        sources.push(SourceFile::new(
            path.display().to_string(),
            std::fs::read_to_string(path).unwrap(),
        ));
    }
    let compiled = authz_compiler::compile_sources(&sources);
    let program = compiled.program.expect("the workload compiles");
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let store = authz_runtime::json::load_entities(&program, &read("entities.json")).unwrap();
    let requests_json: Vec<serde_json::Value> =
        serde_json::from_str(&read("requests.json")).unwrap();
    let requests = requests_json
        .iter()
        .map(|json| authz_runtime::json::load_request_value(&program, &store, json).unwrap())
        .collect();
    let expected_json: Vec<String> = serde_json::from_str(&read("expected.json")).unwrap();
    let expected = expected_json
        .iter()
        .map(|decision| decision == "allow")
        .collect();
    Loaded {
        program,
        store,
        requests,
        expected,
    }
}

#[test]
fn decisions_agree_with_the_generator_on_every_request() {
    for policies in [10, 1_000] {
        let loaded = load(policies, 5_000);
        let mut scratch = Scratch::new();
        let mut decision = Decision::default();
        let mut allowed = 0;
        for (index, (request, expected)) in loaded.requests.iter().zip(&loaded.expected).enumerate()
        {
            decide(
                &loaded.program,
                &loaded.store,
                request,
                &mut scratch,
                &mut decision,
            );
            assert_eq!(decision.allow, *expected, "N = {policies}, request {index}");
            assert!(
                decision.errors.is_empty(),
                "N = {policies}, request {index}: {:?}",
                decision.errors
            );
            allowed += usize::from(decision.allow);
        }
        // Both outcomes occur, so agreement means something.
        assert!(
            allowed > 500 && allowed < 4_500,
            "N = {policies}: {allowed} of 5000 allowed"
        );
    }
}

#[test]
fn deciding_allocates_nothing_once_requests_are_built() {
    let loaded = load(1_000, 5_000);
    let mut scratch = Scratch::new();
    let mut decision = Decision::default();
    // One round to grow the reusable buffers.
    for request in &loaded.requests {
        decide(
            &loaded.program,
            &loaded.store,
            request,
            &mut scratch,
            &mut decision,
        );
    }
    ALLOCATIONS.with(|count| count.set(0));
    COUNTING.with(|counting| counting.set(true));
    let mut allowed = 0usize;
    for request in &loaded.requests {
        decide(
            &loaded.program,
            &loaded.store,
            request,
            &mut scratch,
            &mut decision,
        );
        allowed += usize::from(decision.allow);
    }
    COUNTING.with(|counting| counting.set(false));
    assert!(allowed > 0);
    assert_eq!(
        allocations(),
        0,
        "allocations while deciding 5,000 requests"
    );
}

#[test]
fn the_counting_allocator_counts() {
    COUNTING.with(|counting| counting.set(true));
    let before = allocations();
    let boxed = std::hint::black_box(Box::new(42u64));
    let after = allocations();
    COUNTING.with(|counting| counting.set(false));
    drop(boxed);
    assert!(after > before);
}
