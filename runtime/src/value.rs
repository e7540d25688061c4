//! Values: what expressions evaluate to.
//!
//! A [`Value`] is 16 bytes and `Copy`. Strings are symbols; sets, records and IP ranges live in
//! flat pools ([`ValuePool`]) owned by the program (constants), the entity store (attributes) or the
//! request (context), and a value refers to them by pool and offset. So evaluating an expression
//! never allocates, and values need no lifetimes or reference counts.

use std::net::IpAddr;

use crate::intern::Sym;

/// The index of an entity type in the schema.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

/// The index of an attribute or field name in the schema's table of names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrId(pub u32);

/// The index of a record layout in the schema.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayoutId(pub u32);

/// An entity's identity: its type and its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityUid {
    /// The entity type.
    pub ty: TypeId,
    /// The id.
    pub id: Sym,
}

/// Which pool a set, record or IP range lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PoolId {
    /// Constants of the decision program.
    Program,
    /// Attributes of the entity store.
    Store,
    /// The context and the entities that came with a request.
    Request,
    /// Values made while evaluating one decision (non-constant set and record literals).
    Scratch,
}

/// A set in a pool: `len` values from `start`, sorted and without duplicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SetRef {
    /// The pool.
    pub pool: PoolId,
    /// Offset of the first element in the pool's values.
    pub start: u32,
    /// Number of elements.
    pub len: u32,
}

/// A record in a pool: one value per field of its layout, from `start`; absent optional fields
/// hold [`Value::Absent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordRef {
    /// The pool.
    pub pool: PoolId,
    /// The layout, which names the fields.
    pub layout: LayoutId,
    /// Offset of the first field in the pool's values.
    pub start: u32,
}

/// An IP range in a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpRef {
    /// The pool.
    pub pool: PoolId,
    /// Index in the pool's IP ranges.
    pub index: u32,
}

/// An IPv4 or IPv6 address with a prefix length; a plain address has the full length (32 or 128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    /// The address as written (host bits are kept).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

/// A value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// `true` or `false`.
    Bool(bool),
    /// A 64-bit integer.
    Long(i64),
    /// A string.
    Str(Sym),
    /// An entity (or an action, whose type is the schema's action type).
    Entity(EntityUid),
    /// A set.
    Set(SetRef),
    /// A record.
    Record(RecordRef),
    /// An IP address or range.
    Ip(IpRef),
    /// An instant, in milliseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
    /// A span of time in milliseconds.
    Duration(i64),
    /// The value of an optional attribute that is not present; never the result of an expression.
    Absent,
}

impl Value {
    /// The kind of value, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "Bool",
            Value::Long(_) => "Long",
            Value::Str(_) => "String",
            Value::Entity(_) => "entity",
            Value::Set(_) => "Set",
            Value::Record(_) => "record",
            Value::Ip(_) => "Ip",
            Value::Timestamp(_) => "Timestamp",
            Value::Duration(_) => "Duration",
            Value::Absent => "absent",
        }
    }
}

/// A flat store of the values that sets and records are made of, and of IP ranges.
#[derive(Clone, Debug, Default)]
pub struct ValuePool {
    /// Elements of sets and fields of records.
    pub values: Vec<Value>,
    /// IP ranges.
    pub ips: Vec<IpNet>,
}

impl ValuePool {
    /// Adds a set whose elements are already sorted and deduplicated by the caller.
    pub fn push_set(&mut self, pool: PoolId, elements: &[Value]) -> SetRef {
        let start = self.next_offset();
        self.values.extend_from_slice(elements);
        SetRef {
            pool,
            start,
            len: u32::try_from(elements.len()).unwrap_or(u32::MAX),
        }
    }

    /// Adds a record: one value per field of `layout`, in layout order.
    pub fn push_record(&mut self, pool: PoolId, layout: LayoutId, fields: &[Value]) -> RecordRef {
        let start = self.next_offset();
        self.values.extend_from_slice(fields);
        RecordRef {
            pool,
            layout,
            start,
        }
    }

    /// Adds an IP range.
    pub fn push_ip(&mut self, pool: PoolId, ip: IpNet) -> IpRef {
        let index = u32::try_from(self.ips.len()).unwrap_or(u32::MAX);
        self.ips.push(ip);
        IpRef { pool, index }
    }

    fn next_offset(&self) -> u32 {
        u32::try_from(self.values.len()).unwrap_or(u32::MAX)
    }

    /// The values from `start`, `len` of them; empty when out of range.
    pub fn slice(&self, start: u32, len: usize) -> &[Value] {
        let start = start as usize;
        self.values
            .get(start..start.saturating_add(len))
            .unwrap_or(&[])
    }

    /// An IP range; `None` when out of range.
    pub fn ip(&self, index: u32) -> Option<&IpNet> {
        self.ips.get(index as usize)
    }
}
