//! The handshake: `getmanifest`, then `init`, answered in order on the
//! thread that reads them, before any call is served.

use super::config::init;
use super::inbox::{Inbox, Incoming};
use super::raw;
use crate::guest::manifest;
use crate::guest::swap::{self, GuestSlot};
use crate::protocol::messages::{GetManifest, GetManifestParams, MethodEntry};
use crate::protocol::{INTERNAL_ERROR, INVALID_REQUEST, Message, Outbox, RpcError};
use serde_json::json;
use std::io::BufRead;
use std::sync::Arc;

/// How the handshake ended.
pub enum Started {
    /// `init` was answered: serve calls with this guest.
    Serving(Arc<GuestSlot>),
    /// Exit with this code (shutdown, end of input, or a guest that
    /// cannot start).
    Exit(i32),
}

enum Phase {
    Manifest,
    Init,
}

/// `getmanifest`, then `init`. `slot` is the loaded guest and the version
/// of its `.wasm` that was loaded, or why it could not be.
pub fn handshake<R: BufRead>(
    inbox: &mut Inbox<R>,
    slot: anyhow::Result<(Arc<GuestSlot>, Option<swap::Stamp>)>,
    outbox: &Outbox,
) -> anyhow::Result<Started> {
    let mut phase = Phase::Manifest;
    while let Some(incoming) = inbox.next(outbox)? {
        let (id, method, msg) = match incoming {
            Incoming::Shutdown(_) => return Ok(Started::Exit(0)),
            Incoming::Notification { method, .. } => {
                log::debug!("ignoring notification {method:?}");
                continue;
            }
            Incoming::Request { id, method, msg } => (id, method, msg),
        };
        match (&phase, method.as_str(), &slot) {
            (_, "getmanifest", Err(e)) => {
                let message = format!("cannot start plugin: {e:#}");
                outbox.error(&id, &RpcError::new(INTERNAL_ERROR, message))?;
                return Ok(Started::Exit(1));
            }
            (Phase::Manifest, "getmanifest", Ok((slot, _))) => {
                match getmanifest(slot, &msg) {
                    Ok(result) => outbox.result(&id, &raw(&result))?,
                    Err(e) => {
                        let message = format!("cannot start plugin: {e:#}");
                        log::error!("{message}");
                        outbox.error(&id, &RpcError::new(INTERNAL_ERROR, message))?;
                        return Ok(Started::Exit(1));
                    }
                }
                phase = Phase::Init;
            }
            (Phase::Init, "init", Ok((slot, loaded_version))) => {
                let answer = match init(&slot.current(), &msg, &id) {
                    Ok(()) => {
                        swap::watch(slot.clone(), *loaded_version);
                        json!({})
                    }
                    Err(reason) => {
                        log::error!("disabled at init: {reason}");
                        json!({ "disable": reason })
                    }
                };
                outbox.result(&id, &raw(&answer))?;
                return Ok(Started::Serving(slot.clone()));
            }
            _ => {
                let error = RpcError::new(
                    INVALID_REQUEST,
                    format!("unexpected {method:?} during the handshake"),
                );
                outbox.error(&id, &error)?;
            }
        }
    }
    Ok(Started::Exit(0))
}

/// The `getmanifest` answer. The guest is asked again if the node allows
/// deprecated APIs (it may then declare more); the host adds `NAME-reload`
/// and the `shutdown` subscription.
fn getmanifest(slot: &GuestSlot, msg: &Message) -> anyhow::Result<GetManifest> {
    let params: GetManifestParams = msg
        .params
        .as_ref()
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    if params.allow_deprecated_apis {
        slot.current()
            .sandbox
            .session()
            .settings_mut()
            .allow_deprecated_apis = true;
        slot.reask_manifest()?;
    }
    let guest = slot.current();
    // As many lines as the guest asked for things: within its log budget.
    let meters = guest.sandbox.session().meters.clone();
    for line in &guest.left_out {
        meters.log.log(log::Level::Warn, line);
    }
    meters.log.report_dropped();
    let mut result = manifest::getmanifest_result(&guest.manifest);
    // lightningd tells only subscribers about `shutdown`, and kills the others
    // at once: the host always subscribes, to finish calls in flight.
    if !result.subscriptions.iter().any(|t| t == "shutdown") {
        result.subscriptions.push("shutdown".into());
    }
    for (name, description) in [
        (
            slot.reload_method(),
            "Load this plugin's .wasm again and serve new calls with it, if its manifest is unchanged",
        ),
        (
            slot.audit_method(),
            "What the policy refused this plugin's guest since it started: capabilities denied, hook answers replaced by continue",
        ),
    ] {
        result.rpcmethods.push(MethodEntry {
            name,
            usage: String::new(),
            description: description.into(),
            long_description: None,
            deprecated: false,
        });
    }
    let size = serde_json::to_string(&result)?.len();
    let max = guest.sandbox.session().policy.limits.answer_max_bytes;
    if size > max {
        anyhow::bail!(
            "the guest's manifest is {size} bytes, past [limits] answer_max_bytes ({max})"
        );
    }
    Ok(result)
}
