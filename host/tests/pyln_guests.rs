//! pyln-client plugins in the sandbox (issue #20), driven as lightningd
//! drives a plugin. `pylnfull` (host/tests/guests/pyln/pylnfull.py) is a
//! plugin written for pyln-client 25.12.1, unedited, built by
//! guest/python/pyln-build.sh: its options of every type, a dynamic one with
//! `on_change`, init, methods taking `plugin` and `request`, async methods, a
//! hook, a subscription and a custom notification pass the full protocol;
//! a node call the build's scan could not see is refused and named in the
//! audit; threads, sockets and files are refused with the sandbox named, at
//! build time when imported, at run time otherwise.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::process::Command;
use support::{NODE_ID, Node, Plugin, guest_wasm, workspace};

/// One instance for everything, so the notification's effect is seen by the
/// next call; every capability the plugin asks for, granted.
const POLICY: &str = r#"
[limits]
memory_mib = 128
max_instances = 1
hook_instances = 0

[grants]
subscriptions = ["connect"]
notifications = ["pf_event"]
dir = { quota_mib = 1 }

[[grants.rpc]]
method = "getinfo"

[[grants.hooks]]
name = "peer_connected"
results = ["disconnect"]
"#;

const PEER: &str = "02aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11";

fn start(options: Value) -> (Plugin, Node, Value) {
    start_with(POLICY, options)
}

fn start_with(policy: &str, options: Value) -> (Plugin, Node, Value) {
    let node = Node::start();
    let mut plugin = Plugin::spawn("pylnfull", &guest_wasm("pylnfull"), policy);
    let (manifest, init) = plugin.handshake(options, &node);
    assert_eq!(init["result"], json!({}), "{init}");
    (plugin, node, manifest["result"].clone())
}

#[test]
fn the_manifest_declares_what_the_pyln_plugin_registers() {
    let (_plugin, _node, m) = start(json!({}));
    assert_eq!(
        m["options"],
        json!([
            {"name": "pf-greeting", "type": "string", "description": "what to say", "default": "hello"},
            {"name": "pf-count", "type": "int", "description": "an int", "default": 3},
            {"name": "pf-loud", "type": "bool", "description": "a bool", "default": false},
            {"name": "pf-flag", "type": "flag", "description": "a flag"},
            {"name": "pf-deny", "type": "string", "description": "peers to disconnect", "multi": true},
            {"name": "pf-limit", "type": "int", "description": "a dynamic int", "default": 10, "dynamic": true},
        ])
    );
    assert_eq!(m["hooks"], json!([{"name": "peer_connected"}]));
    assert_eq!(m["subscriptions"], json!(["connect", "shutdown"]));
    assert_eq!(m["notifications"], json!([{"method": "pf_event"}]));
    let methods: Vec<&str> = m["rpcmethods"]
        .as_array()
        .expect("rpcmethods")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        methods,
        [
            "pf-options",
            "pf-info",
            "pf-unasked",
            "pf-async",
            "pf-never",
            "pf-fail",
            "pf-connected",
            "pf-thread",
            "pf-socket",
            "pf-passwd",
            "pf-note",
            "pylnfull-reload",
            "pylnfull-audit"
        ]
    );
    // pyln-client's usage: parameters but plugin and request, then the docstring.
    assert_eq!(
        m["rpcmethods"][1]["usage"],
        json!("[amount]  \n the node's id, and an amount doubled")
    );
}

#[test]
fn options_of_every_type_reach_get_option() {
    let (mut plugin, _node, _) = start(json!({
        "pf-greeting": "hi", "pf-count": 7, "pf-loud": true, "pf-flag": true,
        "pf-deny": ["a", "b"],
    }));
    assert_eq!(
        plugin.request(json!(1), "pf-options", json!({}))["result"],
        json!({"pf-greeting": "hi", "pf-count": 7, "pf-loud": true, "pf-flag": true,
               "pf-deny": ["a", "b"], "pf-limit": 10})
    );
    plugin.wait_log("info: guest: pylnfull ready on regtest");
}

#[test]
fn methods_get_plugin_and_request_and_call_the_node() {
    let (mut plugin, node, _) = start(json!({}));
    let answer = plugin.request(json!("cli:pf#1"), "pf-info", json!({"amount": "21msat"}));
    assert_eq!(
        answer["result"],
        json!({"id": NODE_ID, "doubled": "42msat"}),
        "{answer}"
    );
    assert_eq!(
        plugin.request(json!(2), "pf-info", json!([]))["result"],
        json!({"id": NODE_ID, "doubled": "3000msat"})
    );
    // notify_message reaches the log (the world has no channel to the caller).
    plugin.wait_log("info: guest: looking up the node");
    assert_eq!(
        node.requests()[0]["id"],
        json!("cli:pf#1/pylnfull:getinfo#1")
    );
    assert_eq!(node.requests()[0]["params"], json!([]));
    // A pyln RpcException keeps its code and message.
    assert_eq!(
        plugin.request(json!(3), "pf-fail", json!(["luck"]))["error"],
        json!({"code": 1234, "message": "no luck"})
    );
}

#[test]
fn async_methods_answer_within_their_call_or_say_why_not() {
    let (mut plugin, _node, _) = start(json!({"pf-greeting": "yo"}));
    assert_eq!(
        plugin.request(json!(1), "pf-async", json!({"x": [1, 2]}))["result"],
        json!({"x": [1, 2], "greeting": "yo"})
    );
    assert_eq!(
        plugin.request(json!(2), "pf-never", json!({}))["error"],
        json!({"code": -32603, "message": "pf-never returned without answering: the cln-wasm-host sandbox runs no background work, so an async method must call request.set_result before it returns"})
    );
}

#[test]
fn the_hook_the_subscription_and_the_custom_notification_work() {
    let (mut plugin, _node, _) = start(json!({"pf-deny": [PEER]}));
    let hook = |plugin: &mut Plugin, id: u64, peer: &str| {
        plugin.request(
            json!(id),
            "peer_connected",
            json!({"peer": {"id": peer, "direction": "in", "addr": "127.0.0.1:9735", "features": ""}}),
        )
    };
    assert_eq!(
        hook(&mut plugin, 1, PEER)["result"],
        json!({"result": "disconnect", "error_message": "denied by pf-deny"})
    );
    assert_eq!(
        hook(&mut plugin, 2, NODE_ID)["result"],
        json!({"result": "continue"})
    );
    plugin.send(&json!({"jsonrpc": "2.0", "method": "connect",
        "params": {"connect": {"id": PEER, "direction": "in", "address": {"type": "ipv4"}}}}));
    // pyln-client's notify wraps the payload under its topic as well.
    assert_eq!(
        plugin.notification("pf_event"),
        json!({"jsonrpc": "2.0", "method": "pf_event",
               "params": {"connected": PEER, "pf_event": {"connected": PEER}}})
    );
    assert_eq!(
        plugin.request(json!(3), "pf-connected", json!({}))["result"],
        json!([PEER])
    );
}

#[test]
fn setconfig_runs_on_change_and_get_option_sees_it() {
    let (mut plugin, _node, _) = start(json!({}));
    let set = |plugin: &mut Plugin, id: u64, val: &str| {
        plugin.request(
            json!(id),
            "setconfig",
            json!({"config": "pf-limit", "val": val}),
        )
    };
    assert_eq!(set(&mut plugin, 1, "5")["result"], json!({}));
    assert_eq!(
        plugin.request(json!(2), "pf-options", json!({}))["result"]["pf-limit"],
        json!(5)
    );
    let refused = set(&mut plugin, 3, "-1");
    assert_eq!(
        refused["error"],
        json!({"code": -32602, "message": "pf-limit must be >= 0, got -1"})
    );
    assert_eq!(
        plugin.request(json!(4), "pf-options", json!({}))["result"]["pf-limit"],
        json!(5)
    );
}

/// Item 2: a call the scan could not see is refused by the host, with pyln's
/// own RpcError for the plugin, and named in NAME-audit for the operator.
#[test]
fn a_node_call_the_scan_missed_is_refused_and_named_in_the_audit() {
    let (mut plugin, node, _) = start(json!({}));
    assert_eq!(
        plugin.request(json!(1), "pf-unasked", json!({}))["result"],
        json!({"refused": {"code": -32010,
            "message": "node method \"listnodes\" denied: the plugin's manifest does not ask for it"}})
    );
    assert!(node.requests().is_empty());
    let audit = plugin.request(json!(2), "pylnfull-audit", json!({}));
    assert_eq!(
        audit["result"]["denied"],
        json!({"node method \"listnodes\"": 1}),
        "{audit}"
    );
}

#[test]
fn threads_sockets_and_files_are_refused_naming_the_sandbox() {
    let (mut plugin, _node, _) = start(json!({}));
    for (method, why) in [
        (
            "pf-thread",
            "the cln-wasm-host sandbox does not allow threads: a plugin runs only inside the call, hook or notification it answers (no background work)",
        ),
        (
            "pf-socket",
            "the cln-wasm-host sandbox does not allow sockets: the node is reached through plugin.rpc",
        ),
        (
            "pf-passwd",
            "the cln-wasm-host sandbox gives this plugin only its private directory, by relative paths without '..': open('/etc/passwd')",
        ),
    ] {
        assert_eq!(
            plugin.request(json!(method), method, json!({}))["error"],
            json!({"code": -32600, "message": format!("Error while processing {method}: {why}")})
        );
    }
}

#[test]
fn a_file_in_the_lightning_dir_lands_in_the_granted_private_directory() {
    let (mut plugin, _node, _) = start(json!({}));
    for (id, text, notes) in [
        (1, "one", json!(["one"])),
        (2, "two", json!(["one", "two"])),
    ] {
        assert_eq!(
            plugin.request(json!(id), "pf-note", json!([text]))["result"],
            json!({"notes": notes})
        );
    }
    let file = plugin
        .dir
        .path()
        .join("regtest/wasm-data/pylnfull/notes.json");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), r#"["one", "two"]"#);
}

#[test]
fn without_the_dir_grant_a_file_is_refused_naming_the_grant() {
    let policy = POLICY.replace("dir = { quota_mib = 1 }\n", "");
    let (mut plugin, _node, _) = start_with(&policy, json!({}));
    plugin.wait_log("warn: refused: the guest asks for a private directory");
    assert_eq!(
        plugin.request(json!(1), "pf-note", json!(["one"]))["error"],
        json!({"code": -32600, "message": "Error while processing pf-note: the cln-wasm-host sandbox gives this plugin no files: the operator has not granted it a private directory ([grants] dir in its policy): open('./notes.json')"})
    );
}

/// Runs pyln-build.sh on a one-file plugin; its exit status and stderr.
fn build(source: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refused.py");
    std::fs::write(&file, source).unwrap();
    let out = Command::new(workspace().join("guest/python/pyln-build.sh"))
        .arg(&file)
        .arg("-o")
        .arg(dir.path().join("refused.wasm"))
        .output()
        .expect("running pyln-build.sh");
    assert!(!dir.path().join("refused.wasm").exists());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_build_refuses_threads_sockets_processes_and_native_crypto_with_the_place() {
    let header = "from pyln.client import Plugin\nplugin = Plugin()\n";
    for (import, line) in [
        (
            "import threading",
            "refused: refused.py:3: imports threading: the cln-wasm-host sandbox gives a plugin no threads (a guest runs only inside the call it answers)",
        ),
        (
            "import socket",
            "refused: refused.py:3: imports socket: the cln-wasm-host sandbox gives a plugin no sockets (the node is reached through plugin.rpc)",
        ),
        (
            "from subprocess import run",
            "refused: refused.py:3: imports subprocess: the cln-wasm-host sandbox gives a plugin no processes",
        ),
        (
            "import asyncio",
            "refused: refused.py:3: imports asyncio: the cln-wasm-host sandbox gives a plugin no background event loops and sockets",
        ),
        (
            "from pyln.proto import PublicKey",
            "refused: refused.py:3: imports pyln.proto: needs native crypto and lightningd's files, which a guest does not have",
        ),
    ] {
        let (ok, stderr) = build(&format!("{header}{import}\nplugin.run()\n"));
        assert!(!ok, "{import}: {stderr}");
        assert!(stderr.lines().any(|l| l == line), "{import}: {stderr}");
    }
}

/// Item 4 of issue #20: the Python kit (guest/python/cln_guest.py) declares
/// and serves hooks, subscriptions, custom notifications and dynamic options
/// as the JS and Rust kits do (host/tests/guests/python/kitfull.py).
mod kit {
    use super::PEER;
    use crate::support::{NODE_ID, Node, Plugin, guest_wasm};
    use serde_json::json;

    const POLICY: &str = r#"
[limits]
memory_mib = 128
max_instances = 1
hook_instances = 0

[grants]
subscriptions = ["connect"]
notifications = ["kf_event"]
store = true
dir = { quota_mib = 1 }

[[grants.hooks]]
name = "peer_connected"
results = ["disconnect"]
"#;

    #[test]
    fn hooks_subscriptions_notifications_and_set_option() {
        let node = Node::start();
        let mut plugin = Plugin::spawn("kitfull-py", &guest_wasm("kitfull-py"), POLICY);
        let (manifest, init) = plugin.handshake(json!({"kf-deny": [PEER]}), &node);
        assert_eq!(init["result"], json!({}), "{init}");
        let m = &manifest["result"];
        assert_eq!(m["hooks"], json!([{"name": "peer_connected"}]));
        assert_eq!(m["subscriptions"], json!(["connect", "shutdown"]));
        assert_eq!(m["notifications"], json!([{"method": "kf_event"}]));

        let peer = |id: &str| json!({"peer": {"id": id, "direction": "in", "addr": "127.0.0.1:9735", "features": ""}});
        assert_eq!(
            plugin.request(json!(1), "peer_connected", peer(PEER))["result"],
            json!({"result": "disconnect", "error_message": "denied by kf-deny"})
        );
        assert_eq!(
            plugin.request(json!(2), "peer_connected", peer(NODE_ID))["result"],
            json!({"result": "continue"})
        );

        plugin.send(&json!({"jsonrpc": "2.0", "method": "connect",
            "params": {"connect": {"id": PEER, "direction": "in", "address": {"type": "ipv4"}}}}));
        assert_eq!(
            plugin.notification("kf_event"),
            json!({"jsonrpc": "2.0", "method": "kf_event",
                   "params": {"connected": PEER, "topic": "connect"}})
        );

        let set = |plugin: &mut Plugin, id: u64, val: &str| {
            plugin.request(
                json!(id),
                "setconfig",
                json!({"config": "kf-limit", "val": val}),
            )
        };
        assert_eq!(set(&mut plugin, 3, "4")["result"], json!({}));
        assert_eq!(
            set(&mut plugin, 4, "-2")["error"],
            json!({"code": -32602, "message": "kf-limit must be >= 0, got -2"})
        );
        assert_eq!(
            plugin.request(json!(5), "kf-state", json!([]))["result"],
            json!({"connected": [PEER], "limit": 4})
        );
        let undeclared =
            plugin.request(json!(6), "kf-emit-undeclared", json!([]))["result"].clone();
        assert_eq!(undeclared["code"], json!(-32010), "{undeclared}");

        // The store and the private directory, both asked for and granted.
        for (id, line, lines) in [(7, "a", json!(["a"])), (8, "b", json!(["a", "b"]))] {
            assert_eq!(
                plugin.request(json!(id), "kf-save", json!({"line": line}))["result"],
                json!({"lines": lines, "files": ["seen.txt"], "last": line})
            );
        }
        let file = plugin
            .dir
            .path()
            .join("regtest/wasm-data/kitfull-py/seen.txt");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nb\n");
        assert_eq!(
            node.datastore_keys(),
            vec![json!(["cln-wasm-host", "kitfull-py", "last"])]
        );
    }
}
