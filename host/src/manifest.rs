//! The guest's manifest in lightningd's terms: checking it, answering
//! `getmanifest` with it, and typing `init`'s option values by it.

use crate::bindings::{Manifest, OptionDecl, OptionType, OptionValue};
use anyhow::bail;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Methods the host answers itself; a guest cannot declare them.
const RESERVED_METHODS: &[&str] = &["getmanifest", "init", "shutdown"];

/// Refuse a manifest lightningd would choke on, with the reason.
pub fn validate(manifest: &Manifest) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    for opt in &manifest.options {
        if opt.name.is_empty() || !seen.insert(opt.name.as_str()) {
            bail!("option name {:?} is empty or declared twice", opt.name);
        }
        match (&opt.type_, &opt.default) {
            (OptionType::Flag, Some(_)) => {
                bail!("flag option {:?} cannot have a default", opt.name)
            }
            (_, None) => {}
            (t, Some(v)) if type_of(v) != type_name(t) => {
                bail!(
                    "option {:?} is {} but its default is {}",
                    opt.name,
                    type_name(t),
                    type_of(v)
                )
            }
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    for r in &manifest.rpc {
        if r.method.is_empty() || !seen.insert(r.method.as_str()) {
            bail!("rpc request {:?} is empty or made twice", r.method);
        }
    }
    let mut seen = BTreeSet::new();
    for m in &manifest.methods {
        if m.name.is_empty() || !seen.insert(m.name.as_str()) {
            bail!("method name {:?} is empty or declared twice", m.name);
        }
        if RESERVED_METHODS.contains(&m.name.as_str()) {
            bail!(
                "method name {:?} is reserved by the plugin protocol",
                m.name
            );
        }
    }
    Ok(())
}

fn type_name(t: &OptionType) -> &'static str {
    match t {
        OptionType::String => "string",
        OptionType::Int => "int",
        OptionType::Bool => "bool",
        OptionType::Flag => "flag",
    }
}

fn type_of(v: &OptionValue) -> &'static str {
    match v {
        OptionValue::String(_) => "string",
        OptionValue::Int(_) => "int",
        OptionValue::Bool(_) => "bool",
    }
}

fn to_json(v: &OptionValue) -> Value {
    match v {
        OptionValue::String(s) => json!(s),
        OptionValue::Int(i) => json!(i),
        OptionValue::Bool(b) => json!(b),
    }
}

/// Whether two manifests are the same to lightningd and to the operator
/// (what a hot swap may not change).
pub fn same(a: &Manifest, b: &Manifest) -> bool {
    fn asks(m: &Manifest) -> (Vec<(&str, &str)>, bool) {
        let rpc = m
            .rpc
            .iter()
            .map(|r| (r.method.as_str(), r.reason.as_str()))
            .collect();
        (rpc, m.wants_store)
    }
    getmanifest_result(a) == getmanifest_result(b) && asks(a) == asks(b)
}

/// The `result` of `getmanifest`.
pub fn getmanifest_result(manifest: &Manifest) -> Value {
    let options: Vec<Value> = manifest
        .options
        .iter()
        .map(|o| {
            let mut opt = json!({
                "name": o.name,
                "type": type_name(&o.type_),
                "description": o.description,
            });
            if let Some(default) = &o.default {
                opt["default"] = to_json(default);
            }
            opt
        })
        .collect();
    let methods: Vec<Value> = manifest
        .methods
        .iter()
        .map(|m| json!({ "name": m.name, "usage": m.usage, "description": m.description }))
        .collect();
    json!({
        "dynamic": manifest.dynamic,
        "options": options,
        "rpcmethods": methods,
        "subscriptions": [],
        "hooks": [],
        "featurebits": {},
        "notifications": [],
        // We echo ids verbatim, so lightningd may use its string ids.
        "nonnumericids": true,
    })
}

/// Type the options `init` gave by their declarations, fill in defaults, and
/// refuse any the guest did not declare. The error is the reason to give
/// lightningd.
pub fn typed_options(
    decls: &[OptionDecl],
    given: &Map<String, Value>,
) -> Result<BTreeMap<String, OptionValue>, String> {
    let mut typed = BTreeMap::new();
    for (name, value) in given {
        let Some(decl) = decls.iter().find(|d| &d.name == name) else {
            return Err(format!(
                "unknown option {name:?}: the plugin does not declare it"
            ));
        };
        if let Some(v) = typed_value(&decl.type_, value).ok_or_else(|| {
            format!(
                "option {name:?} must be {}, got {value}",
                type_name(&decl.type_)
            )
        })? {
            typed.insert(name.clone(), v);
        }
    }
    for decl in decls {
        if let (false, Some(default)) = (typed.contains_key(&decl.name), &decl.default) {
            typed.insert(decl.name.clone(), default.clone());
        }
    }
    Ok(typed)
}

/// `None` when the value cannot have the type; `Some(None)` for an unset flag.
/// Numbers and booleans may come as strings (the dev runner's `--option k=v`,
/// older lightningd versions).
fn typed_value(t: &OptionType, v: &Value) -> Option<Option<OptionValue>> {
    let value = match (t, v) {
        (OptionType::String, Value::String(s)) => OptionValue::String(s.clone()),
        (OptionType::Int, Value::Number(n)) => OptionValue::Int(n.as_i64()?),
        (OptionType::Int, Value::String(s)) => OptionValue::Int(s.trim().parse().ok()?),
        (OptionType::Bool | OptionType::Flag, Value::Bool(b)) => OptionValue::Bool(*b),
        (OptionType::Bool | OptionType::Flag, Value::String(s)) => {
            OptionValue::Bool(s.parse().ok()?)
        }
        _ => return None,
    };
    // An unset flag is absent, as lightningd does it.
    if matches!((t, &value), (OptionType::Flag, OptionValue::Bool(false))) {
        return Some(None);
    }
    Some(Some(value))
}

/// The options as the JSON object `config.options` returns.
pub fn options_json(options: &BTreeMap<String, OptionValue>) -> String {
    let map: Map<String, Value> = options
        .iter()
        .map(|(k, v)| (k.clone(), to_json(v)))
        .collect();
    Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::cln::plugin::types::MethodDecl;

    fn decl(name: &str, type_: OptionType, default: Option<OptionValue>) -> OptionDecl {
        OptionDecl {
            name: name.into(),
            type_,
            default,
            description: String::new(),
        }
    }

    #[test]
    fn manifests_lightningd_would_refuse_are_refused() {
        let bad_default = Manifest {
            dynamic: true,
            options: vec![decl(
                "n",
                OptionType::Int,
                Some(OptionValue::String("x".into())),
            )],
            methods: vec![],
            rpc: vec![],
            wants_store: false,
        };
        assert_eq!(
            validate(&bad_default).unwrap_err().to_string(),
            "option \"n\" is int but its default is string"
        );
        let reserved = Manifest {
            dynamic: true,
            options: vec![],
            methods: vec![MethodDecl {
                name: "init".into(),
                usage: String::new(),
                description: String::new(),
            }],
            rpc: vec![],
            wants_store: false,
        };
        assert_eq!(
            validate(&reserved).unwrap_err().to_string(),
            "method name \"init\" is reserved by the plugin protocol"
        );
    }

    #[test]
    fn init_values_are_typed_and_defaults_filled() {
        let decls = [
            decl(
                "s",
                OptionType::String,
                Some(OptionValue::String("d".into())),
            ),
            decl("i", OptionType::Int, None),
            decl("f", OptionType::Flag, None),
        ];
        let given = serde_json::json!({"i": 3, "f": false});
        let typed = typed_options(&decls, given.as_object().unwrap()).unwrap();
        assert_eq!(options_json(&typed), r#"{"i":3,"s":"d"}"#);
        let given = serde_json::json!({"s": 3});
        assert_eq!(
            typed_options(&decls, given.as_object().unwrap()).unwrap_err(),
            "option \"s\" must be string, got 3"
        );
    }
}
