//! Faults on either side of the host, each ending in an error the guest or
//! lightningd can act on, or a clean exit: never a hang, a panic or a lost
//! answer.
//!
//! - The node: its socket missing at `init`, a connection closed mid-answer,
//!   an answer after the call's deadline, error answers, a 10 MB answer, the
//!   node going away under a call and coming back with its socket made anew.
//!   The guest (misbehave's `rpc`, which hands a node error back as its own)
//!   gets an `rpc-error` each time, and the next call reaches the node again.
//! - lightningd: stdin closed mid-message, stdout closed (EPIPE), SIGTERM and
//!   SIGINT with a call and a hook in flight, a flood of notifications while
//!   calls run, 10 MB params.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{NODE_ID, Node, Plugin, guest_wasm};

/// misbehave, with the node methods these tests call granted.
const POLICY: &str = "[grants]\nsubscriptions = [\"*\"]\n\
                      [[grants.rpc]]\nmethod = \"getinfo\"\n\
                      [[grants.rpc]]\nmethod = \"listpeers\"\n";

fn spawn(policy: &str) -> Plugin {
    Plugin::spawn("misbehave", &guest_wasm("misbehave"), policy)
}

fn start(policy: &str) -> (Plugin, Node) {
    let node = Node::start();
    let mut plugin = spawn(policy);
    let (_, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    (plugin, node)
}

/// misbehave calls `method` on the node and answers what it got.
fn node_call(plugin: &mut Plugin, id: &str, method: &str) -> Value {
    plugin.request(json!(id), "rpc", json!({"method": method, "params": {}}))
}

fn reaches_the_node(plugin: &mut Plugin, id: &str) {
    let answer = node_call(plugin, id, "getinfo");
    assert_eq!(answer["result"]["id"], json!(NODE_ID), "{answer}");
}

fn error_message(answer: &Value) -> String {
    assert_eq!(answer["error"]["code"], json!(-32603), "{answer}");
    answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_socket_missing_at_init_is_an_error_per_call_until_it_appears() {
    let node = Node::start();
    node.vanish();
    let mut plugin = spawn(POLICY);
    let (_, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    let message = error_message(&node_call(&mut plugin, "1", "getinfo"));
    let socket = node.socket();
    assert!(
        message.starts_with(&format!(
            "node unreachable: connecting to {}",
            socket.display()
        )),
        "{message}"
    );
    node.come_back();
    reaches_the_node(&mut plugin, "2");
}

#[test]
fn a_connection_closed_mid_answer_is_an_error_and_the_next_call_reconnects() {
    let (mut plugin, node) = start(POLICY);
    reaches_the_node(&mut plugin, "1");
    node.answer("listpeers", json!({"__cut_after": 100}));
    let message = error_message(&node_call(&mut plugin, "2", "listpeers"));
    assert!(
        message.ends_with("reading the node's answer: the node closed the connection mid-answer"),
        "{message}"
    );
    // Closed before a byte of the answer: the node never took the request
    // on that connection, so it is an error too, never a hang.
    node.answer("listpeers", json!({"__cut_after": 0}));
    let answer = node_call(&mut plugin, "3", "listpeers");
    assert!(
        error_message(&answer).starts_with("node unreachable: "),
        "{answer}"
    );
    node.answer("listpeers", json!({"peers": []}));
    let answer = node_call(&mut plugin, "4", "listpeers");
    assert_eq!(answer["result"], json!({"peers": []}), "{answer}");
    reaches_the_node(&mut plugin, "5");
}

#[test]
fn an_answer_after_the_deadline_is_an_error_at_the_deadline() {
    let policy = format!("[limits]\ncall_timeout_ms = 1000\n{POLICY}");
    let (mut plugin, node) = start(&policy);
    // The node would answer in 30 s; the call's deadline is 1 s.
    node.answer("listpeers", json!({"__sleep_ms": 30_000}));
    let sent = Instant::now();
    plugin.send_request(
        json!("late"),
        "rpc",
        json!({"method": "listpeers", "params": {}}),
    );
    let answer = plugin.response_within(&json!("late"), Duration::from_secs(15));
    assert!(sent.elapsed() < Duration::from_secs(15));
    assert_eq!(answer["error"]["code"], json!(-32603), "{answer}");
    let message = error_message(&answer);
    assert!(
        message == "the node did not answer before the call's deadline"
            || message.starts_with("plugin call exceeded its deadline of 1000 ms"),
        "{message}"
    );
    // The late answer's connection is dropped; the next call gets its own.
    reaches_the_node(&mut plugin, "next");
}

#[test]
fn node_errors_reach_the_guest_whole() {
    let (mut plugin, node) = start(POLICY);
    node.set_getinfo(json!({"__error": {"code": 210, "message": "node says no",
                                        "data": {"why": ["a", 1]}}}));
    let answer = node_call(&mut plugin, "1", "getinfo");
    assert_eq!(
        answer["error"],
        json!({"code": 210, "message": "node says no", "data": {"why": ["a", 1]}}),
        "{answer}"
    );
    // Ungranted: refused by the host, never sent, and named.
    let answer = node_call(&mut plugin, "2", "withdraw");
    assert_eq!(
        answer["error"],
        json!({"code": -32010, "message": "node method \"withdraw\" denied: no grant for \"withdraw\" in the policy ([[grants.rpc]])"}),
        "{answer}"
    );
    assert!(node.requests().iter().all(|r| r["method"] != "withdraw"));
}

#[test]
fn a_10_mb_answer_is_read_whole() {
    let policy = format!("[limits]\nanswer_max_bytes = 16777216\n{POLICY}");
    let (mut plugin, node) = start(&policy);
    node.answer("listpeers", json!({"__big_bytes": 10_000_000}));
    let answer = node_call(&mut plugin, "big", "listpeers");
    let big = answer["result"]["big"].as_str().unwrap_or_default();
    assert_eq!(big.len(), 10_000_000, "{:.200}", answer.to_string());
    assert!(big.bytes().all(|b| b == b'x'));
    reaches_the_node(&mut plugin, "after");
}

#[test]
fn the_node_restarting_under_a_call_is_an_error_then_it_is_reached_again() {
    let (mut plugin, node) = start(POLICY);
    node.answer("listpeers", json!({"__sleep_ms": 3_000}));
    plugin.send_request(
        json!("inflight"),
        "rpc",
        json!({"method": "listpeers", "params": {}}),
    );
    std::thread::sleep(Duration::from_millis(300));
    node.vanish();
    let message = error_message(&plugin.response(&json!("inflight")));
    assert!(message.starts_with("node unreachable: "), "{message}");
    // Its socket made anew, at the same path.
    node.come_back();
    reaches_the_node(&mut plugin, "back");
}

#[test]
fn stdin_closed_mid_message_is_a_clean_exit() {
    let (mut plugin, _node) = start(POLICY);
    plugin.send_raw("{\"jsonrpc\": \"2.0\", \"id\": 7, \"method\": \"ec");
    plugin.close_stdin();
    assert!(plugin.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn stdout_closed_is_a_clear_error_and_an_exit() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let file = support::plugin_file(dir.path(), "misbehave", &guest_wasm("misbehave"), POLICY);
    let cwd = dir.path().join("regtest");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut child = Command::new(support::as_lightningd_runs(&file))
        .current_dir(&cwd)
        .env("CLN_WASM_HOST_CACHE", support::shared_cache())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // lightningd went away: nobody reads the plugin's stdout.
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    let init = support::init_params(json!({}), &node);
    let frames = format!(
        "{}\n\n{}\n\n",
        json!({"jsonrpc": "2.0", "id": 1, "method": "getmanifest", "params": {}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "init", "params": init}),
    );
    // The host may be gone before all is written: that is the point.
    let _ = stdin.write_all(frames.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the host did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(1), "{status:?}: {stderr}");
    assert!(stderr.contains("Broken pipe"), "{stderr}");
}

/// SIGTERM or SIGINT: the call and the hook in flight are answered (the
/// hook with what the guest answered, checked), nothing new starts, and the
/// host exits 0, as at `shutdown`.
fn a_signal_lets_calls_in_flight_finish_then_exits_cleanly(signal: i32) {
    let policy = format!("{POLICY}[[grants.hooks]]\nname = \"htlc_accepted\"\n");
    let (mut plugin, _node) = start(&policy);
    plugin.send_request(json!("slow"), "sleep", json!([1500]));
    let htlc = json!({"test": "sleep", "ms": 1500, "htlc": {"amount_msat": 1000}});
    plugin.send_request(json!("hook"), "htlc_accepted", htlc);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(plugin.pid() as i32, signal) }, 0);
    let answer = plugin.response(&json!("slow"));
    assert_eq!(answer["result"]["slept_ms"], json!(1500), "{answer}");
    let answer = plugin.response(&json!("hook"));
    assert_eq!(answer["result"], json!({"result": "continue"}), "{answer}");
    let status = plugin.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigterm_lets_calls_in_flight_finish_then_exits_cleanly() {
    a_signal_lets_calls_in_flight_finish_then_exits_cleanly(libc::SIGTERM);
}

#[test]
fn sigint_lets_calls_in_flight_finish_then_exits_cleanly() {
    a_signal_lets_calls_in_flight_finish_then_exits_cleanly(libc::SIGINT);
}

#[test]
fn a_flood_of_notifications_while_calls_run_loses_no_call() {
    let (mut plugin, _node) = start(POLICY);
    let start_up = plugin.logs(Duration::from_millis(100)).len();
    for n in 0..200u64 {
        plugin.send_request(json!(n), "echo", json!([n]));
        for _ in 0..100 {
            plugin.send(&json!({"jsonrpc": "2.0", "method": "connect",
                                "params": {"connect": {"id": NODE_ID}}}));
        }
    }
    for n in 0..200u64 {
        let answer = plugin.response(&json!(n));
        assert_eq!(answer["result"]["params"], json!([n]), "{answer}");
    }
    // The host serves on; a notification it could not queue is dropped
    // with a warning (the queue holds 1,024; the warnings are held to the
    // guest's log budget), never anything else.
    let answer = plugin.request(json!("after"), "echo", json!(["after"]));
    assert_eq!(answer["result"]["params"], json!(["after"]), "{answer}");
    for line in &plugin.logs(Duration::from_millis(200))[start_up..] {
        assert!(
            !line.starts_with("warn")
                || line.contains("connect notification dropped")
                || line.contains("lines dropped: the guest logged past [limits] log_lines_rate"),
            "{line}"
        );
    }
}

#[test]
fn ten_mb_params_get_an_answer_or_a_clear_error_and_serving_goes_on() {
    let (mut plugin, _node) = start(POLICY);
    let big = "x".repeat(10_000_000);
    let answer = plugin.request(json!("big"), "echo", json!([big]));
    // The echo is past answer_max_bytes: a clear error, never a crash.
    assert_eq!(
        answer["error"]["code"],
        json!(-32603),
        "{:.300}",
        answer.to_string()
    );
    let message = error_message(&answer);
    assert!(message.contains("answer_max_bytes"), "{message}");
    let answer = plugin.request(json!("small"), "echo", json!(["still here"]));
    assert_eq!(
        answer["result"]["params"],
        json!(["still here"]),
        "{answer}"
    );
}
