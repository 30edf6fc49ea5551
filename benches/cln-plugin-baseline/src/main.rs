//! myplugin written the idiomatic way with the official `cln-plugin` crate: a
//! baseline for `benches/myplugin.rs`. Same manifest and answers as the seed's
//! `benches/seed/myplugin.py`; `getinfo` goes through `cln-rpc` on one
//! connection to the node, opened before `init` is answered and shared by all
//! calls (behind a mutex: a `ClnRpc` serves one call at a time).

use anyhow::Context;
use cln_plugin::options::{ConfigOption, DefaultStringConfigOption};
use cln_plugin::{Builder, Plugin, RpcMethodBuilder};
use cln_rpc::ClnRpc;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Mutex;

const FOO_OPT: DefaultStringConfigOption =
    ConfigOption::new_str_with_default("foo_opt", "bar", "description");

#[derive(Clone)]
struct State {
    rpc: Arc<Mutex<ClnRpc>>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), anyhow::Error> {
    let Some(configured) = Builder::new(tokio::io::stdin(), tokio::io::stdout())
        .option(FOO_OPT)
        .rpcmethod_from_builder(
            RpcMethodBuilder::new("myplugin", myplugin)
                .description("description")
                .usage(""),
        )
        .dynamic()
        .configure()
        .await?
    else {
        return Ok(());
    };
    let conf = configured.configuration();
    let socket = Path::new(&conf.lightning_dir).join(&conf.rpc_file);
    let rpc = ClnRpc::new(&socket)
        .await
        .with_context(|| format!("connecting to {}", socket.display()))?;
    let plugin = configured
        .start(State {
            rpc: Arc::new(Mutex::new(rpc)),
        })
        .await?;
    plugin.join().await
}

async fn myplugin(plugin: Plugin<State>, params: Value) -> Result<Value, anyhow::Error> {
    let info: Value = plugin
        .state()
        .rpc
        .lock()
        .await
        .call_raw("getinfo", &json!({}))
        .await?;
    let node_id = info
        .get("id")
        .cloned()
        .context("getinfo answered without an id")?;
    Ok(json!({
        "node_id": node_id,
        "option": {"foo_opt": plugin.option(&FOO_OPT)?},
        "cli_params": params,
    }))
}
