//! Plugin mode: the host as lightningd sees it. Messages enter through the
//! [`inbox`]; the [`handshake`] answers `getmanifest` and `init`; after that
//! [`dispatch`] routes each message and runs it in the guest, on the thread
//! that read it; [`config`] handles `init` and `setconfig`; [`threads`]
//! keeps notifications in order and counts calls in flight for shutdown,
//! which [`signals`] (SIGTERM, SIGINT) starts too.

mod config;
mod dispatch;
mod handshake;
mod inbox;
pub mod signals;
mod threads;

use crate::guest::swap::{self, GuestSlot};
use crate::guest::{self, Files};
use crate::policy::Policy;
use crate::protocol::Outbox;
use dispatch::Serving;
use handshake::{Started, handshake};
use inbox::{Inbox, Incoming};
use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

/// lightningd kills a plugin 30 s after `shutdown`; finish calls well before.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// Serve lightningd on `input`/`outbox` as the plugin `plugin` (its files
/// and policy, or why they cannot be read) until `shutdown` or end of input.
/// Returns the exit code.
pub fn serve(
    plugin: anyhow::Result<(Files, Policy)>,
    input: impl BufRead + Send + 'static,
    outbox: Arc<Outbox>,
) -> anyhow::Result<i32> {
    // Compile while lightningd is still sending getmanifest.
    let slot = plugin.and_then(|(files, policy)| {
        let loaded_version = swap::stamp(&files);
        let guest = guest::load(&files, policy, Some(outbox.clone()))?;
        Ok((Arc::new(GuestSlot::new(files, guest)), loaded_version))
    });
    if let Err(e) = &slot {
        log::error!("cannot start plugin: {e:#}");
    }
    let mut inbox = Inbox::new(input);
    match handshake(&mut inbox, slot, &outbox)? {
        Started::Serving(slot) => Serving::serve(slot, outbox, inbox, SHUTDOWN_GRACE),
        Started::Exit(code) => Ok(code),
    }
}

/// Started by lightningd as something that is not a plugin (the host binary
/// itself, e.g. lying in a `--plugin-dir`): answer `getmanifest` with
/// `disable`, so lightningd logs `reason` and carries on starting, then exit.
pub fn serve_disabled(reason: &str, input: impl BufRead) -> anyhow::Result<i32> {
    let outbox = Outbox::new(Box::new(std::io::stdout()));
    let mut inbox = Inbox::new(input);
    while let Some(incoming) = inbox.next(&outbox)? {
        if let Incoming::Request { id, .. } = incoming {
            outbox.result(&id, &raw(&json!({ "disable": reason })))?;
            return Ok(0);
        }
    }
    Ok(0)
}

/// `value` as the JSON text of a result.
fn raw(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("our messages serialize")
}
