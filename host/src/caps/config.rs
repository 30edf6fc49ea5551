//! `config`: the guest's options, as the operator set them, and what init
//! told the plugin. Nothing here reaches the node.

use super::InstanceState;
use crate::bindings::OptionValue;
use crate::bindings::cln::plugin::config;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The options as the JSON object `config.options` returns.
pub fn options_json(options: &BTreeMap<String, OptionValue>) -> String {
    let map: Map<String, Value> = options
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    Value::Object(map).to_string()
}

impl config::Host for InstanceState {
    fn get_option(&mut self, name: String) -> Option<OptionValue> {
        self.session.settings().options.get(&name).cloned()
    }

    fn options(&mut self) -> String {
        self.session.settings().options_json.clone()
    }

    fn configuration(&mut self) -> String {
        self.session.settings().configuration.clone()
    }

    fn allow_deprecated_apis(&mut self) -> bool {
        self.session.settings().allow_deprecated_apis
    }
}
