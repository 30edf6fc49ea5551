//! Option values typed by the guest's declarations: `init`'s, `setconfig`'s
//! and the dev runner's.

use super::manifest::value_type_name;
use crate::bindings::{OptionDecl, OptionType, OptionValue};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Type the options `init` gave by their declarations, fill in defaults, and
/// refuse any the guest did not declare. The error is the reason to give
/// lightningd.
pub fn typed_options(
    decls: &[OptionDecl],
    given: &Map<String, Value>,
) -> Result<BTreeMap<String, OptionValue>, String> {
    let mut typed = BTreeMap::new();
    for (name, value) in given {
        let decl = find(decls, name)?;
        if let Some(v) = typed_value(decl, value)? {
            typed.insert(name.clone(), v);
        }
    }
    for decl in decls {
        if typed.contains_key(&decl.name) {
            continue;
        }
        let default = match (&decl.default, &decl.type_, decl.multi) {
            (Some(default), _, _) => default.clone(),
            // A multi option never given is an empty list.
            (None, OptionType::String, true) => OptionValue::StringList(Vec::new()),
            (None, OptionType::Int, true) => OptionValue::IntList(Vec::new()),
            (None, _, _) => continue,
        };
        typed.insert(decl.name.clone(), default);
    }
    Ok(typed)
}

/// The declaration of option `name`, or why there is none.
pub fn find<'a>(decls: &'a [OptionDecl], name: &str) -> Result<&'a OptionDecl, String> {
    decls
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| format!("unknown option {name:?}: the plugin does not declare it"))
}

/// `value` typed as `decl` says; `Ok(None)` for an unset flag. Numbers and
/// booleans may come as strings (`setconfig`, the dev runner's `--option k=v`,
/// older lightningd versions); a multi option takes a list or one value.
pub fn typed_value(decl: &OptionDecl, value: &Value) -> Result<Option<OptionValue>, String> {
    let wrong = || {
        format!(
            "option {:?} must be {}, got {value}",
            decl.name,
            value_type_name(&decl.type_, decl.multi)
        )
    };
    if decl.multi {
        let items = match value {
            Value::Array(items) => items.as_slice(),
            one => std::slice::from_ref(one),
        };
        return match decl.type_ {
            OptionType::Int => items
                .iter()
                .map(int)
                .collect::<Option<_>>()
                .map(OptionValue::IntList),
            _ => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .map(OptionValue::StringList),
        }
        .map(Some)
        .ok_or_else(wrong);
    }
    let typed = match (&decl.type_, value) {
        (OptionType::String, Value::String(s)) => OptionValue::String(s.clone()),
        (OptionType::Int, v) => OptionValue::Int(int(v).ok_or_else(wrong)?),
        (OptionType::Bool | OptionType::Flag, Value::Bool(b)) => OptionValue::Bool(*b),
        (OptionType::Bool | OptionType::Flag, Value::String(s)) => {
            OptionValue::Bool(s.parse().map_err(|_| wrong())?)
        }
        _ => return Err(wrong()),
    };
    // An unset flag is absent, as lightningd does it.
    if matches!(
        (&decl.type_, &typed),
        (OptionType::Flag, OptionValue::Bool(false))
    ) {
        return Ok(None);
    }
    Ok(Some(typed))
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::caps::config::options_json;

    /// An option declaration with defaults, for tests.
    pub(crate) fn decl(name: &str, type_: OptionType, default: Option<OptionValue>) -> OptionDecl {
        OptionDecl {
            name: name.into(),
            type_,
            default,
            description: String::new(),
            multi: false,
            dynamic: false,
            deprecated: false,
        }
    }

    #[test]
    fn init_values_are_typed_and_defaults_filled() {
        let mut multi = decl("m", OptionType::String, None);
        multi.multi = true;
        let decls = [
            decl(
                "s",
                OptionType::String,
                Some(OptionValue::String("d".into())),
            ),
            decl("i", OptionType::Int, None),
            decl("f", OptionType::Flag, None),
            multi,
        ];
        let given = serde_json::json!({"i": 3, "f": false});
        let typed = typed_options(&decls, given.as_object().unwrap()).unwrap();
        assert_eq!(options_json(&typed), r#"{"i":3,"m":[],"s":"d"}"#);
        let given = serde_json::json!({"m": ["a", "b"], "f": true});
        let typed = typed_options(&decls, given.as_object().unwrap()).unwrap();
        assert_eq!(options_json(&typed), r#"{"f":true,"m":["a","b"],"s":"d"}"#);
        let given = serde_json::json!({"s": 3});
        assert_eq!(
            typed_options(&decls, given.as_object().unwrap()).unwrap_err(),
            "option \"s\" must be string, got 3"
        );
        let given = serde_json::json!({"m": [1]});
        assert_eq!(
            typed_options(&decls, given.as_object().unwrap()).unwrap_err(),
            "option \"m\" must be string-list, got [1]"
        );
    }
}
