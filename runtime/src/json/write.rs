//! Writing entities back as the entities JSON they load from: the inverse of
//! [`load_entities`](crate::json::load_entities), for `authz` tools that show or export the data
//! and for round-trip tests.
//!
//! Sets come out in the store's order (sorted by [`eval::compare`](crate::eval::compare), which
//! orders strings by symbol, not by text), optional attributes that are absent are left out, and
//! extension values are written as the strings they parse from.

use serde_json::{json, Map, Value as Json};

use crate::ext::{format_duration, format_timestamp};
use crate::program::Program;
use crate::schema::Schema;
use crate::store::EntityStore;
use crate::value::{EntityUid, LayoutId, Value};

/// Every entity of `store` as the entities JSON, in the order they were loaded.
pub fn entities_to_json(program: &Program, store: &EntityStore) -> Json {
    let writer = Writer {
        schema: &program.schema,
        store,
    };
    let entities = store
        .iter()
        .map(|entity| {
            let attrs = program
                .schema
                .entity_type(entity.uid.ty)
                .map_or(Json::Object(Map::new()), |def| {
                    writer.fields(def.layout, store.attrs(entity))
                });
            let parents: Vec<Json> = entity.parents.iter().map(|p| writer.uid(*p)).collect();
            let mut object = Map::new();
            object.insert(
                "type".to_owned(),
                json!(program.schema.type_name(entity.uid.ty)),
            );
            object.insert("id".to_owned(), json!(writer.text(entity.uid.id)));
            object.insert("attrs".to_owned(), attrs);
            object.insert("parents".to_owned(), Json::Array(parents));
            Json::Object(object)
        })
        .collect();
    Json::Array(entities)
}

/// A value of the store as JSON, in the form the entities file gives it.
pub fn value_to_json(program: &Program, store: &EntityStore, value: Value) -> Json {
    Writer {
        schema: &program.schema,
        store,
    }
    .value(value)
}

struct Writer<'a> {
    schema: &'a Schema,
    store: &'a EntityStore,
}

impl Writer<'_> {
    fn text(&self, sym: crate::intern::Sym) -> &str {
        self.store.interner.resolve(sym).unwrap_or("")
    }

    fn uid(&self, uid: EntityUid) -> Json {
        json!({"type": self.schema.type_name(uid.ty), "id": self.text(uid.id)})
    }

    fn fields(&self, layout: LayoutId, values: &[Value]) -> Json {
        let fields = self.schema.layout(layout).map_or(&[][..], |l| &l.fields);
        let mut object = Map::new();
        for (field, value) in fields.iter().zip(values) {
            if *value == Value::Absent {
                continue;
            }
            object.insert(
                self.schema.attr_name(field.attr).to_owned(),
                self.value(*value),
            );
        }
        Json::Object(object)
    }

    fn value(&self, value: Value) -> Json {
        let pool = &self.store.pool;
        match value {
            Value::Bool(value) => json!(value),
            Value::Long(value) => json!(value),
            Value::Str(sym) => json!(self.text(sym)),
            Value::Entity(uid) => self.uid(uid),
            Value::Set(set) => Json::Array(
                pool.slice(set.start, set.len as usize)
                    .iter()
                    .map(|element| self.value(*element))
                    .collect(),
            ),
            Value::Record(record) => {
                let n_fields = self.schema.layout(record.layout).map_or(0, |l| l.len());
                self.fields(record.layout, pool.slice(record.start, n_fields))
            }
            Value::Ip(ip) => match pool.ip(ip.index) {
                Some(net) if net.prefix == if net.addr.is_ipv4() { 32 } else { 128 } => {
                    json!(net.addr.to_string())
                }
                Some(net) => json!(format!("{}/{}", net.addr, net.prefix)),
                None => Json::Null,
            },
            Value::Timestamp(millis) => json!(format_timestamp(millis)),
            Value::Duration(millis) => json!(format_duration(millis)),
            Value::Absent => Json::Null,
        }
    }
}
