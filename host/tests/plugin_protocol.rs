//! The host driven as lightningd drives a plugin: spawned with no arguments,
//! `\n\n`-framed JSON-RPC over its stdin/stdout, a node stand-in on a unix
//! socket. Every assertion is on exact protocol messages. These tests use the
//! misbehave guest to reach the host's edges; the seed's myplugin in every
//! language is host/tests/myplugin_guests.rs.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{NODE_ID, Node, Plugin, guest_wasm};

/// Tight limits so misbehaving calls end quickly.
const MISBEHAVE_POLICY: &str = "[limits]\nmemory_mib = 32\ncall_timeout_ms = 2000\nmax_instances = 4\n\n[[grants.rpc]]\nmethod = \"getinfo\"\n\n[[grants.hooks]]\nname = \"htlc_accepted\"\n";

fn misbehave(options: Value) -> (Plugin, Node) {
    let node = Node::start();
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), MISBEHAVE_POLICY);
    let (_, init) = plugin.handshake(options, &node);
    assert_eq!(init["result"], json!({}), "{init}");
    (plugin, node)
}

#[test]
fn node_answers_larger_than_64_kib_are_read_whole() {
    let (mut plugin, node) = misbehave(json!({}));
    let padding = "x".repeat(200_000);
    node.set_getinfo(json!({"id": NODE_ID, "padding": padding}));
    for id in 0..3 {
        let answer = plugin.request(json!(id), "nodeinfo", json!([]));
        assert_eq!(answer["result"], json!({"id": NODE_ID, "padding": padding}));
    }
    // The same pooled connection served all three.
    assert_eq!(node.requests().len(), 3);
}

#[test]
fn options_reach_the_guest_typed() {
    let (mut plugin, _node) = misbehave(json!({"mb_int": 42, "mb_flag": true}));
    let answer = plugin.request(json!(1), "options", json!([]));
    assert_eq!(
        answer["result"],
        json!({"mb_bool": false, "mb_dyn": 1, "mb_flag": true, "mb_int": 42, "mb_multi": []})
    );

    // An unset flag is absent; ints may come as strings from older nodes;
    // multi options come as lists.
    let (mut plugin, _node) =
        misbehave(json!({"mb_int": "-5", "mb_bool": true, "mb_multi": ["a", "b"]}));
    let answer = plugin.request(json!(1), "options", json!([]));
    assert_eq!(
        answer["result"],
        json!({"mb_bool": true, "mb_dyn": 1, "mb_int": -5, "mb_multi": ["a", "b"]})
    );
}

#[test]
fn wrongly_typed_option_disables_the_plugin() {
    let node = Node::start();
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), MISBEHAVE_POLICY);
    let (_, init) = plugin.handshake(json!({"mb_int": "many"}), &node);
    assert_eq!(
        init["result"],
        json!({"disable": "option \"mb_int\" must be int, got \"many\""})
    );
}

fn assert_failure(answer: &Value, cause: &str, message: &str) {
    assert_eq!(answer["error"]["code"], json!(-32603), "{answer}");
    assert_eq!(answer["error"]["data"], json!({"cause": cause}), "{answer}");
    let got = answer["error"]["message"].as_str().unwrap();
    assert!(
        got.starts_with(message),
        "{got:?} does not start with {message:?}"
    );
}

#[test]
fn a_trapping_guest_is_replaced_and_loses_its_state() {
    let (mut plugin, _node) = misbehave(json!({}));
    assert_eq!(
        plugin.request(json!(1), "count", json!([]))["result"],
        json!({"calls": 1})
    );
    assert_eq!(
        plugin.request(json!(2), "count", json!([]))["result"],
        json!({"calls": 2})
    );
    let answer = plugin.request(json!(3), "crash", json!([]));
    assert_failure(&answer, "trap", "plugin trapped: ");
    // A fresh instance: the count starts over.
    assert_eq!(
        plugin.request(json!(4), "count", json!([]))["result"],
        json!({"calls": 1})
    );
    assert_eq!(
        answer["error"]["message"],
        json!("plugin trapped: wasm trap: wasm `unreachable` instruction executed")
    );
    // The guest's panic message reaches the operator through the log.
    let logs = plugin.logs(Duration::from_millis(200));
    assert!(
        logs.iter()
            .any(|l| l == "warn: guest stderr: crash requested"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("warn: plugin trapped: wasm trap")),
        "{logs:?}"
    );
}

/// `method` is cut with `cause` and `message`, and the next call is served.
fn cut_then_served(method: &str, cause: &str, message: &str) {
    let (mut plugin, _node) = misbehave(json!({}));
    let answer = plugin.request(json!(method), method, json!([]));
    assert_failure(&answer, cause, message);
    let answer = plugin.request(json!("after"), "echo", json!(["still here"]));
    let still = json!({"method": "echo", "params": ["still here"]});
    assert_eq!(answer["result"], still);
}

#[test]
fn a_looping_guest_hits_its_deadline_and_serving_goes_on() {
    cut_then_served(
        "spin",
        "deadline",
        "plugin call exceeded its deadline of 2000 ms",
    );
}

#[test]
fn the_deadline_holds_after_the_host_has_been_idle() {
    // The deadline clock sleeps after a second without guest calls; a call
    // must wake it.
    let (mut plugin, _node) = misbehave(json!({}));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let answer = plugin.request(json!("spin"), "spin", json!([]));
    assert_failure(
        &answer,
        "deadline",
        "plugin call exceeded its deadline of 2000 ms",
    );
}

#[test]
fn a_memory_hungry_guest_hits_its_cap_and_serving_goes_on() {
    cut_then_served(
        "hog",
        "memory",
        "plugin exceeded its memory limit of 32 MiB",
    );
}

#[test]
fn instances_that_keep_growing_are_retired_before_they_fail_a_call() {
    let (mut plugin, _node) = misbehave(json!({}));
    // 32 MiB cap: each instance is retired once it grows past 24 MiB, so 4 MiB
    // a call never reaches the cap, and every call is answered.
    let mut kept = Vec::new();
    for id in 0..20 {
        let answer = plugin.request(json!(id), "leak", json!([4096]));
        kept.push(
            answer["result"]["leaked_kib"]
                .as_u64()
                .unwrap_or_else(|| panic!("{answer}")),
        );
    }
    assert!(
        kept.windows(2).any(|w| w[1] < w[0]),
        "never retired: {kept:?}"
    );
    plugin.wait_log("debug: retiring an instance grown to ");
}

#[test]
fn guest_output_goes_to_the_log_never_to_stdout() {
    let (mut plugin, _node) = misbehave(json!({}));
    let answer = plugin.request(json!(1), "chatter", json!([]));
    assert_eq!(answer["result"], json!({"printed": true}));
    let logs = plugin.logs(Duration::from_millis(200));
    for expected in [
        "info: guest stdout: hello from the guest's stdout",
        "warn: guest stderr: hello from the guest's stderr",
        "info: guest stdout: a line without its end",
    ] {
        assert!(
            logs.iter().any(|l| l == expected),
            "{expected:?} not in {logs:?}"
        );
    }
}

#[test]
fn concurrent_calls_are_answered_as_they_finish() {
    let (mut plugin, _node) = misbehave(json!({}));
    plugin.send_request(json!("slow"), "sleep", json!([1500]));
    plugin.send_request(json!("fast"), "echo", json!([]));
    plugin.send_request(json!("myplugin-like"), "nodeinfo", json!([]));
    let order = plugin.answer_order(3);
    assert_eq!(order.last(), Some(&json!("slow")), "{order:?}");
    assert_eq!(
        plugin.response(&json!("slow"))["result"],
        json!({"slept_ms": 1500, "params": [1500]})
    );
    assert_eq!(
        plugin.response(&json!("fast"))["result"],
        json!({"method": "echo", "params": []})
    );
    assert_eq!(
        plugin.response(&json!("myplugin-like"))["result"]["id"],
        json!(NODE_ID)
    );
}

#[test]
fn shutdown_finishes_calls_in_flight_then_exits() {
    let (mut plugin, _node) = misbehave(json!({}));
    plugin.send_request(json!(1), "sleep", json!([300]));
    plugin.send(&json!({"jsonrpc": "2.0", "method": "shutdown", "params": {}}));
    assert_eq!(plugin.response(&json!(1))["result"]["slept_ms"], json!(300));
    assert!(plugin.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn guest_errors_pass_through_and_bad_answers_are_refused() {
    let (mut plugin, _node) = misbehave(json!({}));
    let answer = plugin.request(json!(1), "rpcerror", json!([]));
    assert_eq!(
        answer["error"],
        json!({"code": 1234, "message": "the guest says no", "data": {"why": "testing"}})
    );
    let answer = plugin.request(json!(2), "badjson", json!([]));
    assert_eq!(answer["error"]["code"], json!(-32603));
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("plugin answered invalid JSON")
    );
}

#[test]
fn the_sandbox_grants_no_files_env_args_or_sockets() {
    let (mut plugin, _node) = misbehave(json!({}));
    let probe = plugin.request(json!("probe"), "probe", json!([]))["result"].clone();
    let nothing =
        json!({"env": 0, "args": 0, "read_root": "denied", "read_cwd": "denied", "tcp": "denied"});
    assert_eq!(probe, nothing);
}

/// The error `getmanifest` gets (the host then exits with a failure) when
/// the plugin's `broken.wasm` holds `wasm`, or is missing.
fn startup_error(wasm: Option<&[u8]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let exe = support::write_plugin_file(dir.path(), "broken", "");
    if let Some(bytes) = wasm {
        std::fs::write(dir.path().join("broken.wasm"), bytes).unwrap();
    }
    Plugin::spawn_exe("broken", dir, &exe, support::shared_cache()).startup_error()
}

#[test]
fn a_missing_wasm_fails_startup_with_a_message() {
    let message = startup_error(None);
    assert!(
        message.starts_with("cannot start plugin: reading "),
        "{message}"
    );
    assert!(
        message.ends_with("broken.wasm: No such file or directory (os error 2)"),
        "{message}"
    );
}

#[test]
fn an_invalid_wasm_fails_startup_with_a_message() {
    let message = startup_error(Some(b"not wasm at all"));
    let expected = "broken.wasm is not a valid WebAssembly component";
    assert!(message.contains(expected), "{message}");
}

#[test]
fn a_component_outside_our_world_fails_startup_with_a_message() {
    // The empty component: valid, but exports nothing.
    let message = startup_error(Some(b"\0asm\x0d\0\x01\0"));
    let expected = "broken.wasm does not implement the cln:plugin/plugin world";
    assert!(message.contains(expected), "{message}");
}

#[test]
fn whitespace_in_a_guests_answer_never_splits_a_message() {
    // The support's reader fails the test on any line that is not a whole
    // JSON message followed by a blank line.
    let (mut plugin, _node) = misbehave(json!({}));
    let answer = plugin.request(json!(1), "spaced", json!([]));
    assert_eq!(answer["result"], json!({"a": [1, 2], "s": "two  spaces"}));
    let answer = plugin.request(json!(2), "htlc_accepted", json!({"test": "spaced"}));
    assert_eq!(answer["result"], json!({"result": "continue"}));
}

#[test]
fn guest_log_lines_cannot_pass_for_the_hosts() {
    let (mut plugin, _node) = misbehave(json!({}));
    let forged = "x\nwarn: denied node method \"pay\": FORGED\u{1b}[2K";
    plugin.request(json!(1), "logline", json!({ "message": forged }));
    plugin.wait_log(
        "warn: guest: LogLevel::Warn: x\\nwarn: denied node method \"pay\": FORGED\\u{1b}[2K",
    );
    let logs = plugin.logs(Duration::from_millis(200));
    let forgeries: Vec<&String> = logs.iter().filter(|l| l.contains(": denied")).collect();
    assert!(
        forgeries.iter().all(|l| l.contains(": guest: ")),
        "{forgeries:?}"
    );
}
