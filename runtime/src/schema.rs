//! The runtime schema: entity types, record layouts, attribute names and actions, all numbered.
//!
//! The compiler builds it from the `entity` and `action` declarations; the entity store validates
//! entities against it, and the evaluator uses its layouts to find an attribute's slot with two
//! array lookups.

use crate::intern::{FxHashMap, Sym};
use crate::value::{AttrId, EntityUid, LayoutId, TypeId};

/// The type of an attribute or field, as the runtime checks entity and context data against it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `Bool`
    Bool,
    /// `Long`
    Long,
    /// `String`
    String,
    /// `Set<T>`
    Set(Box<ValueType>),
    /// A record with this layout.
    Record(LayoutId),
    /// An entity of one of these types.
    Entity(Vec<TypeId>),
    /// `Ip`
    Ip,
    /// `Timestamp`
    Timestamp,
    /// `Duration`
    Duration,
}

/// One field of a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// The field's name.
    pub attr: AttrId,
    /// Its type.
    pub ty: ValueType,
    /// Whether it may be absent.
    pub optional: bool,
}

/// The fields of an entity type or record type, in slot order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// The fields; a record value holds one value per field, in this order.
    pub fields: Vec<FieldDef>,
    /// `slot_of[attr]` is the slot of that attribute, or `u32::MAX`.
    slot_of: Vec<u32>,
}

impl Layout {
    /// A layout with these fields, in this order.
    pub fn new(fields: Vec<FieldDef>) -> Layout {
        let mut slot_of = Vec::new();
        for (slot, field) in fields.iter().enumerate() {
            let index = field.attr.0 as usize;
            if slot_of.len() <= index {
                slot_of.resize(index + 1, u32::MAX);
            }
            if let Some(entry) = slot_of.get_mut(index) {
                *entry = u32::try_from(slot).unwrap_or(u32::MAX);
            }
        }
        Layout { fields, slot_of }
    }

    /// The slot of an attribute, if the layout has it.
    #[inline]
    pub fn slot(&self, attr: AttrId) -> Option<usize> {
        match self.slot_of.get(attr.0 as usize) {
            Some(&slot) if slot != u32::MAX => Some(slot as usize),
            _ => None,
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the layout has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// An entity type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityTypeDef {
    /// The type's name.
    pub name: String,
    /// The layout of its attributes.
    pub layout: LayoutId,
    /// Types whose entities may be its parents.
    pub parents: Vec<TypeId>,
}

/// An action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionDef {
    /// The action's name.
    pub name: String,
    /// The action as an entity of the action type.
    pub uid: EntityUid,
    /// Types the principal may have.
    pub principals: Vec<TypeId>,
    /// Types the resource may have.
    pub resources: Vec<TypeId>,
    /// The layout of its context record.
    pub context: LayoutId,
}

/// The whole runtime schema.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    /// Attribute and field names, indexed by [`AttrId`].
    pub attr_names: Vec<String>,
    attr_ids: FxHashMap<String, AttrId>,
    /// Entity types, indexed by [`TypeId`]; the action type is one of them.
    pub entity_types: Vec<EntityTypeDef>,
    type_ids: FxHashMap<String, TypeId>,
    /// Record layouts, indexed by [`LayoutId`].
    pub layouts: Vec<Layout>,
    /// Actions, in declaration order.
    pub actions: Vec<ActionDef>,
    action_ids: FxHashMap<Sym, usize>,
    /// For each action and action group with a group, the groups it is in (directly or
    /// through other groups), sorted: the hierarchy of the action type.
    action_groups: FxHashMap<Sym, Box<[EntityUid]>>,
    /// The type of actions.
    pub action_type: TypeId,
}

/// The name of the built-in entity type of actions.
pub const ACTION_TYPE_NAME: &str = "Action";

impl Schema {
    /// A schema with only the action type.
    pub fn new() -> Schema {
        let mut schema = Schema::default();
        let empty = schema.add_layout(Layout::default());
        schema.action_type = schema.add_entity_type(ACTION_TYPE_NAME, empty, Vec::new());
        schema
    }

    /// The id of an attribute name, adding it when new.
    pub fn attr(&mut self, name: &str) -> AttrId {
        if let Some(id) = self.attr_ids.get(name) {
            return *id;
        }
        let id = AttrId(u32::try_from(self.attr_names.len()).unwrap_or(u32::MAX));
        self.attr_names.push(name.to_string());
        self.attr_ids.insert(name.to_string(), id);
        id
    }

    /// The id of an attribute name, if any layout uses it.
    pub fn attr_id(&self, name: &str) -> Option<AttrId> {
        self.attr_ids.get(name).copied()
    }

    /// The name of an attribute.
    pub fn attr_name(&self, attr: AttrId) -> &str {
        self.attr_names
            .get(attr.0 as usize)
            .map_or("?", String::as_str)
    }

    /// Adds a layout.
    pub fn add_layout(&mut self, layout: Layout) -> LayoutId {
        let id = LayoutId(u32::try_from(self.layouts.len()).unwrap_or(u32::MAX));
        self.layouts.push(layout);
        id
    }

    /// Replaces a layout added earlier (for recursive record types built in two steps).
    pub fn set_layout(&mut self, id: LayoutId, layout: Layout) {
        if let Some(slot) = self.layouts.get_mut(id.0 as usize) {
            *slot = layout;
        }
    }

    /// A layout by id.
    #[inline]
    pub fn layout(&self, id: LayoutId) -> Option<&Layout> {
        self.layouts.get(id.0 as usize)
    }

    /// Adds an entity type.
    pub fn add_entity_type(
        &mut self,
        name: &str,
        layout: LayoutId,
        parents: Vec<TypeId>,
    ) -> TypeId {
        let id = TypeId(u32::try_from(self.entity_types.len()).unwrap_or(u32::MAX));
        self.entity_types.push(EntityTypeDef {
            name: name.to_string(),
            layout,
            parents,
        });
        self.type_ids.insert(name.to_string(), id);
        id
    }

    /// Sets the parents of an entity type added earlier.
    pub fn set_parents(&mut self, ty: TypeId, parents: Vec<TypeId>) {
        if let Some(def) = self.entity_types.get_mut(ty.0 as usize) {
            def.parents = parents;
        }
    }

    /// Sets the layout of an entity type added earlier.
    pub fn set_entity_layout(&mut self, ty: TypeId, layout: LayoutId) {
        if let Some(def) = self.entity_types.get_mut(ty.0 as usize) {
            def.layout = layout;
        }
    }

    /// An entity type by name.
    pub fn type_id(&self, name: &str) -> Option<TypeId> {
        self.type_ids.get(name).copied()
    }

    /// An entity type by id.
    pub fn entity_type(&self, ty: TypeId) -> Option<&EntityTypeDef> {
        self.entity_types.get(ty.0 as usize)
    }

    /// The name of an entity type.
    pub fn type_name(&self, ty: TypeId) -> &str {
        self.entity_type(ty).map_or("?", |def| def.name.as_str())
    }

    /// Adds an action; `uid.id` is the interned action name.
    pub fn add_action(&mut self, action: ActionDef) {
        self.action_ids.insert(action.uid.id, self.actions.len());
        self.actions.push(action);
    }

    /// An action by its interned name.
    pub fn action(&self, name: Sym) -> Option<&ActionDef> {
        self.action_ids
            .get(&name)
            .and_then(|&index| self.actions.get(index))
    }

    /// Records the groups the action or group `name` is in, directly or through other groups.
    pub fn set_action_groups(&mut self, name: Sym, groups: Vec<Sym>) {
        if groups.is_empty() {
            self.action_groups.remove(&name);
            return;
        }
        let mut groups: Vec<EntityUid> = groups
            .into_iter()
            .map(|id| EntityUid {
                ty: self.action_type,
                id,
            })
            .collect();
        groups.sort_unstable();
        groups.dedup();
        self.action_groups.insert(name, groups.into_boxed_slice());
    }

    /// The groups the action or group `name` is in, directly or through others, sorted: its
    /// ancestors in the hierarchy of the action type.
    pub fn action_groups(&self, name: Sym) -> &[EntityUid] {
        self.action_groups.get(&name).map_or(&[], |groups| groups)
    }

    /// The index of an action in [`Schema::actions`].
    pub fn action_index(&self, name: Sym) -> Option<usize> {
        self.action_ids.get(&name).copied()
    }
}
