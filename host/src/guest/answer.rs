//! A guest's answers, made into what lightningd must get: JSON for a call (or
//! a JSON-RPC error), and for a hook always an answer lightningd accepts.

use super::load::LoadedGuest;
use crate::caps::CallContext;
use crate::protocol::{INTERNAL_ERROR, RpcError};
use serde_json::value::RawValue;

/// Every hook lightningd has accepts `continue`: what the host answers when
/// the guest cannot (an error answer to a hook would stop lightningd).
const HOOK_SAFE_DEFAULT: &str = r#"{"result":"continue"}"#;

impl LoadedGuest {
    /// The guest's answer to one call, as lightningd must get it.
    pub fn answer(&self, call: CallContext) -> Result<Box<RawValue>, RpcError> {
        let method = call.method.clone();
        let text = self.sandbox.call(call)??;
        RawValue::from_string(text).map_err(|e| {
            log::warn!("{method}: the guest's answer is not JSON: {e}");
            RpcError::new(INTERNAL_ERROR, format!("plugin answered invalid JSON: {e}"))
        })
    }

    /// The guest's answer to a hook, or the safe default (and a log line why).
    pub fn answer_hook(&self, call: CallContext) -> Box<RawValue> {
        let name = call.method.clone();
        let why = match self.sandbox.hook(call) {
            Ok(text) => match serde_json::from_str::<Box<RawValue>>(&text) {
                Ok(answer) if answer.get().trim_start().starts_with('{') => return answer,
                Ok(_) => "the guest's answer is not a JSON object".to_string(),
                Err(e) => format!("the guest's answer is not JSON: {e}"),
            },
            Err(failure) => failure.to_string(),
        };
        log::warn!("{name} hook: {why}; answering {HOOK_SAFE_DEFAULT}");
        RawValue::from_string(HOOK_SAFE_DEFAULT.into()).expect("the default is JSON")
    }
}
