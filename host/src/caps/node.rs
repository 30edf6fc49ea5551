//! `node`: the node's RPC methods, each allowed only when the manifest asks
//! for it and the policy grants it ([`Policy::check_rpc`]), the answer cut
//! down to the grant's filter. Every call that reaches the node, the store's
//! included, goes through [`InstanceState::call_node`]: within the guest's
//! rate and its call's deadline.
//!
//! [`Policy::check_rpc`]: crate::policy::Policy::check_rpc

use super::{CapError, DeadlineReached, InstanceState};
use crate::bindings::WitRpcError;
use crate::bindings::cln::plugin::node;
use crate::node::NodeError;
use crate::policy::filter;
use crate::protocol::{INTERNAL_ERROR, INVALID_PARAMS, RpcError, json, lightningd};
use crate::shown::quoted;
use serde_json::Value;
use serde_json::value::RawValue;

impl InstanceState {
    /// Check the manifest's request and the operator's grant, then call the
    /// node, cutting its answer down to the grant's filter. A refusal is an
    /// error for the guest and a log line for the operator; it never reaches
    /// the node.
    pub fn node_method(
        &self,
        method: &str,
        params: &str,
        filter: Option<String>,
    ) -> Result<String, CapError> {
        let what = format!("node method {}", quoted(method));
        let kept = lightningd::changes_node(method);
        let limits = &self.session.policy.limits;
        let size = params.len() + filter.as_ref().map_or(0, String::len);
        if size > limits.node_params_max_bytes {
            return Err(self
                .over_limit(
                    &what,
                    "node_params_max_bytes",
                    kept,
                    &format!(
                        "its params are {size} bytes, past [limits] node_params_max_bytes ({})",
                        limits.node_params_max_bytes
                    ),
                )
                .into());
        }
        // Read strictly: the conditions are checked on this value, and the
        // node gets it as we serialize it, not the guest's text.
        let params_value = json::strict(params)
            .map_err(|e| {
                CapError::from(WitRpcError::new(
                    INVALID_PARAMS,
                    format!("params are not usable JSON: {e}"),
                ))
            })?
            .0;
        if !self.session.declared.rpc.contains(method) {
            return Err(self
                .deny(&what, kept, "the plugin's manifest does not ask for it")
                .into());
        }
        let grant = self
            .session
            .policy
            .check_rpc(method, &params_value)
            .map_err(|denial| CapError::from(self.deny(&what, kept, &denial.0)))?;
        let guest_filter = filter
            .map(|f| json::strict(&f).map(|f| f.0))
            .transpose()
            .map_err(|e| {
                CapError::from(WitRpcError::new(
                    INVALID_PARAMS,
                    format!("filter is not usable JSON: {e}"),
                ))
            })?;
        let raw = |v: &Value| serde_json::value::to_raw_value(v).expect("JSON values serialize");
        // The node applies the grant's filter if there is one, else the guest's.
        let node_filter = grant.filter.as_ref().or(guest_filter.as_ref()).map(raw);
        let params = raw(&params_value);
        let answer = self.call_node(method, &params, node_filter.as_deref(), kept)?;
        let Some(grant_filter) = &grant.filter else {
            return Ok(answer.get().to_string());
        };
        // Enforced here too, whatever the node did; the guest's filter can only narrow it.
        let answer: Value = serde_json::from_str(answer.get()).map_err(|e| {
            CapError::from(WitRpcError::new(
                INTERNAL_ERROR,
                format!("node answer is not JSON: {e}"),
            ))
        })?;
        let mut allowed = filter::apply(&answer, grant_filter);
        if let Some(guest_filter) = &guest_filter {
            allowed = filter::apply(&allowed, guest_filter);
        }
        Ok(allowed.to_string())
    }

    /// Call the node, if the guest's rate allows, giving up at the call's
    /// deadline (a trap: the call is over). `kept`: a refusal is named in
    /// the audit and logged (see [`InstanceState::over_limit`]).
    pub(super) fn call_node(
        &self,
        method: &str,
        params: &RawValue,
        filter: Option<&RawValue>,
        kept: bool,
    ) -> Result<Box<RawValue>, CapError> {
        let (node, id) = self.node()?;
        let what = format!("node method {}", quoted(method));
        let per_invocation = self.session.policy.limits.node_calls_per_invocation;
        self.spend(
            &self.spent.node_calls,
            per_invocation,
            "node_calls_per_invocation",
            &what,
            kept,
        )?;
        let meters = &self.session.meters;
        if !meters.node_calls.take(1) {
            return Err(self
                .over_limit(
                    &what,
                    "node_calls_rate",
                    kept,
                    &format!(
                        "past [limits] node_calls_rate ({})",
                        meters.node_calls.rate()
                    ),
                )
                .into());
        }
        node.call(id, method, params, filter, self.deadline.at)
            .map_err(|e| match e {
                NodeError::Deadline => CapError::Trap(DeadlineReached.into()),
                e => CapError::from(RpcError::from(e)),
            })
    }
}

impl node::Host for InstanceState {
    fn getinfo(&mut self, filter: Option<String>) -> Result<String, CapError> {
        self.node_method("getinfo", "[]", filter)
    }

    fn call(
        &mut self,
        method: String,
        params: String,
        filter: Option<String>,
    ) -> Result<String, CapError> {
        self.node_method(&method, &params, filter)
    }
}
