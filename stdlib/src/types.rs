//! The types that appear in standard-library signatures.

use std::fmt;

/// A type in a standard-library signature. Sets, records and entities never appear in the table:
/// the set methods are generic and typed by the checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// `Bool`
    Bool,
    /// `Long`, a 64-bit signed integer.
    Long,
    /// `String`
    String,
    /// `Ip`, an IPv4 or IPv6 address with an optional prefix length (a CIDR range).
    Ip,
    /// `Timestamp`, an instant with millisecond precision.
    Timestamp,
    /// `Duration`, a signed span of time with millisecond precision.
    Duration,
}

impl Type {
    /// The name of the type as written in the language.
    pub fn name(self) -> &'static str {
        match self {
            Type::Bool => "Bool",
            Type::Long => "Long",
            Type::String => "String",
            Type::Ip => "Ip",
            Type::Timestamp => "Timestamp",
            Type::Duration => "Duration",
        }
    }

    /// The type with this name, if it is one of the built-in scalar or extension types.
    pub fn from_name(name: &str) -> Option<Type> {
        Some(match name {
            "Bool" => Type::Bool,
            "Long" => Type::Long,
            "String" => Type::String,
            "Ip" => Type::Ip,
            "Timestamp" => Type::Timestamp,
            "Duration" => Type::Duration,
            _ => return None,
        })
    }

    /// Every type, in a stable order.
    pub const ALL: [Type; 6] = [
        Type::Bool,
        Type::Long,
        Type::String,
        Type::Ip,
        Type::Timestamp,
        Type::Duration,
    ];
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
