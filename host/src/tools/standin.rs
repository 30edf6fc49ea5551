//! A stand-in for a node's RPC socket, for the dev runner: it answers
//! `getinfo` (applying the caller's filter, as lightningd does) with a fixed
//! regtest node, keeps a datastore in memory (`datastore`, `listdatastore`,
//! `deldatastore`, for guests using the store), and answers "Unknown command"
//! to everything else.

use anyhow::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The stand-in node's id (the one in the seed transcript).
pub const NODE_ID: &str = "029999ce6a1b74cf077f503b81bb4d95af34114363bdac5922a9b353ce0449bac4";

/// A listening stand-in; its socket file is removed on drop.
pub struct StandIn {
    path: PathBuf,
}

impl StandIn {
    /// Listen on a fresh socket under the temp dir.
    pub fn start() -> anyhow::Result<StandIn> {
        let path =
            std::env::temp_dir().join(format!("cln-wasm-host-standin-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
        let datastore = Arc::new(Mutex::new(Datastore::new()));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let datastore = datastore.clone();
                std::thread::spawn(move || serve(stream, &datastore));
            }
        });
        Ok(StandIn { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Keys (as JSON text) to string values.
type Datastore = BTreeMap<String, String>;

fn serve(stream: UnixStream, datastore: &Mutex<Datastore>) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    for request in
        serde_json::Deserializer::from_reader(std::io::BufReader::new(stream)).into_iter::<Value>()
    {
        let Ok(request) = request else { return };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let method = request
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let answer = match answer(method, &request, datastore) {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err((code, message)) => {
                json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
            }
        };
        let mut bytes = answer.to_string().into_bytes();
        bytes.extend_from_slice(b"\n\n");
        if out.write_all(&bytes).is_err() {
            return;
        }
    }
}

fn answer(
    method: &str,
    request: &Value,
    datastore: &Mutex<Datastore>,
) -> Result<Value, (i64, String)> {
    let params = &request["params"];
    let key = params["key"].to_string();
    let entry = |value: &str| json!({ "key": params["key"], "string": value });
    let mut store = datastore.lock().unwrap_or_else(|p| p.into_inner());
    match method {
        "getinfo" => Ok(match request.get("filter") {
            Some(filter) => crate::policy::filter::apply(&getinfo(), filter),
            None => getinfo(),
        }),
        "datastore" => {
            let value = params["string"].as_str().unwrap_or_default().to_string();
            let answer = entry(&value);
            store.insert(key, value);
            Ok(answer)
        }
        // As lightningd: the key itself and its children.
        "listdatastore" => {
            let prefix = params["key"].as_array().cloned().unwrap_or_default();
            let entries: Vec<Value> = store
                .iter()
                .filter_map(|(k, v)| {
                    let k: Vec<Value> = serde_json::from_str(k).ok()?;
                    (k.starts_with(&prefix) && k.len() <= prefix.len() + 1)
                        .then(|| json!({ "key": k, "string": v }))
                })
                .collect();
            Ok(json!({ "datastore": entries }))
        }
        "deldatastore" => store
            .remove(&key)
            .map(|v| entry(&v))
            .ok_or((1200, "Does not exist".into())),
        other => Err((-32601, format!("Unknown command '{other}'"))),
    }
}

fn getinfo() -> Value {
    json!({
        "id": NODE_ID,
        "alias": "SILENTMONKEY",
        "color": "029999",
        "num_peers": 0,
        "num_pending_channels": 0,
        "num_active_channels": 0,
        "num_inactive_channels": 0,
        "address": [],
        "binding": [{ "type": "ipv4", "address": "127.0.0.1", "port": 7171 }],
        "version": "v25.09-standin",
        "blockheight": 1,
        "network": "regtest",
        "fees_collected_msat": 0,
        "lightning-dir": "/tmp/standin/regtest",
        "our_features": { "init": "08a000080269a2", "node": "88a000080269a2", "channel": "", "invoice": "02000000024100" }
    })
}
