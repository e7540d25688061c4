//! Building a request from typed parts: what a host that already knows the request's pieces
//! (the proxy: a route's action and resource, a credential's principal, context fields read
//! from the HTTP request) uses instead of writing JSON for the loader to parse back.
//!
//! The builder owns the request's string table and value pool while it is built: strings become
//! the store's symbols where it has them and request-local ones otherwise, as the JSON loader
//! does (it is itself a client of this builder). [`RequestBuilder::finish`] checks what holds
//! between the parts (the action takes the principal's and the resource's types) and assembles
//! the [`Request`], with the request's own entities as its overlay.
//!
//! Errors are the JSON loader's [`RequestError`]s, named by the field they concern
//! (`principal.type`, `context.amount`), so that every client reports a request that does not fit
//! the schema the same way.

use crate::json::request::{RequestError, RequestErrorKind};
use crate::json::PreparedEntities;
use crate::overlay::{Overlay, OverlayEntity};
use crate::program::Program;
use crate::request::{Request, RequestStrings};
use crate::schema::{ActionDef, FieldDef, ValueType};
use crate::store::EntityStore;
use crate::value::{EntityUid, IpNet, LayoutId, RecordRef, TypeId, Value, ValuePool};

/// A value for one context field, already of a scalar type of the schema.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Part<'t> {
    /// A `Bool`.
    Bool(bool),
    /// A `Long`.
    Long(i64),
    /// A `String`.
    Str(&'t str),
    /// An `Ip` address or range.
    Ip(IpNet),
    /// A `Timestamp`, in milliseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
    /// A `Duration`, in milliseconds.
    Duration(i64),
}

impl Part<'_> {
    /// Whether a field of type `ty` holds this part.
    pub fn fits(&self, ty: &ValueType) -> bool {
        matches!(
            (self, ty),
            (Part::Bool(_), ValueType::Bool)
                | (Part::Long(_), ValueType::Long)
                | (Part::Str(_), ValueType::String)
                | (Part::Ip(_), ValueType::Ip)
                | (Part::Timestamp(_), ValueType::Timestamp)
                | (Part::Duration(_), ValueType::Duration)
        )
    }
}

/// Builds one request against a program and the store it will be decided against.
pub struct RequestBuilder<'a> {
    pub(crate) program: &'a Program,
    pub(crate) store: &'a EntityStore,
    pub(crate) strings: RequestStrings,
    pub(crate) pool: ValuePool,
}

impl<'a> RequestBuilder<'a> {
    /// A builder for a request decided with `program` against `store`.
    pub fn new(program: &'a Program, store: &'a EntityStore) -> RequestBuilder<'a> {
        RequestBuilder {
            program,
            store,
            strings: RequestStrings::after(&store.interner),
            pool: ValuePool::default(),
        }
    }

    /// The entity `ty` / `id`, its id a symbol of this request.
    pub fn entity(&mut self, ty: TypeId, id: &str) -> EntityUid {
        let id = self.strings.sym(&self.store.interner, id);
        EntityUid { ty, id }
    }

    /// The value of a part, written into this request's pool where it needs room.
    pub fn value(&mut self, part: Part<'_>) -> Value {
        match part {
            Part::Bool(value) => Value::Bool(value),
            Part::Long(value) => Value::Long(value),
            Part::Str(text) => Value::Str(self.strings.sym(&self.store.interner, text)),
            Part::Ip(ip) => Value::Ip(self.pool.push_ip(Request::POOL, ip)),
            Part::Timestamp(millis) => Value::Timestamp(millis),
            Part::Duration(millis) => Value::Duration(millis),
        }
    }

    /// A record of `layout` from its field values in layout order ([`Value::Absent`] for a
    /// field not given). `path` names the record in errors (`context`, `context.client`): a
    /// required field left absent, or a value count that is not the layout's, is an error.
    pub fn record(
        &mut self,
        layout: LayoutId,
        values: &[Value],
        path: &str,
    ) -> Result<RecordRef, RequestError> {
        let schema = &self.program.schema;
        let fields: &[FieldDef] = schema.layout(layout).map_or(&[], |layout| &layout.fields);
        if fields.len() != values.len() {
            return Err(RequestError::new(
                RequestErrorKind::TypeMismatch,
                path,
                format!(
                    "expected {} fields, found {} values",
                    fields.len(),
                    values.len()
                ),
            ));
        }
        if let Some(field) = fields
            .iter()
            .zip(values)
            .find(|(field, value)| !field.optional && **value == Value::Absent)
            .map(|(field, _)| field)
        {
            let name = schema.attr_name(field.attr);
            return Err(RequestError::new(
                RequestErrorKind::MissingField,
                if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                },
                format!(
                    "missing; expected `{}`",
                    crate::json::reader::type_text(schema, &field.ty)
                ),
            ));
        }
        Ok(self.pool.push_record(Request::POOL, layout, values))
    }

    /// The request's own entities (a credential's principal, say), checked against the schema
    /// as the entities file is; errors are named `entities[0].attrs.level`.
    pub fn entities(
        &mut self,
        prepared: &PreparedEntities,
    ) -> Result<Vec<OverlayEntity>, Vec<RequestError>> {
        crate::json::request::load_entities_into(self, prepared.items(), 0)
    }

    /// The request: `principal` does `action` to `resource` in `context` (a record of the
    /// action's context layout, from [`RequestBuilder::record`]), with `entities` seen over
    /// the store for this request only. Errors when the action does not take the principal's or
    /// the resource's type, or the context is not of its layout.
    pub fn finish(
        self,
        principal: EntityUid,
        action: &ActionDef,
        resource: EntityUid,
        context: RecordRef,
        entities: Vec<OverlayEntity>,
    ) -> Result<Request, Vec<RequestError>> {
        let mut errors = applicability(self.program, action, Some(principal), Some(resource));
        if context.layout != action.context {
            errors.push(RequestError::new(
                RequestErrorKind::TypeMismatch,
                "context",
                format!(
                    "the context is not of the layout of action `{}`",
                    action.name
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(self.assemble(principal, action, resource, context, entities))
    }

    /// An attempt at `action` in `context`, before its principal is known: what
    /// [`crate::eval::attempt_obligations`] counts the `on attempts` limits of. Such limits
    /// read only `action` and `context` (the checker refuses any other read), so the
    /// attempt's principal and resource are the action itself and are never read.
    pub fn finish_attempt(
        self,
        action: &ActionDef,
        context: RecordRef,
    ) -> Result<Request, Vec<RequestError>> {
        if context.layout != action.context {
            return Err(vec![RequestError::new(
                RequestErrorKind::TypeMismatch,
                "context",
                format!(
                    "the context is not of the layout of action `{}`",
                    action.name
                ),
            )]);
        }
        Ok(Request {
            principal: action.uid,
            action: action.uid,
            resource: action.uid,
            context,
            pool: self.pool,
            strings: self.strings,
            entities: None,
        })
    }

    /// [`RequestBuilder::finish`] once its checks are made.
    pub(crate) fn assemble(
        self,
        principal: EntityUid,
        action: &ActionDef,
        resource: EntityUid,
        context: RecordRef,
        entities: Vec<OverlayEntity>,
    ) -> Request {
        // Requests without entities keep `None`: deciding them costs one check more.
        let entities = (!entities.is_empty())
            .then(|| Box::new(Overlay::new(self.store, entities, &[principal, resource])));
        Request {
            principal,
            action: action.uid,
            resource,
            context,
            pool: self.pool,
            strings: self.strings,
            entities,
        }
    }
}

/// `request` with more entities of its own, loaded from `extra` into its pool and strings (an
/// entity an entity provider answered, say); the entities it came with stay, and win over an
/// extra one of the same identity.
pub fn with_entities(
    program: &Program,
    store: &EntityStore,
    request: Request,
    extra: &[&PreparedEntities],
) -> Result<Request, Vec<RequestError>> {
    let Request {
        principal,
        action,
        resource,
        context,
        pool,
        strings,
        entities,
    } = request;
    let mut builder = RequestBuilder {
        program,
        store,
        strings,
        pool,
    };
    let mut all = Vec::new();
    for prepared in extra {
        all.extend(builder.entities(prepared)?);
    }
    // The overlay keeps the last of equal identities: the request's own come last.
    if let Some(overlay) = &entities {
        all.extend(overlay.iter().cloned());
    }
    let entities =
        (!all.is_empty()).then(|| Box::new(Overlay::new(store, all, &[principal, resource])));
    Ok(Request {
        principal,
        action,
        resource,
        context,
        pool: builder.pool,
        strings: builder.strings,
        entities,
    })
}

/// Whether `uid` is an entity `request` can see: in the store or among its own.
pub fn knows(store: &EntityStore, request: &Request, uid: EntityUid) -> bool {
    store.get(uid).is_some()
        || request
            .entities
            .as_ref()
            .is_some_and(|overlay| overlay.get(uid).is_some())
}

/// Whether `action` takes the principal's and the resource's types: one error per part it does
/// not take, naming `principal.type` or `resource.type` (a part not given is not checked).
pub(crate) fn applicability(
    program: &Program,
    action: &ActionDef,
    principal: Option<EntityUid>,
    resource: Option<EntityUid>,
) -> Vec<RequestError> {
    let schema = &program.schema;
    let mut errors = Vec::new();
    let checks = [
        ("principal", principal, &action.principals),
        ("resource", resource, &action.resources),
    ];
    for (field, uid, allowed) in checks {
        let Some(uid) = uid else {
            continue;
        };
        if allowed.contains(&uid.ty) {
            continue;
        }
        let takes = if allowed.is_empty() {
            "none".to_owned()
        } else {
            crate::json::reader::entity_types_text(schema, allowed)
        };
        errors.push(RequestError::new(
            RequestErrorKind::NotApplicable,
            format!("{field}.type"),
            format!(
                "action `{}` does not take a {field} of type `{}`; it takes `{takes}`",
                action.name,
                schema.type_name(uid.ty)
            ),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::Namer;
    use crate::json::{fixture, load_request, RequestErrorKind};
    use crate::value::IpNet;

    fn setup() -> (Program, EntityStore) {
        let program = fixture::program();
        let store = fixture::store(&program);
        (program, store)
    }

    /// The request's context as JSON text, as the audit line writes it.
    fn context_text(program: &Program, store: &EntityStore, request: &Request) -> String {
        let mut out = String::new();
        Namer {
            program,
            store,
            request,
        }
        .write_json(&mut out, Value::Record(request.context));
        out
    }

    /// The refund action's context record, in layout order: amount, mfa, origin, at, window,
    /// tags, shipping, approver.
    fn refund_context(builder: &mut RequestBuilder<'_>, layout: LayoutId) -> RecordRef {
        let origin = builder.value(Part::Ip(IpNet {
            addr: "10.1.2.3".parse().unwrap(),
            prefix: 32,
        }));
        let shipping_layout = match builder
            .program
            .schema
            .layout(layout)
            .and_then(|layout| layout.fields.get(6))
            .map(|field| &field.ty)
        {
            Some(ValueType::Record(shipping)) => *shipping,
            other => panic!("shipping is not a record: {other:?}"),
        };
        let shipping = builder
            .record(
                shipping_layout,
                &[Value::Long(7), Value::Absent],
                "context.shipping",
            )
            .unwrap();
        let values = [
            builder.value(Part::Long(5)),
            builder.value(Part::Bool(true)),
            origin,
            builder.value(Part::Timestamp(1_706_702_400_000)),
            builder.value(Part::Duration(3_600_000)),
            Value::Absent,
            Value::Record(shipping),
            Value::Absent,
        ];
        builder.record(layout, &values, "context").unwrap()
    }

    #[test]
    fn a_request_built_from_parts_is_the_request_loaded_from_its_json() {
        let (program, store) = setup();
        let schema = &program.schema;
        let refund = schema.actions.iter().find(|a| a.name == "refund").unwrap();
        let mut builder = RequestBuilder::new(&program, &store);
        let principal = builder.entity(schema.type_id("User").unwrap(), "alice");
        let resource = builder.entity(schema.type_id("Document").unwrap(), "new-doc");
        let context = refund_context(&mut builder, refund.context);
        let built = builder
            .finish(principal, refund, resource, context, Vec::new())
            .unwrap();

        let json = r#"{"principal": {"type": "User", "id": "alice"}, "action": "refund",
            "resource": {"type": "Document", "id": "new-doc"},
            "context": {"amount": 5, "mfa": true, "origin": "10.1.2.3",
                        "at": "2024-01-31T12:00:00Z", "window": "1h", "shipping": {"zip": 7}}}"#;
        let loaded = load_request(&program, &store, json).unwrap();
        assert_eq!(built.principal, loaded.principal);
        assert_eq!(built.action, loaded.action);
        assert_eq!(built.resource, loaded.resource);
        assert_eq!(built.strings.resolve(built.resource.id), Some("new-doc"));
        assert_eq!(
            context_text(&program, &store, &built),
            context_text(&program, &store, &loaded)
        );
        assert_eq!(
            context_text(&program, &store, &built),
            r#"{"amount":5,"mfa":true,"origin":"10.1.2.3","at":"2024-01-31T12:00:00Z","window":"1h","shipping":{"zip":7}}"#
        );
    }

    #[test]
    fn a_context_written_as_json_loads_back_as_the_same_context() {
        let (program, store) = setup();
        let json = r#"{"principal": {"type": "User", "id": "alice"}, "action": "refund",
            "resource": {"type": "Document", "id": "d1"},
            "context": {"amount": -3, "mfa": false, "origin": "10.0.0.0/8", "tags": ["b", "a\"\n"],
                        "shipping": {"zip": 1, "city": "Zürich"}, "approver": {"type": "User", "id": "bob"}}}"#;
        let loaded = load_request(&program, &store, json).unwrap();
        let text = context_text(&program, &store, &loaded);
        let again = format!(
            r#"{{"principal": {{"type": "User", "id": "alice"}}, "action": "refund", "resource": {{"type": "Document", "id": "d1"}}, "context": {text}}}"#
        );
        let reloaded = load_request(&program, &store, &again).unwrap();
        assert_eq!(context_text(&program, &store, &reloaded), text);
        assert!(text.contains(r#""a\"\n""#), "{text}");
    }

    #[test]
    fn a_required_field_left_absent_names_the_field() {
        let (program, store) = setup();
        let refund = program
            .schema
            .actions
            .iter()
            .find(|a| a.name == "refund")
            .unwrap();
        let mut builder = RequestBuilder::new(&program, &store);
        let mut values = vec![Value::Absent; 8];
        values[0] = Value::Long(5);
        let error = builder
            .record(refund.context, &values, "context")
            .unwrap_err();
        assert_eq!(error.kind, RequestErrorKind::MissingField);
        assert_eq!(error.field, "context.mfa");
        assert_eq!(error.message, "missing; expected `Bool`");
        let error = builder
            .record(refund.context, &values[..3], "context")
            .unwrap_err();
        assert_eq!(error.kind, RequestErrorKind::TypeMismatch);
    }

    #[test]
    fn a_principal_the_action_does_not_take_is_refused() {
        let (program, store) = setup();
        let schema = &program.schema;
        let read = schema.actions.iter().find(|a| a.name == "read").unwrap();
        let mut builder = RequestBuilder::new(&program, &store);
        let principal = builder.entity(schema.type_id("Tenant").unwrap(), "acme");
        let resource = builder.entity(schema.type_id("Document").unwrap(), "d1");
        let context = builder.record(read.context, &[], "context").unwrap();
        let errors = builder
            .finish(principal, read, resource, context, Vec::new())
            .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].kind, RequestErrorKind::NotApplicable);
        assert_eq!(errors[0].field, "principal.type");
    }

    #[test]
    fn prepared_entities_come_with_the_request() {
        let (program, store) = setup();
        let schema = &program.schema;
        let read = schema.actions.iter().find(|a| a.name == "read").unwrap();
        let prepared = PreparedEntities::from_value(&serde_json::json!([{
            "type": "User", "id": "carol",
            "attrs": {"tenant": {"type": "Tenant", "id": "acme"}, "email": "c@x", "clearance": 1, "trainings": []},
            "parents": []
        }]))
        .unwrap();
        let mut builder = RequestBuilder::new(&program, &store);
        let principal = builder.entity(schema.type_id("User").unwrap(), "carol");
        let resource = builder.entity(schema.type_id("Document").unwrap(), "d1");
        let context = builder.record(read.context, &[], "context").unwrap();
        let entities = builder.entities(&prepared).unwrap();
        let request = builder
            .finish(principal, read, resource, context, entities)
            .unwrap();
        let namer = Namer {
            program: &program,
            store: &store,
            request: &request,
        };
        assert_eq!(
            namer
                .attribute(principal, "email")
                .map(|email| namer.value(email)),
            Some("\"c@x\"".to_string())
        );

        let wrong = PreparedEntities::from_value(&serde_json::json!([{
            "type": "User", "id": "carol", "attrs": {"clearance": "high"}, "parents": []
        }]))
        .unwrap();
        let mut builder = RequestBuilder::new(&program, &store);
        let errors = builder.entities(&wrong).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|error| error.field == "entities[0].attrs.clearance"),
            "{errors:?}"
        );
    }
}
