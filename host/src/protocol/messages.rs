//! The plugin protocol's messages as typed serde structs: what lightningd
//! sends (a [`Message`], `getmanifest`'s and `init`'s params) and what the
//! host answers (the [`GetManifest`] result, [`RpcError`]s).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One message from lightningd: a request when `id` is set, else a notification.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// Echoed back verbatim; lightningd uses numbers and strings such as
    /// `cli:myplugin#1/cln:myplugin#2`.
    #[serde(default)]
    pub id: Option<Value>,
    pub method: Option<String>,
    /// Kept as the exact text lightningd sent: guests get it unchanged.
    #[serde(default)]
    pub params: Option<Box<RawValue>>,
}

impl Message {
    /// The params as sent, or `[]` when lightningd sent none.
    pub fn into_params(self) -> Box<RawValue> {
        match self.params {
            Some(p) if p.get() != "null" => p,
            _ => RawValue::from_string("[]".into()).expect("[] is JSON"),
        }
    }
}

/// A JSON-RPC error object, as answered to lightningd or received from the node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attach JSON data (e.g. `{"cause": "deadline"}`).
    pub fn with_data(mut self, data: &Value) -> Self {
        self.data = serde_json::value::to_raw_value(data).ok();
        self
    }
}

/// `getmanifest`'s params.
#[derive(Debug, Default, Deserialize)]
pub struct GetManifestParams {
    #[serde(default, rename = "allow-deprecated-apis")]
    pub allow_deprecated_apis: bool,
}

/// `init`'s params.
#[derive(Debug, Deserialize)]
pub struct InitParams {
    #[serde(default)]
    pub options: Map<String, Value>,
    pub configuration: Map<String, Value>,
}

/// `setconfig`'s params: one of the plugin's options and its new value
/// (none for a flag being set).
#[derive(Debug, Deserialize)]
pub struct SetConfigParams {
    pub config: String,
    pub val: Option<Value>,
}

/// The `getmanifest` result, as lightningd reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GetManifest {
    pub dynamic: bool,
    pub options: Vec<OptionEntry>,
    pub rpcmethods: Vec<MethodEntry>,
    pub subscriptions: Vec<String>,
    pub hooks: Vec<HookEntry>,
    /// Hex bit strings by place: `init`, `node`, `channel`, `invoice`.
    pub featurebits: Map<String, Value>,
    pub notifications: Vec<NotificationEntry>,
    pub custommessages: Vec<u16>,
    /// We echo ids verbatim, so lightningd may use its string ids.
    pub nonnumericids: bool,
}

/// One option in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(skip_serializing_if = "is_false")]
    pub multi: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub dynamic: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub deprecated: bool,
}

/// One RPC method in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodEntry {
    pub name: String,
    pub usage: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long_description: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub deprecated: bool,
}

/// One hook in the manifest, with the plugins it must run before or after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookEntry {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// One custom notification topic the plugin emits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationEntry {
    pub method: String,
}

fn is_false(b: &bool) -> bool {
    !b
}
