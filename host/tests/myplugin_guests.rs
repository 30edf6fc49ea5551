//! The seed's myplugin, in every guest language, driven as lightningd drives
//! a plugin: the same suite runs against the Rust, Python, JavaScript and C
//! guests (each installed as its own plugin: `myplugin`, `myplugin-py`,
//! `myplugin-js`, `myplugin-c`), and every one must answer exactly the same.
//! The seed's myplugin written on pyln-client (`benches/pyln/myplugin.py`,
//! unedited, `myplugin-pyln`) runs the same suite and answers as pyln-client
//! does natively where that differs (see `pyln`).

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{NODE_ID, Node, Plugin, guest_wasm};

/// Room for the Python and JavaScript runtimes; myplugin needs `getinfo`.
const POLICY: &str = "[limits]\nmemory_mib = 128\n\n[[grants.rpc]]\nmethod = \"getinfo\"\n";

fn start(guest: &str, options: Value) -> (Plugin, Node) {
    let node = Node::start();
    let mut plugin = Plugin::spawn(guest, &guest_wasm(guest), POLICY);
    let (_, init) = plugin.handshake(options, &node);
    assert_eq!(init["result"], json!({}), "{init}");
    (plugin, node)
}

/// Whether the guest is the pyln-client plugin. pyln-client's own answers
/// differ from the seed's in three ways, kept as they are natively:
/// `myplugin(plugin, **cli_params)` binds no params as `{}`, refuses
/// positional ones, and a node error becomes pyln's -32600 "Error while
/// processing" with the node's error in its message.
fn pyln(guest: &str) -> bool {
    guest == "myplugin-pyln"
}

/// What the guest answers as `cli_params` for a call with none.
fn no_params(guest: &str) -> Value {
    if pyln(guest) { json!({}) } else { json!([]) }
}

/// Asserts the caller got the node's (or the host's) error: as is, or the
/// way pyln-client wraps any exception of a method.
fn assert_node_error(guest: &str, answer: &Value, code: i64, message_start: &str) {
    if pyln(guest) {
        let wrapped = format!(
            "Error while processing myplugin: RPC call failed: method: getinfo, payload: {{}}, error: {{'code': {code}, 'message': '{message_start}"
        );
        assert_eq!(answer["error"]["code"], json!(-32600), "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&wrapped), "{answer}");
    } else {
        assert_eq!(answer["error"]["code"], json!(code), "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(message_start), "{answer}");
    }
}

fn seed_answer(foo_opt: &str, cli_params: Value) -> Value {
    json!({ "node_id": NODE_ID, "option": { "foo_opt": foo_opt }, "cli_params": cli_params })
}

fn manifest_declares_the_seeds_option_and_method(guest: &str) {
    let node = Node::start();
    let mut plugin = Plugin::spawn(guest, &guest_wasm(guest), POLICY);
    let (manifest, _) = plugin.handshake(json!({"foo_opt": "bar"}), &node);
    assert_eq!(manifest["id"], json!(86));
    assert_eq!(manifest["jsonrpc"], json!("2.0"));
    let m = &manifest["result"];
    assert_eq!(m["dynamic"], json!(true));
    assert_eq!(m["nonnumericids"], json!(true));
    assert_eq!(
        m["options"],
        json!([{ "name": "foo_opt", "type": "string", "description": "description", "default": "bar" }])
    );
    // pyln-client 25.12.1 appends the docstring to the usage (Method.get_usage).
    let usage = if pyln(guest) { " \n description" } else { "" };
    assert_eq!(
        m["rpcmethods"],
        json!([
            { "name": "myplugin", "usage": usage, "description": "description" },
            // The host's own methods (see host/tests/hot_swap.rs, hostile.rs).
            {
                "name": format!("{guest}-reload"),
                "usage": "",
                "description": "Load this plugin's .wasm again and serve new calls with it, if its manifest is unchanged"
            },
            {
                "name": format!("{guest}-audit"),
                "usage": "",
                "description": "What the policy refused this plugin's guest since it started: capabilities denied, hook answers replaced by continue"
            },
        ])
    );
    // The host subscribes to `shutdown` (lightningd tells no one else).
    assert_eq!(m["subscriptions"], json!(["shutdown"]));
    for empty in ["hooks", "notifications", "custommessages"] {
        assert_eq!(m[empty], json!([]), "{empty}");
    }
    assert_eq!(m["featurebits"], json!({}));
}

fn keyword_params_and_option_answer_like_the_seed(guest: &str) {
    let (mut plugin, node) = start(guest, json!({"foo_opt": "BAR"}));
    let id = json!("cli:myplugin#65781/cln:myplugin#208");
    let answer = plugin.request(
        id.clone(),
        "myplugin",
        json!({"foo1": "bar1", "foo2": "bar2"}),
    );
    assert_eq!(
        answer,
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": seed_answer("BAR", json!({"foo1": "bar1", "foo2": "bar2"})),
        })
    );
    // One filtered getinfo, its id chained to the incoming one.
    assert_eq!(
        node.requests(),
        vec![json!({
            "jsonrpc": "2.0",
            "id": format!("cli:myplugin#65781/cln:myplugin#208/{guest}:getinfo#1"),
            "method": "getinfo",
            "params": [],
            "filter": {"id": true},
        })]
    );
}

fn positional_params_stay_a_list_and_no_params_give_an_empty_one(guest: &str) {
    let (mut plugin, _node) = start(guest, json!({"foo_opt": "bar"}));
    let answer = plugin.request(json!(1), "myplugin", json!(["bar1", "bar2"]));
    if pyln(guest) {
        // pyln-client binds a list to the function's parameters: **kwargs takes none.
        assert_eq!(
            answer["error"],
            json!({"code": -32600, "message": "Error while processing myplugin: too many positional arguments"})
        );
    } else {
        assert_eq!(
            answer["result"],
            seed_answer("bar", json!(["bar1", "bar2"]))
        );
    }
    let answer = plugin.request(json!(2), "myplugin", json!([]));
    assert_eq!(answer["result"], seed_answer("bar", no_params(guest)));
    // params left out entirely (a hand-written request)
    plugin.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "myplugin"}));
    assert_eq!(
        plugin.response(&json!(3))["result"],
        seed_answer("bar", no_params(guest))
    );
    // Values that need escaping come back intact.
    let odd = json!({"q": "a \"quoted\" \\ back\\slash\n\u{e9}", "n": [1, 2.5, null, true]});
    let answer = plugin.request(json!(4), "myplugin", odd.clone());
    assert_eq!(answer["result"], seed_answer("bar", odd));
}

fn default_applies_when_init_leaves_the_option_out(guest: &str) {
    let (mut plugin, _node) = start(guest, json!({}));
    let answer = plugin.request(json!("x"), "myplugin", json!([]));
    assert_eq!(answer["result"], seed_answer("bar", no_params(guest)));
    // An option value that needs escaping in JSON.
    let (mut plugin, _node) = start(guest, json!({"foo_opt": "a\"b\\c"}));
    let answer = plugin.request(json!("y"), "myplugin", json!([]));
    assert_eq!(answer["result"], seed_answer("a\"b\\c", no_params(guest)));
}

fn numeric_and_string_ids_are_echoed_and_chained(guest: &str) {
    let (mut plugin, node) = start(guest, json!({"foo_opt": "bar"}));
    for id in [
        json!(7),
        json!("abc"),
        json!("cli:myplugin#1/cln:myplugin#2"),
    ] {
        let answer = plugin.request(id.clone(), "myplugin", json!([]));
        assert_eq!(answer["id"], id);
        assert_eq!(answer["result"]["node_id"], json!(NODE_ID));
    }
    let ids: Vec<Value> = node.requests().iter().map(|r| r["id"].clone()).collect();
    assert_eq!(
        ids,
        vec![
            json!(format!("7/{guest}:getinfo#1")),
            json!(format!("abc/{guest}:getinfo#2")),
            json!(format!("cli:myplugin#1/cln:myplugin#2/{guest}:getinfo#3")),
        ]
    );
}

fn unknown_option_disables_the_plugin_with_a_reason(guest: &str) {
    let node = Node::start();
    let mut plugin = Plugin::spawn(guest, &guest_wasm(guest), POLICY);
    let (_, init) = plugin.handshake(json!({"foo_opt": "BAR", "nope": "1"}), &node);
    assert_eq!(
        init["result"],
        json!({"disable": "unknown option \"nope\": the plugin does not declare it"})
    );
}

fn end_of_stdin_exits_cleanly(guest: &str) {
    let (mut plugin, _node) = start(guest, json!({"foo_opt": "bar"}));
    plugin.close_stdin();
    assert!(plugin.wait_exit(Duration::from_secs(10)).success());
}

fn shutdown_exits_cleanly(guest: &str) {
    let (mut plugin, _node) = start(guest, json!({"foo_opt": "bar"}));
    plugin.send(&json!({"jsonrpc": "2.0", "method": "shutdown", "params": {}}));
    assert!(plugin.wait_exit(Duration::from_secs(10)).success());
}

fn concurrent_calls_are_all_answered(guest: &str) {
    let (mut plugin, _node) = start(guest, json!({"foo_opt": "bar"}));
    // Positional where the guest takes them (pyln's myplugin does not).
    let params = |id: i64| {
        if pyln(guest) {
            json!({ "n": id })
        } else {
            json!([id])
        }
    };
    for id in 0..32 {
        plugin.send_request(json!(id), "myplugin", params(id));
    }
    for id in 0..32 {
        assert_eq!(
            plugin.response(&json!(id))["result"],
            seed_answer("bar", params(id))
        );
    }
}

/// Load as lightningd drives it, with the default limits: 10,000 calls, 64
/// in flight, each making one node call. Every id is answered exactly once,
/// with its own params, and nothing is refused.
fn ten_thousand_calls_with_64_in_flight_are_each_answered_once(guest: &str) {
    let (mut plugin, node) = start(guest, json!({"foo_opt": "bar"}));
    let (calls, in_flight) = (10_000u64, 64);
    let id = |n: u64| json!(format!("cli:myplugin#{n}"));
    for n in 0..in_flight {
        plugin.send_request(id(n), "myplugin", json!({ "n": n }));
    }
    for n in 0..calls {
        let answer = plugin.response(&id(n));
        assert_eq!(
            answer["result"],
            seed_answer("bar", json!({ "n": n })),
            "{answer}"
        );
        if n + in_flight < calls {
            let next = n + in_flight;
            plugin.send_request(id(next), "myplugin", json!({ "n": next }));
        }
    }
    assert_eq!(
        plugin.unclaimed(Duration::from_millis(200)),
        Vec::<Value>::new()
    );
    assert_eq!(node.requests().len() as u64, calls);
}

fn bad_input_gets_json_rpc_errors_and_serving_goes_on(guest: &str) {
    let (mut plugin, _node) = start(guest, json!({"foo_opt": "bar"}));
    plugin.send_raw("{this is not json\n\n");
    let answer = plugin.response(&Value::Null);
    assert_eq!(answer["error"]["code"], json!(-32700), "{answer}");
    plugin.send(&json!({"jsonrpc": "2.0", "id": 5, "params": []}));
    assert_eq!(plugin.response(&json!(5))["error"]["code"], json!(-32600));
    let answer = plugin.request(json!(6), "nope", json!([]));
    assert_eq!(
        answer["error"],
        json!({"code": -32601, "message": "Unknown command 'nope'"})
    );
    let answer = plugin.request(json!(7), "myplugin", json!([]));
    assert_eq!(answer["result"], seed_answer("bar", no_params(guest)));
}

fn node_errors_reach_the_caller(guest: &str) {
    let (mut plugin, node) = start(guest, json!({"foo_opt": "bar"}));
    node.set_getinfo(json!({"__error": {"code": 1000, "message": "node says no"}}));
    let answer = plugin.request(json!(1), "myplugin", json!([]));
    if pyln(guest) {
        assert_eq!(
            answer["error"],
            json!({"code": -32600, "message": "Error while processing myplugin: RPC call failed: method: getinfo, payload: {}, error: {'code': 1000, 'message': 'node says no'}"}),
        );
    } else {
        assert_eq!(answer["error"]["code"], json!(1000), "{answer}");
        assert_eq!(
            answer["error"]["message"],
            json!("node says no"),
            "{answer}"
        );
    }
}

fn a_vanished_node_socket_is_an_error_and_its_return_is_noticed(guest: &str) {
    let (mut plugin, node) = start(guest, json!({"foo_opt": "bar"}));
    assert_eq!(
        plugin.request(json!(1), "myplugin", json!([]))["result"]["node_id"],
        json!(NODE_ID)
    );
    node.vanish();
    let answer = plugin.request(json!(2), "myplugin", json!([]));
    assert_node_error(guest, &answer, -32603, "node unreachable: connecting to ");
    node.come_back();
    assert_eq!(
        plugin.request(json!(3), "myplugin", json!([]))["result"]["node_id"],
        json!(NODE_ID)
    );
}

fn ungranted_capability_is_refused_and_never_reaches_the_node(guest: &str) {
    let node = Node::start();
    let mut plugin = Plugin::spawn(guest, &guest_wasm(guest), "[limits]\nmemory_mib = 128\n");
    plugin.handshake(json!({}), &node);
    let answer = plugin.request(json!(1), "myplugin", json!([]));
    let denial =
        "node method \"getinfo\" denied: no grant for \"getinfo\" in the policy ([[grants.rpc]])";
    if pyln(guest) {
        assert_node_error(guest, &answer, -32010, &format!("{denial}'}}"));
    } else {
        assert_eq!(answer["error"]["code"], json!(-32010), "{answer}");
        assert_eq!(answer["error"]["message"], json!(denial), "{answer}");
    }
    assert!(node.requests().is_empty());
    plugin.wait_log(
        "warn: denied node method \"getinfo\": no grant for \"getinfo\" in the policy ([[grants.rpc]])",
    );
}

fn dev_runner_prints_the_seeds_answer(guest: &str) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let wasm = guest_wasm(guest);
    let answer = support::host_tool(&[
        &"call",
        &wasm,
        &"myplugin",
        &"-k",
        &"foo1=bar1",
        &"foo2=bar2",
        &"--option",
        &"foo_opt=BAR",
        &"--policy",
        &policy,
    ]);
    assert_eq!(
        answer,
        json!({
            "node_id": "029999ce6a1b74cf077f503b81bb4d95af34114363bdac5922a9b353ce0449bac4",
            "option": {"foo_opt": "BAR"},
            "cli_params": {"foo1": "bar1", "foo2": "bar2"},
        })
    );
}

fn a_second_start_loads_compiled_code_from_the_cache(guest: &str) {
    let cache = tempfile::tempdir().unwrap();
    let node = Node::start();
    let start = |expected: &str| {
        let mut plugin = Plugin::spawn_cached(guest, &guest_wasm(guest), POLICY, cache.path());
        plugin.handshake(json!({}), &node);
        assert_eq!(
            plugin.request(json!(1), "myplugin", json!([]))["result"],
            seed_answer("bar", no_params(guest))
        );
        plugin.wait_log(expected);
    };
    start("debug: compiled and cached");
    start("debug: loaded from the compiled-code cache");
    // A damaged entry is refused and replaced, never fatal.
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "cwasm") {
            std::fs::write(path, b"garbage").unwrap();
        }
    }
    start("warn: refusing compiled-code cache entry");
    start("debug: loaded from the compiled-code cache");
}

/// One module per guest language, each with every test above.
macro_rules! suite {
    ($($lang:ident => $guest:literal),* $(,)?) => {$(
        mod $lang {
            suite!(@tests $guest;
                manifest_declares_the_seeds_option_and_method,
                keyword_params_and_option_answer_like_the_seed,
                positional_params_stay_a_list_and_no_params_give_an_empty_one,
                default_applies_when_init_leaves_the_option_out,
                numeric_and_string_ids_are_echoed_and_chained,
                unknown_option_disables_the_plugin_with_a_reason,
                end_of_stdin_exits_cleanly,
                shutdown_exits_cleanly,
                concurrent_calls_are_all_answered,
                ten_thousand_calls_with_64_in_flight_are_each_answered_once,
                bad_input_gets_json_rpc_errors_and_serving_goes_on,
                node_errors_reach_the_caller,
                a_vanished_node_socket_is_an_error_and_its_return_is_noticed,
                ungranted_capability_is_refused_and_never_reaches_the_node,
                dev_runner_prints_the_seeds_answer,
                a_second_start_loads_compiled_code_from_the_cache,
            );
        }
    )*};
    (@tests $guest:literal; $($test:ident),* $(,)?) => {$(
        #[test]
        fn $test() {
            super::$test($guest)
        }
    )*};
}

suite!(
    rust => "myplugin",
    python => "myplugin-py",
    js => "myplugin-js",
    c => "myplugin-c",
    pyln => "myplugin-pyln",
);
