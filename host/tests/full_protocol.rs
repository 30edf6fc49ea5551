//! The rest of the plugin protocol through the WIT world, driven as
//! lightningd drives it: typed, multi, dynamic and deprecated options with
//! setconfig; hooks (and failing open); subscriptions including `*`; custom
//! notifications; logging; init's refusal and configuration; manifest extras;
//! and the peerpolicy example plugin.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{Node, PATIENCE, Plugin, guest_wasm};

/// One instance, so what one call or notification leaves in guest memory,
/// the next sees; a short deadline for the looping hook.
/// What misbehave and peerpolicy declare, granted: their hooks (misbehave's
/// `htlc_accepted` may resolve, with the key), every topic, misbehave's
/// custom notification and message type, optional feature bits.
const GRANTS: &str = r#"
[grants]
subscriptions = ["*"]
notifications = ["misbehave_event"]
custommessages = [32769]
featurebits = "optional"

[[grants.hooks]]
name = "peer_connected"
results = ["disconnect"]

[[grants.hooks]]
name = "htlc_accepted"
results = ["resolve"]
fields = ["payment_key"]

[[grants.hooks]]
name = "rpc_command"
"#;

/// One instance for every message, so each sees the others' effects.
const LIMITS: &str = "call_timeout_ms = 2000\nmax_instances = 1\nhook_instances = 0";

/// `limits`, and everything the test guests declare granted.
fn policy(limits: &str) -> String {
    format!("[limits]\n{limits}\n{GRANTS}")
}

const DENIED: &str = "02aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11";
const ALLOWED: &str = "03bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22";

fn start(name: &str, policy: &str, options: Value) -> (Plugin, Node, Value) {
    let node = Node::start();
    let mut plugin = Plugin::spawn(name, &guest_wasm(name), policy);
    let (manifest, init) = plugin.handshake(options, &node);
    assert_eq!(init["result"], json!({}), "{init}");
    (plugin, node, manifest["result"].clone())
}

fn notify(plugin: &mut Plugin, topic: &str, params: Value) {
    plugin.send(&json!({"jsonrpc": "2.0", "method": topic, "params": params}));
}

/// Ask `method` until it answers `expected` (notifications are handled
/// asynchronously, in order, beside calls).
fn eventually(plugin: &mut Plugin, method: &str, expected: Value) {
    let deadline = Instant::now() + PATIENCE;
    for n in 0.. {
        let answer = plugin.request(json!(format!("poll-{n}")), method, json!([]));
        if answer["result"] == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{method} answers {answer}, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn peerpolicy_disconnects_denied_peers_and_counts_events() {
    let (mut plugin, _node, manifest) = start(
        "peerpolicy",
        &policy(LIMITS),
        json!({"peerpolicy-deny": [DENIED]}),
    );
    assert_eq!(manifest["hooks"], json!([{"name": "peer_connected"}]));
    assert_eq!(
        manifest["subscriptions"],
        json!(["connect", "disconnect", "shutdown"])
    );
    assert_eq!(manifest["options"][0]["multi"], json!(true));

    // Notifications interleaved with hook calls, as lightningd sends them.
    notify(
        &mut plugin,
        "connect",
        json!({"connect": {"id": ALLOWED, "direction": "in"}}),
    );
    let peer = |id: &str| json!({"peer": {"id": id, "direction": "in", "addr": "127.0.0.1:9735", "features": ""}});
    let answer = plugin.request(
        json!("cln:peer_connected#1"),
        "peer_connected",
        peer(ALLOWED),
    );
    assert_eq!(answer["result"], json!({"result": "continue"}));
    notify(
        &mut plugin,
        "connect",
        json!({"connect": {"id": DENIED, "direction": "in"}}),
    );
    let answer = plugin.request(
        json!("cln:peer_connected#2"),
        "peer_connected",
        peer(DENIED),
    );
    assert_eq!(
        answer["result"],
        json!({"result": "disconnect", "error_message": format!("peer {DENIED} is denied by peerpolicy")})
    );
    notify(
        &mut plugin,
        "disconnect",
        json!({"disconnect": {"id": DENIED}}),
    );
    notify(
        &mut plugin,
        "connect",
        json!({"connect": {"id": ALLOWED, "direction": "out"}}),
    );
    eventually(
        &mut plugin,
        "peerpolicy-stats",
        json!({"connects": 3, "disconnects": 1, "rejected": 1}),
    );
    plugin.wait_log(&format!(
        "info: guest: rejected peer {DENIED}: it is on peerpolicy-deny"
    ));

    // A dry run, switched on at runtime: denied peers are only logged.
    assert_eq!(manifest["options"][1]["dynamic"], json!(true));
    let answer = plugin.request(
        json!("cln:setconfig#3"),
        "setconfig",
        json!({"config": "peerpolicy-enforce", "val": false}),
    );
    assert_eq!(answer["result"], json!({}), "{answer}");
    let answer = plugin.request(
        json!("cln:peer_connected#4"),
        "peer_connected",
        peer(DENIED),
    );
    assert_eq!(answer["result"], json!({"result": "continue"}));
    plugin.wait_log(&format!(
        "info: guest: peer {DENIED} is on peerpolicy-deny; letting it in (peerpolicy-enforce=false)"
    ));
}

#[test]
fn the_manifest_carries_every_declaration() {
    let (_plugin, _node, m) = start("misbehave", &policy(LIMITS), json!({}));
    assert_eq!(
        m["hooks"],
        json!([{"name": "htlc_accepted"}, {"name": "rpc_command", "before": ["other"], "after": ["first"]}])
    );
    assert_eq!(m["subscriptions"], json!(["*", "shutdown"]));
    assert_eq!(m["notifications"], json!([{"method": "misbehave_event"}]));
    assert_eq!(m["featurebits"], json!({"node": "0200000000"}));
    assert_eq!(m["custommessages"], json!([32769]));
    assert_eq!(m["nonnumericids"], json!(true));
    let option = |name: &str| {
        m["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        option("mb_multi"),
        json!({"name": "mb_multi", "type": "string", "description": "the mb_multi option", "multi": true})
    );
    assert_eq!(
        option("mb_dyn"),
        json!({"name": "mb_dyn", "type": "int", "description": "the mb_dyn option", "default": 1, "dynamic": true})
    );
    assert_eq!(option("mb_old")["deprecated"], json!(true));
    assert_eq!(
        option("mb_flag"),
        json!({"name": "mb_flag", "type": "flag", "description": "the mb_flag option"})
    );
    let old = m["rpcmethods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "oldmethod")
        .unwrap()
        .clone();
    assert_eq!(
        old,
        json!({"name": "oldmethod", "usage": "", "description": "a deprecated method", "long_description": "A method kept for old callers.", "deprecated": true})
    );
}

#[test]
fn hooks_answer_what_the_guest_says_and_fail_open() {
    let (mut plugin, _node, _) = start("misbehave", &policy(LIMITS), json!({}));
    let answer = plugin.request(json!(1), "htlc_accepted", json!({"test": "resolve"}));
    assert_eq!(
        answer["result"],
        json!({"result": "resolve", "payment_key": "00".repeat(32)})
    );
    let answer = plugin.request(
        json!(2),
        "rpc_command",
        json!({"rpc_command": {"method": "help"}}),
    );
    assert_eq!(answer["result"], json!({"result": "continue"}));
    // A guest that traps, loops or answers garbage never leaves lightningd
    // waiting, and never gets an error answer (which would stop lightningd).
    for (id, test, why) in [
        (
            3,
            "crash",
            "htlc_accepted hook: plugin trapped: wasm trap: wasm `unreachable` instruction executed; answering {\"result\":\"continue\"}",
        ),
        (
            4,
            "spin",
            "htlc_accepted hook: plugin call exceeded its deadline of 2000 ms; answering {\"result\":\"continue\"}",
        ),
        (
            5,
            "garbage",
            "htlc_accepted hook: the guest's answer is not usable JSON: expected ident at line 1 column 2; answering {\"result\":\"continue\"}",
        ),
    ] {
        let answer = plugin.request(json!(id), "htlc_accepted", json!({"test": test}));
        assert_eq!(
            answer,
            json!({"jsonrpc": "2.0", "id": id, "result": {"result": "continue"}})
        );
        plugin.wait_log(&format!("warn: {why}"));
    }
}

#[test]
fn hooks_in_flight_do_not_hold_calls() {
    let policy = policy("call_timeout_ms = 1500\nmax_instances = 2");
    let (mut plugin, _node, _) = start("misbehave", &policy, json!({}));
    plugin.send_request(json!("hook"), "htlc_accepted", json!({"test": "spin"}));
    plugin.send_request(json!("call"), "echo", json!(["x"]));
    assert_eq!(plugin.answer_order(2), vec![json!("call"), json!("hook")]);
    assert_eq!(
        plugin.response(&json!("hook"))["result"],
        json!({"result": "continue"})
    );
}

#[test]
fn star_subscriptions_get_every_topic_but_log() {
    let (mut plugin, _node, _) = start("misbehave", &policy(LIMITS), json!({}));
    notify(&mut plugin, "connect", json!({"connect": {"id": ALLOWED}}));
    notify(
        &mut plugin,
        "invoice_payment",
        json!({"invoice_payment": {"label": "x"}}),
    );
    notify(
        &mut plugin,
        "invoice_payment",
        json!({"invoice_payment": {"label": "y"}}),
    );
    plugin.request(json!(1), "htlc_accepted", json!({}));
    eventually(
        &mut plugin,
        "seen",
        json!({"connect": 1, "hook htlc_accepted": 1, "invoice_payment": 2}),
    );
}

#[test]
fn custom_notifications_go_out_as_method_and_params() {
    let (mut plugin, _node, _) = start("misbehave", &policy(LIMITS), json!({}));
    let answer = plugin.request(
        json!(1),
        "emit",
        json!({"topic": "misbehave_event", "payload": {"n": 1}}),
    );
    assert_eq!(answer["result"], json!({"emitted": "misbehave_event"}));
    assert_eq!(
        plugin.notification("misbehave_event"),
        json!({"jsonrpc": "2.0", "method": "misbehave_event", "params": {"n": 1}})
    );
    let answer = plugin.request(
        json!(2),
        "emit",
        json!({"topic": "other_event", "payload": {}}),
    );
    assert_eq!(
        answer["error"],
        json!({"code": -32010, "message": "notification \"other_event\" denied: the plugin's manifest does not declare it"})
    );
}

#[test]
fn the_log_import_maps_to_lightningds_levels() {
    let (mut plugin, _node, _) = start("misbehave", &policy(LIMITS), json!({}));
    plugin.request(json!(1), "logline", json!({"message": "hello"}));
    for line in [
        "debug: guest: LogLevel::Debug: hello",
        "info: guest: LogLevel::Info: hello",
        "warn: guest: LogLevel::Warn: hello",
        "error: guest: LogLevel::Error: hello",
    ] {
        plugin.wait_log(line);
    }
}

#[test]
fn init_may_refuse_and_the_guest_reads_its_configuration() {
    let node = Node::start();
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), &policy(LIMITS));
    let (_, init) = plugin.handshake(json!({"mb_refuse": true}), &node);
    assert_eq!(
        init["result"],
        json!({"disable": "refusing to run: mb_refuse is set"})
    );

    let (mut plugin, _node, _) = start("misbehave", &policy(LIMITS), json!({}));
    let answer = plugin.request(json!(1), "configuration", json!([]));
    // The node's file paths are left out; everything else is there.
    assert_eq!(
        answer["result"],
        json!({
            "configuration": {
                "startup": false,
                "network": "regtest",
                "feature_set": {"init": "08a000080269a2", "node": "88a000080269a2", "channel": "", "invoice": "02000000024100"}
            },
            "allow_deprecated_apis": false,
        })
    );
}

#[test]
fn allow_deprecated_apis_reaches_the_guest() {
    let node = Node::start();
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), &policy(LIMITS));
    let manifest = plugin.request(
        json!(1),
        "getmanifest",
        json!({"allow-deprecated-apis": true}),
    );
    assert!(manifest["result"]["rpcmethods"].is_array(), "{manifest}");
    let config =
        json!({"lightning-dir": node.dir.path(), "rpc-file": node.rpc_file, "network": "regtest"});
    let init = plugin.request(
        json!(2),
        "init",
        json!({"options": {}, "configuration": config}),
    );
    assert_eq!(init["result"], json!({}));
    let answer = plugin.request(json!(3), "configuration", json!([]));
    assert_eq!(answer["result"]["allow_deprecated_apis"], json!(true));
    assert_eq!(
        plugin.request(json!(4), "oldmethod", json!([]))["result"],
        json!({"old": true})
    );
}

#[test]
fn setconfig_changes_dynamic_options_the_guest_accepts() {
    let (mut plugin, _node, _) = start("misbehave", &policy(LIMITS), json!({}));
    let set = |plugin: &mut Plugin, id: u64, config: &str, val: Value| {
        plugin.request(
            json!(id),
            "setconfig",
            json!({"config": config, "val": val}),
        )
    };
    // lightningd passes values as strings.
    assert_eq!(
        set(&mut plugin, 1, "mb_dyn", json!("5"))["result"],
        json!({})
    );
    assert_eq!(
        plugin.request(json!(2), "options", json!([]))["result"]["mb_dyn"],
        json!(5)
    );
    let refused = set(&mut plugin, 3, "mb_dyn", json!("-1"));
    assert_eq!(
        refused["error"],
        json!({"code": -32602, "message": "mb_dyn must not be negative, got -1"})
    );
    assert_eq!(
        plugin.request(json!(4), "options", json!([]))["result"]["mb_dyn"],
        json!(5)
    );
    let static_option = set(&mut plugin, 5, "mb_int", json!("3"));
    assert_eq!(
        static_option["error"]["message"],
        json!("option \"mb_int\" is not dynamic")
    );
    let mistyped = set(&mut plugin, 6, "mb_dyn", json!("five"));
    assert_eq!(
        mistyped["error"]["message"],
        json!("option \"mb_dyn\" must be int, got \"five\"")
    );
    let unknown = set(&mut plugin, 7, "nope", json!("1"));
    assert_eq!(
        unknown["error"]["message"],
        json!("unknown option \"nope\": the plugin does not declare it")
    );
}
