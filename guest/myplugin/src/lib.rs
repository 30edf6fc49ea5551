//! The seed's `myplugin.py`, minus all protocol plumbing: a string option
//! `foo_opt` (default `bar`) and a method `myplugin` that answers the node's id,
//! the option's value and the call's params.

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use cln::plugin::types::{Featurebits, MethodDecl, OptionDecl, OptionType, RpcRequest};
use cln::plugin::{config, node, request};
use serde_json::{Value, json};

struct MyPlugin;

impl Guest for MyPlugin {
    fn manifest() -> Manifest {
        Manifest {
            dynamic: true,
            options: vec![OptionDecl {
                name: "foo_opt".into(),
                type_: OptionType::String,
                default: Some(OptionValue::String("bar".into())),
                description: "description".into(),
                multi: false,
                dynamic: false,
                deprecated: false,
            }],
            methods: vec![MethodDecl {
                name: "myplugin".into(),
                usage: "".into(),
                description: "description".into(),
                long_description: None,
                deprecated: false,
            }],
            rpc: vec![RpcRequest {
                method: "getinfo".into(),
                reason: "to answer the node's id".into(),
            }],
            wants_store: false,
            hooks: vec![],
            subscriptions: vec![],
            notifications: vec![],
            featurebits: Featurebits {
                init: None,
                node: None,
                channel: None,
                invoice: None,
            },
            custommessages: vec![],
        }
    }

    fn init() -> Result<(), String> {
        Ok(())
    }

    fn handle() -> Result<String, RpcError> {
        let cli_params: Value = serde_json::from_str(&request::params()).map_err(internal)?;
        let info = node::getinfo(Some(r#"{"id": true}"#))?;
        let info: Value = serde_json::from_str(&info).map_err(internal)?;
        let foo_opt = match config::get_option("foo_opt") {
            Some(OptionValue::String(s)) => s,
            other => return Err(internal(format!("foo_opt is {other:?}, expected a string"))),
        };
        Ok(json!({
            "node_id": info["id"],
            "option": { "foo_opt": foo_opt },
            "cli_params": cli_params,
        })
        .to_string())
    }

    // myplugin registers no hooks, subscribes to nothing and has no dynamic
    // options: these are never called.
    fn hook(_name: String, _payload: String) -> String {
        r#"{"result": "continue"}"#.into()
    }

    fn notify(_topic: String, _payload: String) {}

    fn set_option(name: String, _value: OptionValue) -> Result<(), String> {
        Err(format!("{name} cannot be changed at runtime"))
    }
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError {
        code: -32603,
        message: e.to_string(),
        data: None,
    }
}

export!(MyPlugin);
