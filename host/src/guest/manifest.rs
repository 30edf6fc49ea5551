//! The guest's manifest in lightningd's terms: checking it, answering
//! `getmanifest` with it, and typing option values (`init`, `setconfig`) by it.

use crate::bindings::cln::plugin::types::{HookDecl, MessageRequest, TopicRequest};
use crate::bindings::{Manifest, OptionDecl, OptionType, OptionValue};
use crate::policy::{FeaturebitsGrant, Grants};
use crate::protocol::lightningd;
use crate::protocol::messages::{
    GetManifest, HookEntry, MethodEntry, NotificationEntry, OptionEntry,
};
use anyhow::bail;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The method the host adds to every plugin: `NAME-reload`.
pub fn reload_method(plugin: &str) -> String {
    format!("{plugin}-reload")
}

/// The other method the host adds: `NAME-audit`, what the policy refused.
pub fn audit_method(plugin: &str) -> String {
    format!("{plugin}-audit")
}

/// Methods the host answers itself; a guest cannot declare them.
const RESERVED_METHODS: &[&str] = &["getmanifest", "init", "shutdown", "setconfig", "check"];

/// Refuse a manifest lightningd would choke on, or one taking a name that
/// is lightningd's or the host's, with the reason. `plugin` is the plugin's
/// name.
pub fn validate(manifest: &Manifest, plugin: &str) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    for opt in &manifest.options {
        if opt.name.is_empty() || !seen.insert(opt.name.as_str()) {
            bail!("option name {:?} is empty or declared twice", opt.name);
        }
        // lightningd's own rule for option names.
        if !opt
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            bail!(
                "option name {:?}: lightningd takes lowercase letters, digits, '_' and '-'",
                opt.name
            );
        }
        if lightningd::OPTIONS.contains(&opt.name.as_str()) {
            bail!(
                "option name {:?} is lightningd's own: lightningd would stop at start-up",
                opt.name
            );
        }
        if opt.multi && !matches!(opt.type_, OptionType::String | OptionType::Int) {
            bail!(
                "option {:?}: only string and int options can be multi",
                opt.name
            );
        }
        match (&opt.type_, &opt.default) {
            (OptionType::Flag, Some(_)) => {
                bail!("flag option {:?} cannot have a default", opt.name)
            }
            (_, None) => {}
            (t, Some(v)) if type_of(v) != value_type_name(t, opt.multi) => bail!(
                "option {:?} is {} but its default is {}",
                opt.name,
                value_type_name(t, opt.multi),
                type_of(v)
            ),
            _ => {}
        }
    }
    unique(
        "rpc request",
        manifest.rpc.iter().map(|r| r.method.as_str()),
    )?;
    unique("method", manifest.methods.iter().map(|m| m.name.as_str()))?;
    unique("hook", manifest.hooks.iter().map(|h| h.name.as_str()))?;
    unique(
        "subscription",
        manifest.subscriptions.iter().map(|t| t.topic.as_str()),
    )?;
    unique(
        "notification",
        manifest.notifications.iter().map(|t| t.topic.as_str()),
    )?;
    if let Some(m) = manifest
        .methods
        .iter()
        .find(|m| RESERVED_METHODS.contains(&m.name.as_str()))
    {
        bail!(
            "method name {:?} is reserved by the plugin protocol",
            m.name
        );
    }
    if let Some(m) = manifest
        .methods
        .iter()
        .find(|m| lightningd::METHODS.contains(&m.name.as_str()) || m.name.starts_with("dev-"))
    {
        bail!(
            "method name {:?} is one of lightningd's own commands (registering it crashes lightningd v25.12)",
            m.name
        );
    }
    for own in [reload_method(plugin), audit_method(plugin)] {
        if manifest.methods.iter().any(|m| m.name == own) {
            bail!("method name {own:?} is the host's own");
        }
    }
    if let Some(t) = manifest
        .notifications
        .iter()
        .map(|t| &t.topic)
        .find(|t| lightningd::HANDLED_NOTIFICATIONS.contains(&t.as_str()))
    {
        bail!(
            "notification topic {t:?} is a protocol method lightningd handles itself, not a topic"
        );
    }
    for (_, hex) in manifest.featurebits.places() {
        let Some(hex) = hex else { continue };
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("featurebits {hex:?} is not a hex string");
        }
    }
    if let Some(t) = manifest
        .custommessages
        .iter()
        .map(|m| m.message_type)
        .find(|t| t % 2 == 0)
    {
        bail!("custom message type {t} is even: plugins may only handle odd types");
    }
    Ok(())
}

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    for name in names {
        if name.is_empty() || !seen.insert(name) {
            bail!("{what} {name:?} is empty or declared twice");
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

/// The `option-value` case a declared option's values take.
fn value_type_name(t: &OptionType, multi: bool) -> &'static str {
    match (t, multi) {
        (OptionType::String, true) => "string-list",
        (OptionType::Int, true) => "int-list",
        (OptionType::Flag, _) => "bool",
        (t, _) => type_name(t),
    }
}

fn type_of(v: &OptionValue) -> &'static str {
    match v {
        OptionValue::String(_) => "string",
        OptionValue::Int(_) => "int",
        OptionValue::Bool(_) => "bool",
        OptionValue::StringList(_) => "string-list",
        OptionValue::IntList(_) => "int-list",
    }
}

/// The manifest as lightningd may see it: every hook, subscription, custom
/// notification, custom message type and feature bit that `grants` does not
/// allow is left out. Each is a capability over the node, so it never
/// reaches lightningd ungranted; the plugin still starts with what is
/// granted. The second value says what was left out and which grant it
/// lacks, one line each, for the operator's log.
pub fn granted(manifest: &Manifest, grants: &Grants) -> (Manifest, Vec<String>) {
    let left_out = std::cell::RefCell::new(Vec::new());
    let refuse = |what: String, grant: &str| {
        left_out.borrow_mut().push(format!(
            "not granted, so left out of the manifest: {what} ({grant})"
        ));
    };
    let mut m = manifest.clone();
    m.hooks.retain(|h| {
        let ok = grants.hook(&h.name).is_some();
        if !ok {
            refuse(format!("hook {:?}", h.name), "[[grants.hooks]]");
        }
        ok
    });
    m.subscriptions.retain(|TopicRequest { topic: t, .. }| {
        let ok = grants.subscription(t);
        if !ok {
            refuse(format!("subscription {t:?}"), "[grants] subscriptions");
        }
        ok
    });
    m.notifications.retain(|TopicRequest { topic: t, .. }| {
        let ok = grants.notifications.contains(t);
        if !ok {
            refuse(
                format!("notification topic {t:?}"),
                "[grants] notifications",
            );
        }
        ok
    });
    m.custommessages.retain(
        |MessageRequest {
             message_type: t, ..
         }| {
            let ok = grants.custommessages.contains(t);
            if !ok {
                refuse(
                    format!("custom message type {t}"),
                    "[grants] custommessages",
                );
            }
            ok
        },
    );
    for (place, hex) in m.featurebits.places_mut() {
        let Some(bits) = hex else { continue };
        let allowed = match grants.featurebits {
            FeaturebitsGrant::None => false,
            FeaturebitsGrant::Optional => !sets_even_bit(bits),
            FeaturebitsGrant::Required => true,
        };
        if !allowed {
            let kind = if sets_even_bit(bits) {
                "required (even)"
            } else {
                "optional (odd)"
            };
            refuse(
                format!("{place} feature bits {bits:?}, {kind}"),
                "[grants] featurebits = \"optional\" or \"required\"",
            );
            *hex = None;
        }
    }
    (m, left_out.into_inner())
}

/// Whether a feature bit string sets an even (required) bit: bit 0 is the
/// lowest of the last byte.
pub fn sets_even_bit(hex: &str) -> bool {
    let digits: Vec<u8> = hex
        .bytes()
        .filter_map(|b| (b as char).to_digit(16))
        .map(|d| d as u8)
        .collect();
    // Each hex digit holds bits 4k..4k+3 counting from the right: the even
    // ones are its 1 and 4 bits.
    digits.iter().any(|d| d & 0b0101 != 0)
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

/// The `result` of `getmanifest`, as the guest declared it (the host adds
/// its own method and subscription before answering).
pub fn getmanifest_result(manifest: &Manifest) -> GetManifest {
    let options = manifest
        .options
        .iter()
        .map(|o| OptionEntry {
            name: o.name.clone(),
            type_: type_name(&o.type_),
            description: o.description.clone(),
            default: match &o.default {
                // lightningd takes one default even for multi options.
                Some(OptionValue::StringList(l)) if l.len() == 1 => Some(json!(l[0])),
                Some(OptionValue::IntList(l)) if l.len() == 1 => Some(json!(l[0])),
                Some(OptionValue::StringList(_) | OptionValue::IntList(_)) | None => None,
                Some(default) => Some(default.to_json()),
            },
            multi: o.multi,
            dynamic: o.dynamic,
            deprecated: o.deprecated,
        })
        .collect();
    let rpcmethods = manifest
        .methods
        .iter()
        .map(|m| MethodEntry {
            name: m.name.clone(),
            usage: m.usage.clone(),
            description: m.description.clone(),
            long_description: m.long_description.clone(),
            deprecated: m.deprecated,
        })
        .collect();
    let hook = |h: &HookDecl| HookEntry {
        name: h.name.clone(),
        before: h.before.clone(),
        after: h.after.clone(),
    };
    let featurebits: Map<String, Value> = (manifest.featurebits.places().into_iter())
        .filter_map(|(k, v)| Some((k.to_string(), json!(v.as_ref()?))))
        .collect();
    let notification = |n: &TopicRequest| NotificationEntry {
        method: n.topic.clone(),
    };
    GetManifest {
        dynamic: manifest.dynamic,
        options,
        rpcmethods,
        subscriptions: manifest
            .subscriptions
            .iter()
            .map(|t| t.topic.clone())
            .collect(),
        hooks: manifest.hooks.iter().map(hook).collect(),
        featurebits,
        notifications: manifest.notifications.iter().map(notification).collect(),
        custommessages: manifest
            .custommessages
            .iter()
            .map(|m| m.message_type)
            .collect(),
        nonnumericids: true,
    }
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
mod tests {
    use super::*;
    use crate::bindings::cln::plugin::types::{Featurebits, MethodDecl};
    use crate::caps::config::options_json;

    fn decl(name: &str, type_: OptionType, default: Option<OptionValue>) -> OptionDecl {
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

    fn manifest(options: Vec<OptionDecl>, methods: &[&str]) -> Manifest {
        Manifest {
            dynamic: true,
            options,
            methods: methods
                .iter()
                .map(|m| MethodDecl {
                    name: m.to_string(),
                    usage: String::new(),
                    description: String::new(),
                    long_description: None,
                    deprecated: false,
                })
                .collect(),
            rpc: vec![],
            wants_store: false,
            hooks: vec![],
            subscriptions: vec![],
            notifications: vec![],
            featurebits: Featurebits {
                init: None,
                node: None,
                channel: None,
                invoice: None,
                reason: String::new(),
            },
            custommessages: vec![],
        }
    }

    fn error(m: &Manifest) -> String {
        validate(m, "test").unwrap_err().to_string()
    }

    #[test]
    fn manifests_lightningd_would_refuse_are_refused() {
        let bad_default = manifest(
            vec![decl(
                "n",
                OptionType::Int,
                Some(OptionValue::String("x".into())),
            )],
            &[],
        );
        assert_eq!(
            error(&bad_default),
            "option \"n\" is int but its default is string"
        );
        assert_eq!(
            error(&manifest(vec![], &["init"])),
            "method name \"init\" is reserved by the plugin protocol"
        );
        assert_eq!(
            error(&manifest(vec![], &["a", "a"])),
            "method \"a\" is empty or declared twice"
        );
        let mut multi_bool = decl("b", OptionType::Bool, None);
        multi_bool.multi = true;
        assert_eq!(
            error(&manifest(vec![multi_bool], &[])),
            "option \"b\": only string and int options can be multi"
        );
        let mut even = manifest(vec![], &[]);
        even.custommessages = vec![MessageRequest {
            message_type: 32768,
            reason: String::new(),
        }];
        assert_eq!(
            error(&even),
            "custom message type 32768 is even: plugins may only handle odd types"
        );
    }

    #[test]
    fn names_that_are_lightningds_or_the_hosts_are_refused() {
        for (option, why) in [
            (
                "network",
                "option name \"network\" is lightningd's own: lightningd would stop at start-up",
            ),
            (
                "bitcoin-rpcpassword",
                "option name \"bitcoin-rpcpassword\" is lightningd's own: lightningd would stop at start-up",
            ),
            (
                "Foo",
                "option name \"Foo\": lightningd takes lowercase letters, digits, '_' and '-'",
            ),
        ] {
            assert_eq!(
                error(&manifest(vec![decl(option, OptionType::Int, None)], &[])),
                why
            );
        }
        assert_eq!(
            error(&manifest(vec![], &["getinfo"])),
            "method name \"getinfo\" is one of lightningd's own commands (registering it crashes lightningd v25.12)"
        );
        assert_eq!(
            error(&manifest(vec![], &["test-reload"])),
            "method name \"test-reload\" is the host's own"
        );
        for topic in ["log", "init", "getmanifest", "message"] {
            let mut m = manifest(vec![], &[]);
            m.notifications = vec![TopicRequest {
                topic: topic.into(),
                reason: String::new(),
            }];
            assert_eq!(
                error(&m),
                format!(
                    "notification topic {topic:?} is a protocol method lightningd handles itself, not a topic"
                )
            );
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
