//! A guest that misbehaves on demand, for the host's integration tests: each
//! method exercises one way a plugin can go wrong (trap, endless loop, memory
//! hunger, printing, slowness), one piece of the sandbox or one piece of the
//! plugin protocol (options, hooks, notifications, logging).

use cln_guest::{
    Featurebits, Guest, HookDecl, LogLevel, Manifest, MessageRequest, MethodDecl, OptionDecl,
    OptionType, OptionValue, RpcError, RpcRequest, TopicRequest, config, events, node, request,
    store,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Guest state that lives as long as the instance: a trap loses it.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Notifications and hooks this instance received, by topic or name.
static SEEN: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
/// Memory kept on purpose, as runtimes that never give memory back do.
static LEAKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn seen(what: String) {
    *SEEN.lock().unwrap().entry(what).or_default() += 1;
}

struct Misbehave;

fn option(name: &str, type_: OptionType, default: Option<OptionValue>) -> OptionDecl {
    OptionDecl::new(name, type_, default, &format!("the {name} option"))
}

/// Valid JSON with blank lines and spaces between its tokens, and in a string.
const SPACED: &str = "{\n\n  \"a\" : [ 1 ,\n\n 2 ],\r\n\n \"s\" : \"two  spaces\" \n\n}";

/// Every hook lightningd has: the `hostile` build declares them all.
const ALL_HOOKS: &[&str] = &[
    "peer_connected",
    "recover",
    "commitment_revocation",
    "db_write",
    "invoice_payment",
    "openchannel",
    "openchannel2",
    "openchannel2_changed",
    "openchannel2_sign",
    "rbf_channel",
    "htlc_accepted",
    "rpc_command",
    "custommsg",
    "onion_message_recv",
    "onion_message_recv_secret",
];

/// A reason that lies if shown raw (see [`hostile`]).
const LIAR: &str =
    "to show the node\u{202e}detnarg\u{2066}x\u{2069}\u{200b}\u{3164}\u{2028}y\u{feff}\u{e0041}";

/// What the `hostile` build declares on top of misbehave's own.
fn hostile(mut m: Manifest) -> Manifest {
    m.hooks = ALL_HOOKS
        .iter()
        .map(|h| HookDecl::new(h, "to take the node over"))
        .collect();
    m.subscriptions = vec![TopicRequest::new("*", "to see every payment's preimage")];
    m.notifications = vec![
        TopicRequest::new("misbehave_event", "to test events.emit"),
        TopicRequest::new("hostile_event", "to speak for the node"),
    ];
    m.custommessages = [1, 32769, 65535]
        .into_iter()
        .map(|t| MessageRequest::new(t, "to talk to peers"))
        .collect();
    m.featurebits.init = Some("0100".into());
    // Words that would not show as themselves on an operator's terminal: a
    // right-to-left override that reads as "granted", isolates, zero-width
    // and invisible fillers, a line separator, a tag character.
    m.rpc.push(RpcRequest {
        method: "close".into(),
        reason: LIAR.into(),
    });
    m.options
        .push(OptionDecl::new("mb_liar", OptionType::String, None, LIAR));
    if cfg!(feature = "thief") {
        m.methods
            .push(MethodDecl::new("getinfo", "takes lightningd's own command"));
    }
    if cfg!(feature = "impostor") {
        m.methods.push(MethodDecl::new(
            "htlc_accepted",
            "takes the hook's requests",
        ));
    }
    m
}

/// misbehave's own declarations.
fn own_manifest() -> Manifest {
    let mut methods: Vec<MethodDecl> = [
        ("echo", "answers the method name and params"),
        (
            "version",
            "answers which build this is (1, or 2 with feature v2)",
        ),
        ("options", "answers all options"),
        ("count", "answers how many calls this instance served"),
        ("crash", "panics (a trap)"),
        ("spin", "loops forever"),
        ("hog", "allocates until memory runs out"),
        ("chatter", "prints to stdout and stderr"),
        ("sleep", "sleeps params[0] milliseconds"),
        ("nodeinfo", "answers the node's unfiltered getinfo"),
        ("probe", "tries to reach files, env, args and the network"),
        ("rpcerror", "answers a JSON-RPC error of its own"),
        ("badjson", "answers text that is not JSON"),
        ("raw", "answers params.text as it is"),
        (
            "rawerror",
            "answers an error whose data is params.data as it is",
        ),
        (
            "spaced",
            "answers JSON spread over lines, blank ones among them",
        ),
        ("rpc", "calls the node: params {method, params, filter}"),
        (
            "store",
            "uses the store: params {op: get|set|delete, key, value}",
        ),
        ("logline", "logs params.message at each level"),
        (
            "emit",
            "emits the custom notification params.topic with params.payload",
        ),
        (
            "configuration",
            "answers init's configuration and allow-deprecated-apis",
        ),
        (
            "seen",
            "answers the notifications and hooks this instance saw",
        ),
        ("leak", "keeps params[0] KiB more memory, for good"),
        (
            "logflood",
            "logs params[0] bytes: params[1] lines (stdout), newlines or events",
        ),
        (
            "storeflood",
            "stores params[0] keys of params[1] bytes, to the first refusal",
        ),
        (
            "nodeflood",
            "calls getinfo for params[0] ms, counting refusals",
        ),
        ("bigparams", "calls the node with params[0] bytes of params"),
        (
            "writefile",
            "writes params {path, text} or {path, bytes: n} with std::fs",
        ),
        ("readfile", "reads params.path with std::fs"),
        ("listdir", "lists params.path (default .) with std::fs"),
        (
            "symlink",
            "makes a symlink params.link pointing to params.target",
        ),
        ("biganswer", "answers params[0] bytes"),
        ("emitflood", "emits params[0] misbehave_event notifications"),
        (
            "decoys",
            "calls params[0] unknown node methods, then params[1]: its refusal",
        ),
    ]
    .into_iter()
    .map(|(name, description)| MethodDecl::new(name, description))
    .collect();
    methods.push(MethodDecl {
        long_description: Some("A method kept for old callers.".into()),
        deprecated: true,
        ..MethodDecl::new("oldmethod", "a deprecated method")
    });
    Manifest {
        dynamic: true,
        options: vec![
            option("mb_int", OptionType::Int, Some(OptionValue::Int(7))),
            option("mb_bool", OptionType::Bool, Some(OptionValue::Bool(false))),
            option("mb_flag", OptionType::Flag, None),
            option("mb_refuse", OptionType::Flag, None),
            OptionDecl {
                multi: true,
                ..option("mb_multi", OptionType::String, None)
            },
            OptionDecl {
                dynamic: true,
                ..option("mb_dyn", OptionType::Int, Some(OptionValue::Int(1)))
            },
            OptionDecl {
                deprecated: true,
                ..option("mb_old", OptionType::String, None)
            },
        ],
        methods,
        rpc: ["getinfo", "listpeers", "pay", "withdraw"]
            .into_iter()
            .map(|m| RpcRequest {
                method: m.into(),
                reason: format!("to test {m}"),
            })
            .collect(),
        wants_store: true,
        dir: Some("to test the private directory".into()),
        hooks: vec![
            HookDecl::new("htlc_accepted", "to test hook answers"),
            HookDecl {
                before: vec!["other".into()],
                after: vec!["first".into()],
                ..HookDecl::new("rpc_command", "to test hook ordering")
            },
        ],
        subscriptions: vec![TopicRequest::new("*", "to count every notification")],
        notifications: vec![TopicRequest::new("misbehave_event", "to test events.emit")],
        featurebits: Featurebits {
            init: None,
            node: Some("0200000000".into()),
            channel: None,
            invoice: None,
            reason: "to test feature bits".into(),
        },
        custommessages: vec![MessageRequest::new(32769, "to test custom messages")],
    }
}

impl Guest for Misbehave {
    fn manifest() -> Manifest {
        let manifest = own_manifest();
        if cfg!(feature = "hostile") {
            return hostile(manifest);
        }
        manifest
    }

    fn init() -> Result<(), String> {
        match config::get_option("mb_refuse") {
            Some(OptionValue::Bool(true)) => Err("refusing to run: mb_refuse is set".into()),
            _ => Ok(()),
        }
    }

    fn hook(name: String, payload: String) -> String {
        seen(format!("hook {name}"));
        let payload: Value = serde_json::from_str(&payload).unwrap_or_default();
        if let Some(answer) = payload.get("answer") {
            return answer.to_string();
        }
        // Text no JSON value serializes to (a key twice, deep nesting).
        if let Some(text) = payload["answer_text"].as_str() {
            return text.to_string();
        }
        match payload["test"].as_str() {
            Some("crash") => panic!("hook crash requested"),
            Some("spin") => loop {
                std::hint::black_box(0);
            },
            Some("garbage") => "not json".into(),
            Some("sleep") => {
                let ms = payload["ms"].as_u64().unwrap_or(3000);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                json!({"result": "continue"}).to_string()
            }
            Some("spaced") => "{\n\n  \"result\" :\n\n \"continue\"\n\n}".into(),
            Some("resolve") => {
                json!({"result": "resolve", "payment_key": "00".repeat(32)}).to_string()
            }
            _ => json!({"result": "continue"}).to_string(),
        }
    }

    fn notify(topic: String, payload: String) {
        seen(topic);
        let payload: Value = serde_json::from_str(&payload).unwrap_or_default();
        if let Some(ms) = payload["sleep_ms"].as_u64() {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }

    fn set_option(name: String, value: OptionValue) -> Result<(), String> {
        match (name.as_str(), value) {
            ("mb_dyn", OptionValue::Int(n)) if n < 0 => {
                Err(format!("mb_dyn must not be negative, got {n}"))
            }
            ("mb_dyn", OptionValue::Int(_)) => Ok(()),
            (other, v) => Err(format!("unexpected {other} = {v:?}")),
        }
    }

    fn handle() -> Result<String, RpcError> {
        if cfg!(feature = "trapper") {
            panic!("the trapper build traps on every call");
        }
        let served = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        let method = request::method();
        let params: Value = serde_json::from_str(&request::params()).map_err(RpcError::internal)?;
        let answer = match method.as_str() {
            "echo" => json!({ "method": method, "params": params }),
            "version" => json!({ "version": if cfg!(feature = "v2") { 2 } else { 1 } }),
            "options" => serde_json::from_str(&config::options()).map_err(RpcError::internal)?,
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
                std::io::Write::flush(&mut std::io::stdout()).map_err(RpcError::internal)?;
                json!({ "printed": true })
            }
            "sleep" => {
                let ms = params[0].as_u64().unwrap_or(100);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                json!({ "slept_ms": ms, "params": params })
            }
            "nodeinfo" => {
                serde_json::from_str(&node::getinfo(None)?).map_err(RpcError::internal)?
            }
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
            "raw" => return Ok(params["text"].as_str().unwrap_or_default().into()),
            "rawerror" => {
                return Err(RpcError {
                    code: 1234,
                    message: "the guest says no".into(),
                    data: params["data"].as_str().map(String::from),
                });
            }
            "spaced" => return Ok(SPACED.into()),
            "rpc" => {
                let method = params["method"].as_str().unwrap_or_default();
                let filter = match params["filter_text"].as_str() {
                    Some(text) => Some(text.to_string()),
                    None => params.get("filter").map(Value::to_string),
                };
                let node_params = match params["params_text"].as_str() {
                    Some(text) => text.to_string(),
                    None => params["params"].to_string(),
                };
                let answer = node::call(method, &node_params, filter.as_deref())?;
                serde_json::from_str(&answer).map_err(RpcError::internal)?
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
                    other => return Err(RpcError::internal(format!("unknown store op {other:?}"))),
                }
            }
            "logline" => {
                let message = params["message"].as_str().unwrap_or_default();
                for level in [
                    LogLevel::Debug,
                    LogLevel::Info,
                    LogLevel::Warn,
                    LogLevel::Error,
                ] {
                    events::log(level, &format!("{level:?}: {message}"));
                }
                json!({ "logged": message })
            }
            "emit" => {
                let topic = params["topic"].as_str().unwrap_or_default();
                let payload = match params["payload_text"].as_str() {
                    Some(text) => text.to_string(),
                    None => params["payload"].to_string(),
                };
                events::emit(topic, &payload)?;
                json!({ "emitted": topic })
            }
            "configuration" => json!({
                "configuration": serde_json::from_str::<Value>(&config::configuration())
                    .map_err(RpcError::internal)?,
                "allow_deprecated_apis": config::allow_deprecated_apis(),
            }),
            "seen" => json!(*SEEN.lock().unwrap()),
            "oldmethod" => json!({ "old": true }),
            "leak" => {
                let kib = params[0].as_u64().unwrap_or(1) as usize;
                let mut leaked = LEAKED.lock().unwrap();
                leaked.push(vec![1u8; kib * 1024]);
                json!({ "leaked_kib": leaked.iter().map(Vec::len).sum::<usize>() / 1024 })
            }
            "logflood" => {
                // params: [bytes, "lines" | "newlines" | "events"]
                let bytes = params[0].as_u64().unwrap_or(0) as usize;
                match params[1].as_str() {
                    Some("newlines") => print!("{}", "\n".repeat(bytes)),
                    Some("events") => {
                        let line = "x".repeat(99);
                        for _ in 0..bytes / 100 {
                            events::log(LogLevel::Info, &line);
                        }
                    }
                    _ => {
                        let line = format!("{}\n", "x".repeat(99));
                        let mut out = std::io::stdout().lock();
                        for _ in 0..bytes / 100 {
                            std::io::Write::write_all(&mut out, line.as_bytes())
                                .map_err(RpcError::internal)?;
                        }
                    }
                }
                json!({ "logged_bytes": bytes })
            }
            "storeflood" => {
                // params: [keys, value bytes]: stops at the first refusal.
                let (keys, size) = (
                    params[0].as_u64().unwrap_or(0),
                    params[1].as_u64().unwrap_or(0),
                );
                let value = "x".repeat(size as usize);
                let mut written = 0;
                let mut refusal = Value::Null;
                for n in 0..keys {
                    match store::set(&format!("k{n}"), &value) {
                        Ok(()) => written += 1,
                        Err(e) => {
                            refusal = json!({ "code": e.code, "message": e.message });
                            break;
                        }
                    }
                }
                json!({ "written": written, "refusal": refusal })
            }
            "nodeflood" => {
                // params: [ms]: getinfo as fast as it can for that long.
                let ms = params[0].as_u64().unwrap_or(1000);
                let started = std::time::Instant::now();
                let (mut answered, mut refused) = (0u64, 0u64);
                let mut refusal = Value::Null;
                while started.elapsed() < std::time::Duration::from_millis(ms) {
                    match node::getinfo(Some(r#"{"id": true}"#)) {
                        Ok(_) => answered += 1,
                        Err(e) => {
                            refused += 1;
                            if refusal.is_null() {
                                refusal = json!({ "code": e.code, "message": e.message });
                            }
                        }
                    }
                }
                json!({ "answered": answered, "refused": refused, "refusal": refusal })
            }
            "bigparams" => {
                // params: [bytes]: a node call with that much params.
                let pad = "x".repeat(params[0].as_u64().unwrap_or(0) as usize);
                let params = json!({ "pad": pad }).to_string();
                match node::call("getinfo", &params, None) {
                    Ok(answer) => json!({ "answered": answer }),
                    Err(e) => json!({ "code": e.code, "message": e.message }),
                }
            }
            "biganswer" => {
                json!({ "pad": "x".repeat(params[0].as_u64().unwrap_or(0) as usize) })
            }
            "emitflood" => {
                // params: [n]: that many misbehave_event notifications.
                let (mut emitted, mut refused) = (0u64, 0u64);
                let mut refusal = Value::Null;
                for n in 0..params[0].as_u64().unwrap_or(0) {
                    match events::emit("misbehave_event", &json!({ "n": n }).to_string()) {
                        Ok(()) => emitted += 1,
                        Err(e) => {
                            refused += 1;
                            if refusal.is_null() {
                                refusal = json!({ "code": e.code, "message": e.message });
                            }
                        }
                    }
                }
                json!({ "emitted": emitted, "refused": refused, "refusal": refusal })
            }
            "decoys" => {
                // params: [n, method]: n refusals of names nobody grants,
                // to bury the one that matters; answers the last refusal.
                for n in 0..params[0].as_u64().unwrap_or(0) {
                    let _ = node::call(&format!("decoy{n}"), "{}", None);
                }
                let method = params[1].as_str().unwrap_or_default();
                match node::call(method, "{}", None) {
                    Ok(answer) => json!({ "answered": answer }),
                    Err(e) => json!({ "code": e.code, "message": e.message }),
                }
            }
            "writefile" => {
                let path = params["path"].as_str().unwrap_or_default();
                let data = match params["text"].as_str() {
                    Some(text) => text.as_bytes().to_vec(),
                    None => vec![b'x'; params["bytes"].as_u64().unwrap_or(0) as usize],
                };
                fs_answer(std::fs::write(path, &data).map(|()| json!({ "written": data.len() })))
            }
            "readfile" => {
                let path = params["path"].as_str().unwrap_or_default();
                fs_answer(std::fs::read_to_string(path).map(|text| json!({ "text": text })))
            }
            "listdir" => {
                let path = params["path"].as_str().unwrap_or(".");
                fs_answer(std::fs::read_dir(path).and_then(|entries| {
                    let mut names = entries
                        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                        .collect::<Result<Vec<_>, _>>()?;
                    names.sort();
                    Ok(json!({ "entries": names }))
                }))
            }
            "symlink" => {
                let target = params["target"].as_str().unwrap_or_default();
                let link = params["link"].as_str().unwrap_or_default();
                #[allow(deprecated)]
                let made = std::fs::soft_link(target, link);
                fs_answer(made.map(|()| json!({ "linked": link })))
            }
            other => return Err(RpcError::internal(format!("unknown method {other}"))),
        };
        Ok(answer.to_string())
    }
}

/// What a file operation did: its answer, or the error std::fs gave.
fn fs_answer(done: std::io::Result<Value>) -> Value {
    done.unwrap_or_else(|e| json!({ "error": e.to_string(), "kind": format!("{:?}", e.kind()) }))
}

cln_guest::export!(Misbehave);
