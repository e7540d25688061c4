//! The route table the compiler builds: the shop example's routes send requests to the expected
//! action and resource, and the table's order agrees with the checker's `is_subset` (a more
//! specific route always comes first, so the first match is the most specific one).

// Test helpers may panic: a panic is a test failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use authz_compiler::compile_sources;
use authz_compiler::lower::route_segment;
use authz_compiler::routes::{are_ambiguous, is_subset, Segment};
use authz_lang::SourceFile;
use authz_runtime::intern::Sym;
use authz_runtime::program::Program;
use authz_runtime::route::Method;
use authz_runtime::route::{ResourceId, Route, RouteTable};
use authz_runtime::value::{EntityUid, TypeId};
use proptest::prelude::*;

fn shop_program() -> Program {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "authz"))
        .collect();
    paths.sort();
    let sources: Vec<SourceFile> = paths
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            SourceFile::new(name, std::fs::read_to_string(path).unwrap())
        })
        .collect();
    let compiled = compile_sources(&sources);
    compiled.program.expect("the shop example compiles")
}

/// The action, resource type and resource id a request is routed to.
fn route_of(program: &Program, method: &str, path: &str) -> Option<(String, String, String)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let found = program.routes.find(method, &segments);
    assert_eq!(found, program.routes.find_by_scan(method, &segments));
    let found = found?;
    let action = program.interner.resolve(found.route.action.id).unwrap();
    assert_eq!(found.route.action.ty, program.schema.action_type);
    let resource_type = program.schema.type_name(found.route.resource_type);
    Some((
        action.to_owned(),
        resource_type.to_owned(),
        found.resource_id.to_owned(),
    ))
}

/// A request and the action, resource type and id it routes to.
type Case = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str, &'static str)>,
);

#[test]
fn shop_routes_requests_to_actions_and_resources() {
    let program = shop_program();
    assert_eq!(program.routes.len(), 13);
    let cases: &[Case] = &[
        (
            "GET",
            "/orders/o-100",
            Some(("readOrder", "Order", "o-100")),
        ),
        (
            "GET",
            "/orders/o-100/invoice",
            Some(("readOrder", "Order", "o-100")),
        ),
        (
            "GET",
            "/orders/o-100/a/b/c",
            Some(("readOrder", "Order", "o-100")),
        ),
        (
            "POST",
            "/orders/o-100/cancel",
            Some(("cancelOrder", "Order", "o-100")),
        ),
        (
            "POST",
            "/orders/o-100/refunds",
            Some(("refundOrder", "Order", "o-100")),
        ),
        (
            "POST",
            "/orders/o-100/shipments",
            Some(("shipOrder", "Order", "o-100")),
        ),
        (
            "GET",
            "/orders/o-100/cancel",
            Some(("readOrder", "Order", "o-100")),
        ),
        ("GET", "/catalog", Some(("browse", "Shop", "main"))),
        (
            "GET",
            "/catalog/shoes/red",
            Some(("browse", "Shop", "main")),
        ),
        (
            "GET",
            "/products/p-1",
            Some(("viewProduct", "Product", "p-1")),
        ),
        (
            "GET",
            "/products/p-1/images/front",
            Some(("viewProduct", "Product", "p-1")),
        ),
        (
            "PUT",
            "/products/p-1",
            Some(("editProduct", "Product", "p-1")),
        ),
        (
            "PATCH",
            "/products/p-1",
            Some(("editProduct", "Product", "p-1")),
        ),
        (
            "POST",
            "/carts/c-1/checkout",
            Some(("checkout", "Cart", "c-1")),
        ),
        (
            "POST",
            "/payments/pay-1/capture",
            Some(("capture", "Payment", "pay-1")),
        ),
        ("GET", "/admin", Some(("administer", "Shop", "main"))),
        (
            "DELETE",
            "/admin/users/u-1",
            Some(("administer", "Shop", "main")),
        ),
        ("PROPFIND", "/admin/x", Some(("administer", "Shop", "main"))),
        ("GET", "/", None),
        ("GET", "/orders", None),
        ("DELETE", "/orders/o-100", None),
        ("POST", "/orders/o-100", None),
        ("GET", "/carts/c-1/checkout", None),
        ("GET", "/products/p-1/images", None),
        ("GET", "/products/p-1/images/a/b", None),
        ("POST", "/catalog", None),
        ("get", "/orders/o-100", None),
    ];
    for (method, path, expected) in cases {
        let expected = expected.map(|(a, t, id)| (a.to_owned(), t.to_owned(), id.to_owned()));
        assert_eq!(
            route_of(&program, method, path),
            expected,
            "{method} {path}"
        );
    }
    // The literal id is interned, so the resource is named without a lookup.
    let segments = ["catalog"];
    let found = program.routes.find("GET", &segments).unwrap();
    let ResourceId::Literal { sym, .. } = &found.route.resource_id else {
        panic!("a literal id");
    };
    assert_eq!(program.interner.resolve(*sym), Some("main"));
    assert_eq!(
        found.resource(&program.interner).map(|uid| uid.id),
        Some(*sym)
    );
}

/// A generated route: method and template, with parameters named by position.
#[derive(Clone, Debug)]
struct Spec {
    method: Method,
    segments: Vec<Segment>,
}

fn segment() -> impl Strategy<Value = u8> {
    0u8..4
}

fn spec() -> impl Strategy<Value = Spec> {
    let method = prop_oneof![Just(Method::Get), Just(Method::Post), Just(Method::Any)];
    (
        method,
        prop::collection::vec(segment(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(method, kinds, rest)| {
            let mut segments: Vec<Segment> = kinds
                .iter()
                .enumerate()
                .map(|(position, kind)| match kind {
                    0 => Segment::Literal("a".into()),
                    1 => Segment::Literal("b".into()),
                    2 => Segment::Param(format!("p{position}")),
                    _ => Segment::Star,
                })
                .collect();
            if rest {
                segments.push(Segment::Rest);
            }
            Spec { method, segments }
        })
}

/// The runtime route of a spec; its action id is its number, to recognize it.
fn lower(number: usize, spec: &Spec) -> Route {
    Route {
        method: spec.method,
        path: format!("{spec:?}").into(),
        segments: spec.segments.iter().map(route_segment).collect(),
        action: EntityUid {
            ty: TypeId(0),
            id: Sym(u32::try_from(number).unwrap()),
        },
        resource_type: TypeId(1),
        resource_id: ResourceId::Literal {
            sym: Sym(0),
            text: "main".into(),
        },
    }
}

/// Whether every request `a` matches also matches `b`.
fn request_subset(a: &Spec, b: &Spec) -> bool {
    a.method.is_subset(b.method) && is_subset(&a.segments, &b.segments)
}

fn ambiguous(a: &Spec, b: &Spec) -> bool {
    are_ambiguous((a.method, &a.segments), (b.method, &b.segments))
}

/// The numbers of the routes in table order.
fn order(table: &RouteTable) -> Vec<u32> {
    table
        .routes()
        .iter()
        .map(|route| route.action.id.0)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Of two routes the checker accepts together, the one whose request set is strictly inside
    /// the other's comes first, whatever the input order.
    #[test]
    fn strict_subset_comes_first(a in spec(), b in spec()) {
        prop_assume!(!ambiguous(&a, &b));
        let a_in_b = request_subset(&a, &b);
        let b_in_a = request_subset(&b, &a);
        for table in [
            RouteTable::new(vec![lower(0, &a), lower(1, &b)]),
            RouteTable::new(vec![lower(1, &b), lower(0, &a)]),
        ] {
            if a_in_b && !b_in_a {
                prop_assert_eq!(order(&table), vec![0, 1]);
            }
            if b_in_a && !a_in_b {
                prop_assert_eq!(order(&table), vec![1, 0]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// On a set of routes without ambiguity, `find` returns the matching route whose request set
    /// is inside every other matching route's, and nothing when no route matches.
    #[test]
    fn find_returns_the_most_specific_match(
        specs in prop::collection::vec(spec(), 0..12),
        requests in prop::collection::vec(
            (prop_oneof![Just("GET"), Just("POST"), Just("DELETE")],
             prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 0..5)),
            1..20,
        ),
    ) {
        let mut kept: Vec<Spec> = Vec::new();
        for spec in specs {
            if kept.iter().all(|other| !ambiguous(&spec, other)) {
                kept.push(spec);
            }
        }
        let table = RouteTable::new(kept.iter().enumerate().map(|(n, s)| lower(n, s)).collect());
        for (method, path) in requests {
            let request = Spec {
                method: Method::from_name(method).unwrap(),
                segments: path.iter().map(|s| Segment::Literal((*s).to_owned())).collect(),
            };
            let matching: Vec<usize> = (0..kept.len())
                .filter(|&n| request_subset(&request, &kept[n]))
                .collect();
            let most_specific: Vec<usize> = matching
                .iter()
                .copied()
                .filter(|&n| matching.iter().all(|&m| request_subset(&kept[n], &kept[m])))
                .collect();
            prop_assert!(most_specific.len() <= 1);
            prop_assert_eq!(matching.is_empty(), most_specific.is_empty());
            let found = table.find(method, &path);
            prop_assert_eq!(found, table.find_by_scan(method, &path));
            let found = found.map(|found| found.route.action.id.0 as usize);
            prop_assert_eq!(found, most_specific.first().copied(), "{} {:?}", method, path);
        }
    }
}
