//! A guest's answers, made into what lightningd must get: JSON for a call (or
//! a JSON-RPC error), and for a hook always an answer lightningd accepts;
//! never more than `answer_max_bytes`. What is checked is the guest's JSON
//! read strictly ([`json::strict`]: no key twice, bounded depth), and what
//! lightningd gets is that value serialized by us, never the guest's text.

use super::load::LoadedGuest;
use crate::caps::CallContext;
use crate::policy::Hook;
use crate::protocol::{INTERNAL_ERROR, LIMIT_EXCEEDED, RpcError, json};
use serde_json::Value;
use serde_json::value::RawValue;

impl LoadedGuest {
    /// The guest's answer to one call, as lightningd must get it.
    pub fn answer(&self, call: CallContext) -> Result<Box<RawValue>, RpcError> {
        let method = call.method.clone();
        let answer = self.sandbox.call(call)?;
        let size = match &answer {
            Ok(text) => text.len(),
            Err(e) => e.message.len() + e.data.as_ref().map_or(0, |d| d.get().len()),
        };
        if let Some(why) = self.too_big(size) {
            log::warn!("{method}: {why}");
            return Err(RpcError::new(LIMIT_EXCEEDED, why));
        }
        match json::strict(&answer?) {
            Ok(result) => Ok(result.to_raw()),
            Err(e) => {
                log::warn!("{method}: the guest's answer is not usable JSON: {e}");
                Err(RpcError::new(
                    INTERNAL_ERROR,
                    format!("plugin answered invalid JSON: {e}"),
                ))
            }
        }
    }

    /// The guest's answer to a hook if the policy's grant for the hook allows
    /// what it asks of lightningd, or else the safe default (and a log line
    /// why).
    pub fn answer_hook(&self, call: CallContext) -> Box<RawValue> {
        let name = call.method.clone();
        let payload = match Hook::reads_payload(&name) {
            // Read as strictly as the answer: a payload that holds a key
            // twice (a command sent to the node with two `method`s) could be
            // read otherwise by lightningd, so it grants nothing.
            true => json::strict(call.params.get()).map_or(Value::Null, |p| p.0),
            false => Value::Null,
        };
        let why = match self.sandbox.hook(call) {
            Ok(text) => match self.too_big(text.len()) {
                Some(why) => why,
                None => match json::strict(&text) {
                    // The value checked is the value forwarded.
                    Ok(answer) => match self.allowed(&name, &payload, &answer.0) {
                        Ok(()) => return answer.to_raw(),
                        Err(why) => why,
                    },
                    Err(e) => {
                        let session = self.sandbox.session();
                        session.audit.count("refused_hook_answers", &name, true);
                        format!("the guest's answer is not usable JSON: {e}")
                    }
                },
            },
            Err(failure) => failure.to_string(),
        };
        let default = Hook::safe_default(&name, &payload);
        log::warn!("{name} hook: {why}; answering {default}");
        serde_json::value::to_raw_value(&default).expect("JSON values serialize")
    }

    /// Why an answer of `size` bytes may not reach lightningd, if it may not.
    fn too_big(&self, size: usize) -> Option<String> {
        let session = self.sandbox.session();
        let max = session.policy.limits.answer_max_bytes;
        if size <= max {
            return None;
        }
        session.audit.count("over_limits", "answer_max_bytes", true);
        Some(format!(
            "the guest's answer is {size} bytes, past [limits] answer_max_bytes ({max})"
        ))
    }

    /// Whether `answer` (JSON) to hook `name` is one the policy lets reach
    /// lightningd.
    fn allowed(&self, name: &str, payload: &Value, answer: &Value) -> Result<(), String> {
        let Value::Object(answer) = answer else {
            return Err("the guest's answer is not a JSON object".into());
        };
        let session = self.sandbox.session();
        let (Some(hook), Some(grant)) = (Hook::find(name), session.policy.grants.hook(name)) else {
            return Err("the hook is not granted".into());
        };
        hook.check(grant, payload, answer).map_err(|why| {
            // Hook names and their guarded names are finite: always kept.
            let counted = hook.moves(payload, answer);
            let counted = counted.map_or(name.to_string(), |m| format!("{name} {m}"));
            session.audit.count("refused_hook_answers", &counted, true);
            format!("the guest's answer is refused by the policy: {why}")
        })
    }
}
