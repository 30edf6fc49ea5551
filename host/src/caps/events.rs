//! `events`: lines for lightningd's log, and the custom notifications the
//! manifest declares (anything else is refused).

use super::InstanceState;
use crate::bindings::WitRpcError;
use crate::bindings::cln::plugin::events;
use crate::bindings::cln::plugin::types::LogLevel;
use crate::logging::guest_line;
use crate::protocol::{INTERNAL_ERROR, INVALID_PARAMS};
use serde_json::value::RawValue;

impl events::Host for InstanceState {
    fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Info => log::Level::Info,
            LogLevel::Warn => log::Level::Warn,
            LogLevel::Error => log::Level::Error,
        };
        log::log!(level, "{}", guest_line(None, &message));
    }

    fn emit(&mut self, topic: String, payload: String) -> Result<(), WitRpcError> {
        if !self.session.declared.notifications.contains(&topic) {
            return Err(self.deny(
                &format!("notification {topic:?}"),
                "the plugin's manifest does not declare it",
            ));
        }
        if !self.session.policy.grants.notifications.contains(&topic) {
            return Err(self.deny(
                &format!("notification {topic:?}"),
                "the policy does not grant it ([grants] notifications)",
            ));
        }
        let payload = RawValue::from_string(payload)
            .map_err(|e| WitRpcError::new(INVALID_PARAMS, format!("payload is not JSON: {e}")))?;
        match &self.session.outbox {
            Some(outbox) => outbox
                .notify(&topic, &payload)
                .map_err(|e| WitRpcError::new(INTERNAL_ERROR, format!("{e:#}"))),
            None => {
                log::info!("notification {topic}: {}", payload.get());
                Ok(())
            }
        }
    }
}
