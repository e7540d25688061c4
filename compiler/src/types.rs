//! The checker's types.
//!
//! Every expression has a [`Type`]. Entity types are [`EntityUnion`]s: `principal` in a policy
//! whose action takes `User | Service` has the type `User | Service` until an `is` test narrows it.
//! Actions are entities of the built-in type [`ACTION_TYPE`]. Two types exist only inside the
//! checker: [`Type::Never`], the element type of the empty set `[]`, which fits any element type,
//! and [`Type::Error`], the type of an expression that already produced a diagnostic, which fits
//! everything so that one mistake is reported once.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A name shared between the schema and the types that mention it.
pub type Name = Arc<str>;

/// The built-in entity type of actions, as in `Action("read")`.
pub const ACTION_TYPE: &str = "Action";

/// The type of an expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `Bool`
    Bool,
    /// `Long`
    Long,
    /// `String`
    String,
    /// `Ip`
    Ip,
    /// `Timestamp`
    Timestamp,
    /// `Duration`
    Duration,
    /// `Set<T>`
    Set(Box<Type>),
    /// A record with a fixed set of fields.
    Record(Arc<RecordType>),
    /// An entity of one of these types.
    Entity(EntityUnion),
    /// The element type of the empty set: it fits any element type.
    Never,
    /// The type of an expression that already has a diagnostic: it fits everything.
    Error,
}

/// A record type: field names with their types and whether they are optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RecordType {
    /// The fields, ordered by name.
    pub fields: BTreeMap<Name, Field>,
}

/// One field of a record type or one attribute of an entity type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// The field's type.
    pub ty: Type,
    /// Whether it was declared `name?: T`: it may be read only under a `has` guard.
    pub optional: bool,
}

/// A non-empty-or-empty set of entity type names, kept sorted and without duplicates. Shared:
/// the checker records a type for every expression, and cloning one costs a reference count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EntityUnion(Arc<[Name]>);

impl EntityUnion {
    /// The union of these names.
    pub fn new(names: impl IntoIterator<Item = Name>) -> EntityUnion {
        let mut names: Vec<Name> = names.into_iter().collect();
        names.sort();
        names.dedup();
        EntityUnion(names.into())
    }

    /// The union of one type.
    pub fn single(name: Name) -> EntityUnion {
        EntityUnion(Arc::new([name]))
    }

    /// The member types, sorted by name.
    pub fn members(&self) -> &[Name] {
        &self.0
    }

    /// Whether no type is a member.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `name` is a member.
    pub fn contains(&self, name: &str) -> bool {
        self.0
            .binary_search_by(|member| (**member).cmp(name))
            .is_ok()
    }

    /// Whether the two unions share a member.
    pub fn overlaps(&self, other: &EntityUnion) -> bool {
        self.0.iter().any(|name| other.contains(name))
    }

    /// Whether every member of `self` is a member of `other`.
    pub fn is_subset(&self, other: &EntityUnion) -> bool {
        self.0.iter().all(|name| other.contains(name))
    }

    /// The members of both.
    pub fn intersection(&self, other: &EntityUnion) -> EntityUnion {
        EntityUnion(
            self.0
                .iter()
                .filter(|name| other.contains(name))
                .cloned()
                .collect(),
        )
    }

    /// The members of either.
    pub fn union(&self, other: &EntityUnion) -> EntityUnion {
        if other.is_subset(self) {
            return self.clone();
        }
        EntityUnion::new(self.0.iter().chain(other.0.iter()).cloned())
    }
}

impl fmt::Display for EntityUnion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no entity type");
        }
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl RecordType {
    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.get(name)
    }
}

impl Type {
    /// The checker type of a standard-library signature type.
    pub fn from_stdlib(ty: authz_stdlib::Type) -> Type {
        match ty {
            authz_stdlib::Type::Bool => Type::Bool,
            authz_stdlib::Type::Long => Type::Long,
            authz_stdlib::Type::String => Type::String,
            authz_stdlib::Type::Ip => Type::Ip,
            authz_stdlib::Type::Timestamp => Type::Timestamp,
            authz_stdlib::Type::Duration => Type::Duration,
        }
    }

    /// The standard-library type this is, if it is a scalar or extension type.
    pub fn as_stdlib(&self) -> Option<authz_stdlib::Type> {
        Some(match self {
            Type::Bool => authz_stdlib::Type::Bool,
            Type::Long => authz_stdlib::Type::Long,
            Type::String => authz_stdlib::Type::String,
            Type::Ip => authz_stdlib::Type::Ip,
            Type::Timestamp => authz_stdlib::Type::Timestamp,
            Type::Duration => authz_stdlib::Type::Duration,
            Type::Set(_) | Type::Record(_) | Type::Entity(_) | Type::Never | Type::Error => {
                return None
            }
        })
    }

    /// An entity of exactly this type.
    pub fn entity(name: Name) -> Type {
        Type::Entity(EntityUnion::single(name))
    }

    /// Whether this type, or a type inside it, stands for an earlier error.
    pub fn is_error(&self) -> bool {
        match self {
            Type::Error => true,
            Type::Set(element) => element.is_error(),
            _ => false,
        }
    }

    /// Whether values of the two types can be equal, as `==` requires: entity unions must share a
    /// member, sets and records must be compatible element by element.
    pub fn is_comparable(&self, other: &Type) -> bool {
        match (self, other) {
            (Type::Error, _) | (_, Type::Error) | (Type::Never, _) | (_, Type::Never) => true,
            (Type::Entity(a), Type::Entity(b)) => a.overlaps(b),
            (Type::Set(a), Type::Set(b)) => a.is_comparable(b),
            (Type::Record(a), Type::Record(b)) => {
                a.fields.len() == b.fields.len()
                    && a.fields.iter().all(|(name, field)| {
                        b.fields
                            .get(name)
                            .is_some_and(|other| field.ty.is_comparable(&other.ty))
                    })
            }
            _ => self == other,
        }
    }

    /// Whether a value of type `self` may stand where `expected` is required.
    pub fn fits(&self, expected: &Type) -> bool {
        match (self, expected) {
            (Type::Error, _) | (_, Type::Error) | (Type::Never, _) => true,
            (Type::Entity(found), Type::Entity(expected)) => found.is_subset(expected),
            (Type::Set(found), Type::Set(expected)) => found.fits(expected),
            (Type::Record(found), Type::Record(expected)) => {
                found.fields.len() == expected.fields.len()
                    && found.fields.iter().all(|(name, field)| {
                        expected.fields.get(name).is_some_and(|other| {
                            field.optional == other.optional && field.ty.fits(&other.ty)
                        })
                    })
            }
            _ => self == expected,
        }
    }

    /// The smallest type that both fit, as the branches of `if` and the elements of a set need;
    /// `None` when there is none.
    pub fn join(&self, other: &Type) -> Option<Type> {
        Some(match (self, other) {
            (Type::Error, _) | (_, Type::Error) => Type::Error,
            (Type::Never, other) | (other, Type::Never) => other.clone(),
            (Type::Entity(a), Type::Entity(b)) => Type::Entity(a.union(b)),
            (Type::Set(a), Type::Set(b)) => Type::Set(Box::new(a.join(b)?)),
            (Type::Record(a), Type::Record(b)) => {
                if a.fields.len() != b.fields.len() {
                    return None;
                }
                let mut fields = BTreeMap::new();
                for (name, field) in &a.fields {
                    let other = b.fields.get(name)?;
                    if field.optional != other.optional {
                        return None;
                    }
                    fields.insert(
                        name.clone(),
                        Field {
                            ty: field.ty.join(&other.ty)?,
                            optional: field.optional,
                        },
                    );
                }
                Type::Record(Arc::new(RecordType { fields }))
            }
            _ if self == other => self.clone(),
            _ => return None,
        })
    }
}

/// Whether a field name can be written bare, without quotes.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Writes a field name as the language spells it: bare when it is an identifier, quoted otherwise.
pub(crate) fn write_field_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if is_identifier(name) {
        f.write_str(name)
    } else {
        write!(f, "{name:?}")
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fields.is_empty() {
            return f.write_str("{}");
        }
        f.write_str("{ ")?;
        for (i, (name, field)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_field_name(f, name)?;
            f.write_str(if field.optional { "?: " } else { ": " })?;
            field.ty.fmt(f)?;
        }
        f.write_str(" }")
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("Bool"),
            Type::Long => f.write_str("Long"),
            Type::String => f.write_str("String"),
            Type::Ip => f.write_str("Ip"),
            Type::Timestamp => f.write_str("Timestamp"),
            Type::Duration => f.write_str("Duration"),
            Type::Set(element) => write!(f, "Set<{element}>"),
            Type::Record(record) => record.fmt(f),
            Type::Entity(union) => union.fmt(f),
            Type::Never => f.write_str("_"),
            Type::Error => f.write_str("{error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn union(names: &[&str]) -> EntityUnion {
        EntityUnion::new(names.iter().map(|name| Name::from(*name)))
    }

    #[test]
    fn unions_are_sorted_and_deduplicated() {
        assert_eq!(
            union(&["User", "Service", "User"]).to_string(),
            "Service | User"
        );
    }

    #[test]
    fn overlapping_unions_are_comparable() {
        let a = Type::Entity(union(&["User", "Service"]));
        let b = Type::Entity(union(&["User"]));
        let c = Type::Entity(union(&["Order"]));
        assert!(a.is_comparable(&b));
        assert!(!a.is_comparable(&c));
        assert!(b.fits(&a));
        assert!(!a.fits(&b));
    }

    #[test]
    fn the_empty_set_joins_any_set() {
        let empty = Type::Set(Box::new(Type::Never));
        let longs = Type::Set(Box::new(Type::Long));
        assert_eq!(empty.join(&longs), Some(longs.clone()));
        assert_eq!(longs.join(&Type::Set(Box::new(Type::String))), None);
    }
}
