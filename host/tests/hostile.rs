//! A guest that tries to take over the node through what it declares and
//! what it answers (`misbehave-hostile`: every hook, `*`, custom messages,
//! a required feature bit, and any hook answer the test asks for). Nothing
//! of it reaches lightningd unless the policy grants it.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use support::{Node, Plugin, guest_wasm};

const SAFE: &str = "answering {\"result\":\"continue\"}";

fn start(policy: &str) -> (Plugin, Node, Value) {
    let node = Node::start();
    let mut plugin = Plugin::spawn("hostile", &guest_wasm("misbehave-hostile"), policy);
    let (manifest, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    (plugin, node, manifest["result"].clone())
}

/// The guest answers hook `hook` with `answer`; what lightningd gets.
fn hook(plugin: &mut Plugin, hook: &str, payload: Value, answer: Value) -> Value {
    let mut params = payload;
    params["answer"] = answer;
    let id = json!(format!("cln:{hook}#1"));
    plugin.request(id, hook, params)["result"].clone()
}

#[test]
fn with_no_grant_lightningd_sees_no_hook_topic_message_type_or_feature() {
    let (mut plugin, _node, m) = start("");
    assert_eq!(m["hooks"], json!([]));
    assert_eq!(m["subscriptions"], json!(["shutdown"]));
    assert_eq!(m["notifications"], json!([]));
    assert_eq!(m["custommessages"], json!([]));
    assert_eq!(m["featurebits"], json!({}));
    for line in [
        "warn: not granted, so left out of the manifest: hook \"rpc_command\" ([[grants.hooks]])",
        "warn: not granted, so left out of the manifest: hook \"db_write\" ([[grants.hooks]])",
        "warn: not granted, so left out of the manifest: subscription \"*\" ([grants] subscriptions)",
        "warn: not granted, so left out of the manifest: notification topic \"hostile_event\" ([grants] notifications)",
        "warn: not granted, so left out of the manifest: custom message type 65535 ([grants] custommessages)",
        "warn: not granted, so left out of the manifest: init feature bits \"0100\", required (even) ([grants] featurebits = \"optional\" or \"required\")",
    ] {
        plugin.wait_log(line);
    }
    // A hook it was not granted is not one of its methods either.
    let answer = plugin.request(json!(1), "rpc_command", json!({"answer": {}}));
    assert_eq!(answer["error"]["code"], json!(-32601), "{answer}");
}

#[test]
fn granted_declarations_reach_lightningd_and_even_bits_need_required() {
    let policy = "[grants]\nsubscriptions = [\"connect\"]\nnotifications = [\"hostile_event\"]\n\
                  custommessages = [32769]\nfeaturebits = \"optional\"\n\
                  [[grants.hooks]]\nname = \"peer_connected\"\n";
    let (_plugin, _node, m) = start(policy);
    assert_eq!(m["hooks"], json!([{"name": "peer_connected"}]));
    // `*` only when `*` itself is granted.
    assert_eq!(m["subscriptions"], json!(["shutdown"]));
    assert_eq!(m["notifications"], json!([{"method": "hostile_event"}]));
    assert_eq!(m["custommessages"], json!([32769]));
    // The odd (optional) bit passes; the even (required) one does not.
    assert_eq!(m["featurebits"], json!({"node": "0200000000"}));
    let (_plugin, _node, m) =
        start("[grants]\nsubscriptions = [\"*\"]\nfeaturebits = \"required\"\n");
    assert_eq!(m["subscriptions"], json!(["*", "shutdown"]));
    assert_eq!(
        m["featurebits"],
        json!({"init": "0100", "node": "0200000000"})
    );
}

#[test]
fn with_bare_hook_grants_only_continue_reaches_lightningd() {
    let hooks: String = [
        "rpc_command",
        "openchannel",
        "openchannel2",
        "db_write",
        "htlc_accepted",
        "peer_connected",
        "invoice_payment",
    ]
    .iter()
    .map(|h| format!("[[grants.hooks]]\nname = \"{h}\"\n"))
    .collect();
    let (mut plugin, _node, _) = start(&hooks);
    let command = |method: &str| json!({"rpc_command": {"id": 1, "method": method, "params": {}}});
    let attacker = "bcrt1qattackerattackerattackerattackerattacker";
    let attacks = [
        (
            "rpc_command",
            command("newaddr"),
            json!({"return": {"result": {"bech32": attacker}}}),
            "the guest's answer is refused by the policy: result \"return\" is not granted",
        ),
        (
            "rpc_command",
            command("getinfo"),
            json!({"replace": {"jsonrpc": "2.0", "id": 1, "method": "withdraw", "params": {"destination": attacker, "satoshi": "all"}}}),
            "the guest's answer is refused by the policy: result \"replace\" is not granted",
        ),
        (
            "openchannel",
            json!({}),
            json!({"result": "continue", "close_to": attacker, "mindepth": 0, "reserve": "0sat"}),
            "the guest's answer is refused by the policy: field \"close_to\" is not granted",
        ),
        (
            "openchannel2",
            json!({}),
            json!({"result": "continue", "psbt": "cHNidP8B", "our_funding_msat": 1}),
            "the guest's answer is refused by the policy: field \"psbt\" is not granted",
        ),
        (
            "db_write",
            json!({}),
            json!({"result": "abort"}),
            "the guest's answer is refused by the policy: result \"abort\" is not granted",
        ),
        (
            "htlc_accepted",
            json!({}),
            json!({"result": "resolve", "payment_key": "00".repeat(32)}),
            "the guest's answer is refused by the policy: result \"resolve\" is not granted",
        ),
        (
            "htlc_accepted",
            json!({}),
            json!({"result": "continue", "forward_to": "00".repeat(32)}),
            "the guest's answer is refused by the policy: field \"forward_to\" is not granted",
        ),
        (
            "peer_connected",
            json!({}),
            json!({"result": "disconnect"}),
            "the guest's answer is refused by the policy: result \"disconnect\" is not granted",
        ),
        (
            "invoice_payment",
            json!({}),
            json!({"failure_message": "2002"}),
            "the guest's answer is refused by the policy: result \"reject\" is not granted",
        ),
        (
            "peer_connected",
            json!({}),
            json!({"result": "bogus"}),
            "the guest's answer is refused by the policy: result \"bogus\" is not one \"peer_connected\" knows",
        ),
        (
            "peer_connected",
            json!({}),
            json!(["not", "an", "object"]),
            "the guest's answer is not a JSON object",
        ),
    ];
    for (name, payload, answer, why) in attacks {
        let got = hook(&mut plugin, name, payload, answer.clone());
        assert_eq!(got, json!({"result": "continue"}), "{name} {answer}");
        plugin.wait_log(&format!("warn: {name} hook: {why}; {SAFE}"));
    }
    // What the grant allows still passes as the guest wrote it.
    let got = hook(
        &mut plugin,
        "peer_connected",
        json!({}),
        json!({"result": "continue"}),
    );
    assert_eq!(got, json!({"result": "continue"}));
    // Every refusal is counted for the operator, under what it tried.
    let audit = plugin.request(json!("audit"), "hostile-audit", json!({}));
    assert_eq!(
        audit["result"]["refused_hook_answers"],
        json!({"db_write result \"abort\"": 1, "htlc_accepted field \"forward_to\"": 1,
               "htlc_accepted result \"resolve\"": 1, "invoice_payment result \"reject\"": 1,
               "openchannel field \"close_to\"": 1, "openchannel2 field \"psbt\"": 1,
               "peer_connected": 1, "peer_connected result \"disconnect\"": 1,
               "rpc_command result \"replace\"": 1, "rpc_command result \"return\"": 1})
    );
}

#[test]
fn funding_rounds_get_their_psbt_back_rather_than_a_fatal_continue() {
    // lightningd stops if a `continue` to these hooks has no psbt: the safe
    // answer hands back the PSBT it was given.
    let (mut plugin, _node, _) = start("[[grants.hooks]]\nname = \"openchannel2_sign\"\n");
    let payload = json!({"openchannel2_sign": {"channel_id": "00", "psbt": "cHNidP8B"}});
    let handed_back = json!({"result": "continue", "psbt": "cHNidP8B"});
    for answer in [
        json!({"result": "continue"}),
        json!({"result": "continue", "psbt": "cHNidP8Battacker"}),
        json!("garbage"),
    ] {
        let got = hook(&mut plugin, "openchannel2_sign", payload.clone(), answer);
        assert_eq!(got, handed_back);
    }
    let got = hook(
        &mut plugin,
        "openchannel2_sign",
        payload,
        handed_back.clone(),
    );
    assert_eq!(got, handed_back);
}

#[test]
fn wider_grants_let_exactly_what_they_name_through() {
    // The same grants as tables inline: TOML allows either.
    let policy = r#"[grants]
hooks = [
  { name = "rpc_command", results = ["return"], methods = ["help"] },
  { name = "openchannel", results = ["reject"], fields = ["mindepth"] },
]
"#;
    let (mut plugin, _node, _) = start(policy);
    let help = json!({"rpc_command": {"id": 1, "method": "help", "params": {}}});
    let ret = json!({"return": {"result": {"help": []}}});
    assert_eq!(hook(&mut plugin, "rpc_command", help, ret.clone()), ret);
    let newaddr = json!({"rpc_command": {"id": 2, "method": "newaddr", "params": {}}});
    let got = hook(&mut plugin, "rpc_command", newaddr, ret);
    assert_eq!(got, json!({"result": "continue"}));
    let reject = json!({"result": "reject", "error_message": "no thanks"});
    assert_eq!(
        hook(&mut plugin, "openchannel", json!({}), reject.clone()),
        reject
    );
    let mindepth = json!({"result": "continue", "mindepth": 6});
    assert_eq!(
        hook(&mut plugin, "openchannel", json!({}), mindepth.clone()),
        mindepth
    );
    let close_to = json!({"result": "continue", "mindepth": 6, "close_to": "bcrt1q"});
    let got = hook(&mut plugin, "openchannel", json!({}), close_to);
    assert_eq!(got, json!({"result": "continue"}));
}

#[test]
fn grants_that_name_what_no_hook_takes_stop_the_plugin_at_start() {
    for (policy, why) in [
        (
            "[[grants.hooks]]\nname = \"peer_conected\"\n",
            "[[grants.hooks]] \"peer_conected\" is not a hook lightningd has",
        ),
        (
            "[[grants.hooks]]\nname = \"openchannel\"\nfields = [\"payment_key\"]\n",
            "[[grants.hooks]] \"openchannel\": field \"payment_key\" cannot be granted",
        ),
        (
            "[[grants.hooks]]\nname = \"db_write\"\nmethods = [\"help\"]\n",
            "[[grants.hooks]] \"db_write\": methods (rpc_command only) cannot be granted",
        ),
        ("[grants]\nfeaturebits = \"all\"\n", "unknown variant `all`"),
    ] {
        let mut plugin = Plugin::spawn("hostile", &guest_wasm("misbehave-hostile"), policy);
        let answer = plugin.request(json!(1), "getmanifest", json!({}));
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{message}");
    }
}

#[test]
fn inspect_and_install_show_every_ask_and_flag_the_dangerous_ones() {
    let wasm = guest_wasm("misbehave-hostile");
    let review = support::host_tool_text(&[&"inspect", &wasm]);
    for expected in [
        "  not granted  hook \"rpc_command\": to take the node over\n               \
         DANGEROUS: can rewrite or answer any command sent to the node\n",
        "  not granted  hook \"db_write\": to take the node over\n               \
         DANGEROUS: sees every database write, and can stop the node\n",
        "  not granted  subscription \"*\": to see every payment's preimage\n               \
         DANGEROUS: receives every notification, payment preimages included\n",
        "  not granted  feature bits init 0100: to test feature bits\n               \
         DANGEROUS: sets a required (even) feature: peers without it are refused\n",
        "  not granted  custom message type 65535: to talk to peers\n",
        "  not granted  custom notification \"hostile_event\": to speak for the node\n",
        "  not granted  hook \"peer_connected\": to take the node over\n  ",
    ] {
        assert!(review.contains(expected), "{expected}\nnot in:\n{review}");
    }
    let json: Value =
        serde_json::from_str(&support::host_tool_text(&[&"inspect", &wasm, &"--json"])).unwrap();
    let rpc_command = json["asks"]["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "rpc_command")
        .unwrap()
        .clone();
    assert_eq!(
        rpc_command,
        json!({"name": "rpc_command", "reason": "to take the node over", "granted": false,
               "dangerous": "can rewrite or answer any command sent to the node"})
    );
    assert_eq!(json["manifest"]["hooks"], json!([]));

    // install writes each as a commented-out grant, with the reason.
    let dir = tempfile::tempdir().unwrap();
    support::host_tool_text(&[
        &"install",
        &wasm,
        &"--name",
        &"hostile",
        &"--dir",
        &dir.path(),
    ]);
    let written = std::fs::read_to_string(dir.path().join("hostile")).unwrap();
    for expected in [
        "# The guest asks for subscription \"*\": to see every payment's preimage\n\
         # DANGEROUS: receives every notification, payment preimages included\n\
         # subscriptions = [\"*\"]\n",
        "# custommessages = [1, 32769, 65535]\n",
        "# featurebits = \"required\"\n",
        "# The guest asks for hook \"rpc_command\": to take the node over\n\
         # DANGEROUS: can rewrite or answer any command sent to the node\n\
         # [[grants.hooks]]\n# name = \"rpc_command\"\n",
        "# [[grants.hooks]]\n# name = \"peer_connected\"\n\
         # (only `continue` passes; it may also be given results [\"disconnect\"], fields [])\n",
    ] {
        assert!(written.contains(expected), "{expected}\nnot in:\n{written}");
    }
}
