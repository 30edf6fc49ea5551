//! The guest's manifest in lightningd's terms: checking it, answering
//! `getmanifest` with it, and typing option values (`init`, `setconfig`) by it.

use crate::bindings::cln::plugin::types::{HookDecl, TopicRequest};
use crate::bindings::{Manifest, OptionType, OptionValue};
use crate::policy::hooks::HOOKS;
use crate::protocol::lightningd;
use crate::protocol::messages::{
    GetManifest, HookEntry, MethodEntry, NotificationEntry, OptionEntry,
};
use crate::shown::quoted;
use anyhow::bail;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

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

/// What a request from lightningd is, by its method's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// One of the guest's RPC methods.
    Method,
    /// One of the guest's hooks (as granted).
    Hook,
    /// `setconfig`, answered by the host with the guest's `set-option`.
    SetConfig,
    /// The host's `NAME-reload`.
    Reload,
    /// The host's `NAME-audit`.
    Audit,
}

/// Every name lightningd may send this plugin a request by, and what each
/// is. A name means one thing: two meanings for one name are refused, so
/// routing never depends on the order of lookups.
pub fn routes(manifest: &Manifest, plugin: &str) -> anyhow::Result<HashMap<String, Route>> {
    let host = [
        ("setconfig".to_string(), Route::SetConfig),
        (reload_method(plugin), Route::Reload),
        (audit_method(plugin), Route::Audit),
    ];
    let methods = (manifest.methods.iter()).map(|m| (m.name.clone(), Route::Method));
    let hooks = (manifest.hooks.iter()).map(|h| (h.name.clone(), Route::Hook));
    let mut routes = HashMap::new();
    for (name, route) in host.into_iter().chain(methods).chain(hooks) {
        if let Some(other) = routes.insert(name.clone(), route) {
            bail!("{name:?} would name both a {other:?} and a {route:?}");
        }
    }
    Ok(routes)
}

/// Refuse a manifest lightningd would choke on, or one taking a name that
/// is lightningd's or the host's, with the reason. `plugin` is the plugin's
/// name.
pub fn validate(manifest: &Manifest, plugin: &str) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    for opt in &manifest.options {
        if opt.name.is_empty() || !seen.insert(opt.name.as_str()) {
            bail!(
                "option name {} is empty or declared twice",
                quoted(&opt.name)
            );
        }
        // lightningd's own rule for option names.
        if !opt
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            bail!(
                "option name {}: lightningd takes lowercase letters, digits, '_' and '-'",
                quoted(&opt.name)
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
    // A method named like a hook would take lightningd's hook requests
    // past the hook's checks; like a topic, it would be two things.
    for m in &manifest.methods {
        if HOOKS.iter().any(|h| h.name == m.name) {
            bail!("method name {:?} is one of lightningd's hooks", m.name);
        }
        let topics = (manifest.subscriptions.iter()).chain(&manifest.notifications);
        if lightningd::NOTIFICATIONS.contains(&m.name.as_str())
            || topics.map(|t| &t.topic).any(|t| *t == m.name)
        {
            bail!("method name {:?} is a notification topic", m.name);
        }
    }
    routes(manifest, plugin)?;
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
            bail!("featurebits {} is not a hex string", quoted(hex));
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

/// Each name once, and each spelled only with ASCII letters, digits and
/// `_-.:` (and a subscription may be `*`): a name that looks like another on
/// a terminal (`getinfo` with a zero-width space, a bidi override) would
/// show the operator one name and give the guest another.
fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    for name in names {
        if name.is_empty() || !seen.insert(name) {
            bail!("{what} {} is empty or declared twice", quoted(name));
        }
        let plain = |b: u8| b.is_ascii_alphanumeric() || b"_-.:".contains(&b);
        if !(name.bytes().all(plain) || (what == "subscription" && name == "*")) {
            bail!(
                "{what} {}: names take ASCII letters, digits and '_', '-', '.', ':'",
                quoted(name)
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

/// The `option-value` case a declared option's values take.
pub(super) fn value_type_name(t: &OptionType, multi: bool) -> &'static str {
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

/// Whether two manifests are the same to lightningd and to the operator
/// (what a hot swap may not change).
pub fn same(a: &Manifest, b: &Manifest) -> bool {
    fn asks(m: &Manifest) -> (Vec<(&str, &str)>, bool, Option<&str>) {
        let rpc = m
            .rpc
            .iter()
            .map(|r| (r.method.as_str(), r.reason.as_str()))
            .collect();
        (rpc, m.wants_store, m.dir.as_deref())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::OptionDecl;
    use crate::bindings::cln::plugin::types::{Featurebits, MessageRequest, MethodDecl};
    use crate::guest::options::tests::decl;

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
            dir: None,
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
            error(&manifest(vec![], &["getinfo\u{200b}"])),
            "method \"getinfo\\u{200b}\": names take ASCII letters, digits and '_', '-', '.', ':'"
        );
        assert_eq!(
            error(&manifest(vec![], &["test-reload"])),
            "method name \"test-reload\" is the host's own"
        );
        // One name, one meaning: no method takes a hook's name, a topic's,
        // or one the host answers.
        for hook in HOOKS {
            let why = error(&manifest(vec![], &[hook.name]));
            assert!(
                why == format!("method name {:?} is one of lightningd's hooks", hook.name)
                    // `recover` is a command too.
                    || (lightningd::METHODS.contains(&hook.name) && why.contains("own commands")),
                "{}: {why}",
                hook.name
            );
        }
        for topic in lightningd::NOTIFICATIONS {
            let why = error(&manifest(vec![], &[topic]));
            // Some topics are also a hook (`custommsg`), a command
            // (`connect`) or the protocol's (`shutdown`): refused as those.
            let also = RESERVED_METHODS.contains(topic)
                || lightningd::METHODS.contains(topic)
                || HOOKS.iter().any(|h| h.name == *topic);
            if !also {
                assert_eq!(
                    why,
                    format!("method name {topic:?} is a notification topic")
                );
            }
        }
        let mut own_topic = manifest(vec![], &["my_event"]);
        own_topic.notifications = vec![TopicRequest {
            topic: "my_event".into(),
            reason: String::new(),
        }];
        assert_eq!(
            error(&own_topic),
            "method name \"my_event\" is a notification topic"
        );
        for own in ["setconfig", "test-reload", "test-audit"] {
            assert!(
                validate(&manifest(vec![], &[own]), "test").is_err(),
                "{own}"
            );
        }
        let mut hook_and_method = manifest(vec![], &["both"]);
        hook_and_method.hooks = vec![HookDecl {
            name: "both".into(),
            before: vec![],
            after: vec![],
            reason: String::new(),
        }];
        assert_eq!(
            error(&hook_and_method),
            "\"both\" would name both a Method and a Hook"
        );
        let mut hook_like_host = manifest(vec![], &[]);
        hook_like_host.hooks = vec![HookDecl {
            name: "test-reload".into(),
            before: vec![],
            after: vec![],
            reason: String::new(),
        }];
        assert_eq!(
            error(&hook_like_host),
            "\"test-reload\" would name both a Reload and a Hook"
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
}
