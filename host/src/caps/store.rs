//! `store`: a small private key-value store in the node's datastore, under
//! `["cln-wasm-host", NAME, key]`, allowed only when the manifest asks for it
//! and the policy grants it ([`InstanceState::store_key`]), and held to
//! `store_max_keys` and `store_max_bytes` ([`StoreUsage`], read from the
//! node at the first write).

use super::quota::StoreUsage;
use super::{CapError, InstanceState};
use crate::bindings::WitRpcError;
use crate::bindings::cln::plugin::store;
use crate::protocol::{DATASTORE_MISSING, INTERNAL_ERROR, INVALID_PARAMS, RpcError};
use crate::shown::quoted;
use serde_json::{Value, json};

/// Largest value the store keeps, and longest key.
pub const MAX_STORE_VALUE: usize = 64 * 1024;
pub const MAX_STORE_KEY: usize = 256;

impl InstanceState {
    /// The datastore key for the guest's `key`, if it may use the store: the
    /// guest names only the last element, so it cannot leave its namespace.
    pub fn store_key(&self, key: &str) -> Result<Value, WitRpcError> {
        let what = format!("store key {}", quoted(key));
        if !self.session.declared.store {
            return Err(self.deny(
                &what,
                false,
                "the plugin's manifest does not ask for the store",
            ));
        }
        if !self.session.policy.grants.store {
            return Err(self.deny(
                &what,
                false,
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

    /// One datastore call, through [`InstanceState::call_node`].
    fn datastore(&self, method: &str, params: Value) -> Result<Value, CapError> {
        let params = serde_json::value::to_raw_value(&params).expect("JSON values serialize");
        // Its own namespace only: nothing to keep in the audit.
        let answer = self.call_node(method, &params, None, false)?;
        serde_json::from_str(answer.get()).map_err(|e| {
            CapError::from(RpcError::new(
                INTERNAL_ERROR,
                format!("{method} answer: {e}"),
            ))
        })
    }

    /// What the guest's namespace holds, read from the node: each key's
    /// size (key and value bytes).
    fn read_usage(&self) -> Result<StoreUsage, CapError> {
        let prefix = json!(["cln-wasm-host", self.session.name]);
        let answer = self.datastore("listdatastore", json!({ "key": prefix }))?;
        let mut usage = StoreUsage::default();
        for entry in answer["datastore"].as_array().into_iter().flatten() {
            let Some(key) = entry["key"].get(2).and_then(Value::as_str) else {
                continue;
            };
            let value = match (entry["string"].as_str(), entry["hex"].as_str()) {
                (Some(text), _) => text.len(),
                (None, Some(hex)) => hex.len() / 2,
                (None, None) => 0,
            };
            usage.set(key, Some(key.len() + value));
        }
        Ok(usage)
    }

    /// Make room for `key` to hold `value_len` bytes, within the store's
    /// limits; `Ok` holds what it held before, to put back if the write fails.
    fn reserve(&self, key: &str, value_len: usize) -> Result<Option<usize>, CapError> {
        let meters = &self.session.meters;
        let mut usage = meters.store();
        if usage.is_none() {
            *usage = Some(self.read_usage()?);
        }
        let usage = usage.as_mut().expect("read just now");
        let limits = &self.session.policy.limits;
        usage
            .reserve(key, key.len() + value_len, limits)
            .map_err(|(limit, why)| {
                CapError::from(self.over_limit(
                    &format!("store key {}", quoted(key)),
                    limit,
                    false,
                    &why,
                ))
            })
    }

    /// Record that `key` holds `size` bytes (or nothing), if usage is known.
    fn account(&self, key: &str, size: Option<usize>) {
        if let Some(usage) = self.session.meters.store().as_mut() {
            usage.set(key, size);
        }
    }
}

impl store::Host for InstanceState {
    fn get(&mut self, key: String) -> Result<Option<String>, CapError> {
        let datastore_key = self.store_key(&key)?;
        let answer = self.datastore("listdatastore", json!({ "key": datastore_key }))?;
        let entry = answer["datastore"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["key"] == datastore_key);
        Ok(entry.and_then(|e| e["string"].as_str()).map(str::to_string))
    }

    fn set(&mut self, key: String, value: String) -> Result<(), CapError> {
        let datastore_key = self.store_key(&key)?;
        if value.len() > MAX_STORE_VALUE {
            return Err(WitRpcError::new(
                INVALID_PARAMS,
                format!("store values are at most {MAX_STORE_VALUE} bytes"),
            )
            .into());
        }
        let before = self.reserve(&key, value.len())?;
        let params = json!({ "key": datastore_key, "string": value, "mode": "create-or-replace" });
        if let Err(e) = self.datastore("datastore", params) {
            self.account(&key, before);
            return Err(e);
        }
        Ok(())
    }

    fn delete(&mut self, key: String) -> Result<(), CapError> {
        let datastore_key = self.store_key(&key)?;
        match self.datastore("deldatastore", json!({ "key": datastore_key })) {
            Err(CapError::Rpc(e)) if e.code == DATASTORE_MISSING => self.account(&key, None),
            Err(e) => return Err(e),
            Ok(_) => self.account(&key, None),
        }
        Ok(())
    }
}
