//! What a guest can reach: the host side of the WIT imports, one file per
//! interface (`config`, `request`, `node`, `store`, `events`), each
//! implemented on [`InstanceState`]. Where an interface reaches the node or
//! lightningd, its entry checks the manifest's request and the operator's
//! grant first ([`InstanceState::deny`] is the one shape a refusal takes):
//! node methods in [`node`], the store in [`store`], custom notifications in
//! [`events`]. Then what the guest may spend ([`quota`]: rates, sizes, its
//! store, its log), and the call's [`deadline`], which ends a guest blocked
//! in a node call with a trap ([`CapError::Trap`]).

pub mod config;
pub mod deadline;
pub mod dir;
pub mod events;
pub mod node;
pub mod quota;
pub mod request;
pub mod store;

use crate::bindings::cln::plugin::types;
use crate::bindings::{OptionValue, WitRpcError};
use crate::node::NodeClient;
use crate::policy::Policy;
use crate::protocol::{CAPABILITY_DENIED, INTERNAL_ERROR, LIMIT_EXCEEDED, Outbox};
use serde_json::value::RawValue;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub use deadline::{Deadline, DeadlineReached};
pub use quota::Meters;

/// What all instances of one guest share, decided at start-up and by `init`.
pub struct Session {
    /// The plugin's name (its plugin file's name): its store's namespace.
    pub name: String,
    pub policy: Policy,
    /// `None` before init, and in the CLI tools' sessions without a node.
    pub node: Option<NodeClient>,
    /// Where custom notifications go: lightningd, or `None` (logged instead).
    pub outbox: Option<Arc<Outbox>>,
    /// What the manifest asks for and declares (empty before init).
    pub declared: Declared,
    /// What lightningd told us, and what `setconfig` changes.
    pub settings: RwLock<Settings>,
    /// What the policy refused the guest; kept across `init` and swaps.
    pub audit: Arc<Audit>,
    /// What the guest spent against its limits; kept likewise.
    pub meters: Arc<Meters>,
    /// Its private directory, when asked for and granted (from `init`).
    pub dir: Option<Arc<dir::PrivateDir>>,
}

/// How often the policy stopped the guest since the plugin started, for the
/// operator (`NAME-audit`): each `warn` line it logged, counted.
#[derive(Default)]
pub struct Audit {
    counts: Mutex<BTreeMap<&'static str, BTreeMap<String, u64>>>,
}

impl Audit {
    /// One more refusal of `what` (e.g. `node method "pay"`) under `kind`
    /// (`denied`, `refused_hook_answers`, `over_limits`). `what` is the
    /// guest's choosing: past [`Self::MAX_AUDITED`] names, the rest share
    /// one count, `(others)`, so the audit cannot grow without bound. But a
    /// `kept` name (one of a finite set: what moves money or changes the
    /// node) is always named, however many decoys came first. True when a
    /// kept name is counted for the first time: the caller logs it then,
    /// whatever the log budget.
    pub fn count(&self, kind: &'static str, what: &str, kept: bool) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let kind = counts.entry(kind).or_default();
        let what = quota::truncated(what, Self::MAX_NAME);
        let known = kind.contains_key(what);
        let key = if known || kept || kind.len() < Self::MAX_AUDITED {
            what
        } else {
            "(others)"
        };
        *kind.entry(key.to_string()).or_default() += 1;
        kept && !known
    }

    /// Distinct names counted under one kind, at most (and `(others)`),
    /// besides the kept ones.
    const MAX_AUDITED: usize = 256;
    /// Longest name kept: a guest chooses the names it is refused.
    const MAX_NAME: usize = 300;

    /// The counts as `{"denied": {…}, "refused_hook_answers": {…},
    /// "over_limits": {…}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let of = |kind| serde_json::json!(counts.get(kind).cloned().unwrap_or_default());
        serde_json::json!({
            "denied": of("denied"),
            "refused_hook_answers": of("refused_hook_answers"),
            "over_limits": of("over_limits"),
        })
    }
}

/// The parts of the manifest the capabilities check against.
#[derive(Default)]
pub struct Declared {
    /// Node methods the guest asks for.
    pub rpc: BTreeSet<String>,
    /// Whether it asks for the store.
    pub store: bool,
    /// Custom notification topics it may emit.
    pub notifications: BTreeSet<String>,
}

/// Values the guest reads through `config`.
#[derive(Default)]
pub struct Settings {
    /// Typed option values: declared defaults overlaid with what init gave.
    pub options: BTreeMap<String, OptionValue>,
    /// The same options as a JSON object, for `config.options`.
    pub options_json: String,
    /// init's configuration without file paths, as JSON.
    pub configuration: String,
    pub allow_deprecated_apis: bool,
}

impl Settings {
    /// Replace the options (at init, or after an accepted `setconfig`).
    pub fn set_options(&mut self, options: BTreeMap<String, OptionValue>) {
        self.options_json = config::options_json(&options);
        self.options = options;
    }
}

impl Session {
    /// The session before `init`: no options, no node, nothing declared.
    pub fn before_init(name: &str, policy: Policy, outbox: Option<Arc<Outbox>>) -> Session {
        Session {
            name: name.to_string(),
            meters: Arc::new(Meters::new(&policy.limits)),
            policy,
            node: None,
            outbox,
            declared: Declared::default(),
            settings: RwLock::new(Settings {
                options_json: "{}".into(),
                configuration: "{}".into(),
                ..Settings::default()
            }),
            audit: Arc::default(),
            dir: None,
        }
    }

    pub fn settings(&self) -> std::sync::RwLockReadGuard<'_, Settings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn settings_mut(&self) -> std::sync::RwLockWriteGuard<'_, Settings> {
        self.settings.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The request a guest instance is answering right now.
pub struct CallContext {
    /// The incoming id as text, the prefix of the ids of node calls it causes.
    pub id: String,
    pub method: String,
    /// Exactly as lightningd sent them.
    pub params: Box<RawValue>,
    /// When it was read from lightningd: its deadline counts from here,
    /// time queued included.
    pub arrived: Instant,
}

/// What one guest instance's capabilities see: the session its guest shares,
/// the call it is answering, when that call must be over, and what it has
/// made the host do so far.
pub struct InstanceState {
    pub session: Arc<Session>,
    pub call: Option<CallContext>,
    pub deadline: Deadline,
    pub spent: Spent,
}

/// What one invocation (a call, a hook, a notification, `init`, `setconfig`:
/// something lightningd sent) has made the host do. A guest acts only while
/// lightningd has it handle something, so bounding each invocation bounds
/// the amplification a guest adds to the load lightningd drives, without
/// ever refusing that load.
#[derive(Default)]
pub struct Spent {
    /// Node calls, the store's included.
    pub node_calls: Cell<u64>,
    /// Custom notifications emitted.
    pub notifications: Cell<u64>,
}

impl InstanceState {
    /// The state of an instance of `session`'s guest, before any call.
    pub fn new(session: Arc<Session>, deadline: Deadline) -> InstanceState {
        InstanceState {
            session,
            call: None,
            deadline,
            spent: Spent::default(),
        }
    }

    /// A new invocation starts: `call` (none for the host's own asks), by
    /// `deadline`, with nothing spent yet.
    pub fn begin(&mut self, call: Option<CallContext>, deadline: Deadline) {
        self.call = call;
        self.deadline = deadline;
        self.spent = Spent::default();
    }

    /// Count one more of what `spent` counts against `max`, the limit `key`
    /// per invocation: `Err` is the refusal (`what` is refused; `kept` as
    /// for [`InstanceState::over_limit`]).
    fn spend(
        &self,
        spent: &Cell<u64>,
        max: u64,
        key: &'static str,
        what: &str,
        kept: bool,
    ) -> Result<(), WitRpcError> {
        if spent.get() >= max {
            return Err(self.over_limit(
                what,
                key,
                kept,
                &format!("this invocation made {max}, its most ([limits] {key})"),
            ));
        }
        spent.set(spent.get() + 1);
        Ok(())
    }
}

/// What a capability gives the guest instead of an answer: an `rpc-error`
/// it can handle, or a trap that ends the call (its deadline passed while
/// the host was blocked on its behalf).
#[derive(Debug)]
pub enum CapError {
    Rpc(WitRpcError),
    Trap(anyhow::Error),
}

impl From<WitRpcError> for CapError {
    fn from(e: WitRpcError) -> CapError {
        CapError::Rpc(e)
    }
}

impl From<crate::protocol::RpcError> for CapError {
    fn from(e: crate::protocol::RpcError) -> CapError {
        CapError::Rpc(e.into())
    }
}

impl InstanceState {
    /// Refuse `what` for want of a request or a grant (`why`); `kept` when
    /// it moves money or changes the node (see [`Audit::count`]).
    fn deny(&self, what: &str, kept: bool, why: &str) -> WitRpcError {
        let error = WitRpcError::new(CAPABILITY_DENIED, format!("{what} denied: {why}"));
        let line = format!("denied {what}: {why}");
        self.refuse("denied", what, kept, &line, error)
    }

    /// Refuse `what` for passing the limit `key` (`why` says how): counted
    /// under the limit, or when `kept` under the limit and `what` (a finite
    /// set too: each limit, each method that moves money).
    fn over_limit(&self, what: &str, key: &'static str, kept: bool, why: &str) -> WitRpcError {
        let error = WitRpcError::new(LIMIT_EXCEEDED, format!("{what} refused: {why}"));
        let line = format!("refused {what}: {why}");
        match kept {
            true => self.refuse("over_limits", &format!("{key} {what}"), true, &line, error),
            false => self.refuse("over_limits", key, false, &line, error),
        }
    }

    /// The one shape every refusal takes: a `warn` line (the guest's doing,
    /// so within its log budget, but a kept name's first refusal always), a
    /// count in the audit, the guest's error.
    fn refuse(
        &self,
        kind: &'static str,
        counted: &str,
        kept: bool,
        line: &str,
        error: WitRpcError,
    ) -> WitRpcError {
        if self.session.audit.count(kind, counted, kept) {
            log::warn!("{line}");
        } else {
            self.session.meters.log.log(log::Level::Warn, line);
        }
        error
    }

    /// The node, and the id of the call on whose behalf it is used.
    fn node(&self) -> Result<(&NodeClient, &str), WitRpcError> {
        let Some(call) = &self.call else {
            return Err(WitRpcError::new(
                INTERNAL_ERROR,
                "the node can only be used while answering a call",
            ));
        };
        let Some(node) = &self.session.node else {
            return Err(WitRpcError::new(
                INTERNAL_ERROR,
                "the node is not available before init",
            ));
        };
        Ok((node, &call.id))
    }
}

impl types::Host for InstanceState {
    fn convert_rpc_error(&mut self, e: CapError) -> anyhow::Result<WitRpcError> {
        match e {
            CapError::Rpc(e) => Ok(e),
            CapError::Trap(trap) => Err(trap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Audit;
    use serde_json::json;

    #[test]
    fn a_kept_name_is_named_past_any_decoys_and_reported_once() {
        let audit = Audit::default();
        for n in 0..300 {
            assert!(!audit.count("denied", &format!("node method \"d{n}\""), false));
        }
        assert!(audit.count("denied", "node method \"withdraw\"", true));
        assert!(!audit.count("denied", "node method \"withdraw\"", true));
        assert!(audit.count("denied", "node method \"pay\"", true));
        let denied = &audit.to_json()["denied"];
        assert_eq!(denied["node method \"withdraw\""], json!(2));
        assert_eq!(denied["node method \"pay\""], json!(1));
        assert_eq!(denied["(others)"], json!(300 - 256));
        assert_eq!(denied.as_object().unwrap().len(), 256 + 3);
    }
}
