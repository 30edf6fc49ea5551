//! The capability checks in-process, as Spin tests its factors: a session
//! built from a policy and a manifest's requests, the WIT host functions
//! called directly with no guest and no host process, against a node
//! stand-in that records what reaches it.

#[path = "support/mod.rs"]
mod support;

use cln_wasm_host::bindings::WitRpcError;
use cln_wasm_host::bindings::cln::plugin::{events, node, store};
use cln_wasm_host::caps::{CallContext, Declared, InstanceState, Session};
use cln_wasm_host::node::NodeClient;
use cln_wasm_host::policy::Policy;
use cln_wasm_host::protocol::{CAPABILITY_DENIED, INVALID_PARAMS, Outbox};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{NODE_ID, Node};

/// A guest's view of its capabilities: `policy` (TOML) granted, `declared`
/// asked for, answering the call `cln:call#1`, with `node` as its node and
/// its custom notifications written to `outbox`.
fn instance(policy: &str, declared: Declared, node: &Node, outbox: Arc<Outbox>) -> InstanceState {
    let policy: Policy = toml::from_str(policy).expect("a valid policy");
    let mut session = Session::before_init("inproc", policy, Some(outbox));
    session.node = Some(NodeClient::new(
        node.socket(),
        "inproc",
        Duration::from_secs(10),
    ));
    session.declared = declared;
    InstanceState {
        session: Arc::new(session),
        call: Some(CallContext {
            id: "cln:call#1".into(),
            method: "call".into(),
            params: RawValue::from_string("[]".into()).unwrap(),
        }),
    }
}

fn asks(rpc: &[&str], store: bool, notifications: &[&str]) -> Declared {
    Declared {
        rpc: rpc.iter().map(|m| m.to_string()).collect(),
        store,
        notifications: notifications.iter().map(|n| n.to_string()).collect(),
    }
}

/// What the host writes to lightningd, kept in a file to read back.
struct Sink(std::fs::File);

impl Default for Sink {
    fn default() -> Sink {
        Sink(tempfile::tempfile().unwrap())
    }
}

impl Sink {
    fn outbox(&self) -> Arc<Outbox> {
        Arc::new(Outbox::new(Box::new(self.0.try_clone().unwrap())))
    }

    fn text(&self) -> String {
        use std::io::{Read, Seek};
        let mut file = self.0.try_clone().unwrap();
        file.rewind().unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        text
    }
}

fn denied(result: Result<impl std::fmt::Debug, WitRpcError>, message: &str) {
    let error = result.expect_err("refused");
    assert_eq!(
        (error.code, error.message.as_str()),
        (CAPABILITY_DENIED, message)
    );
}

#[test]
fn node_methods_need_the_request_and_the_grant_and_refusals_never_reach_the_node() {
    let node = Node::start();
    let policy = "[[grants.rpc]]\nmethod = \"getinfo\"\nfilter = { id = true }\n\
                  [[grants.rpc]]\nmethod = \"pay\"\nparams = [\"pnameamount_msat<1000\"]\n\
                  [[grants.rpc]]\nmethod = \"close\"\n";
    let mut state = instance(
        policy,
        asks(&["getinfo", "pay", "withdraw"], false, &[]),
        &node,
        Sink::default().outbox(),
    );
    denied(
        node::Host::call(&mut state, "withdraw".into(), "{}".into(), None),
        "node method \"withdraw\" denied: no grant for \"withdraw\" in the policy ([[grants.rpc]])",
    );
    // Granted, but the manifest never asked for it.
    denied(
        node::Host::call(&mut state, "close".into(), "{}".into(), None),
        "node method \"close\" denied: the plugin's manifest does not ask for it",
    );
    denied(
        node::Host::call(
            &mut state,
            "pay".into(),
            r#"{"bolt11": "lnbcrt1", "amount_msat": 5000}"#.into(),
            None,
        ),
        "node method \"pay\" denied: condition \"pnameamount_msat<1000\" of [[grants.rpc]] #2 does not hold",
    );
    let error = node::Host::call(&mut state, "getinfo".into(), "{not json".into(), None)
        .expect_err("refused");
    assert_eq!(error.code, INVALID_PARAMS);
    assert!(node.requests().is_empty(), "{:?}", node.requests());

    // Granted and asked: the node is called, with the grant's filter, and
    // the answer holds no more than it, whatever the guest's filter says.
    let wider = r#"{"id": true, "alias": true}"#;
    let answer = node::Host::getinfo(&mut state, Some(wider.into())).unwrap();
    assert_eq!(answer, json!({"id": NODE_ID}).to_string());
    let requests = node.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["method"], json!("getinfo"));
    assert_eq!(requests[0]["filter"], json!({"id": true}));
    assert_eq!(requests[0]["id"], json!("cln:call#1/inproc:getinfo#1"));
}

#[test]
fn the_store_needs_the_request_and_the_grant_and_stays_in_its_namespace() {
    let node = Node::start();
    let outbox = Sink::default().outbox();
    let mut ungranted = instance("", asks(&[], true, &[]), &node, outbox.clone());
    denied(
        store::Host::set(&mut ungranted, "k".into(), "v".into()),
        "store key \"k\" denied: the policy does not grant the store ([grants] store = true)",
    );
    let mut unasked = instance(
        "[grants]\nstore = true\n",
        asks(&[], false, &[]),
        &node,
        outbox.clone(),
    );
    denied(
        store::Host::get(&mut unasked, "k".into()),
        "store key \"k\" denied: the plugin's manifest does not ask for the store",
    );
    assert!(node.requests().is_empty());

    let mut state = instance(
        "[grants]\nstore = true\n",
        asks(&[], true, &[]),
        &node,
        outbox,
    );
    for key in ["k", "../other", "cln-wasm-host/x"] {
        store::Host::set(&mut state, key.into(), format!("v of {key}")).unwrap();
        assert_eq!(
            store::Host::get(&mut state, key.into()).unwrap(),
            Some(format!("v of {key}"))
        );
    }
    let keys: Vec<Value> = node.datastore_keys();
    assert_eq!(
        keys,
        [
            json!(["cln-wasm-host", "inproc", "../other"]),
            json!(["cln-wasm-host", "inproc", "cln-wasm-host/x"]),
            json!(["cln-wasm-host", "inproc", "k"]),
        ]
    );
    store::Host::delete(&mut state, "k".into()).unwrap();
    // Deleting what is not there is not an error.
    store::Host::delete(&mut state, "k".into()).unwrap();
    assert_eq!(store::Host::get(&mut state, "k".into()).unwrap(), None);
    let too_big = "x".repeat(64 * 1024 + 1);
    let error = store::Host::set(&mut state, "big".into(), too_big).expect_err("refused");
    assert_eq!(error.code, INVALID_PARAMS);
    let error = store::Host::set(&mut state, "".into(), "v".into()).expect_err("refused");
    assert_eq!(error.code, INVALID_PARAMS);
}

#[test]
fn only_declared_notifications_are_emitted() {
    let node = Node::start();
    let sink = Sink::default();
    let declares = || asks(&[], false, &["inproc_event"]);
    // Declared, but not granted.
    let mut ungranted = instance("", declares(), &node, sink.outbox());
    denied(
        events::Host::emit(&mut ungranted, "inproc_event".into(), "{}".into()),
        "notification \"inproc_event\" denied: the policy does not grant it ([grants] notifications)",
    );
    let granted = "[grants]\nnotifications = [\"inproc_event\"]\n";
    let mut state = instance(granted, declares(), &node, sink.outbox());
    denied(
        events::Host::emit(&mut state, "other_event".into(), "{}".into()),
        "notification \"other_event\" denied: the plugin's manifest does not declare it",
    );
    let error =
        events::Host::emit(&mut state, "inproc_event".into(), "{oops".into()).expect_err("refused");
    assert_eq!(error.code, INVALID_PARAMS);
    assert_eq!(sink.text(), "");
    events::Host::emit(&mut state, "inproc_event".into(), r#"{"n": 1}"#.into()).unwrap();
    assert_eq!(
        sink.text(),
        "{\"jsonrpc\":\"2.0\",\"method\":\"inproc_event\",\"params\":{\"n\":1}}\n\n"
    );
}

#[test]
fn the_audit_counts_refusals_and_stays_bounded() {
    let node = Node::start();
    let mut state = instance("", asks(&[], false, &[]), &node, Sink::default().outbox());
    for n in 0..300 {
        let _ = node::Host::call(&mut state, format!("m{n}"), "{}".into(), None);
    }
    let _ = node::Host::call(&mut state, "m0".into(), "{}".into(), None);
    let audit = state.session.audit.to_json();
    let denied = audit["denied"].as_object().unwrap();
    assert_eq!(denied.len(), 257);
    assert_eq!(denied["node method \"m0\""], json!(2));
    assert_eq!(denied["(others)"], json!(44));
}
