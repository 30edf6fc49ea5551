//! Replacing a running plugin's `.wasm`: the host swaps in a valid one with
//! the same manifest under a stream of calls, and refuses anything else while
//! the old guest keeps serving.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Node, Plugin, guest_wasm};

const POLICY: &str = "[[grants.rpc]]\nmethod = \"getinfo\"\n";

fn running_misbehave() -> (Plugin, Node) {
    let node = Node::start();
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), POLICY);
    let (_, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}));
    (plugin, node)
}

fn version(plugin: &mut Plugin, id: Value) -> i64 {
    plugin.request(id, "version", json!([]))["result"]["version"]
        .as_i64()
        .unwrap()
}

/// Replace the plugin's file the way `cp` does: in place.
fn replace_wasm(plugin: &Plugin, with: &[u8]) {
    std::fs::write(
        plugin.dir.path().join(format!("{}.wasm", plugin.name)),
        with,
    )
    .unwrap();
}

#[test]
fn the_manifest_offers_a_reload_method() {
    let node = Node::start();
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), POLICY);
    let (manifest, _) = plugin.handshake(json!({}), &node);
    let methods = manifest["result"]["rpcmethods"].as_array().unwrap();
    let names: Vec<&Value> = methods.iter().map(|m| &m["name"]).collect();
    // The host's own two, after the guest's.
    assert_eq!(
        names[names.len() - 2..],
        [&json!("misbehave-reload"), &json!("misbehave-audit")]
    );
}

#[test]
fn a_swap_under_a_stream_of_calls_loses_and_repeats_nothing() {
    let (mut plugin, _node) = running_misbehave();
    let v2 = std::fs::read(guest_wasm("misbehave-v2")).unwrap();
    const IN_FLIGHT: usize = 4;
    let (mut sent, mut versions) = (0usize, Vec::new());
    for _ in 0..IN_FLIGHT {
        plugin.send_request(json!(sent), "version", json!([]));
        sent += 1;
    }
    // Keep IN_FLIGHT calls going until well after the new guest answers.
    let mut swapped_at = None;
    let started = std::time::Instant::now();
    while versions.len() < sent {
        let id = versions.len();
        let answer = plugin.response(&json!(id));
        versions.push(
            answer["result"]["version"]
                .as_i64()
                .unwrap_or_else(|| panic!("{answer}")),
        );
        if id == 20 {
            replace_wasm(&plugin, &v2);
        }
        if swapped_at.is_none() && versions.last() == Some(&2) {
            swapped_at = Some(id);
        }
        let enough = swapped_at.is_some_and(|at| sent > at + 50);
        if !enough && started.elapsed() < support::PATIENCE {
            plugin.send_request(json!(sent), "version", json!([]));
            sent += 1;
        }
    }
    let at = swapped_at.expect("the new guest never answered");
    // Every call answered once, by the old guest until the swap, by the new one after.
    assert!(at > 20, "{at}");
    assert!(versions[..at].iter().all(|v| *v == 1), "{versions:?}");
    assert!(versions[at..].iter().all(|v| *v == 2), "{versions:?}");
    assert_eq!(
        plugin.unclaimed(Duration::from_millis(200)),
        Vec::<Value>::new()
    );
    let line = plugin.wait_log("info: now serving ");
    assert!(line.contains("misbehave.wasm (sha256 "), "{line}");
}

#[test]
fn an_invalid_file_is_refused_and_the_old_guest_keeps_serving() {
    let (mut plugin, _node) = running_misbehave();
    assert_eq!(version(&mut plugin, json!(1)), 1);
    replace_wasm(&plugin, b"\0asm but not really");
    let line = plugin.wait_log("warn: not swapping in ");
    assert!(
        line.contains("misbehave.wasm is not a valid WebAssembly component: "),
        "{line}"
    );
    assert!(line.ends_with("; the old guest keeps serving"), "{line}");
    assert_eq!(version(&mut plugin, json!(2)), 1);
    // A good file after a bad one is taken.
    replace_wasm(&plugin, &std::fs::read(guest_wasm("misbehave-v2")).unwrap());
    plugin.wait_log("info: now serving ");
    assert_eq!(version(&mut plugin, json!(3)), 2);
}

#[test]
fn a_changed_manifest_needs_a_restart_and_the_old_guest_keeps_serving() {
    let (mut plugin, _node) = running_misbehave();
    replace_wasm(&plugin, &std::fs::read(guest_wasm("myplugin")).unwrap());
    let line = plugin.wait_log("warn: not swapping in ");
    assert!(
        line.ends_with(
            "its manifest differs; `plugin stop` and `plugin start` are needed to apply it; the old guest keeps serving"
        ),
        "{line}"
    );
    assert_eq!(version(&mut plugin, json!(1)), 1);
    // And the operator asking for it explicitly gets the same reason.
    let answer = plugin.request(json!(2), "misbehave-reload", json!([]));
    assert_eq!(
        answer["error"]["message"],
        json!("its manifest differs; `plugin stop` and `plugin start` are needed to apply it")
    );
}

#[test]
fn the_reload_method_swaps_on_demand() {
    let (mut plugin, _node) = running_misbehave();
    let v2 = std::fs::read(guest_wasm("misbehave-v2")).unwrap();
    replace_wasm(&plugin, &v2);
    let answer = plugin.request(json!("r"), "misbehave-reload", json!([]));
    let digest = answer["result"]["sha256"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(digest.len(), 64);
    assert_eq!(version(&mut plugin, json!(1)), 2);
}

/// 10,000 calls with 64 in flight while the `.wasm` is replaced every 100 ms,
/// round `v2`, one that traps on every call and the first guest, each swap
/// made at once with `NAME-reload` (the watcher waits for the file to hold
/// still for 300 ms, which a file rewritten every 100 ms never does). Every
/// call is answered exactly once, by exactly one of them (its version, or
/// the trapper's trap), every swap is taken, and each guest answered some.
#[test]
fn swaps_every_100_ms_under_load_lose_and_repeat_nothing() {
    let (mut plugin, _node) = running_misbehave();
    let guests: Vec<Vec<u8>> = ["misbehave-v2", "misbehave-trapper", "misbehave"]
        .iter()
        .map(|g| std::fs::read(guest_wasm(g)).unwrap())
        .collect();
    // At least 10,000 calls, and at least 12 swaps (four rounds).
    let (min_calls, min_swaps, in_flight) = (10_000u64, 12usize, 64);
    for n in 0..in_flight {
        plugin.send_request(json!(n), "version", json!([]));
    }
    let mut by = std::collections::BTreeMap::<String, u64>::new();
    let (mut sent, mut n, mut swaps) = (in_flight, 0, 0);
    let mut last_swap = std::time::Instant::now();
    while n < sent {
        if last_swap.elapsed() >= Duration::from_millis(100) && swaps < min_swaps {
            replace_wasm(&plugin, &guests[swaps % guests.len()]);
            plugin.send_request(
                json!(format!("reload#{swaps}")),
                "misbehave-reload",
                json!([]),
            );
            swaps += 1;
            last_swap = std::time::Instant::now();
        }
        let answer = plugin.response(&json!(n));
        // Only the trapper traps on `version`.
        let who = match (&answer["result"]["version"], &answer["error"]["data"]) {
            (Value::Number(v), Value::Null) => format!("v{v}"),
            (Value::Null, cause) if *cause == json!({"cause": "trap"}) => "trapper".into(),
            _ => panic!("{n}: not one guest's answer: {answer}"),
        };
        *by.entry(who).or_default() += 1;
        n += 1;
        if sent < min_calls || swaps < min_swaps {
            plugin.send_request(json!(sent), "version", json!([]));
            sent += 1;
        }
    }
    for k in 0..swaps {
        let answer = plugin.response(&json!(format!("reload#{k}")));
        assert_eq!(
            answer["result"]["sha256"].as_str().map(str::len),
            Some(64),
            "{answer}"
        );
    }
    assert_eq!(
        plugin.unclaimed(Duration::from_millis(300)),
        Vec::<Value>::new()
    );
    assert_eq!(by.values().sum::<u64>(), sent);
    for who in ["v1", "v2", "trapper"] {
        assert!(
            by.get(who).is_some_and(|n| *n > 0),
            "{who} never answered: {by:?}"
        );
    }
    eprintln!("{sent} calls, {swaps} swaps; answers by guest: {by:?}");
}
