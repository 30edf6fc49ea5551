//! What lightningd reads is what the host checked. lightningd's JSON reader
//! takes the first of duplicate keys, serde_json the last: every piece of
//! JSON a guest hands the host (hook answers, results, errors, notification
//! payloads, node-call params and filters) is read strictly (no key twice,
//! at most 64 deep) and forwarded as the host serializes the value it
//! checked. And one name means one thing: a method cannot be named like a
//! hook, a topic or a name of the host's.

#[path = "support/mod.rs"]
mod support;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};
use support::{Node, Plugin, guest_wasm};

/// Every hook lightningd v25.12 has.
const HOOKS: &[&str] = &[
    "peer_connected",
    "recover",
    "commitment_revocation",
    "db_write",
    "invoice_payment",
    "openchannel",
    "openchannel2",
    "openchannel2_changed",
    "openchannel2_sign",
    "rbf_channel",
    "htlc_accepted",
    "rpc_command",
    "custommsg",
    "onion_message_recv",
    "onion_message_recv_secret",
];

/// What each hook would do for an attacker if lightningd read the first key.
fn first_key_attack(hook: &str) -> &'static str {
    match hook {
        "peer_connected" => r#"{"result":"disconnect","result":"continue"}"#,
        "db_write" => r#"{"result":"abort","result":"continue"}"#,
        "invoice_payment" => r#"{"result":"reject","result":"continue"}"#,
        "htlc_accepted" => r#"{"result":"fail","failure_message":"2002","result":"continue"}"#,
        "openchannel" | "openchannel2" | "rbf_channel" => {
            r#"{"result":"reject","result":"continue"}"#
        }
        "rpc_command" => {
            r#"{"return":{"result":{"bech32":"bcrt1qattacker"}},"result":"continue","return":null}"#
        }
        _ => r#"{"result":"fail","result":"continue"}"#,
    }
}

/// lightningd's reading of JSON (`json_get_member`): the first of duplicate
/// keys wins.
fn first_wins(text: &str) -> Value {
    struct First;
    impl<'de> DeserializeSeed<'de> for First {
        type Value = Value;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for First {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(json!(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(json!(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(json!(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(json!(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(json!(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = vec![];
            while let Some(v) = seq.next_element_seed(First)? {
                items.push(v);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut object = Map::new();
            while let Some(k) = map.next_key::<String>()? {
                let v = map.next_value_seed(First)?;
                object.entry(k).or_insert(v);
            }
            Ok(Value::Object(object))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    First.deserialize(&mut de).expect("JSON")
}

fn hostile(policy: &str) -> Plugin {
    let node = Node::start();
    let mut plugin = Plugin::spawn("hostile", &guest_wasm("misbehave-hostile"), policy);
    let (_, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    plugin
}

/// The guest answers hook `hook` with the text `answer`; the text lightningd
/// gets.
fn hook_text(plugin: &mut Plugin, hook: &str, payload: Value, answer: &str) -> String {
    let mut params = payload;
    params["answer_text"] = json!(answer);
    let id = json!(format!("cln:{hook}#{}", answer.len()));
    plugin.send_request(id.clone(), hook, params);
    let response = plugin.response(&id);
    // Both readings of what was sent agree: it holds no key twice.
    let text = serde_json::to_string(&response["result"]).unwrap();
    assert_eq!(first_wins(&text), response["result"], "{text}");
    text
}

#[test]
fn duplicate_keys_in_hook_answers_reach_lightningd_as_continue() {
    let grants: String = HOOKS
        .iter()
        .map(|h| format!("[[grants.hooks]]\nname = \"{h}\"\n"))
        .collect();
    let mut plugin = hostile(&grants);
    for hook in HOOKS {
        let payload = match *hook {
            "rpc_command" => json!({"rpc_command": {"id": 1, "method": "newaddr", "params": {}}}),
            "openchannel2_changed" | "openchannel2_sign" => {
                json!({ *hook: {"channel_id": "00", "psbt": "cHNidP8B"} })
            }
            _ => json!({}),
        };
        let safe = match *hook {
            "openchannel2_changed" | "openchannel2_sign" => {
                r#"{"result":"continue","psbt":"cHNidP8B"}"#
            }
            _ => r#"{"result":"continue"}"#,
        };
        let attack = first_key_attack(hook);
        // The attack is real: the two readings differ.
        let last_wins: Value = serde_json::from_str(attack).unwrap();
        assert_ne!(first_wins(attack), last_wins, "{hook}");
        assert_eq!(hook_text(&mut plugin, hook, payload.clone(), attack), safe);
        plugin.wait_log(&format!(
            "warn: {hook} hook: the guest's answer is not usable JSON: key \"{}\" is given twice",
            if *hook == "rpc_command" {
                "return"
            } else {
                "result"
            }
        ));
        // A key given twice deeper down, or spelt with an escape, likewise.
        let nested = r#"{"result":"continue","x":{"y":1,"y":2}}"#;
        assert_eq!(hook_text(&mut plugin, hook, payload.clone(), nested), safe);
        let escaped = r#"{"result":"continue","\u0072esult":"fail"}"#;
        assert_eq!(hook_text(&mut plugin, hook, payload, escaped), safe);
    }
    // Each is counted for the operator.
    let audit = plugin.request(json!("audit"), "hostile-audit", json!({}));
    let counted = &audit["result"]["refused_hook_answers"];
    for hook in HOOKS {
        assert_eq!(counted[hook], json!(3), "{hook}: {audit}");
    }
}

#[test]
fn a_granted_hook_answer_reaches_lightningd_as_the_host_wrote_it() {
    let mut plugin = hostile(
        "[[grants.hooks]]\nname = \"openchannel\"\nresults = [\"reject\"]\nfields = [\"mindepth\"]\n",
    );
    // Spaces, escapes and key order: the value is what counts, written by us.
    let answer = "{ \"result\" : \"reject\",\n \"error_message\": \"no \\u0074hanks\" }";
    assert_eq!(
        hook_text(&mut plugin, "openchannel", json!({}), answer),
        r#"{"result":"reject","error_message":"no thanks"}"#
    );
    let deep = format!(
        r#"{{"result":"continue","mindepth":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(
        hook_text(&mut plugin, "openchannel", json!({}), &deep),
        r#"{"result":"continue"}"#
    );
    plugin.wait_log(
        "warn: openchannel hook: the guest's answer is not usable JSON: nested deeper than 64",
    );
}

fn misbehave(policy: &str) -> (Plugin, Node) {
    let node = Node::start();
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), policy);
    let (_, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    (plugin, node)
}

#[test]
fn results_and_errors_are_forwarded_as_the_host_serializes_them() {
    let (mut plugin, _node) = misbehave("");
    let answer = plugin.request(json!(1), "raw", json!({"text": r#"{"a":1,"a":2}"#}));
    assert_eq!(
        answer["error"]["message"],
        json!("plugin answered invalid JSON: key \"a\" is given twice at line 1 column 10"),
        "{answer}"
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let answer = plugin.request(json!(2), "raw", json!({ "text": deep }));
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("plugin answered invalid JSON: nested deeper than 64"),
        "{message}"
    );
    let answer = plugin.request(json!(3), "raw", json!({"text": " { \"b\" : [ 1 ] } "}));
    assert_eq!(answer["result"], json!({"b": [1]}));
    // An error's data holding a key twice reaches lightningd as a string:
    // no reader can take a key of it.
    let data = r#"{"why":"a","why":"b"}"#;
    let answer = plugin.request(json!(4), "rawerror", json!({ "data": data }));
    assert_eq!(
        answer["error"],
        json!({"code": 1234, "message": "the guest says no", "data": data})
    );
    let answer = plugin.request(json!(5), "rawerror", json!({"data": "{ \"why\" : 1 }"}));
    assert_eq!(answer["error"]["data"], json!({"why": 1}));
}

#[test]
fn node_params_filters_and_payloads_with_a_key_twice_never_leave_the_host() {
    let policy = "[grants]\nnotifications = [\"misbehave_event\"]\n\
                  [[grants.rpc]]\nmethod = \"pay\"\nparams = [\"pnameamount_msat<1000\"]\n\
                  [[grants.rpc]]\nmethod = \"getinfo\"\n";
    let (mut plugin, node) = misbehave(policy);
    // Checked as 1 msat by one reader, paid as a million by the other.
    let params = r#"{"bolt11":"lnbcrt1","amount_msat":1000000,"amount_msat":1}"#;
    let answer = plugin.request(
        json!(1),
        "rpc",
        json!({"method": "pay", "params_text": params}),
    );
    assert_eq!(
        answer["error"],
        json!({"code": -32602, "message": "params are not usable JSON: key \"amount_msat\" is given twice at line 1 column 55"}),
        "{answer}"
    );
    let answer = plugin.request(
        json!(2),
        "rpc",
        json!({"method": "getinfo", "params": {}, "filter_text": r#"{"id":true,"id":false}"#}),
    );
    assert_eq!(answer["error"]["code"], json!(-32602), "{answer}");
    assert_eq!(
        node.requests(),
        Vec::<Value>::new(),
        "nothing reached the node"
    );
    // The params the node gets are those checked, written by the host.
    let answer = plugin.request(
        json!(3),
        "rpc",
        json!({"method": "getinfo", "params_text": " { } ", "filter_text": "{ \"id\" : true }"}),
    );
    assert!(answer["result"]["id"].is_string(), "{answer}");
    let sent = node.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (&sent[0]["params"], &sent[0]["filter"]),
        (&json!({}), &json!({"id": true}))
    );

    let answer = plugin.request(
        json!(4),
        "emit",
        json!({"topic": "misbehave_event", "payload_text": r#"{"n":1,"n":2}"#}),
    );
    assert_eq!(answer["error"]["code"], json!(-32602), "{answer}");
    let answer = plugin.request(
        json!(5),
        "emit",
        json!({"topic": "misbehave_event", "payload_text": "{ \"n\" : 3 }"}),
    );
    assert_eq!(answer["result"], json!({"emitted": "misbehave_event"}));
    assert_eq!(
        plugin.notification("misbehave_event"),
        json!({"jsonrpc": "2.0", "method": "misbehave_event", "params": {"n": 3}})
    );
}

#[test]
fn a_method_named_like_a_hook_does_not_start() {
    let mut plugin = Plugin::spawn(
        "impostor",
        &guest_wasm("misbehave-impostor"),
        "[[grants.hooks]]\nname = \"htlc_accepted\"\n",
    );
    let answer = plugin.request(json!(1), "getmanifest", json!({}));
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("method name \"htlc_accepted\" is one of lightningd's hooks"),
        "{answer}"
    );
}
