//! Every resource a guest can spend is bounded with the default `[limits]`
//! (the policies below only grant capabilities), each attack is cut or
//! bounded with a clear error or one summary line, and the plugin goes on
//! serving: `misbehave` sleeps, floods the store, the log, the node and
//! lightningd with notifications, and answers or sends too much.

#[path = "support/mod.rs"]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{Node, Plugin, guest_wasm};

const HOOK: &str = "[[grants.hooks]]\nname = \"htlc_accepted\"\n";

fn start(policy: &str) -> (Plugin, Node) {
    let node = Node::start();
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), policy);
    let (_, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    (plugin, node)
}

/// The plugin still answers a call at once.
fn still_serving(plugin: &mut Plugin, id: &str) {
    let answer = plugin.request(json!(id), "echo", json!(["still here"]));
    assert_eq!(
        answer["result"]["params"],
        json!(["still here"]),
        "{answer}"
    );
}

#[test]
fn a_call_that_sleeps_is_cut_at_its_deadline() {
    let (mut plugin, _node) = start("[limits]\ncall_timeout_ms = 200\n");
    let started = Instant::now();
    let answer = plugin.request(json!(1), "sleep", json!([3000]));
    let took = started.elapsed();
    assert_eq!(
        answer["error"],
        json!({"code": -32603, "message": "plugin call exceeded its deadline of 200 ms",
               "data": {"cause": "deadline"}}),
        "{answer}"
    );
    assert!(
        took < Duration::from_millis(2500),
        "answered after {took:?}"
    );
    still_serving(&mut plugin, "after");
}

#[test]
fn a_hook_that_sleeps_gets_the_safe_answer_at_the_hook_deadline_while_calls_are_served() {
    let (mut plugin, _node) = start(HOOK);
    let started = Instant::now();
    // Three at once: two run in the hooks' two instances, the third waits
    // for one, and each is answered by its own deadline from its arrival.
    for n in 0..3 {
        plugin.send_request(
            json!(format!("cln:htlc_accepted#{n}")),
            "htlc_accepted",
            json!({"test": "sleep", "ms": 10000}),
        );
    }
    still_serving(&mut plugin, "meanwhile");
    for n in 0..3 {
        let answer = plugin.response(&json!(format!("cln:htlc_accepted#{n}")));
        assert_eq!(answer["result"], json!({"result": "continue"}), "{answer}");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2000) && took < Duration::from_millis(5000),
        "the hooks were answered after {took:?} (hook_timeout_ms = 2000)"
    );
    plugin.wait_log(
        "warn: htlc_accepted hook: plugin call exceeded its deadline of 2000 ms; \
         answering {\"result\":\"continue\"}",
    );
    still_serving(&mut plugin, "after");
}

#[test]
fn a_hook_never_waits_behind_calls_that_are_stuck() {
    let (mut plugin, _node) = start(HOOK);
    // As many sleeping calls as there are call instances (4).
    for n in 0..4 {
        plugin.send_request(json!(format!("sleep#{n}")), "sleep", json!([3000]));
    }
    std::thread::sleep(Duration::from_millis(200));
    plugin.send_request(json!("cln:htlc_accepted#1"), "htlc_accepted", json!({}));
    let order = plugin.answer_order(5);
    assert_eq!(order[0], json!("cln:htlc_accepted#1"), "{order:?}");
    let hook = plugin.response(&json!("cln:htlc_accepted#1"));
    assert_eq!(hook["result"], json!({"result": "continue"}));
}

#[test]
fn the_store_is_bounded_in_bytes_and_keys() {
    // The default store_max_keys (1,000) is past the node calls one
    // invocation may make (node_calls_per_invocation): a smaller one, to see it.
    let (mut plugin, node) = start("[limits]\nstore_max_keys = 100\n[grants]\nstore = true\n");
    // 10,000 keys of 64 KiB: stops at 4 MiB.
    let answer = plugin.request(json!(1), "storeflood", json!([10000, 65536]));
    assert_eq!(
        answer["result"],
        json!({"written": 63, "refusal": {"code": -32011, "message":
            "store key \"k63\" refused: the store would hold 4194486 bytes, past [limits] \
             store_max_bytes (4194304)"}}),
        "{answer}"
    );
    assert_eq!(node.datastore_keys().len(), 63);
    // Small values: stops at 100 keys (the 63 big ones are replaced).
    let answer = plugin.request(json!(2), "storeflood", json!([10000, 1]));
    assert_eq!(
        answer["result"],
        json!({"written": 100, "refusal": {"code": -32011, "message":
            "store key \"k100\" refused: the store holds 100 keys, its most \
             ([limits] store_max_keys)"}}),
        "{answer}"
    );
    assert_eq!(node.datastore_keys().len(), 100);
    still_serving(&mut plugin, "after");
}

/// Guest lines that reached lightningd, and the lines the host said it
/// dropped.
fn guest_lines_and_dropped(plugin: &mut Plugin, prefix: &str) -> (u64, u64) {
    plugin.wait_log("warn: ");
    let logs = plugin.logs(Duration::from_millis(300));
    let logged = logs.iter().filter(|l| l.contains(prefix)).count() as u64;
    let summaries: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("lines dropped"))
        .collect();
    assert_eq!(summaries.len(), 1, "one summary line: {summaries:?}");
    let dropped = summaries[0]
        .trim_start_matches("warn: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("N lines dropped");
    (logged, dropped)
}

#[test]
fn a_log_flood_is_cut_to_a_burst_and_one_summary_line() {
    for (how, bytes, lines, prefix) in [
        ("lines", 10_000_000, 100_000, "info: guest stdout: xxx"),
        ("newlines", 500_000, 500_000, "info: guest stdout: "),
        ("events", 1_000_000, 10_000, "info: guest: xxx"),
    ] {
        let (mut plugin, _node) = start("");
        let started = Instant::now();
        let answer = plugin.request(json!(1), "logflood", json!([bytes, how]));
        assert_eq!(answer["result"], json!({"logged_bytes": bytes}), "{answer}");
        let took = started.elapsed().as_secs_f64();
        let (logged, dropped) = guest_lines_and_dropped(&mut plugin, prefix);
        assert_eq!(
            logged + dropped,
            lines,
            "{how}: every line logged or counted"
        );
        // A burst of 1,000, then 100 a second.
        let most = 1000 + (100.0 * (took + 1.0)) as u64;
        assert!(logged <= most, "{how}: {logged} lines in {took:.1} s");
        // (less the start-up's `warn` lines for what was not granted)
        assert!(logged >= 990, "{how}: the burst passes ({logged})");
        still_serving(&mut plugin, "after");
    }
}

#[test]
fn node_calls_in_a_loop_are_cut_at_the_invocations_bound() {
    let grant = "[[grants.rpc]]\nmethod = \"getinfo\"\nfilter = { id = true }\n";
    let (mut plugin, node) = start(grant);
    // getinfo as fast as it can for 3 s, inside one call.
    let answer = plugin.request(json!(1), "nodeflood", json!([3000]));
    let result = &answer["result"];
    assert_eq!(
        result["refusal"],
        json!({"code": -32011, "message":
            "node method \"getinfo\" refused: this invocation made 1000, its most \
             ([limits] node_calls_per_invocation)"}),
        "{answer}"
    );
    assert_eq!(result["answered"], json!(1000), "{answer}");
    assert_eq!(node.requests().len(), 1000, "refusals never reach the node");
    // The refusals' own log lines are held to the log's rate too.
    let (logged, dropped) = guest_lines_and_dropped(&mut plugin, "refused node method");
    assert_eq!(logged + dropped, result["refused"].as_u64().unwrap());
    // The bound is the invocation's: the next call gets its own.
    let answer = plugin.request(json!(2), "nodeflood", json!([3000]));
    assert_eq!(answer["result"]["answered"], json!(1000), "{answer}");
    still_serving(&mut plugin, "after");
}

#[test]
fn load_that_lightningd_drives_is_never_refused() {
    // 1,500 calls at once, each making one node call, with the default
    // limits: every one is answered with its result.
    let (mut plugin, node) = start("[[grants.rpc]]\nmethod = \"getinfo\"\n");
    let ids: Vec<_> = (0..1500)
        .map(|n| json!(format!("cli:nodeinfo#{n}")))
        .collect();
    for id in &ids {
        plugin.send_request(id.clone(), "nodeinfo", json!([]));
    }
    for id in &ids {
        let answer = plugin.response(id);
        assert_eq!(
            answer["result"]["id"],
            json!(support::NODE_ID),
            "{id}: {answer}"
        );
    }
    assert_eq!(node.requests().len(), 1500);
    let audit = plugin.request(json!("audit"), "misbehave-audit", json!({}));
    assert_eq!(audit["result"]["over_limits"], json!({}), "{audit}");
}

#[test]
fn node_params_answers_and_notifications_are_held_to_their_size_and_rate() {
    let policy = "[grants]\nnotifications = [\"misbehave_event\"]\n\
                  [[grants.rpc]]\nmethod = \"getinfo\"\n";
    let (mut plugin, node) = start(policy);
    let answer = plugin.request(json!(1), "bigparams", json!([1_100_000]));
    assert_eq!(
        answer["result"],
        json!({"code": -32011, "message": "node method \"getinfo\" refused: its params are \
               1100010 bytes, past [limits] node_params_max_bytes (1048576)"}),
        "{answer}"
    );
    // Past the most the host copies at once, the copy is not even made.
    let answer = plugin.request(json!("far"), "bigparams", json!([5_000_000]));
    assert_eq!(answer["error"], copy_stopped(), "{answer}");
    assert!(node.requests().is_empty());

    let answer = plugin.request(json!(2), "biganswer", json!([1_100_000]));
    assert_eq!(
        answer["error"],
        json!({"code": -32011, "message": "the guest's answer is 1100010 bytes, past [limits] \
               answer_max_bytes (1048576)"}),
        "{answer}"
    );
    let answer = plugin.request(json!("farther"), "biganswer", json!([2_000_000]));
    assert_eq!(answer["error"], copy_stopped(), "{answer}");

    let answer = plugin.request(json!(3), "emitflood", json!([1000]));
    let result = &answer["result"];
    assert_eq!(
        result["refusal"],
        json!({"code": -32011, "message": "notification \"misbehave_event\" refused: this \
               invocation made 100, its most ([limits] notifications_per_invocation)"}),
        "{answer}"
    );
    let emitted = result["emitted"].as_u64().unwrap();
    assert_eq!(emitted, 100, "{answer}");
    assert_eq!(result["refused"], json!(900));
    let sent = plugin
        .unclaimed(Duration::from_millis(300))
        .iter()
        .filter(|m| m["method"] == "misbehave_event")
        .count() as u64;
    assert_eq!(sent, emitted, "lightningd got exactly the ones let through");
    still_serving(&mut plugin, "after");
}

/// The operator sees each limit the guest hit, counted.
#[test]
fn the_audit_counts_what_went_over_a_limit() {
    let (mut plugin, _node) = start("[[grants.rpc]]\nmethod = \"getinfo\"\n");
    plugin.request(json!(1), "biganswer", json!([1_100_000]));
    plugin.request(json!(2), "bigparams", json!([1_100_000]));
    plugin.request(json!(3), "biganswer", json!([2_000_000]));
    let audit = plugin.request(json!(4), "misbehave-audit", json!({}));
    assert_eq!(
        audit["result"]["over_limits"],
        json!({"answer_max_bytes": 1, "copy_bound": 1, "node_params_max_bytes": 1}),
        "{audit}"
    );
}

/// The error of a call whose guest handed the host more than it copies at
/// once (the default limits: 1 MiB + 64 KiB).
fn copy_stopped() -> serde_json::Value {
    json!({"code": -32603, "message": "plugin handed the host more than 1114112 bytes at once, \
           past [limits] answer_max_bytes and node_params_max_bytes: the copy was stopped there",
           "data": {"cause": "size"}})
}

#[test]
fn a_guest_slower_than_its_notifications_holds_a_bounded_queue() {
    let (mut plugin, _node) = start("[grants]\nsubscriptions = [\"*\"]\n");
    let notify = |plugin: &mut Plugin, params| {
        plugin.send(&json!({"jsonrpc": "2.0", "method": "block_added", "params": params}));
    };
    // Held for its 2 s deadline, while 1,100 more arrive: 1,024 wait.
    notify(&mut plugin, json!({"sleep_ms": 10000}));
    for height in 0..1100 {
        notify(&mut plugin, json!({"block": {"height": height}}));
    }
    plugin.wait_log("warn: block_added notification dropped: 1024 are waiting for the guest");
    still_serving(&mut plugin, "after");
    plugin.wait_log("warn: block_added notification: plugin call exceeded its deadline of 2000 ms");
}
