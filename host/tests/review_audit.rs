//! What a guest writes cannot lie to the operator, and what it tried cannot
//! be buried (issue #18, rows 10 and 11): reasons, descriptions, names and
//! log lines show every character that would not show as itself escaped, in
//! `inspect`, `install`, the plugin file and lightningd's log; a refusal of
//! something that moves money or changes the node is named in `NAME-audit`
//! and logged however many decoys and log lines came first.

#[path = "support/mod.rs"]
mod support;

use cln_wasm_host::shown::hidden;
use serde_json::{Value, json};
use support::{Node, Plugin, guest_wasm};

/// The hostile guest's lying reason (`LIAR` in the misbehave guest), raw.
const LIAR: &str =
    "to show the node\u{202e}detnarg\u{2066}x\u{2069}\u{200b}\u{3164}\u{2028}y\u{feff}\u{e0041}";
/// The same, as the host shows it.
const LIAR_SHOWN: &str =
    r"to show the node\u{202e}detnarg\u{2066}x\u{2069}\u{200b}\u{3164}\u{2028}y\u{feff}\u{e0041}";

/// No character of `text` would be hidden from a reader.
fn all_shown(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| *c != '\n' && hidden(*c)) {
        panic!("{what} shows U+{:04X} raw:\n{text}", c as u32);
    }
}

#[test]
fn inspect_install_and_the_plugin_file_show_hidden_characters_escaped() {
    let wasm = guest_wasm("misbehave-hostile");
    let review = support::host_tool_text(&[&"inspect", &wasm]);
    let line = format!("  not granted  node method \"close\": {LIAR_SHOWN}\n");
    assert!(review.contains(&line), "{line}\nnot in:\n{review}");
    all_shown("inspect", &review);

    // The JSON keeps the guest's words exactly, written with JSON escapes.
    let text = support::host_tool_text(&[&"inspect", &wasm, &"--json"]);
    all_shown("inspect --json", &text);
    assert!(
        text.contains(r#""reason": "to show the node\u202edetnarg\u2066x\u2069\u200b\u3164\u2028y\ufeff\udb40\udc41""#),
        "{text}"
    );
    let json: Value = serde_json::from_str(&text).unwrap();
    let close = json["asks"]["rpc"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "close")
        .unwrap();
    assert_eq!(close["reason"], json!(LIAR));
    let option = json["manifest"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "mb_liar")
        .unwrap();
    assert_eq!(option["description"], json!(LIAR));

    let dir = tempfile::tempdir().unwrap();
    let out = support::host_tool_text(&[
        &"install",
        &wasm,
        &"--name",
        &"hostile",
        &"--dir",
        &dir.path(),
    ]);
    assert!(out.contains(&line), "{line}\nnot in:\n{out}");
    all_shown("install", &out);
    let written = std::fs::read_to_string(dir.path().join("hostile")).unwrap();
    let comment = format!(
        "# The guest asks for node method \"close\": {LIAR_SHOWN}\n\
         # [[grants.rpc]]\n# method = \"close\"\n"
    );
    assert!(written.contains(&comment), "{comment}\nnot in:\n{written}");
    all_shown("the plugin file", &written);
}

#[test]
fn guest_text_reaches_lightningds_log_escaped() {
    let node = Node::start();
    let mut plugin = Plugin::spawn("mb", &guest_wasm("misbehave"), "");
    plugin.handshake(json!({}), &node);
    let message = "ok\u{202e}detnarg\u{2028}warn: host line\u{200b}\u{00a0}\u{e0001}";
    plugin.request(json!(1), "logline", json!({ "message": message }));
    plugin.wait_log(
        r"info: guest: LogLevel::Info: ok\u{202e}detnarg\u{2028}warn: host line\u{200b}\u{a0}\u{e0001}",
    );
    // A refusal line names what the guest chose, escaped too.
    let method = "pay\u{202e}\u{2066}";
    let answer = plugin.request(json!(2), "rpc", json!({ "method": method, "params": {} }));
    assert_eq!(
        answer["result"]["message"]
            .as_str()
            .or(answer["error"]["message"].as_str()),
        Some(
            "node method \"pay\\u{202e}\\u{2066}\" denied: the plugin's manifest does not ask for it"
        ),
        "{answer}"
    );
    plugin.wait_log(
        r#"warn: denied node method "pay\u{202e}\u{2066}": the plugin's manifest does not ask for it"#,
    );
    for line in plugin.logs(std::time::Duration::ZERO) {
        all_shown("lightningd's log", &line);
    }
}

/// A policy whose log budget a guest spends in one call.
const SMALL_LOG: &str = "[limits]\nlog_lines_rate = { per_sec = 1, burst = 5 }\n";

/// Spend the log budget: 20 lines of 99 bytes, most of them dropped.
fn spend_log_budget(plugin: &mut Plugin) {
    let spent = plugin.request(json!("spend"), "logflood", json!([2000, "events"]));
    assert_eq!(spent["result"], json!({"logged_bytes": 2000}), "{spent}");
}

/// How many lines the host said it dropped, over every such line so far.
fn dropped(plugin: &mut Plugin) -> u64 {
    plugin
        .logs(std::time::Duration::from_millis(200))
        .iter()
        .filter_map(|l| l.strip_prefix("warn: "))
        .filter_map(|l| {
            l.split_once(" lines dropped: ")
                .map(|(n, _)| n.parse::<u64>().unwrap())
        })
        .sum()
}

#[test]
fn a_refused_withdraw_behind_300_decoys_and_a_spent_log_budget_is_audited_and_logged() {
    let node = Node::start();
    let mut plugin = Plugin::spawn("mb", &guest_wasm("misbehave"), SMALL_LOG);
    plugin.handshake(json!({}), &node);
    spend_log_budget(&mut plugin);
    let answer = plugin.request(json!(1), "decoys", json!([300, "withdraw"]));
    assert_eq!(
        answer["result"],
        json!({"code": -32010, "message": "node method \"withdraw\" denied: no grant for \"withdraw\" in the policy ([[grants.rpc]])"}),
        "{answer}"
    );
    // The decoys' lines were dropped: the budget was spent...
    assert!(
        dropped(&mut plugin) >= 300,
        "{:?}",
        plugin.logs(std::time::Duration::ZERO)
    );
    // ...and still the attempt is in lightningd's log,
    plugin.wait_log(
        "warn: denied node method \"withdraw\": no grant for \"withdraw\" in the policy ([[grants.rpc]])",
    );
    // and named in the audit, past the 256 names the decoys took (but
    // one: the private directory misbehave asks for, refused at init).
    let audit = plugin.request(json!(2), "mb-audit", json!({}));
    let denied = audit["result"]["denied"].as_object().unwrap();
    assert_eq!(denied["node method \"withdraw\""], json!(1));
    assert_eq!(denied["node method \"decoy0\""], json!(1));
    assert_eq!(denied["dir"], json!(1));
    assert_eq!(denied["(others)"], json!(300 - 255));
    assert_eq!(denied.len(), 256 + 2);
    // A second attempt is counted, and the audit stays as big.
    plugin.request(json!(3), "decoys", json!([0, "withdraw"]));
    let audit = plugin.request(json!(4), "mb-audit", json!({}));
    let denied = audit["result"]["denied"].as_object().unwrap();
    assert_eq!(denied["node method \"withdraw\""], json!(2));
    assert_eq!(denied.len(), 256 + 2);
}

#[test]
fn a_withdraw_over_a_limit_behind_300_decoys_over_it_too_is_audited_and_logged() {
    let node = Node::start();
    let policy = format!("{SMALL_LOG}node_params_max_bytes = 1\n");
    let mut plugin = Plugin::spawn("mb", &guest_wasm("misbehave"), &policy);
    plugin.handshake(json!({}), &node);
    spend_log_budget(&mut plugin);
    let answer = plugin.request(json!(1), "decoys", json!([300, "withdraw"]));
    let why = "its params are 2 bytes, past [limits] node_params_max_bytes (1)";
    assert_eq!(
        answer["result"],
        json!({"code": -32011, "message": format!("node method \"withdraw\" refused: {why}")}),
        "{answer}"
    );
    assert!(dropped(&mut plugin) >= 300);
    plugin.wait_log(&format!("warn: refused node method \"withdraw\": {why}"));
    let audit = plugin.request(json!(2), "mb-audit", json!({}));
    assert_eq!(
        audit["result"]["over_limits"],
        json!({"node_params_max_bytes": 300,
               "node_params_max_bytes node method \"withdraw\"": 1})
    );
    assert!(node.requests().is_empty(), "{:?}", node.requests());
}

#[test]
fn a_refused_money_moving_hook_answer_behind_decoys_is_audited_and_logged() {
    let node = Node::start();
    let policy = format!(
        "{SMALL_LOG}[[grants.hooks]]\nname = \"htlc_accepted\"\n\
         [[grants.hooks]]\nname = \"openchannel\"\n"
    );
    let mut plugin = Plugin::spawn("hostile", &guest_wasm("misbehave-hostile"), &policy);
    plugin.handshake(json!({}), &node);
    spend_log_budget(&mut plugin);
    plugin.request(json!(1), "decoys", json!([300, "getinfo"]));
    let hook = |plugin: &mut Plugin, id: u64, name: &str, answer: Value| {
        let id = json!(format!("cln:{name}#{id}"));
        plugin.request(id, name, json!({ "answer": answer }))["result"].clone()
    };
    // Decoy answers: fields no hook takes, each refused.
    for n in 0..20 {
        let decoy = json!({"result": "continue", format!("decoy{n}"): 1});
        assert_eq!(
            hook(&mut plugin, n, "htlc_accepted", decoy),
            json!({"result": "continue"})
        );
    }
    let continue_ = json!({"result": "continue"});
    let resolve = json!({"result": "resolve", "payment_key": "00".repeat(32)});
    assert_eq!(hook(&mut plugin, 100, "htlc_accepted", resolve), continue_);
    let redirect = json!({"result": "continue", "payment_key": "11".repeat(32)});
    assert_eq!(hook(&mut plugin, 101, "htlc_accepted", redirect), continue_);
    let close_to = json!({"result": "continue", "close_to": "bcrt1qattacker"});
    assert_eq!(hook(&mut plugin, 102, "openchannel", close_to), continue_);
    assert!(dropped(&mut plugin) >= 300);
    for line in [
        "warn: htlc_accepted hook: the guest's answer is refused by the policy: result \"resolve\" is not granted; answering {\"result\":\"continue\"}",
        "warn: htlc_accepted hook: the guest's answer is refused by the policy: field \"payment_key\" is not granted; answering {\"result\":\"continue\"}",
        "warn: openchannel hook: the guest's answer is refused by the policy: field \"close_to\" is not granted; answering {\"result\":\"continue\"}",
    ] {
        plugin.wait_log(line);
    }
    let audit = plugin.request(json!(2), "hostile-audit", json!({}));
    assert_eq!(
        audit["result"]["refused_hook_answers"],
        json!({
            "htlc_accepted": 20,
            "htlc_accepted field \"payment_key\"": 1,
            "htlc_accepted result \"resolve\"": 1,
            "openchannel field \"close_to\"": 1,
        })
    );
}
