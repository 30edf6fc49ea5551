//! JSON a guest hands the host, read so that lightningd cannot read it
//! differently: every object key once, nesting bounded. What the host then
//! checks is the parsed value, and what it forwards is that value serialized
//! by us ([`Checked::to_raw`]), never the guest's text.
//!
//! lightningd's reader (`json_get_member` in `common/json_parse_simple.c`)
//! takes the *first* of duplicate keys, serde_json the last: a guest
//! answering `{"result":"disconnect","result":"continue"}` would be checked
//! as `continue` and acted on as `disconnect`. So duplicates are refused.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// Deepest nesting of arrays and objects a guest's JSON may have. Plugin
/// answers are shallow (lightningd's own deepest, `listpeerchannels`, is
/// under 10); lightningd's `json_tok_copy` and filters recurse, so depth is
/// cut well before it could matter to the node.
pub const MAX_DEPTH: usize = 64;

/// A JSON value read from a guest: unique keys, at most [`MAX_DEPTH`] deep.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked(pub Value);

impl Checked {
    /// The value as JSON text of our own writing: what lightningd (or the
    /// node) gets.
    pub fn to_raw(&self) -> Box<RawValue> {
        serde_json::value::to_raw_value(&self.0).expect("JSON values serialize")
    }
}

/// Parse `text` from a guest: `Err` says why it may not be used (not JSON,
/// a key given twice, nested past [`MAX_DEPTH`]).
pub fn strict(text: &str) -> Result<Checked, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict { depth: 0 }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(Checked(value))
}

/// Builds a [`Value`], refusing duplicate keys and deep nesting.
#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl Strict {
    fn nested<E: de::Error>(self) -> Result<Strict, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!(
                "nested deeper than {MAX_DEPTH} arrays and objects"
            )));
        }
        Ok(Strict {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("key {key:?} is given twice")));
            }
            let value = map.next_value_seed(inner)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for text in [
            r#"{"result":"disconnect","result":"continue"}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            r#"[{"x":[{"y":0,"y":0}]}]"#,
            // The same key spelt with an escape is the same key.
            r#"{"result":"continue","\u0072esult":"fail"}"#,
        ] {
            let e = strict(text).unwrap_err();
            assert!(e.contains("is given twice"), "{text}: {e}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(strict(&deep(MAX_DEPTH)).is_ok());
        let e = strict(&deep(MAX_DEPTH + 1)).unwrap_err();
        assert!(e.starts_with("nested deeper than 64"), "{e}");
        let e = strict(&deep(10_000)).unwrap_err();
        assert!(e.starts_with("nested deeper than 64"), "{e}");
        let objects = format!("{}1{}", r#"{"a":"#.repeat(65), "}".repeat(65));
        assert!(strict(&objects).unwrap_err().starts_with("nested deeper"));
    }

    #[test]
    fn what_is_forwarded_is_what_was_parsed() {
        let text = "{ \"b\" : [1, 2.5, -3, true, null, \"\\u00e9\\n\"], \"a\": {} }";
        let checked = strict(text).unwrap();
        assert_eq!(
            checked.to_raw().get(),
            r#"{"b":[1,2.5,-3,true,null,"é\n"],"a":{}}"#
        );
        assert_eq!(strict(checked.to_raw().get()).unwrap(), checked);
        for bad in ["", "{", "[1,]", "{} {}", "nul", "\"\\ud800\""] {
            assert!(strict(bad).is_err(), "{bad:?}");
        }
    }
}
