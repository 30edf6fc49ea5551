//! `store`: a small private key-value store in the node's datastore, under
//! `["cln-wasm-host", NAME, key]`, allowed only when the manifest asks for it
//! and the policy grants it ([`InstanceState::store_key`]).

use super::InstanceState;
use crate::bindings::WitRpcError;
use crate::bindings::cln::plugin::store;
use crate::protocol::{DATASTORE_MISSING, INTERNAL_ERROR, INVALID_PARAMS, RpcError};
use serde_json::{Value, json};

/// Largest value the store keeps, and longest key.
pub const MAX_STORE_VALUE: usize = 64 * 1024;
pub const MAX_STORE_KEY: usize = 256;

impl InstanceState {
    /// The datastore key for the guest's `key`, if it may use the store: the
    /// guest names only the last element, so it cannot leave its namespace.
    pub fn store_key(&self, key: &str) -> Result<Value, WitRpcError> {
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
            return Err(WitRpcError::new(
                INVALID_PARAMS,
                format!("store keys are 1 to {MAX_STORE_KEY} bytes"),
            ));
        }
        Ok(json!(["cln-wasm-host", self.session.name, key]))
    }

    fn datastore(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let (node, id) = self.node().map_err(RpcError::from)?;
        let params = serde_json::value::to_raw_value(&params).expect("JSON values serialize");
        let answer = node.call(id, method, &params, None)?;
        serde_json::from_str(answer.get())
            .map_err(|e| RpcError::new(INTERNAL_ERROR, format!("{method} answer: {e}")))
    }
}

impl store::Host for InstanceState {
    fn get(&mut self, key: String) -> Result<Option<String>, WitRpcError> {
        let key = self.store_key(&key)?;
        let answer = self.datastore("listdatastore", json!({ "key": key }))?;
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
            return Err(WitRpcError::new(
                INVALID_PARAMS,
                format!("store values are at most {MAX_STORE_VALUE} bytes"),
            ));
        }
        let params = json!({ "key": key, "string": value, "mode": "create-or-replace" });
        self.datastore("datastore", params)?;
        Ok(())
    }

    fn delete(&mut self, key: String) -> Result<(), WitRpcError> {
        let key = self.store_key(&key)?;
        match self.datastore("deldatastore", json!({ "key": key })) {
            Err(e) if e.code != DATASTORE_MISSING => Err(e.into()),
            _ => Ok(()),
        }
    }
}
