//! A guest touches nothing it was not granted by name: each forbidden thing it
//! tries is refused (and audited) and never reaches the node, while granted
//! calls keep working. Files, environment and sockets: see
//! `the_sandbox_grants_no_files_env_args_or_sockets` in plugin_protocol.rs.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{NODE_ID, Node, Plugin, guest_wasm};

/// misbehave asks for getinfo, listpeers, pay, withdraw and the store.
const POLICY: &str = r#"
[grants]
store = true

[[grants.rpc]]
method = "getinfo"

[[grants.rpc]]
method = "listpeers"
filter = { peers = [{ id = true }] }

[[grants.rpc]]
method = "pay"
params = ["pnameamount_msat<1000"]
"#;

fn misbehave(policy: &str) -> (Plugin, Node) {
    let node = Node::start();
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), policy);
    let (_, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}));
    (plugin, node)
}

fn rpc(plugin: &mut Plugin, id: u64, call: Value) -> Value {
    plugin.request(json!(id), "rpc", call)
}

fn methods_seen(node: &Node) -> Vec<String> {
    node.requests()
        .iter()
        .map(|r| r["method"].as_str().unwrap().to_string())
        .collect()
}

fn denied(answer: &Value, message: &str) {
    assert_eq!(
        answer["error"],
        json!({"code": -32010, "message": message}),
        "{answer}"
    );
}

#[test]
fn ungranted_and_unasked_methods_never_reach_the_node() {
    let (mut plugin, node) = misbehave(POLICY);
    let answer = rpc(&mut plugin, 1, json!({"method": "getinfo", "params": {}}));
    assert_eq!(answer["result"]["id"], json!(NODE_ID));
    let answer = rpc(
        &mut plugin,
        2,
        json!({"method": "withdraw", "params": {"destination": "bcrt1x", "satoshi": "all"}}),
    );
    denied(
        &answer,
        "node method \"withdraw\" denied: no grant for \"withdraw\" in the policy ([[grants.rpc]])",
    );
    let answer = rpc(
        &mut plugin,
        3,
        json!({"method": "close", "params": {"id": "02aa"}}),
    );
    denied(
        &answer,
        "node method \"close\" denied: the plugin's manifest does not ask for it",
    );
    // Granted calls keep working after refusals.
    let answer = rpc(&mut plugin, 4, json!({"method": "getinfo", "params": []}));
    assert_eq!(answer["result"]["id"], json!(NODE_ID));
    assert_eq!(methods_seen(&node), vec!["getinfo", "getinfo"]);
    // Each refusal is audited once, with the plugin, the method and the rule.
    let logs = plugin.logs(Duration::from_millis(200));
    let denials: Vec<&String> = logs.iter().filter(|l| l.contains(" denied ")).collect();
    assert_eq!(
        denials,
        vec![
            "warn: denied node method \"withdraw\": no grant for \"withdraw\" in the policy ([[grants.rpc]])",
            "warn: denied node method \"close\": the plugin's manifest does not ask for it",
        ]
    );
}

#[test]
fn a_grant_can_pin_params() {
    let (mut plugin, node) = misbehave(POLICY);
    node.answer("pay", json!({"status": "complete"}));
    let small = json!({"method": "pay", "params": {"bolt11": "lnbcrt1small", "amount_msat": 500}});
    let answer = rpc(&mut plugin, 1, small);
    assert_eq!(answer["result"], json!({"status": "complete"}), "{answer}");
    let large = json!({"method": "pay", "params": {"bolt11": "lnbcrt1large", "amount_msat": 5000}});
    denied(
        &rpc(&mut plugin, 2, large),
        "node method \"pay\" denied: condition \"pnameamount_msat<1000\" of [[grants.rpc]] #3 does not hold",
    );
    // Positional params cannot be checked by name, so they are refused.
    let positional = json!({"method": "pay", "params": ["lnbcrt1small", 500]});
    denied(
        &rpc(&mut plugin, 3, positional),
        "node method \"pay\" denied: condition \"pnameamount_msat<1000\" of [[grants.rpc]] #3 does not hold",
    );
    let paid: Vec<Value> = node
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "pay")
        .map(|r| r["params"].clone())
        .collect();
    assert_eq!(
        paid,
        vec![json!({"bolt11": "lnbcrt1small", "amount_msat": 500})]
    );
}

#[test]
fn a_guest_never_sees_more_than_the_grants_filter() {
    let (mut plugin, node) = misbehave(POLICY);
    node.answer(
        "listpeers",
        json!({"peers": [
            {"id": "02aa", "connected": true, "netaddr": ["10.0.0.1:9735"]},
            {"id": "03bb", "connected": false}
        ]}),
    );
    let answer = rpc(&mut plugin, 1, json!({"method": "listpeers", "params": {}}));
    assert_eq!(
        answer["result"],
        json!({"peers": [{"id": "02aa"}, {"id": "03bb"}]})
    );
    // The node was asked for no more, and the host cut the answer anyway
    // (this stand-in ignores filters on listpeers, as an old node might).
    assert_eq!(
        node.requests()[0]["filter"],
        json!({"peers": [{"id": true}]})
    );
    // The guest's own filter can only narrow what the grant allows.
    let answer = rpc(
        &mut plugin,
        2,
        json!({"method": "listpeers", "params": {}, "filter": {"peers": [{"netaddr": true, "id": true}]}}),
    );
    assert_eq!(
        answer["result"],
        json!({"peers": [{"id": "02aa"}, {"id": "03bb"}]})
    );
    let answer = rpc(
        &mut plugin,
        3,
        json!({"method": "listpeers", "params": {}, "filter": {"peers": [{"netaddr": true}]}}),
    );
    assert_eq!(answer["result"], json!({"peers": [{}, {}]}));
}

fn store(plugin: &mut Plugin, id: u64, op: Value) -> Value {
    plugin.request(json!(id), "store", op)
}

#[test]
fn the_store_keeps_each_guest_in_its_namespace() {
    let (mut plugin, node) = misbehave(POLICY);
    assert_eq!(
        store(&mut plugin, 1, json!({"op": "get", "key": "k"}))["result"],
        json!({"value": null})
    );
    store(
        &mut plugin,
        2,
        json!({"op": "set", "key": "k", "value": "v1"}),
    );
    assert_eq!(
        store(&mut plugin, 3, json!({"op": "get", "key": "k"}))["result"],
        json!({"value": "v1"})
    );
    // Keys that look like paths or other namespaces stay one element inside ours.
    for (id, key) in [
        (4, "../commando"),
        (5, "cln-wasm-host/other"),
        (6, "a\u{0}b"),
    ] {
        let answer = store(
            &mut plugin,
            id,
            json!({"op": "set", "key": key, "value": "x"}),
        );
        assert_eq!(answer["result"], json!({"set": key}));
    }
    let mut keys = node.datastore_keys();
    keys.sort_by_key(|k| k.to_string());
    let ours = |k: &str| json!(["cln-wasm-host", "misbehave", k]);
    let mut expected = vec![
        ours("../commando"),
        ours("a\u{0}b"),
        ours("cln-wasm-host/other"),
        ours("k"),
    ];
    expected.sort_by_key(|k| k.to_string());
    assert_eq!(keys, expected);
    store(&mut plugin, 7, json!({"op": "delete", "key": "k"}));
    assert_eq!(
        store(&mut plugin, 8, json!({"op": "get", "key": "k"}))["result"],
        json!({"value": null})
    );
    // Deleting what is not there is fine; oversized values are refused.
    assert_eq!(
        store(&mut plugin, 9, json!({"op": "delete", "key": "k"}))["result"],
        json!({"deleted": "k"})
    );
    let big = "x".repeat(64 * 1024 + 1);
    let answer = store(
        &mut plugin,
        10,
        json!({"op": "set", "key": "big", "value": big}),
    );
    assert_eq!(
        answer["error"]["message"],
        json!("store values are at most 65536 bytes")
    );
}

#[test]
fn the_store_is_denied_unless_granted() {
    let (mut plugin, node) = misbehave("[[grants.rpc]]\nmethod = \"getinfo\"\n");
    let answer = store(
        &mut plugin,
        1,
        json!({"op": "set", "key": "k", "value": "v"}),
    );
    denied(
        &answer,
        "store key \"k\" denied: the policy does not grant the store ([grants] store = true)",
    );
    assert!(node.requests().is_empty());
    plugin.wait_log("warn: denied store key \"k\": the policy does not grant the store");
}

#[test]
fn inspect_shows_what_is_asked_and_what_would_be_granted() {
    let dir = tempfile::tempdir().unwrap();
    let grants = format!("{POLICY}\n[[grants.rpc]]\nmethod = \"close\"\n");
    let policy = support::text_file(dir.path(), "policy.toml", &grants);
    let wasm = guest_wasm("misbehave");
    let review = support::host_tool(&[&"inspect", &wasm, &"--policy", &policy, &"--json"]);
    assert_eq!(review["plugin"], json!("misbehave"));
    assert_eq!(review["sha256"].as_str().unwrap().len(), 64);
    let asks: Vec<(String, bool)> = review["asks"]["rpc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["method"].as_str().unwrap().to_string(),
                a["granted"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("getinfo", true),
        ("listpeers", true),
        ("pay", true),
        ("withdraw", false),
    ];
    assert_eq!(asks, expected.map(|(m, g)| (m.to_string(), g)));
    assert_eq!(review["asks"]["rpc"][2]["reason"], json!("to test pay"));
    assert_eq!(
        review["asks"]["rpc"][2]["grants"],
        json!([{"method": "pay", "params": ["pnameamount_msat<1000"]}])
    );
    assert_eq!(
        review["asks"]["rpc"][1]["grants"][0]["filter"],
        json!({"peers": [{"id": true}]})
    );
    assert_eq!(
        review["asks"]["store"],
        json!({"asked": true, "granted": true})
    );
    assert_eq!(review["granted_but_not_asked"], json!(["close"]));
    assert_eq!(
        review["policy"]["limits"],
        json!({
            "memory_mib": 64,
            "call_timeout_ms": 60000,
            "hook_timeout_ms": 2000,
            "max_instances": 4,
            "hook_instances": 2,
            "answer_max_bytes": 1048576,
            "node_params_max_bytes": 1048576,
            "node_calls_per_invocation": 1000,
            "node_calls_rate": {"per_sec": 50000, "burst": 50000},
            "notifications_per_invocation": 100,
            "notifications_rate": {"per_sec": 10000, "burst": 10000},
            "log_lines_rate": {"per_sec": 100, "burst": 1000},
            "log_bytes_rate": {"per_sec": 65536, "burst": 1048576},
            "store_max_keys": 1000,
            "store_max_bytes": 4194304,
            "wasm_max_mib": 64,
            "compile_timeout_ms": 90000,
            "compile_memory_mib": 1024,
        })
    );
}

#[test]
fn a_policy_with_a_typo_stops_the_plugin_at_start() {
    let node = Node::start();
    let mut plugin = Plugin::spawn(
        "misbehave",
        &guest_wasm("misbehave"),
        "[grants]\nrcp = []\n",
    );
    let answer = plugin.request(json!(1), "getmanifest", json!({}));
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(
        message.starts_with("cannot start plugin: parsing policy "),
        "{message}"
    );
    assert!(message.contains("unknown field `rcp`"), "{message}");
    drop(node);
}
