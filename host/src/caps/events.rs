//! `events`: lines for lightningd's log (within the guest's log budget), and
//! the custom notifications the manifest declares (anything else is
//! refused), within `notifications_per_invocation`, `notifications_rate`
//! and `answer_max_bytes`.

use super::InstanceState;
use super::quota::{MAX_LOG_LINE, truncated};
use crate::bindings::WitRpcError;
use crate::bindings::cln::plugin::events;
use crate::bindings::cln::plugin::types::LogLevel;
use crate::logging::guest_line;
use crate::protocol::{INTERNAL_ERROR, INVALID_PARAMS, json};
use crate::shown::quoted;

impl events::Host for InstanceState {
    fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Info => log::Level::Info,
            LogLevel::Warn => log::Level::Warn,
            LogLevel::Error => log::Level::Error,
        };
        let message = truncated(&message, MAX_LOG_LINE);
        self.session
            .meters
            .log
            .log(level, &guest_line(None, message));
    }

    fn emit(&mut self, topic: String, payload: String) -> Result<(), WitRpcError> {
        if !self.session.declared.notifications.contains(&topic) {
            return Err(self.deny(
                &format!("notification {}", quoted(&topic)),
                false,
                "the plugin's manifest does not declare it",
            ));
        }
        if !self.session.policy.grants.notifications.contains(&topic) {
            return Err(self.deny(
                &format!("notification {}", quoted(&topic)),
                false,
                "the policy does not grant it ([grants] notifications)",
            ));
        }
        let what = format!("notification {}", quoted(&topic));
        let limits = &self.session.policy.limits;
        if payload.len() > limits.answer_max_bytes {
            return Err(self.over_limit(
                &what,
                "answer_max_bytes",
                false,
                &format!(
                    "its payload is {} bytes, past [limits] answer_max_bytes ({})",
                    payload.len(),
                    limits.answer_max_bytes
                ),
            ));
        }
        self.spend(
            &self.spent.notifications,
            limits.notifications_per_invocation,
            "notifications_per_invocation",
            &what,
            false,
        )?;
        let meters = &self.session.meters;
        if !meters.notifications.take(1) {
            return Err(self.over_limit(
                &what,
                "notifications_rate",
                false,
                &format!(
                    "past [limits] notifications_rate ({})",
                    meters.notifications.rate()
                ),
            ));
        }
        // Forwarded as we serialize what we read, never the guest's text.
        let payload = json::strict(&payload)
            .map_err(|e| {
                WitRpcError::new(INVALID_PARAMS, format!("payload is not usable JSON: {e}"))
            })?
            .to_raw();
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
