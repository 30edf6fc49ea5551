//! A stand-in for a node's RPC socket, for the dev runner: it answers
//! `getinfo` (applying the caller's filter, as lightningd does) with a fixed
//! regtest node, and "Unknown command" to everything else.

use anyhow::Context;
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

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
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
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

fn serve(stream: UnixStream) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    for request in
        serde_json::Deserializer::from_reader(std::io::BufReader::new(stream)).into_iter::<Value>()
    {
        let Ok(request) = request else { return };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let answer = match request.get("method").and_then(Value::as_str) {
            Some("getinfo") => {
                let info = getinfo();
                let result = match request.get("filter") {
                    Some(filter) => crate::filter::apply(&info, filter),
                    None => info,
                };
                json!({ "jsonrpc": "2.0", "id": id, "result": result })
            }
            other => json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": { "code": -32601, "message": format!("Unknown command '{}'", other.unwrap_or_default()) }
            }),
        };
        let mut bytes = answer.to_string().into_bytes();
        bytes.extend_from_slice(b"\n\n");
        if out.write_all(&bytes).is_err() {
            return;
        }
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
