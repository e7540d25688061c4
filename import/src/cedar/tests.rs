//! Unit tests of the Cedar translation; the agreement with Cedar itself is tested in the
//! `tests` crate.

use super::*;

const SCHEMA: &str = r#"
namespace Shop {
  type Money = { amount: Long, currency: String };
  entity Team;
  entity User in [Team] { name: String, nick?: String, ip: ipaddr };
  entity Order { owner: User, price: Money, at: datetime };
  action readActions;
  action view, list in [readActions] appliesTo { principal: User, resource: Order };
  action refund appliesTo { principal: User, resource: Order, context: { mfa: Bool, amount: Long } };
}
"#;

#[test]
fn a_schema_becomes_declarations_without_namespaces() {
    let translated = schema::translate(SCHEMA).unwrap();
    let text = translated.text;
    assert!(
        text.contains("type Money = { amount: Long, currency: String };"),
        "{text}"
    );
    assert!(
        text.contains("entity User in Team { ip: Ip, name: String, nick?: String }"),
        "{text}"
    );
    assert!(text.contains("action readActions;"), "{text}");
    assert!(
        text.contains("action view in readActions: User -> Order;"),
        "{text}"
    );
    assert!(
        text.contains("action refund: User -> Order with { amount: Long, mfa: Bool };"),
        "{text}"
    );
    assert!(translated.names.groups.contains("readActions"));
}

#[test]
fn policies_keep_ids_comments_and_meaning() {
    let translated = schema::translate(SCHEMA).unwrap();
    let policies = r#"
// Owners see their orders.
@id("owners")
permit (principal, action in Shop::Action::"readActions", resource)
when { resource.owner == principal && resource.price.amount > -5 };

// No id: Cedar calls it policy1.
forbid (principal is Shop::User in Shop::Team::"blocked", action, resource)
unless { principal has nick && principal.nick like "a*\*b" && principal.ip.isInRange(ip("10.0.0.0/8")) };
"#;
    let (text, count) = policies::translate(policies, &translated.names).unwrap();
    assert_eq!(count, 2);
    assert!(text.contains("// Owners see their orders.\n@id(\"owners\")\npermit principal: *, action in readActions, resource: *"), "{text}");
    assert!(
        text.contains("when resource.owner == principal && resource.price.amount > -5;"),
        "{text}"
    );
    assert!(
        text.contains("@id(\"policy1\")\nforbid principal: User in Team(\"blocked\")"),
        "{text}"
    );
    assert!(text.contains(r#"principal.nick like "a*\\*b""#), "{text}");
}

#[test]
fn what_has_no_counterpart_is_refused_with_its_place() {
    let translated = schema::translate(SCHEMA).unwrap();
    let errors = policies::translate(
        "@id(\"t\") permit (principal == ?principal, action, resource);",
        &translated.names,
    )
    .unwrap_err();
    assert!(
        matches!(&errors[..], [ImportError::Unsupported { place, .. }] if place == "policy `t`"),
        "{errors:?}"
    );
    let errors = schema::translate("entity A { d: decimal };").unwrap_err();
    assert!(
        matches!(&errors[..], [ImportError::Unsupported { construct, .. }] if construct.contains("decimal")),
        "{errors:?}"
    );
}

#[test]
fn entities_and_requests_lose_their_wrappers() {
    let entities = r#"[{"uid": {"__entity": {"type": "Shop::User", "id": "alice"}}, "attrs": {"ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}, "boss": {"type": "Shop::User", "id": "bob"}}, "parents": [{"type": "Shop::Team", "id": "t"}]}]"#;
    let text = entities::translate_entities(entities).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"type": "User", "id": "alice", "attrs": {"ip": "10.0.0.1", "boss": {"type": "User", "id": "bob"}}, "parents": [{"type": "Team", "id": "t"}]}])
    );
    let request = serde_json::json!({"principal": "Shop::User::\"alice\"", "action": {"type": "Shop::Action", "id": "view"}, "resource": {"__entity": {"type": "Shop::Order", "id": "o1"}}, "context": {"at": {"__extn": {"fn": "datetime", "arg": "2024-01-01"}}}});
    assert_eq!(
        entities::translate_request(&request).unwrap(),
        serde_json::json!({"principal": {"type": "User", "id": "alice"}, "action": "view", "resource": {"type": "Order", "id": "o1"}, "context": {"at": "2024-01-01T00:00:00Z"}})
    );
}
