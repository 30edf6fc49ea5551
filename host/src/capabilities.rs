//! What a guest can reach: the host side of the WIT imports (`config`,
//! `request`, `node`). Every node capability goes through
//! [`HostState::node_capability`], the one place the operator's grants are
//! checked.

use crate::bindings::cln::plugin::{config, node, request, types};
use crate::bindings::{OptionValue, WitRpcError};
use crate::node::NodeClient;
use crate::policy::Policy;
use crate::protocol::{INTERNAL_ERROR, INVALID_PARAMS, RpcError};
use crate::runtime::MemoryCap;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The error code a guest gets when it uses a capability it was not granted.
pub const CAPABILITY_DENIED: i64 = -32010;

/// What all instances of one guest share, decided at start-up and by `init`.
pub struct Session {
    /// The plugin's name (the executable's file name), used in logs and ids.
    pub plugin: String,
    pub policy: Policy,
    /// Typed option values: declared defaults overlaid with what init gave.
    pub options: BTreeMap<String, OptionValue>,
    /// The same options as a JSON object, for `config.options`.
    pub options_json: String,
    /// `None` before init, and in tests of the manifest alone.
    pub node: Option<NodeClient>,
}

impl Session {
    /// The session before `init`: no options, no node.
    pub fn before_init(plugin: &str, policy: Policy) -> Session {
        Session {
            plugin: plugin.to_string(),
            policy,
            options: BTreeMap::new(),
            options_json: "{}".into(),
            node: None,
        }
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

impl HostState {
    /// Check the grant, then call the node. A refusal is an error for the
    /// guest and a log line for the operator; it never reaches the node.
    fn node_capability(
        &self,
        capability: &str,
        params: &str,
        filter: Option<String>,
    ) -> Result<String, WitRpcError> {
        let session = &self.session;
        if !session.policy.allows_node(capability) {
            log::warn!(
                "{}: denied node capability {capability:?}: not granted in the plugin's policy ([grants] node)",
                session.plugin
            );
            return Err(wit_error(
                CAPABILITY_DENIED,
                format!("capability {capability:?} is not granted to this plugin"),
            ));
        }
        let Some(call) = &self.call else {
            return Err(wit_error(
                INTERNAL_ERROR,
                "the node can only be used while answering a call",
            ));
        };
        let Some(node) = &session.node else {
            return Err(wit_error(
                INTERNAL_ERROR,
                "the node is not available before init",
            ));
        };
        let params = RawValue::from_string(params.to_string())
            .map_err(|e| wit_error(INVALID_PARAMS, e.to_string()))?;
        let filter = filter
            .map(RawValue::from_string)
            .transpose()
            .map_err(|e| wit_error(INVALID_PARAMS, format!("filter is not JSON: {e}")))?;
        node.call(&call.id, capability, &params, filter.as_deref())
            .map(|answer| answer.get().to_string())
            .map_err(|e| to_wit(RpcError::from(e)))
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
        self.session.options.get(&name).cloned()
    }

    fn options(&mut self) -> String {
        self.session.options_json.clone()
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
        self.node_capability("getinfo", "[]", filter)
    }
}
