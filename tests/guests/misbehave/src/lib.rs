//! A guest that misbehaves on demand, for the host's integration tests: each
//! method exercises one way a plugin can go wrong (trap, endless loop, memory
//! hunger, printing, slowness) or one piece of the sandbox.

wit_bindgen::generate!({ path: "../../../wit", world: "plugin" });

use cln::plugin::types::{MethodDecl, OptionDecl, OptionType, OptionValue, RpcRequest};
use cln::plugin::{config, node, request, store};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

/// Guest state that lives as long as the instance: a trap loses it.
static CALLS: AtomicU64 = AtomicU64::new(0);

struct Misbehave;

fn method(name: &str, description: &str) -> MethodDecl {
    MethodDecl {
        name: name.into(),
        usage: "".into(),
        description: description.into(),
    }
}

impl Guest for Misbehave {
    fn manifest() -> Manifest {
        Manifest {
            dynamic: true,
            options: vec![
                OptionDecl {
                    name: "mb_int".into(),
                    type_: OptionType::Int,
                    default: Some(OptionValue::Int(7)),
                    description: "an int option".into(),
                },
                OptionDecl {
                    name: "mb_bool".into(),
                    type_: OptionType::Bool,
                    default: Some(OptionValue::Bool(false)),
                    description: "a bool option".into(),
                },
                OptionDecl {
                    name: "mb_flag".into(),
                    type_: OptionType::Flag,
                    default: None,
                    description: "a flag".into(),
                },
            ],
            methods: vec![
                method("echo", "answers the method name and params"),
                method(
                    "version",
                    "answers which build this is (1, or 2 with feature v2)",
                ),
                method("options", "answers all options"),
                method("count", "answers how many calls this instance served"),
                method("crash", "panics (a trap)"),
                method("spin", "loops forever"),
                method("hog", "allocates until memory runs out"),
                method("chatter", "prints to stdout and stderr"),
                method("sleep", "sleeps params[0] milliseconds"),
                method("getinfo", "answers the node's unfiltered getinfo"),
                method("probe", "tries to reach files, env, args and the network"),
                method("rpcerror", "answers a JSON-RPC error of its own"),
                method("badjson", "answers text that is not JSON"),
                method("rpc", "calls the node: params {method, params, filter}"),
                method(
                    "store",
                    "uses the store: params {op: get|set|delete, key, value}",
                ),
            ],
            rpc: ["getinfo", "listpeers", "pay", "withdraw"]
                .into_iter()
                .map(|m| RpcRequest {
                    method: m.into(),
                    reason: format!("to test {m}"),
                })
                .collect(),
            wants_store: true,
        }
    }

    fn handle() -> Result<String, RpcError> {
        let served = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        let method = request::method();
        let params: Value = serde_json::from_str(&request::params()).map_err(internal)?;
        let answer = match method.as_str() {
            "echo" => json!({ "method": method, "params": params }),
            "version" => json!({ "version": if cfg!(feature = "v2") { 2 } else { 1 } }),
            "options" => serde_json::from_str(&config::options()).map_err(internal)?,
            "count" => json!({ "calls": served }),
            "crash" => panic!("crash requested"),
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "chatter" => {
                println!("hello from the guest's stdout");
                eprintln!("hello from the guest's stderr");
                print!("a line without its end");
                std::io::Write::flush(&mut std::io::stdout()).map_err(internal)?;
                json!({ "printed": true })
            }
            "sleep" => {
                let ms = params[0].as_u64().unwrap_or(100);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                json!({ "slept_ms": ms, "params": params })
            }
            "getinfo" => serde_json::from_str(&node::getinfo(None)?).map_err(internal)?,
            "probe" => json!({
                "env": std::env::vars().count(),
                "args": std::env::args().count(),
                "read_root": std::fs::read_dir("/").map(|_| "allowed").unwrap_or("denied"),
                "read_cwd": std::fs::read_dir(".").map(|_| "allowed").unwrap_or("denied"),
                "tcp": std::net::TcpStream::connect("127.0.0.1:9735")
                    .map(|_| "allowed")
                    .unwrap_or("denied"),
            }),
            "rpcerror" => {
                return Err(RpcError {
                    code: 1234,
                    message: "the guest says no".into(),
                    data: Some(r#"{"why":"testing"}"#.into()),
                });
            }
            "badjson" => return Ok("this is not json".into()),
            "rpc" => {
                let method = params["method"].as_str().unwrap_or_default();
                let filter = params.get("filter").map(Value::to_string);
                let answer = node::call(method, &params["params"].to_string(), filter.as_deref())?;
                serde_json::from_str(&answer).map_err(internal)?
            }
            "store" => {
                let key = params["key"].as_str().unwrap_or_default();
                match params["op"].as_str() {
                    Some("get") => json!({ "value": store::get(key)? }),
                    Some("set") => {
                        store::set(key, params["value"].as_str().unwrap_or_default())?;
                        json!({ "set": key })
                    }
                    Some("delete") => {
                        store::delete(key)?;
                        json!({ "deleted": key })
                    }
                    other => return Err(internal(format!("unknown store op {other:?}"))),
                }
            }
            other => return Err(internal(format!("unknown method {other}"))),
        };
        Ok(answer.to_string())
    }
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError {
        code: -32603,
        message: e.to_string(),
        data: None,
    }
}

export!(Misbehave);
