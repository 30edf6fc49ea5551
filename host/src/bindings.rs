//! Rust types and glue generated from the WIT world in `wit/`, and the one
//! place they are converted to and from the host's own types. The rest of the
//! host uses these names, never the macro.

use crate::protocol::RpcError as HostRpcError;
use crate::protocol::json;
use serde_json::{Value, json};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    anyhow: true,
    // Node calls block; past the call's deadline they trap rather than
    // hand the guest an error it could ignore.
    imports: { "cln:plugin/node": trappable, "cln:plugin/store": trappable },
    trappable_error_type: { "cln:plugin/types.rpc-error" => crate::caps::CapError },
});

pub use cln::plugin::types::{OptionDecl, OptionType, RpcError as WitRpcError};

impl WitRpcError {
    /// An error for the guest, without data.
    pub fn new(code: i64, message: impl Into<String>) -> WitRpcError {
        WitRpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// An error the host (or the node) gives the guest.
impl From<HostRpcError> for WitRpcError {
    fn from(e: HostRpcError) -> WitRpcError {
        WitRpcError {
            code: e.code,
            message: e.message,
            data: e.data.map(|d| d.get().to_string()),
        }
    }
}

/// A guest's own error, for lightningd. Its data is read strictly and
/// forwarded as we serialize it; data that is not usable JSON (not JSON, a
/// key twice, too deep) is passed on as a JSON string rather than dropped.
impl From<WitRpcError> for HostRpcError {
    fn from(e: WitRpcError) -> HostRpcError {
        let data = e.data.map(|text| match json::strict(&text) {
            Ok(data) => data.to_raw(),
            Err(_) => serde_json::value::to_raw_value(&text).expect("a string is JSON"),
        });
        HostRpcError {
            code: e.code,
            message: e.message,
            data,
        }
    }
}

impl cln::plugin::types::Featurebits {
    /// Each place's bits, by the name lightningd gives the place.
    pub fn places(&self) -> [(&'static str, &Option<String>); 4] {
        [
            ("init", &self.init),
            ("node", &self.node),
            ("channel", &self.channel),
            ("invoice", &self.invoice),
        ]
    }

    /// The same, to change.
    pub fn places_mut(&mut self) -> [(&'static str, &mut Option<String>); 4] {
        [
            ("init", &mut self.init),
            ("node", &mut self.node),
            ("channel", &mut self.channel),
            ("invoice", &mut self.invoice),
        ]
    }
}

impl OptionValue {
    /// The value as lightningd and `config.options` write it.
    pub fn to_json(&self) -> Value {
        match self {
            OptionValue::String(s) => json!(s),
            OptionValue::Int(i) => json!(i),
            OptionValue::Bool(b) => json!(b),
            OptionValue::StringList(l) => json!(l),
            OptionValue::IntList(l) => json!(l),
        }
    }
}
