//! What a guest asks for, with its reasons, and whether a policy grants each:
//! the review `inspect` prints and `install` turns into commented-out grants.

use crate::bindings::Manifest;
use crate::policy::{Grants, sets_even_bit};
use crate::shown::{quoted, shown};
use serde_json::{Value, json};

/// What kind of capability an ask is.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    NodeMethod,
    Store,
    Dir,
    Hook,
    Subscription,
    Notification,
    CustomMessage,
    Featurebits,
}

/// One capability the guest asks for.
pub struct Ask {
    pub kind: Kind,
    /// The method, hook, topic, message type, or feature bits' place.
    pub name: String,
    /// The guest's reason (from its manifest).
    pub reason: String,
    pub granted: bool,
    /// What it lets the guest do to the node, when that is dangerous.
    pub danger: Option<&'static str>,
}

impl Ask {
    /// How the review names it, e.g. `hook "rpc_command"` (the name escaped:
    /// the guest chose it).
    pub fn label(&self) -> String {
        let what = match self.kind {
            Kind::NodeMethod => "node method",
            Kind::Store => return "its private store".into(),
            Kind::Dir => return "a private directory".into(),
            Kind::Hook => "hook",
            Kind::Subscription => "subscription",
            Kind::Notification => "custom notification",
            Kind::CustomMessage => return format!("custom message type {}", self.name),
            Kind::Featurebits => return format!("feature bits {}", self.name),
        };
        format!("{what} {}", quoted(&self.name))
    }
}

/// Why a hook or a declaration is dangerous, if it is.
fn danger(kind: Kind, name: &str) -> Option<&'static str> {
    match (kind, name) {
        (Kind::Hook, "rpc_command") => Some("can rewrite or answer any command sent to the node"),
        (Kind::Hook, "htlc_accepted") => {
            Some("decides incoming payments: can fail, settle or redirect them")
        }
        (Kind::Hook, "db_write") => Some("sees every database write, and can stop the node"),
        (Kind::Hook, h) if h.starts_with("openchannel") || h == "rbf_channel" => {
            Some("decides channel opens: close address, confirmations, reserve, funding")
        }
        (Kind::Subscription, "*") => {
            Some("receives every notification, payment preimages included")
        }
        _ => None,
    }
}

/// Everything `manifest` asks for, and whether `grants` grants it.
pub fn asks(manifest: &Manifest, grants: &Grants) -> Vec<Ask> {
    let ask = |kind, name: &str, reason: &str, granted| Ask {
        kind,
        name: name.to_string(),
        reason: reason.to_string(),
        granted,
        danger: danger(kind, name),
    };
    let mut asks: Vec<Ask> = manifest
        .rpc
        .iter()
        .map(|r| {
            let granted = grants.rpc.iter().any(|g| g.method == r.method);
            ask(Kind::NodeMethod, &r.method, &r.reason, granted)
        })
        .collect();
    if manifest.wants_store {
        asks.push(ask(Kind::Store, "store", "", grants.store));
    }
    if let Some(reason) = &manifest.dir {
        asks.push(ask(Kind::Dir, "dir", reason, grants.dir.is_some()));
    }
    asks.extend(manifest.hooks.iter().map(|h| {
        let granted = grants.hook(&h.name).is_some();
        ask(Kind::Hook, &h.name, &h.reason, granted)
    }));
    asks.extend(manifest.subscriptions.iter().map(|t| {
        let granted = grants.subscription(&t.topic);
        ask(Kind::Subscription, &t.topic, &t.reason, granted)
    }));
    asks.extend(manifest.notifications.iter().map(|t| {
        let granted = grants.notifications.contains(&t.topic);
        ask(Kind::Notification, &t.topic, &t.reason, granted)
    }));
    asks.extend(manifest.custommessages.iter().map(|m| {
        let granted = grants.custommessages.contains(&m.message_type);
        let name = m.message_type.to_string();
        ask(Kind::CustomMessage, &name, &m.reason, granted)
    }));
    let bits = &manifest.featurebits;
    for (place, hex) in bits.places() {
        let Some(hex) = hex else { continue };
        let granted = grants.featurebits_allow(hex);
        let mut a = ask(
            Kind::Featurebits,
            &format!("{place} {hex}"),
            &bits.reason,
            granted,
        );
        if sets_even_bit(hex) {
            a.danger = Some("sets a required (even) feature: peers without it are refused");
        }
        asks.push(a);
    }
    asks
}

/// The asks of `kind`, as `inspect --json` lists them.
pub fn to_json(asks: &[Ask], kind: Kind) -> Value {
    asks.iter()
        .filter(|a| a.kind == kind)
        .map(|a| {
            let mut entry = json!({"name": a.name, "reason": a.reason, "granted": a.granted});
            if let Some(danger) = a.danger {
                entry["dangerous"] = json!(danger);
            }
            entry
        })
        .collect()
}

/// One line per ask (and one more for its danger), as a person reads it.
pub fn to_text(asks: &[Ask]) -> String {
    let mut text = String::new();
    for a in asks {
        let status = if a.granted {
            "granted    "
        } else {
            "not granted"
        };
        let reason = if a.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", shown(&a.reason))
        };
        text.push_str(&format!("  {status}  {}{reason}\n", a.label()));
        if let Some(danger) = a.danger {
            text.push_str(&format!("               DANGEROUS: {danger}\n"));
        }
    }
    text
}
