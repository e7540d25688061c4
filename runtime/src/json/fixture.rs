//! A hand-made program for the loaders' tests: the schema of `examples/docs` (tenants, roles,
//! groups, users, folders and documents), plus a `Device` type with extension values, nested
//! records and sets of sets, and a `refund` action with a rich context; and a byte mutator for
//! no-panic tests.

use crate::intern::Interner;
use crate::program::Program;
use crate::schema::{ActionDef, FieldDef, Layout, Schema, ValueType};
use crate::value::{EntityUid, TypeId};

fn field(schema: &mut Schema, name: &str, ty: ValueType) -> FieldDef {
    FieldDef {
        attr: schema.attr(name),
        ty,
        optional: false,
    }
}

fn optional(schema: &mut Schema, name: &str, ty: ValueType) -> FieldDef {
    FieldDef {
        optional: true,
        ..field(schema, name, ty)
    }
}

fn entity(ty: TypeId) -> ValueType {
    ValueType::Entity(vec![ty])
}

fn set(ty: ValueType) -> ValueType {
    ValueType::Set(Box::new(ty))
}

/// The test program; its interner holds the action names and the string `"pdf"`.
pub(crate) fn program() -> Program {
    let mut schema = Schema::new();
    let mut interner = Interner::new();
    let empty = schema.add_layout(Layout::default());
    let tenant = schema.add_entity_type("Tenant", empty, vec![]);
    let role = schema.add_entity_type("Role", empty, vec![]);
    let group = schema.add_entity_type("Group", empty, vec![]);
    let user = schema.add_entity_type("User", empty, vec![]);
    let folder = schema.add_entity_type("Folder", empty, vec![]);
    let document = schema.add_entity_type("Document", empty, vec![]);
    let device = schema.add_entity_type("Device", empty, vec![]);
    schema.set_parents(role, vec![role, tenant]);
    schema.set_parents(group, vec![group, tenant]);
    schema.set_parents(user, vec![role, group, tenant]);
    schema.set_parents(folder, vec![folder, tenant]);
    schema.set_parents(document, vec![folder]);

    let fields = vec![
        field(&mut schema, "name", ValueType::String),
        field(&mut schema, "plan", ValueType::String),
        field(&mut schema, "viewers", entity(role)),
        field(&mut schema, "editors", entity(role)),
        field(&mut schema, "admins", entity(role)),
    ];
    let layout = schema.add_layout(Layout::new(fields));
    schema.set_entity_layout(tenant, layout);

    let fields = vec![field(&mut schema, "tenant", entity(tenant))];
    let layout = schema.add_layout(Layout::new(fields));
    schema.set_entity_layout(role, layout);

    let fields = vec![
        field(&mut schema, "tenant", entity(tenant)),
        field(&mut schema, "name", ValueType::String),
    ];
    let layout = schema.add_layout(Layout::new(fields));
    schema.set_entity_layout(group, layout);

    let fields = vec![
        field(&mut schema, "tenant", entity(tenant)),
        field(&mut schema, "email", ValueType::String),
        field(&mut schema, "clearance", ValueType::Long),
        field(&mut schema, "trainings", set(ValueType::String)),
        optional(&mut schema, "suspended", ValueType::Bool),
        optional(&mut schema, "suspensionNote", ValueType::String),
    ];
    let layout = schema.add_layout(Layout::new(fields));
    schema.set_entity_layout(user, layout);

    let fields = vec![
        field(&mut schema, "tenant", entity(tenant)),
        field(&mut schema, "owner", entity(user)),
    ];
    let layout = schema.add_layout(Layout::new(fields));
    schema.set_entity_layout(folder, layout);

    let fields = vec![
        field(&mut schema, "tenant", entity(tenant)),
        field(&mut schema, "owner", entity(user)),
        field(&mut schema, "classification", ValueType::Long),
        field(&mut schema, "labels", set(ValueType::String)),
        field(&mut schema, "requiredTrainings", set(ValueType::String)),
        field(&mut schema, "readers", entity(group)),
    ];
    let layout = schema.add_layout(Layout::new(fields));
    schema.set_entity_layout(document, layout);

    let fields = vec![
        field(&mut schema, "zip", ValueType::Long),
        optional(&mut schema, "city", ValueType::String),
    ];
    let address = schema.add_layout(Layout::new(fields));
    let fields = vec![
        field(&mut schema, "ip", ValueType::Ip),
        field(&mut schema, "seen", ValueType::Timestamp),
        field(&mut schema, "ttl", ValueType::Duration),
        field(&mut schema, "address", ValueType::Record(address)),
        field(&mut schema, "grid", set(set(ValueType::Long))),
        optional(&mut schema, "sites", set(ValueType::Record(address))),
        optional(&mut schema, "owner", ValueType::Entity(vec![user, group])),
    ];
    let layout = schema.add_layout(Layout::new(fields));
    schema.set_entity_layout(device, layout);

    let action = |schema: &mut Schema,
                  interner: &mut Interner,
                  name: &str,
                  principals: Vec<TypeId>,
                  resources: Vec<TypeId>,
                  context| {
        let uid = EntityUid {
            ty: schema.action_type,
            id: interner.intern(name),
        };
        schema.add_action(ActionDef {
            name: name.to_owned(),
            uid,
            principals,
            resources,
            context,
        });
    };
    for name in ["read", "write", "delete", "share"] {
        action(
            &mut schema,
            &mut interner,
            name,
            vec![user],
            vec![document],
            empty,
        );
    }
    let fields = vec![field(&mut schema, "format", ValueType::String)];
    let export = schema.add_layout(Layout::new(fields));
    action(
        &mut schema,
        &mut interner,
        "export",
        vec![user],
        vec![document],
        export,
    );
    let fields = vec![
        field(&mut schema, "amount", ValueType::Long),
        field(&mut schema, "mfa", ValueType::Bool),
        optional(&mut schema, "origin", ValueType::Ip),
        optional(&mut schema, "at", ValueType::Timestamp),
        optional(&mut schema, "window", ValueType::Duration),
        optional(&mut schema, "tags", set(ValueType::String)),
        optional(&mut schema, "shipping", ValueType::Record(address)),
        optional(&mut schema, "approver", entity(user)),
    ];
    let refund = schema.add_layout(Layout::new(fields));
    action(
        &mut schema,
        &mut interner,
        "refund",
        vec![user, device],
        vec![document],
        refund,
    );
    interner.intern("pdf");
    Program {
        interner,
        schema,
        ..Program::default()
    }
}

/// A small deterministic generator (xorshift), so that the mutation test needs no dependency.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Deletes bytes of `text`, duplicates runs of them or inserts JSON-ish pieces, a few times.
pub(crate) fn mutate(rng: &mut Rng, text: &str) -> String {
    const PIECES: [&str; 12] = [
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "\"",
        "1e400",
        "-1",
        "null",
        "\\u0000",
        "9223372036854775808",
    ];
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(bytes.len() + 1).min(bytes.len());
        match rng.below(3) {
            0 if at < bytes.len() => {
                bytes.remove(at);
            }
            1 => {
                let end = (at + rng.below(20)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => {
                let piece = PIECES[rng.below(PIECES.len())];
                bytes.splice(at..at, piece.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The store of the requests' tests: one user, alice, of tenant acme.
pub(crate) fn store(program: &Program) -> crate::store::EntityStore {
    const ENTITIES: &str = r#"[{"type": "User", "id": "alice", "attrs": {"tenant": {"type": "Tenant", "id": "acme"}, "email": "a@x", "clearance": 3, "trainings": ["pii"]}}]"#;
    crate::json::load_entities(program, ENTITIES)
        .unwrap_or_else(|errors| panic!("the fixture's entities load: {errors:?}"))
}
