//! `request`: the call the instance is answering, exactly as lightningd sent
//! it.

use super::InstanceState;
use crate::bindings::cln::plugin::request;

impl request::Host for InstanceState {
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
