//! Sharing pass: sub-expressions that occur more than once across the program are evaluated once.
//!
//! Two sub-expressions are the same when their lowered trees are equal: the same operation with
//! the same constants, attributes, types or function, over the same sub-expressions. Trees are
//! counted by a structural hash computed bottom up (from each node's operation and its children's
//! hashes), so the pass is linear in the size of the program whatever the depth of its trees; a
//! tree is replaced by a slot only when it equals the tree the slot was made for, so a collision
//! of hashes costs a missed sharing, never a wrong value. Every tree that occurs at least twice, and is
//! more than a constant or a variable, moves to `Program::shared` and is replaced by
//! `Expr::Shared`; the runtime memoizes it per decision. Expressions are pure, so a shared value is
//! the same wherever it is used.
//!
//! A slot number that does not fit is an internal error ([`Internal`]), not a reference to a slot that is not there.

use std::hash::{DefaultHasher, Hash, Hasher};

use authz_runtime::intern::FxHashMap;
use authz_runtime::program::{ArithOp, CmpOp, Expr, GlobPart, Var};
use authz_runtime::value::{AttrId, LayoutId, TypeId, Value};

use crate::diagnostics::{Internal, Invariant};

/// One node of a tree without its children: what, with its children's numbers, tells two trees
/// apart.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Shape {
    Lit(Value),
    Var(Var),
    Attr(AttrId),
    Has(AttrId),
    Not,
    Neg,
    And,
    Or,
    If,
    Eq,
    Cmp(CmpOp),
    Arith(ArithOp),
    InHierarchy,
    Contains,
    ContainsAll,
    ContainsAny,
    IsEmpty,
    Like(Box<[GlobPart]>),
    Is(TypeId),
    /// A standard-library function, by its address (as the function pointer compares).
    Call(usize),
    SetLit,
    RecordLit(LayoutId),
    Shared(u32),
}

impl Shape {
    fn of(expr: &Expr) -> Shape {
        match expr {
            Expr::Lit(value) => Shape::Lit(*value),
            Expr::Var(var) => Shape::Var(*var),
            Expr::Attr(_, attr) => Shape::Attr(*attr),
            Expr::Has(_, attr) => Shape::Has(*attr),
            Expr::Not(_) => Shape::Not,
            Expr::Neg(_) => Shape::Neg,
            Expr::And(..) => Shape::And,
            Expr::Or(..) => Shape::Or,
            Expr::If(..) => Shape::If,
            Expr::Eq(..) => Shape::Eq,
            Expr::Cmp(op, ..) => Shape::Cmp(*op),
            Expr::Arith(op, ..) => Shape::Arith(*op),
            Expr::InHierarchy(..) => Shape::InHierarchy,
            Expr::Contains(..) => Shape::Contains,
            Expr::ContainsAll(..) => Shape::ContainsAll,
            Expr::ContainsAny(..) => Shape::ContainsAny,
            Expr::IsEmpty(_) => Shape::IsEmpty,
            Expr::Like(_, pattern) => Shape::Like(pattern.clone()),
            Expr::Is(_, ty) => Shape::Is(*ty),
            Expr::Call(function, _) => Shape::Call(*function as usize),
            Expr::SetLit(_) => Shape::SetLit,
            Expr::RecordLit(layout, _) => Shape::RecordLit(*layout),
            Expr::Shared(slot) => Shape::Shared(*slot),
        }
    }
}

/// A structural hash of a tree: of its root's shape and its children's hashes.
type TreeHash = u64;

/// Counts and then rewrites the expressions given to it.
#[derive(Default)]
pub struct Sharing {
    /// How often each tree worth sharing occurs, by its structural hash.
    counts: FxHashMap<TreeHash, u32>,
    /// The shared slot of each tree shared so far, by its structural hash.
    slots: FxHashMap<TreeHash, u32>,
    /// The tree each slot was made for, as it was before rewriting: a tree is replaced by a
    /// slot only when it equals that tree, so that two trees whose hashes collide stay apart.
    originals: Vec<Expr>,
    /// The shared expressions, by slot; a shared expression may refer to later slots only.
    pub shared: Vec<Expr>,
}

/// The trees of one expression in pre-order: each node's hash and the size of its subtree
/// (itself included), so that a node replaced by a shared slot skips its subtree.
type Hashed = Vec<(TreeHash, usize)>;

impl Sharing {
    /// Counts the sub-expressions of `expr` (first pass, over every expression of the program).
    pub fn count(&mut self, expr: &Expr) {
        let mut hashed = Hashed::new();
        hash_tree(expr, &mut hashed);
        let mut at = 0;
        self.count_hashed(expr, &hashed, &mut at);
    }

    fn count_hashed(&mut self, expr: &Expr, hashed: &Hashed, at: &mut usize) {
        let Some(&(hash, size)) = hashed.get(*at) else {
            return;
        };
        if !worth_sharing(expr) {
            *at += size;
            return;
        }
        let count = self.counts.entry(hash).or_insert(0);
        *count = count.saturating_add(1);
        *at += 1;
        for child in children(expr) {
            self.count_hashed(child, hashed, at);
        }
    }

    /// Replaces the sub-expressions of `expr` that occur more than once by shared references
    /// (second pass).
    pub fn rewrite(&mut self, expr: &mut Expr) -> Result<(), Internal> {
        let mut hashed = Hashed::new();
        hash_tree(expr, &mut hashed);
        let mut at = 0;
        self.rewrite_hashed(expr, &hashed, &mut at)
    }

    /// Rewrites `expr`, the node `hashed[*at]`, and moves `*at` past its subtree.
    fn rewrite_hashed(
        &mut self,
        expr: &mut Expr,
        hashed: &Hashed,
        at: &mut usize,
    ) -> Result<(), Internal> {
        let Some(&(hash, size)) = hashed.get(*at) else {
            return Err(Internal::nowhere(Invariant::Unexpected {
                what: "an expression without its hash".to_owned(),
                at: "the shared expressions".to_owned(),
            }));
        };
        if !worth_sharing(expr) {
            *at += size;
            return Ok(());
        }
        if self.counts.get(&hash).copied().unwrap_or(0) >= 2 {
            match self.slots.get(&hash) {
                Some(&slot) => {
                    let original = self.originals.get(slot as usize);
                    if original.is_some_and(|original| same_tree(original, expr)) {
                        *expr = Expr::Shared(slot);
                        *at += size;
                        return Ok(());
                    }
                    // A different tree with the same hash: it is not shared.
                }
                None => return self.share(expr, hash, hashed, at),
            }
        }
        *at += 1;
        for child in children_mut(expr) {
            self.rewrite_hashed(child, hashed, at)?;
        }
        Ok(())
    }

    /// Moves `expr` into a new shared slot and rewrites its body.
    fn share(
        &mut self,
        expr: &mut Expr,
        hash: TreeHash,
        hashed: &Hashed,
        at: &mut usize,
    ) -> Result<(), Internal> {
        // Reserve the slot first: rewriting the body may share its own parts, which take the
        // slots after this one.
        let slot = u32::try_from(self.shared.len()).map_err(|_| {
            Internal::nowhere(Invariant::TooMany {
                what: "shared expressions",
            })
        })?;
        self.slots.insert(hash, slot);
        self.originals.push(expr.clone());
        self.shared
            .push(Expr::Lit(authz_runtime::value::Value::Absent));
        let mut body = std::mem::replace(expr, Expr::Shared(slot));
        *at += 1;
        for child in children_mut(&mut body) {
            self.rewrite_hashed(child, hashed, at)?;
        }
        let Some(entry) = self.shared.get_mut(slot as usize) else {
            return Err(Internal::nowhere(Invariant::Unexpected {
                what: format!("shared slot {slot} missing"),
                at: "the shared expressions".to_owned(),
            }));
        };
        *entry = body;
        Ok(())
    }
}

/// Hashes `expr` and its sub-expressions into `out`, in pre-order; gives the hash of `expr`.
fn hash_tree(expr: &Expr, out: &mut Hashed) -> TreeHash {
    let at = out.len();
    out.push((0, 0));
    let mut hasher = DefaultHasher::new();
    Shape::of(expr).hash(&mut hasher);
    for child in children(expr) {
        hasher.write_u64(hash_tree(child, out));
    }
    let hash = hasher.finish();
    let size = out.len() - at;
    if let Some(entry) = out.get_mut(at) {
        *entry = (hash, size);
    }
    hash
}

/// Whether two trees are the same: the same shapes over the same children.
fn same_tree(a: &Expr, b: &Expr) -> bool {
    if Shape::of(a) != Shape::of(b) {
        return false;
    }
    let (mut a, mut b) = (children(a), children(b));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if same_tree(a, b) => {}
            _ => return false,
        }
    }
}

fn worth_sharing(expr: &Expr) -> bool {
    !matches!(expr, Expr::Lit(_) | Expr::Var(_) | Expr::Shared(_))
}

/// The sub-expressions of `expr`, in order, without allocating.
fn children(expr: &Expr) -> impl Iterator<Item = &Expr> {
    let (fixed, rest): ([Option<&Expr>; 3], &[Expr]) = match expr {
        Expr::Lit(_) | Expr::Var(_) | Expr::Shared(_) => ([None, None, None], &[]),
        Expr::Attr(base, _)
        | Expr::Has(base, _)
        | Expr::Not(base)
        | Expr::Neg(base)
        | Expr::IsEmpty(base)
        | Expr::Like(base, _)
        | Expr::Is(base, _) => ([Some(&**base), None, None], &[]),
        Expr::And(a, b)
        | Expr::Or(a, b)
        | Expr::Eq(a, b)
        | Expr::Cmp(_, a, b)
        | Expr::Arith(_, a, b)
        | Expr::InHierarchy(a, b)
        | Expr::Contains(a, b)
        | Expr::ContainsAll(a, b)
        | Expr::ContainsAny(a, b) => ([Some(&**a), Some(&**b), None], &[]),
        Expr::If(a, b, c) => ([Some(&**a), Some(&**b), Some(&**c)], &[]),
        Expr::Call(_, args) | Expr::SetLit(args) | Expr::RecordLit(_, args) => {
            ([None, None, None], &args[..])
        }
    };
    fixed.into_iter().flatten().chain(rest)
}

/// The sub-expressions of `expr`, in order, mutably, without allocating.
fn children_mut(expr: &mut Expr) -> impl Iterator<Item = &mut Expr> {
    let (fixed, rest): ([Option<&mut Expr>; 3], &mut [Expr]) = match expr {
        Expr::Lit(_) | Expr::Var(_) | Expr::Shared(_) => ([None, None, None], &mut []),
        Expr::Attr(base, _)
        | Expr::Has(base, _)
        | Expr::Not(base)
        | Expr::Neg(base)
        | Expr::IsEmpty(base)
        | Expr::Like(base, _)
        | Expr::Is(base, _) => ([Some(&mut **base), None, None], &mut []),
        Expr::And(a, b)
        | Expr::Or(a, b)
        | Expr::Eq(a, b)
        | Expr::Cmp(_, a, b)
        | Expr::Arith(_, a, b)
        | Expr::InHierarchy(a, b)
        | Expr::Contains(a, b)
        | Expr::ContainsAll(a, b)
        | Expr::ContainsAny(a, b) => ([Some(&mut **a), Some(&mut **b), None], &mut []),
        Expr::If(a, b, c) => ([Some(&mut **a), Some(&mut **b), Some(&mut **c)], &mut []),
        Expr::Call(_, args) | Expr::SetLit(args) | Expr::RecordLit(_, args) => {
            ([None, None, None], &mut args[..])
        }
    };
    fixed.into_iter().flatten().chain(rest)
}
