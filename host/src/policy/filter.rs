//! lightningd's `filter` semantics, applied by the host itself: to enforce a
//! grant's filter whatever the node does, and to narrow a node answer by the
//! guest's own filter on top of the grant's.
//!
//! A filter is an object naming the members to keep: `true` keeps a member
//! whole, an object or `[filter]` filters it further (`[filter]` applies to
//! every element of an array), anything else drops it. `{"peers": [{"id":
//! true}]}` keeps only each peer's `id`.

use serde_json::{Map, Value};

/// `value` with only what `filter` names.
pub fn apply(value: &Value, filter: &Value) -> Value {
    match (value, filter) {
        (Value::Array(items), Value::Array(f)) if f.len() == 1 => {
            Value::Array(items.iter().map(|v| apply(v, &f[0])).collect())
        }
        (Value::Array(items), Value::Object(_)) => {
            Value::Array(items.iter().map(|v| apply(v, filter)).collect())
        }
        (Value::Object(map), Value::Object(f)) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| match f.get(k)? {
                    Value::Bool(true) => Some((k.clone(), v.clone())),
                    sub @ (Value::Object(_) | Value::Array(_)) => Some((k.clone(), apply(v, sub))),
                    _ => None,
                })
                .collect::<Map<String, Value>>(),
        ),
        (_, Value::Bool(true)) => value.clone(),
        // A filter shaped unlike the value keeps nothing of it.
        (Value::Object(_), _) => Value::Object(Map::new()),
        (Value::Array(_), _) => Value::Array(Vec::new()),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_what_is_named() {
        let peers = json!({"peers": [
            {"id": "02aa", "connected": true, "netaddr": ["1.2.3.4:9735"]},
            {"id": "03bb", "connected": false}
        ]});
        assert_eq!(
            apply(&peers, &json!({"peers": [{"id": true}]})),
            json!({"peers": [{"id": "02aa"}, {"id": "03bb"}]})
        );
        assert_eq!(apply(&peers, &json!({"peers": true})), peers);
        assert_eq!(apply(&peers, &json!({"other": true})), json!({}));
        assert_eq!(
            apply(&peers, &json!({"peers": {"id": false}})),
            json!({"peers": [{}, {}]})
        );
    }

    #[test]
    fn a_second_filter_only_narrows() {
        let info = json!({"id": "02aa", "alias": "x", "address": [{"type": "ipv4", "port": 9735}]});
        let grant = json!({"id": true, "address": [{"type": true}]});
        let guest = json!({"address": [{"port": true, "type": true}], "alias": true});
        assert_eq!(
            apply(&apply(&info, &grant), &guest),
            json!({"address": [{"type": "ipv4"}]})
        );
    }
}
