//! What a guest can reach: the host side of the WIT imports (`config`,
//! `request`, `node`, `store`). Every node method goes through
//! [`HostState::node_method`] and every store access through
//! [`HostState::store_key`]: the two places the manifest's requests and the
//! operator's grants are checked, and refusals audited.

use crate::bindings::cln::plugin::types::LogLevel;
use crate::bindings::cln::plugin::{config, events, node, request, store, types};
use crate::bindings::{OptionValue, WitRpcError};
use crate::filter;
use crate::node::NodeClient;
use crate::policy::Policy;
use crate::protocol::{INTERNAL_ERROR, INVALID_PARAMS, Outbox, RpcError};
use crate::runtime::MemoryCap;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The error code a guest gets when it uses a capability it was not granted.
pub const CAPABILITY_DENIED: i64 = -32010;

/// What all instances of one guest share, decided at start-up and by `init`.
pub struct Session {
    /// The plugin's name (the executable's file name), used in logs and ids.
    pub plugin: String,
    pub policy: Policy,
    /// `None` before init, and in the CLI tools' sessions without a node.
    pub node: Option<NodeClient>,
    /// Where custom notifications go: lightningd, or `None` (logged instead).
    pub outbox: Option<Arc<Outbox>>,
    /// What the manifest asks for and declares (empty before init).
    pub declared: Declared,
    /// What lightningd told us, and what `setconfig` changes.
    pub settings: RwLock<Settings>,
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
        self.options_json = crate::manifest::options_json(&options);
        self.options = options;
    }
}

impl Session {
    /// The session before `init`: no options, no node, nothing declared.
    pub fn before_init(plugin: &str, policy: Policy, outbox: Option<Arc<Outbox>>) -> Session {
        Session {
            plugin: plugin.to_string(),
            policy,
            node: None,
            outbox,
            declared: Declared::default(),
            settings: RwLock::new(Settings {
                options_json: "{}".into(),
                configuration: "{}".into(),
                ..Settings::default()
            }),
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
}

/// The state of one guest instance (its wasmtime `Store` data).
pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryCap,
    pub session: Arc<Session>,
    pub call: Option<CallContext>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Largest value the store keeps, and longest key.
const MAX_STORE_VALUE: usize = 64 * 1024;
const MAX_STORE_KEY: usize = 256;
/// lightningd's "datastore key does not exist" error.
const DATASTORE_MISSING: i64 = 1200;

impl HostState {
    /// Refuse, audit. The one shape every refusal takes.
    fn deny(&self, what: &str, why: &str) -> WitRpcError {
        log::warn!("denied {what}: {why}");
        wit_error(CAPABILITY_DENIED, format!("{what} denied: {why}"))
    }

    /// The node, and the id of the call on whose behalf it is used.
    fn node(&self) -> Result<(&NodeClient, &str), WitRpcError> {
        let Some(call) = &self.call else {
            return Err(wit_error(
                INTERNAL_ERROR,
                "the node can only be used while answering a call",
            ));
        };
        let Some(node) = &self.session.node else {
            return Err(wit_error(
                INTERNAL_ERROR,
                "the node is not available before init",
            ));
        };
        Ok((node, &call.id))
    }

    /// Check the manifest's request and the operator's grant, then call the
    /// node, cutting its answer down to the grant's filter. A refusal is an
    /// error for the guest and a log line for the operator; it never reaches
    /// the node.
    fn node_method(
        &self,
        method: &str,
        params: &str,
        filter: Option<String>,
    ) -> Result<String, WitRpcError> {
        let what = format!("node method {method:?}");
        let params_value: Value = serde_json::from_str(params)
            .map_err(|e| wit_error(INVALID_PARAMS, format!("params are not JSON: {e}")))?;
        if !self.session.declared.rpc.contains(method) {
            return Err(self.deny(&what, "the plugin's manifest does not ask for it"));
        }
        let grant = self
            .session
            .policy
            .check_rpc(method, &params_value)
            .map_err(|denial| self.deny(&what, &denial.0))?;
        let guest_filter = filter
            .map(|f| serde_json::from_str::<Value>(&f))
            .transpose()
            .map_err(|e| wit_error(INVALID_PARAMS, format!("filter is not JSON: {e}")))?;
        let (node, id) = self.node()?;
        let raw = |v: &Value| serde_json::value::to_raw_value(v).expect("JSON values serialize");
        // The node applies the grant's filter if there is one, else the guest's.
        let node_filter = grant.filter.as_ref().or(guest_filter.as_ref()).map(raw);
        let answer = node
            .call(id, method, &raw(&params_value), node_filter.as_deref())
            .map_err(|e| to_wit(RpcError::from(e)))?;
        let Some(grant_filter) = &grant.filter else {
            return Ok(answer.get().to_string());
        };
        // Enforced here too, whatever the node did; the guest's filter can only narrow it.
        let answer: Value = serde_json::from_str(answer.get())
            .map_err(|e| wit_error(INTERNAL_ERROR, format!("node answer is not JSON: {e}")))?;
        let mut allowed = filter::apply(&answer, grant_filter);
        if let Some(guest_filter) = &guest_filter {
            allowed = filter::apply(&allowed, guest_filter);
        }
        Ok(allowed.to_string())
    }

    /// The datastore key for the guest's `key`, if it may use the store: the
    /// guest names only the last element, so it cannot leave its namespace.
    fn store_key(&self, key: &str) -> Result<Value, WitRpcError> {
        let what = format!("store key {key:?}");
        if !self.session.declared.store {
            return Err(self.deny(&what, "the plugin's manifest does not ask for the store"));
        }
        if !self.session.policy.grants.store {
            return Err(self.deny(
                &what,
                "the policy does not grant the store ([grants] store = true)",
            ));
        }
        if key.is_empty() || key.len() > MAX_STORE_KEY {
            return Err(wit_error(
                INVALID_PARAMS,
                format!("store keys are 1 to {MAX_STORE_KEY} bytes"),
            ));
        }
        Ok(json!(["cln-wasm-host", self.session.plugin, key]))
    }

    fn datastore(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let (node, id) = self.node().map_err(rpc_error_from_guest)?;
        let params = serde_json::value::to_raw_value(&params).expect("JSON values serialize");
        let answer = node.call(id, method, &params, None)?;
        serde_json::from_str(answer.get())
            .map_err(|e| RpcError::new(INTERNAL_ERROR, format!("{method} answer: {e}")))
    }
}

fn wit_error(code: i64, message: impl Into<String>) -> WitRpcError {
    WitRpcError {
        code,
        message: message.into(),
        data: None,
    }
}

fn to_wit(e: RpcError) -> WitRpcError {
    WitRpcError {
        code: e.code,
        message: e.message,
        data: e.data.map(|d| d.get().to_string()),
    }
}

/// A guest's own error, for lightningd. Data that is not JSON is passed on
/// as a JSON string rather than dropped.
pub fn rpc_error_from_guest(e: WitRpcError) -> RpcError {
    let data = e.data.map(|text| {
        RawValue::from_string(text.clone())
            .unwrap_or_else(|_| serde_json::value::to_raw_value(&text).expect("a string is JSON"))
    });
    RpcError {
        code: e.code,
        message: e.message,
        data,
    }
}

impl types::Host for HostState {}

impl config::Host for HostState {
    fn get_option(&mut self, name: String) -> Option<OptionValue> {
        self.session.settings().options.get(&name).cloned()
    }

    fn options(&mut self) -> String {
        self.session.settings().options_json.clone()
    }

    fn configuration(&mut self) -> String {
        self.session.settings().configuration.clone()
    }

    fn allow_deprecated_apis(&mut self) -> bool {
        self.session.settings().allow_deprecated_apis
    }
}

impl request::Host for HostState {
    fn method(&mut self) -> String {
        self.call
            .as_ref()
            .map(|c| c.method.clone())
            .unwrap_or_default()
    }

    fn params(&mut self) -> String {
        self.call
            .as_ref()
            .map_or_else(|| "[]".to_string(), |c| c.params.get().to_string())
    }
}

impl node::Host for HostState {
    fn getinfo(&mut self, filter: Option<String>) -> Result<String, WitRpcError> {
        self.node_method("getinfo", "[]", filter)
    }

    fn call(
        &mut self,
        method: String,
        params: String,
        filter: Option<String>,
    ) -> Result<String, WitRpcError> {
        self.node_method(&method, &params, filter)
    }
}

impl store::Host for HostState {
    fn get(&mut self, key: String) -> Result<Option<String>, WitRpcError> {
        let key = self.store_key(&key)?;
        let answer = self
            .datastore("listdatastore", json!({ "key": key }))
            .map_err(to_wit)?;
        let entry = answer["datastore"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["key"] == key);
        Ok(entry.and_then(|e| e["string"].as_str()).map(str::to_string))
    }

    fn set(&mut self, key: String, value: String) -> Result<(), WitRpcError> {
        let key = self.store_key(&key)?;
        if value.len() > MAX_STORE_VALUE {
            return Err(wit_error(
                INVALID_PARAMS,
                format!("store values are at most {MAX_STORE_VALUE} bytes"),
            ));
        }
        let params = json!({ "key": key, "string": value, "mode": "create-or-replace" });
        self.datastore("datastore", params)
            .map(drop)
            .map_err(to_wit)
    }

    fn delete(&mut self, key: String) -> Result<(), WitRpcError> {
        let key = self.store_key(&key)?;
        match self.datastore("deldatastore", json!({ "key": key })) {
            Err(e) if e.code != DATASTORE_MISSING => Err(to_wit(e)),
            _ => Ok(()),
        }
    }
}

impl events::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Info => log::Level::Info,
            LogLevel::Warn => log::Level::Warn,
            LogLevel::Error => log::Level::Error,
        };
        log::log!(level, "{message}");
    }

    fn emit(&mut self, topic: String, payload: String) -> Result<(), WitRpcError> {
        if !self.session.declared.notifications.contains(&topic) {
            return Err(self.deny(
                &format!("notification {topic:?}"),
                "the plugin's manifest does not declare it",
            ));
        }
        let payload = RawValue::from_string(payload)
            .map_err(|e| wit_error(INVALID_PARAMS, format!("payload is not JSON: {e}")))?;
        match &self.session.outbox {
            Some(outbox) => outbox
                .notify(&topic, &payload)
                .map_err(|e| wit_error(INTERNAL_ERROR, format!("{e:#}"))),
            None => {
                log::info!("notification {topic}: {}", payload.get());
                Ok(())
            }
        }
    }
}
