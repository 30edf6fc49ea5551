//! The seed's `myplugin.py`, minus all protocol plumbing: a string option
//! `foo_opt` (default `bar`) and a method `myplugin` that answers the node's id,
//! the option's value and the call's params.

use cln_guest::{
    Guest, Manifest, MethodDecl, OptionDecl, OptionType, OptionValue, RpcError, RpcRequest, config,
    node, request,
};
use serde_json::{Value, json};

struct MyPlugin;

impl Guest for MyPlugin {
    fn manifest() -> Manifest {
        Manifest {
            dynamic: true,
            options: vec![OptionDecl::new(
                "foo_opt",
                OptionType::String,
                Some(OptionValue::String("bar".into())),
                "description",
            )],
            methods: vec![MethodDecl::new("myplugin", "description")],
            rpc: vec![RpcRequest {
                method: "getinfo".into(),
                reason: "to answer the node's id".into(),
            }],
            ..Manifest::default()
        }
    }

    fn init() -> Result<(), String> {
        Ok(())
    }

    fn handle() -> Result<String, RpcError> {
        let cli_params: Value =
            serde_json::from_str(&request::params()).map_err(RpcError::internal)?;
        let info = node::getinfo(Some(r#"{"id": true}"#))?;
        let info: Value = serde_json::from_str(&info).map_err(RpcError::internal)?;
        let foo_opt = match config::get_option("foo_opt") {
            Some(OptionValue::String(s)) => s,
            other => {
                return Err(RpcError::internal(format!(
                    "foo_opt is {other:?}, expected a string"
                )));
            }
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

cln_guest::export!(MyPlugin);
