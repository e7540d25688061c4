//! The route table of a decision program: how an HTTP request (method and normalized path
//! segments) becomes an action on a resource.
//!
//! A [`Route`] is a method, a path template of [`RouteSegment`]s, the action, the resource's
//! entity type and where the resource id comes from. The compiler guarantees that two routes that
//! can match the same request have nested request sets, one strictly inside the other; the route
//! with the smaller set is the more specific and wins. [`RouteTable::new`] orders the routes so
//! that a more specific route always comes before a less specific one that overlaps it, which
//! makes "most specific wins" the same as "first match wins":
//!
//! - path templates compare segment by segment: a literal comes before `{param}` and `*`, which
//!   come before `**`; a template that ends comes before one that continues with `**`;
//! - with the same path, a route with an exact method comes before `ANY`.
//!
//! Matching walks a trie of the templates in that same order (literal child, then the wildcard
//! child, then `**` routes), so the first route it finds is the first matching route of the
//! ordered list, without scanning the routes that cannot match. [`RouteTable::find`] allocates
//! nothing: the [`RouteMatch`] borrows the route and the request's segments.
//!
//! Paths are matched segment by segment against the decoded segments of one normalization (the
//! proxy's `normalize`): a literal equals one segment's text, `{param}` and `*` match any one
//! segment, `**` matches the rest of the path, zero or more segments. `HEAD` matches only `HEAD`
//! and `ANY` routes; methods outside the route language match only `ANY` routes.

use std::cmp::Ordering;
use std::fmt;

use crate::intern::{FxHashMap, Sym};
use crate::value::{EntityUid, TypeId};

/// The HTTP method of a route; `ANY` matches every method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `HEAD`
    Head,
    /// `OPTIONS`
    Options,
    /// `ANY`: every method.
    Any,
}

impl Method {
    /// Every method, `ANY` last.
    pub const ALL: [Method; 8] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Head,
        Method::Options,
        Method::Any,
    ];

    /// The method spelled this way. HTTP methods are case-sensitive, so `get` is not `GET`.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|method| method.name() == name)
    }

    /// The method as written.
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Any => "ANY",
        }
    }

    /// Whether every request with method `self` also has method `other`.
    pub fn is_subset(self, other: Method) -> bool {
        self == other || other == Method::Any
    }

    /// Whether some request has both methods.
    pub fn overlaps(self, other: Method) -> bool {
        self == other || self == Method::Any || other == Method::Any
    }

    /// Whether a route with this method matches a request whose method is `request` (`None` for
    /// a method the route language cannot name, which only `ANY` matches).
    fn accepts(self, request: Option<Method>) -> bool {
        self == Method::Any || Some(self) == request
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One segment of a lowered path template.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteSegment {
    /// Exactly this (decoded) text.
    Literal(Box<str>),
    /// `{name}`: any one segment, bound to the parameter `name`.
    Param(Box<str>),
    /// `*`: any one segment.
    Star,
    /// `**`: the rest of the path, zero or more segments; only last.
    Rest,
}

impl RouteSegment {
    /// The segment's rank in the specificity order: literal, then one-segment wildcards, then
    /// `**`.
    fn rank(&self) -> u8 {
        match self {
            RouteSegment::Literal(_) => 0,
            RouteSegment::Param(_) | RouteSegment::Star => 1,
            RouteSegment::Rest => 2,
        }
    }

    /// The literal text, or the empty string for wildcards.
    fn text(&self) -> &str {
        match self {
            RouteSegment::Literal(text) => text,
            _ => "",
        }
    }
}

/// Where a route's resource id comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResourceId {
    /// The value of the template's parameter with this index (counting `{param}` segments from
    /// the left, from 0).
    Param(usize),
    /// Always this id: its symbol in the program's interner, and its text.
    Literal {
        /// The interned id.
        sym: Sym,
        /// The id's text.
        text: Box<str>,
    },
}

/// A lowered route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path template as written, for logs and explanations.
    pub path: Box<str>,
    /// The template's segments.
    pub segments: Vec<RouteSegment>,
    /// The action the request performs (an entity of the action type).
    pub action: EntityUid,
    /// The resource's entity type.
    pub resource_type: TypeId,
    /// Where the resource id comes from.
    pub resource_id: ResourceId,
}

impl Route {
    /// The parameter names in order, each with the index of its segment in the template.
    pub fn params(&self) -> impl Iterator<Item = (usize, &str)> {
        self.segments
            .iter()
            .enumerate()
            .filter_map(|(position, segment)| match segment {
                RouteSegment::Param(name) => Some((position, &**name)),
                _ => None,
            })
    }

    /// Whether the route matches a request with this method and these path segments.
    pub fn matches(&self, method: &str, path: &[&str]) -> bool {
        self.method.accepts(Method::from_name(method)) && self.matches_path(path)
    }

    fn matches_path(&self, path: &[&str]) -> bool {
        let mut path = path.iter();
        for segment in &self.segments {
            match segment {
                RouteSegment::Rest => return true,
                RouteSegment::Literal(text) => {
                    if path.next().is_none_or(|actual| *actual != &**text) {
                        return false;
                    }
                }
                RouteSegment::Param(_) | RouteSegment::Star => {
                    if path.next().is_none() {
                        return false;
                    }
                }
            }
        }
        path.next().is_none()
    }

    fn matches_path_ignoring_case(&self, path: &[&str]) -> bool {
        let mut path = path.iter();
        for segment in &self.segments {
            match segment {
                RouteSegment::Rest => return true,
                RouteSegment::Literal(text) => {
                    let same = path.next().is_some_and(|actual| {
                        actual.len() == text.len() && actual.eq_ignore_ascii_case(text)
                            || actual.to_lowercase() == text.to_lowercase()
                    });
                    if !same {
                        return false;
                    }
                }
                RouteSegment::Param(_) | RouteSegment::Star => {
                    if path.next().is_none() {
                        return false;
                    }
                }
            }
        }
        path.next().is_none()
    }

    /// The specificity order of [`RouteTable`]: the more specific of two overlapping routes
    /// comes first.
    fn specificity(&self, other: &Route) -> Ordering {
        let ours = self.segments.iter().map(|s| (s.rank(), s.text()));
        let theirs = other.segments.iter().map(|s| (s.rank(), s.text()));
        // A template that ends sorts before one that goes on, which puts `/a` before `/a/**`.
        ours.cmp(theirs)
            .then_with(|| (self.method == Method::Any).cmp(&(other.method == Method::Any)))
            .then_with(|| self.method.cmp(&other.method))
    }
}

/// A route that matched a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    /// The route.
    pub route: &'a Route,
    /// The resource id: the value of the route's id parameter, or its literal id.
    pub resource_id: &'a str,
    /// The request's path segments.
    segments: &'a [&'a str],
}

impl<'a> RouteMatch<'a> {
    /// The parameters by name, in template order.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let segments = self.segments;
        self.route
            .params()
            .filter_map(move |(position, name)| segments.get(position).map(|value| (name, *value)))
    }

    /// The value of the parameter with this name.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params()
            .find(|(param, _)| *param == name)
            .map(|(_, value)| value)
    }

    /// The path segments that `**` matched; empty when the route has no `**`.
    pub fn rest(&self) -> &'a [&'a str] {
        match self.route.segments.last() {
            Some(RouteSegment::Rest) => {
                let start = self.route.segments.len() - 1;
                self.segments.get(start..).unwrap_or_default()
            }
            _ => &[],
        }
    }

    /// The resource as an entity; `None` when the id is a parameter whose text the interner
    /// does not know (then no entity or policy can name it either).
    pub fn resource(&self, interner: &crate::intern::Interner) -> Option<EntityUid> {
        let id = match &self.route.resource_id {
            ResourceId::Literal { sym, .. } => *sym,
            ResourceId::Param(_) => interner.get(self.resource_id)?,
        };
        Some(EntityUid {
            ty: self.route.resource_type,
            id,
        })
    }
}

/// A node of the matching trie.
#[derive(Clone, Debug, Default)]
struct Node {
    /// Children by the literal text of the next segment.
    literals: FxHashMap<Box<str>, u32>,
    /// The child for `{param}` and `*` as the next segment.
    wildcard: Option<u32>,
    /// Routes whose template ends here, in table order.
    ends: Vec<u32>,
    /// Routes whose `**` starts here, in table order.
    rests: Vec<u32>,
}

/// The routes of a program, most specific first, with a trie to match them.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    nodes: Vec<Node>,
}

impl Default for RouteTable {
    fn default() -> RouteTable {
        RouteTable::new(Vec::new())
    }
}

impl RouteTable {
    /// Orders the routes by specificity (the input order breaks ties) and indexes them.
    pub fn new(mut routes: Vec<Route>) -> RouteTable {
        routes.sort_by(Route::specificity);
        let mut nodes = vec![Node::default()];
        for (index, route) in routes.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let mut node = 0usize;
            let mut rest = false;
            for segment in &route.segments {
                let next_id = u32::try_from(nodes.len()).unwrap_or(u32::MAX);
                let Some(current) = nodes.get_mut(node) else {
                    break;
                };
                let child = match segment {
                    RouteSegment::Rest => {
                        rest = true;
                        break;
                    }
                    RouteSegment::Literal(text) => {
                        *current.literals.entry(text.clone()).or_insert(next_id)
                    }
                    RouteSegment::Param(_) | RouteSegment::Star => {
                        *current.wildcard.get_or_insert(next_id)
                    }
                };
                if child == next_id {
                    nodes.push(Node::default());
                }
                node = child as usize;
            }
            if let Some(current) = nodes.get_mut(node) {
                if rest {
                    current.rests.push(index);
                } else {
                    current.ends.push(index);
                }
            }
        }
        RouteTable { routes, nodes }
    }

    /// The routes, most specific first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The most specific route that matches a request with this method and these decoded path
    /// segments (no empty segments; `/` is no segment at all). `None` when no route matches.
    pub fn find<'a>(
        &'a self,
        method: &str,
        path_segments: &'a [&'a str],
    ) -> Option<RouteMatch<'a>> {
        let method = Method::from_name(method);
        let index = self.search(0, method, path_segments)?;
        self.route_match(index, path_segments)
    }

    /// The most specific route that matches when literal segments are compared without regard
    /// to case (as a case-insensitive server routes), found by trying every route in order.
    pub fn find_ignoring_case<'a>(
        &'a self,
        method: &str,
        path_segments: &'a [&'a str],
    ) -> Option<RouteMatch<'a>> {
        let request = Method::from_name(method);
        let index = self.routes.iter().position(|route| {
            route.method.accepts(request) && route.matches_path_ignoring_case(path_segments)
        })?;
        self.route_match(u32::try_from(index).ok()?, path_segments)
    }

    /// The same answer as [`RouteTable::find`], found by trying every route in order: the
    /// reference the trie is tested against.
    pub fn find_by_scan<'a>(
        &'a self,
        method: &str,
        path_segments: &'a [&'a str],
    ) -> Option<RouteMatch<'a>> {
        let request = Method::from_name(method);
        let index = self
            .routes
            .iter()
            .position(|route| route.method.accepts(request) && route.matches_path(path_segments))?;
        self.route_match(u32::try_from(index).ok()?, path_segments)
    }

    /// The first route in table order below `node` that matches `path`. The trie is searched
    /// in table order: literal child, wildcard child, then the routes whose `**` starts here.
    fn search(&self, node: u32, method: Option<Method>, path: &[&str]) -> Option<u32> {
        let node = self.nodes.get(node as usize)?;
        let accepts = |index: &&u32| {
            self.routes
                .get(**index as usize)
                .is_some_and(|route| route.method.accepts(method))
        };
        let Some((first, rest)) = path.split_first() else {
            return node
                .ends
                .iter()
                .find(accepts)
                .or_else(|| node.rests.iter().find(accepts))
                .copied();
        };
        if let Some(&child) = node.literals.get(*first) {
            if let Some(found) = self.search(child, method, rest) {
                return Some(found);
            }
        }
        if let Some(child) = node.wildcard {
            if let Some(found) = self.search(child, method, rest) {
                return Some(found);
            }
        }
        node.rests.iter().find(accepts).copied()
    }

    fn route_match<'a>(&'a self, index: u32, segments: &'a [&'a str]) -> Option<RouteMatch<'a>> {
        let route = self.routes.get(index as usize)?;
        let resource_id = match &route.resource_id {
            ResourceId::Literal { text, .. } => &**text,
            ResourceId::Param(param) => {
                let (position, _) = route.params().nth(*param)?;
                segments.get(position)?
            }
        };
        Some(RouteMatch {
            route,
            resource_id,
            segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intern::Interner;

    /// A route from a template written as in the language, its id from parameter 0 or "main".
    fn route(interner: &mut Interner, method: Method, path: &str, action: &str) -> Route {
        let segments: Vec<RouteSegment> = path
            .split('/')
            .filter(|piece| !piece.is_empty())
            .map(|piece| match piece {
                "*" => RouteSegment::Star,
                "**" => RouteSegment::Rest,
                _ => match piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => RouteSegment::Param(name.into()),
                    None => RouteSegment::Literal(piece.into()),
                },
            })
            .collect();
        let has_param = segments
            .iter()
            .any(|segment| matches!(segment, RouteSegment::Param(_)));
        let resource_id = if has_param {
            ResourceId::Param(0)
        } else {
            ResourceId::Literal {
                sym: interner.intern("main"),
                text: "main".into(),
            }
        };
        Route {
            method,
            path: path.into(),
            segments,
            action: EntityUid {
                ty: TypeId(0),
                id: interner.intern(action),
            },
            resource_type: TypeId(1),
            resource_id,
        }
    }

    fn split(path: &str) -> Vec<&str> {
        path.split('/').filter(|piece| !piece.is_empty()).collect()
    }

    fn shop() -> (Interner, RouteTable) {
        let mut interner = Interner::new();
        let specs = [
            (Method::Get, "/catalog/**", "browse"),
            (Method::Get, "/products/{id}", "viewProduct"),
            (Method::Get, "/products/{id}/images/*", "viewProduct"),
            (Method::Put, "/products/{id}", "editProduct"),
            (Method::Get, "/orders/{id}", "readOrder"),
            (Method::Get, "/orders/{id}/**", "readOrder"),
            (Method::Post, "/orders/{id}/cancel", "cancelOrder"),
            (Method::Get, "/orders/new", "newOrder"),
            (Method::Any, "/admin/**", "administer"),
            (Method::Get, "/admin/status", "status"),
            (Method::Get, "/", "home"),
            (Method::Any, "/**", "fallback"),
        ];
        let routes = specs
            .iter()
            .map(|(method, path, action)| route(&mut interner, *method, path, action))
            .collect();
        (interner, RouteTable::new(routes))
    }

    fn action_of<'a>(
        interner: &'a Interner,
        table: &RouteTable,
        method: &str,
        path: &str,
    ) -> Option<(&'a str, String)> {
        let segments = split(path);
        let found = table.find(method, &segments);
        let scanned = table.find_by_scan(method, &segments);
        assert_eq!(found, scanned, "trie and scan disagree on {method} {path}");
        found.map(|found| {
            let action = interner.resolve(found.route.action.id).unwrap_or("?");
            (action, found.resource_id.to_owned())
        })
    }

    #[test]
    fn most_specific_route_wins() {
        let (interner, table) = shop();
        let cases = [
            ("GET", "/orders/o-1", Some(("readOrder", "o-1"))),
            ("GET", "/orders/new", Some(("newOrder", "main"))),
            ("GET", "/orders/o-1/invoice", Some(("readOrder", "o-1"))),
            ("GET", "/orders/o-1/a/b/c", Some(("readOrder", "o-1"))),
            ("POST", "/orders/o-1/cancel", Some(("cancelOrder", "o-1"))),
            ("GET", "/orders/o-1/cancel", Some(("readOrder", "o-1"))),
            ("PUT", "/orders/o-1", Some(("fallback", "main"))),
            (
                "GET",
                "/products/p-1/images/front",
                Some(("viewProduct", "p-1")),
            ),
            ("PUT", "/products/p-1", Some(("editProduct", "p-1"))),
            ("GET", "/catalog", Some(("browse", "main"))),
            ("GET", "/catalog/shoes/red", Some(("browse", "main"))),
            ("GET", "/admin/status", Some(("status", "main"))),
            ("POST", "/admin/status", Some(("administer", "main"))),
            ("DELETE", "/admin", Some(("administer", "main"))),
            ("TRACE", "/admin/x", Some(("administer", "main"))),
            ("get", "/admin/status", Some(("administer", "main"))),
            ("GET", "/", Some(("home", "main"))),
            ("POST", "/", Some(("fallback", "main"))),
            ("GET", "/elsewhere/x", Some(("fallback", "main"))),
        ];
        for (method, path, expected) in cases {
            let expected = expected.map(|(action, id)| (action, id.to_owned()));
            assert_eq!(
                action_of(&interner, &table, method, path),
                expected,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn no_route_means_none() {
        let mut interner = Interner::new();
        let table = RouteTable::new(vec![
            route(&mut interner, Method::Get, "/orders/{id}", "read"),
            route(&mut interner, Method::Get, "/a/*", "a"),
        ]);
        for (method, path) in [
            ("GET", "/"),
            ("GET", "/orders"),
            ("GET", "/orders/1/2"),
            ("POST", "/orders/1"),
            ("GET", "/a"),
            ("GET", "/b/c"),
        ] {
            assert_eq!(action_of(&interner, &table, method, path), None, "{path}");
        }
        assert!(RouteTable::default().find("GET", &[]).is_none());
    }

    #[test]
    fn matches_expose_params_rest_and_resource() {
        let mut interner = Interner::new();
        let mut two = route(&mut interner, Method::Get, "/t/{tenant}/o/{id}/**", "read");
        two.resource_id = ResourceId::Param(1);
        let table = RouteTable::new(vec![two]);
        let segments = split("/t/acme/o/o-7/files/x.pdf");
        let found = table.find("GET", &segments).unwrap();
        assert_eq!(found.resource_id, "o-7");
        assert_eq!(
            found.params().collect::<Vec<_>>(),
            vec![("tenant", "acme"), ("id", "o-7")]
        );
        assert_eq!(found.param("tenant"), Some("acme"));
        assert_eq!(found.param("nope"), None);
        assert_eq!(found.rest(), &["files", "x.pdf"]);
        assert_eq!(found.resource(&interner), None);
        let id = interner.intern("o-7");
        assert_eq!(
            found.resource(&interner),
            Some(EntityUid { ty: TypeId(1), id })
        );
        let segments = split("/t/acme/o/o-7");
        assert_eq!(table.find("GET", &segments).unwrap().rest(), &[] as &[&str]);
    }

    #[test]
    fn order_puts_specific_routes_first() {
        let (interner, table) = shop();
        let order: Vec<String> = table
            .routes()
            .iter()
            .map(|route| format!("{} {}", route.method, route.path))
            .collect();
        let position = |text: &str| order.iter().position(|entry| entry == text).unwrap();
        assert!(position("GET /orders/new") < position("GET /orders/{id}"));
        assert!(position("GET /orders/{id}") < position("GET /orders/{id}/**"));
        assert!(position("POST /orders/{id}/cancel") < position("GET /orders/{id}/**"));
        assert!(position("GET /admin/status") < position("ANY /admin/**"));
        assert!(position("GET /") < position("ANY /**"));
        assert_eq!(order.last().map(String::as_str), Some("ANY /**"));
        drop(interner);
    }

    /// 200 routes under a shared prefix: the trie agrees with the scan and is measured against
    /// it (printed with `--nocapture`; no bound on times, since the machine is shared).
    #[test]
    fn two_hundred_routes_match_fast() {
        let mut interner = Interner::new();
        let mut routes = Vec::new();
        for service in 0..40 {
            routes.push(route(
                &mut interner,
                Method::Get,
                &format!("/api/v1/s{service}/{{id}}"),
                "read",
            ));
            routes.push(route(
                &mut interner,
                Method::Post,
                &format!("/api/v1/s{service}/{{id}}"),
                "write",
            ));
            routes.push(route(
                &mut interner,
                Method::Get,
                &format!("/api/v1/s{service}/{{id}}/items/*"),
                "item",
            ));
            routes.push(route(
                &mut interner,
                Method::Any,
                &format!("/api/v1/s{service}/{{id}}/**"),
                "any",
            ));
            routes.push(route(
                &mut interner,
                Method::Get,
                &format!("/api/v1/s{service}/search"),
                "search",
            ));
        }
        let table = RouteTable::new(routes);
        assert_eq!(table.len(), 200);
        let paths: Vec<String> = (0..40)
            .flat_map(|service| {
                [
                    format!("/api/v1/s{service}/x-{service}"),
                    format!("/api/v1/s{service}/x/items/3"),
                    format!("/api/v1/s{service}/x/deep/er/path"),
                    format!("/api/v1/s{service}/search"),
                    format!("/api/v2/s{service}/search"),
                ]
            })
            .collect();
        let requests: Vec<Vec<&str>> = paths.iter().map(|path| split(path)).collect();
        for segments in &requests {
            for method in ["GET", "POST", "DELETE"] {
                assert_eq!(
                    table.find(method, segments),
                    table.find_by_scan(method, segments)
                );
            }
        }
        let rounds = 200;
        let time = |find: &dyn Fn(&[&str]) -> bool| {
            let start = std::time::Instant::now();
            let mut hits = 0usize;
            for _ in 0..rounds {
                for segments in &requests {
                    hits += usize::from(find(segments));
                }
            }
            (start.elapsed() / (rounds * requests.len() as u32), hits)
        };
        let (trie, trie_hits) = time(&|segments| table.find("GET", segments).is_some());
        let (scan, scan_hits) = time(&|segments| table.find_by_scan("GET", segments).is_some());
        assert_eq!(trie_hits, scan_hits);
        println!("200 routes: trie {trie:?} per lookup, scan {scan:?} per lookup (debug build)");
    }
}
