//! Load and soak, with the default limits.
//!
//! - `mixed_load_…` (always run): 10,000 calls with 64 in flight, mixed with
//!   hooks and notifications, each id answered exactly once with its own
//!   params and every hook answered by the guest, not by its deadline.
//! - `soak` (a command, `#[ignore]`d in the suite):
//!   `SOAK_GUEST=myplugin-py cargo test --release --test load soak -- --ignored --nocapture`
//!   makes `SOAK_CALLS` calls (1,000,000 by default) to the myplugin guest
//!   named by `SOAK_GUEST` (`myplugin`, `myplugin-c`, `myplugin-py`,
//!   `myplugin-js`), 64 in flight, and prints the host's VmRSS every 10,000.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{Node, Plugin, guest_wasm};

#[test]
fn mixed_load_answers_every_call_once_with_its_own_params_and_every_hook_in_time() {
    let node = Node::start();
    let policy = "[grants]\nsubscriptions = [\"*\"]\n\
                  [[grants.hooks]]\nname = \"htlc_accepted\"\n\
                  [[grants.rpc]]\nmethod = \"getinfo\"\n";
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), policy);
    let (_, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    let start_up = plugin.logs(Duration::from_millis(100)).len();
    // Of every 10 requests: 7 calls echoing their params, 2 making a node
    // call, 1 hook; and a notification after each request.
    let request = |plugin: &mut Plugin, n: u64| {
        let id = json!(format!("load#{n}"));
        match n % 10 {
            0 => plugin.send_request(id, "htlc_accepted", json!({"htlc": {"n": n}})),
            1 | 2 => plugin.send_request(id, "nodeinfo", json!([])),
            _ => plugin.send_request(id, "echo", json!({ "n": n })),
        }
        plugin.send(&json!({"jsonrpc": "2.0", "method": "block_added",
                            "params": {"block_added": {"height": n}}}));
    };
    let (calls, in_flight) = (10_000u64, 64);
    for n in 0..in_flight {
        request(&mut plugin, n);
    }
    for n in 0..calls {
        let answer = plugin.response(&json!(format!("load#{n}")));
        let expected = match n % 10 {
            0 => json!({"result": "continue"}),
            1 | 2 => support::getinfo(),
            _ => json!({"method": "echo", "params": {"n": n}}),
        };
        assert_eq!(answer["result"], expected, "{n}: {answer}");
        if n + in_flight < calls {
            request(&mut plugin, n + in_flight);
        }
    }
    assert_eq!(
        plugin.unclaimed(Duration::from_millis(300)),
        Vec::<Value>::new()
    );
    // No hook was answered by its deadline, nothing was refused.
    let logs = plugin.logs(Duration::ZERO);
    let warnings: Vec<_> = logs[start_up..]
        .iter()
        .filter(|l| !l.starts_with("debug") && !l.starts_with("info"))
        .collect();
    assert_eq!(warnings, Vec::<&String>::new());
    let audit = plugin.request(json!("audit"), "misbehave-audit", json!({}));
    assert_eq!(audit["result"]["over_limits"], json!({}), "{audit}");
    assert_eq!(
        node.requests().len() as u64,
        calls / 10 * 2,
        "one node call per nodeinfo"
    );
}

/// The host's resident set, from the kernel.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "a soak of a million calls: run it as a command (see the module's doc)"]
fn soak() {
    let guest = std::env::var("SOAK_GUEST").unwrap_or_else(|_| "myplugin".into());
    let calls: u64 = std::env::var("SOAK_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let node = Node::start();
    // myplugin's policy as scripts/build-plugins installs it.
    let policy = "[limits]\nmemory_mib = 128\n\n[[grants.rpc]]\nmethod = \"getinfo\"\n";
    let mut plugin = Plugin::spawn(&guest, &guest_wasm(&guest), policy);
    let (_, init) = plugin.handshake(json!({"foo_opt": "soak"}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    let pid = plugin.pid();
    let in_flight = 64;
    let id = |n: u64| json!(n);
    for n in 0..in_flight {
        plugin.send_request(id(n), "myplugin", json!([n]));
    }
    let started = Instant::now();
    println!("guest {guest}: calls, VmRSS KiB, seconds");
    let mut samples = vec![];
    for n in 0..calls {
        let answer = plugin.response(&id(n));
        assert_eq!(answer["result"]["cli_params"], json!([n]), "{answer}");
        if n + in_flight < calls {
            plugin.send_request(id(n + in_flight), "myplugin", json!([n + in_flight]));
        }
        // The node stand-in keeps every request: forget them as we go.
        if (n + 1) % 10_000 == 0 {
            node.forget_requests();
            let rss = rss_kib(pid);
            samples.push(rss);
            println!("{}, {rss}, {:.1}", n + 1, started.elapsed().as_secs_f64());
        }
    }
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let max = samples.iter().max().copied().unwrap_or(0);
    println!(
        "guest {guest}: {calls} calls in {:.0} s; VmRSS at 10,000 calls {first} KiB, at the end {last} KiB, highest {max} KiB",
        started.elapsed().as_secs_f64()
    );
}
