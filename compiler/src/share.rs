//! Sharing pass: sub-expressions that occur more than once across the program are evaluated once.
//!
//! Two sub-expressions are the same when their lowered trees are equal (compared by their debug
//! text, which names every operation, constant and function). Every such tree that occurs at
//! least twice, and is more than a constant or a variable, moves to `Program::shared` and is
//! replaced by `Expr::Shared`; the runtime memoizes it per decision. Expressions are pure, so a
//! shared value is the same wherever it is used.
//!
//! A slot number that does not fit is an internal error ([`Internal`]), not a reference to a slot
//! that is not there.

use std::collections::HashMap;

use authz_runtime::program::Expr;

use crate::diagnostics::{Internal, Invariant};

/// Counts and then rewrites the expressions given to it.
#[derive(Default)]
pub struct Sharing {
    counts: HashMap<String, u32>,
    slots: HashMap<String, u32>,
    /// The shared expressions, by slot; a shared expression may refer to later slots only.
    pub shared: Vec<Expr>,
}

impl Sharing {
    /// Counts the sub-expressions of `expr` (first pass, over every expression of the program).
    pub fn count(&mut self, expr: &Expr) {
        if !worth_sharing(expr) {
            return;
        }
        *self.counts.entry(format!("{expr:?}")).or_insert(0) += 1;
        for child in children(expr) {
            self.count(child);
        }
    }

    /// Replaces the sub-expressions of `expr` that occur more than once by shared references
    /// (second pass).
    pub fn rewrite(&mut self, expr: &mut Expr) -> Result<(), Internal> {
        if !worth_sharing(expr) {
            return Ok(());
        }
        let description = format!("{expr:?}");
        // Not counted (not seen in the first pass) means not shared: the expression stays as is.
        if self.counts.get(&description).copied().unwrap_or(0) >= 2 {
            if let Some(slot) = self.slots.get(&description) {
                *expr = Expr::Shared(*slot);
                return Ok(());
            }
            // Reserve the slot first: rewriting the body may share its own parts, which take
            // the slots after this one.
            let slot = u32::try_from(self.shared.len()).map_err(|_| {
                Internal::nowhere(Invariant::TooMany {
                    what: "shared expressions",
                })
            })?;
            self.slots.insert(description, slot);
            self.shared
                .push(Expr::Lit(authz_runtime::value::Value::Absent));
            let mut body = std::mem::replace(expr, Expr::Shared(slot));
            for child in children_mut(&mut body) {
                self.rewrite(child)?;
            }
            let Some(entry) = self.shared.get_mut(slot as usize) else {
                return Err(Internal::nowhere(Invariant::Unexpected {
                    what: format!("shared slot {slot} missing"),
                    at: "the shared expressions".to_owned(),
                }));
            };
            *entry = body;
            return Ok(());
        }
        for child in children_mut(expr) {
            self.rewrite(child)?;
        }
        Ok(())
    }
}

fn worth_sharing(expr: &Expr) -> bool {
    !matches!(expr, Expr::Lit(_) | Expr::Var(_) | Expr::Shared(_))
}

fn children(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::Lit(_) | Expr::Var(_) | Expr::Shared(_) => Vec::new(),
        Expr::Attr(base, _)
        | Expr::Has(base, _)
        | Expr::Not(base)
        | Expr::Neg(base)
        | Expr::IsEmpty(base)
        | Expr::Like(base, _)
        | Expr::Is(base, _) => vec![base],
        Expr::And(a, b)
        | Expr::Or(a, b)
        | Expr::Eq(a, b)
        | Expr::Cmp(_, a, b)
        | Expr::Arith(_, a, b)
        | Expr::InHierarchy(a, b)
        | Expr::Contains(a, b)
        | Expr::ContainsAll(a, b)
        | Expr::ContainsAny(a, b) => vec![a, b],
        Expr::If(a, b, c) => vec![a, b, c],
        Expr::Call(_, args) | Expr::SetLit(args) | Expr::RecordLit(_, args) => {
            args.iter().collect()
        }
    }
}

fn children_mut(expr: &mut Expr) -> Vec<&mut Expr> {
    match expr {
        Expr::Lit(_) | Expr::Var(_) | Expr::Shared(_) => Vec::new(),
        Expr::Attr(base, _)
        | Expr::Has(base, _)
        | Expr::Not(base)
        | Expr::Neg(base)
        | Expr::IsEmpty(base)
        | Expr::Like(base, _)
        | Expr::Is(base, _) => vec![&mut **base],
        Expr::And(a, b)
        | Expr::Or(a, b)
        | Expr::Eq(a, b)
        | Expr::Cmp(_, a, b)
        | Expr::Arith(_, a, b)
        | Expr::InHierarchy(a, b)
        | Expr::Contains(a, b)
        | Expr::ContainsAll(a, b)
        | Expr::ContainsAny(a, b) => vec![&mut **a, &mut **b],
        Expr::If(a, b, c) => vec![&mut **a, &mut **b, &mut **c],
        Expr::Call(_, args) | Expr::SetLit(args) | Expr::RecordLit(_, args) => {
            args.iter_mut().collect()
        }
    }
}
