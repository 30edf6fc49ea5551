//! The manifest as the policy lets lightningd see it: what the guest
//! declares, less what the operator did not grant.

use crate::bindings::Manifest;
use crate::bindings::cln::plugin::types::{MessageRequest, TopicRequest};
use crate::policy::{Grants, sets_even_bit};
use crate::shown::quoted;

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
            refuse(format!("hook {}", quoted(&h.name)), "[[grants.hooks]]");
        }
        ok
    });
    m.subscriptions.retain(|TopicRequest { topic: t, .. }| {
        let ok = grants.subscription(t);
        if !ok {
            refuse(
                format!("subscription {}", quoted(t)),
                "[grants] subscriptions",
            );
        }
        ok
    });
    m.notifications.retain(|TopicRequest { topic: t, .. }| {
        let ok = grants.notifications.contains(t);
        if !ok {
            refuse(
                format!("notification topic {}", quoted(t)),
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
        if !grants.featurebits_allow(bits) {
            let kind = if sets_even_bit(bits) {
                "required (even)"
            } else {
                "optional (odd)"
            };
            refuse(
                format!("{place} feature bits {}, {kind}", quoted(bits)),
                "[grants] featurebits = \"optional\" or \"required\"",
            );
            *hex = None;
        }
    }
    (m, left_out.into_inner())
}
