//! The capability checks in-process, as Spin tests its factors: a session
//! built from a policy and a manifest's requests, the WIT host functions
//! called directly with no guest and no host process, against a node
//! stand-in that records what reaches it.

#[path = "support/mod.rs"]
mod support;

use cln_wasm_host::bindings::WitRpcError;
use cln_wasm_host::bindings::cln::plugin::{events, node, store};
use cln_wasm_host::caps::{CallContext, CapError, Deadline, Declared, InstanceState, Session};
use cln_wasm_host::node::NodeClient;
use cln_wasm_host::policy::Policy;
use cln_wasm_host::protocol::{CAPABILITY_DENIED, INVALID_PARAMS, LIMIT_EXCEEDED, Outbox};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{NODE_ID, Node};

/// A guest's view of its capabilities: `policy` (TOML) granted, `declared`
/// asked for, answering the call `cln:call#1`, with `node` as its node and
/// its custom notifications written to `outbox`.
fn instance(policy: &str, declared: Declared, node: &Node, outbox: Arc<Outbox>) -> InstanceState {
    let policy: Policy = toml::from_str(policy).expect("a valid policy");
    let mut session = Session::before_init("inproc", policy, Some(outbox));
    session.node = Some(NodeClient::new(node.socket(), "inproc"));
    session.declared = declared;
    let deadline = Deadline::after(Instant::now(), Duration::from_secs(10));
    let mut state = InstanceState::new(Arc::new(session), deadline);
    let call = CallContext {
        id: "cln:call#1".into(),
        method: "call".into(),
        params: RawValue::from_string("[]".into()).unwrap(),
        arrived: Instant::now(),
    };
    state.begin(Some(call), deadline);
    state
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

/// The `rpc-error` the guest gets (not a trap).
fn refused<E: Into<CapError>>(result: Result<impl std::fmt::Debug, E>) -> WitRpcError {
    match result.map_err(Into::into).expect_err("refused") {
        CapError::Rpc(error) => error,
        CapError::Trap(trap) => panic!("a trap, not an rpc-error: {trap:#}"),
    }
}

fn denied<E: Into<CapError>>(result: Result<impl std::fmt::Debug, E>, message: &str) {
    let error = refused(result);
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
    let error = refused(node::Host::call(
        &mut state,
        "getinfo".into(),
        "{not json".into(),
        None,
    ));
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
    let error = refused(store::Host::set(&mut state, "big".into(), too_big));
    assert_eq!(error.code, INVALID_PARAMS);
    let error = refused(store::Host::set(&mut state, "".into(), "v".into()));
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
    let error = refused(events::Host::emit(
        &mut state,
        "inproc_event".into(),
        "{oops".into(),
    ));
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

/// The `rpc-error` a guest gets for passing a limit, and its message.
fn over_limit<E: Into<CapError>>(result: Result<impl std::fmt::Debug, E>) -> String {
    let error = refused(result);
    assert_eq!(error.code, LIMIT_EXCEEDED, "{}", error.message);
    error.message
}

#[test]
fn node_calls_are_held_to_their_rate_and_params_to_their_size() {
    let node = Node::start();
    let policy = "[limits]\nnode_calls_rate = { per_sec = 1, burst = 3 }\n\
                  node_params_max_bytes = 100\n\
                  [[grants.rpc]]\nmethod = \"getinfo\"\n";
    let mut state = instance(
        policy,
        asks(&["getinfo"], false, &[]),
        &node,
        Sink::default().outbox(),
    );
    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(100));
    assert_eq!(
        over_limit(node::Host::call(&mut state, "getinfo".into(), big, None)),
        "node method \"getinfo\" refused: its params are 111 bytes, past [limits] \
         node_params_max_bytes (100)"
    );
    for _ in 0..3 {
        node::Host::getinfo(&mut state, None).expect("within the burst");
    }
    assert_eq!(
        over_limit(node::Host::getinfo(&mut state, None)),
        "node method \"getinfo\" refused: past [limits] node_calls_rate (1/s, bursts of 3)"
    );
    assert_eq!(node.requests().len(), 3, "refusals never reach the node");
    assert_eq!(
        state.session.audit.to_json()["over_limits"],
        json!({"node_calls_rate": 1, "node_params_max_bytes": 1})
    );
}

#[test]
fn each_invocation_has_its_own_bound_of_node_calls() {
    let node = Node::start();
    let policy = "[limits]\nnode_calls_per_invocation = 3\n[[grants.rpc]]\nmethod = \"getinfo\"\n";
    let mut state = instance(
        policy,
        asks(&["getinfo"], false, &[]),
        &node,
        Sink::default().outbox(),
    );
    for _ in 0..3 {
        node::Host::getinfo(&mut state, None).expect("within the invocation's bound");
    }
    assert_eq!(
        over_limit(node::Host::getinfo(&mut state, None)),
        "node method \"getinfo\" refused: this invocation made 3, its most \
         ([limits] node_calls_per_invocation)"
    );
    assert_eq!(node.requests().len(), 3, "refusals never reach the node");
    // The next thing lightningd sends starts afresh.
    let deadline = state.deadline;
    let call = state.call.take();
    state.begin(call, deadline);
    node::Host::getinfo(&mut state, None).expect("a new invocation");
    assert_eq!(node.requests().len(), 4);
}

#[test]
fn the_store_is_held_to_its_keys_and_bytes_counting_what_the_node_already_holds() {
    let node = Node::start();
    let policy = "[limits]\nstore_max_keys = 3\nstore_max_bytes = 100\n[grants]\nstore = true\n";
    let outbox = Sink::default().outbox();
    // An earlier run of the plugin left a key (2 + 20 bytes) in the node.
    let mut earlier = instance(policy, asks(&[], true, &[]), &node, outbox.clone());
    store::Host::set(&mut earlier, "k0".into(), "x".repeat(20)).unwrap();

    let mut state = instance(policy, asks(&[], true, &[]), &node, outbox);
    store::Host::set(&mut state, "k1".into(), "x".repeat(20)).unwrap();
    store::Host::set(&mut state, "k2".into(), "x".repeat(20)).unwrap();
    assert_eq!(
        over_limit(store::Host::set(&mut state, "k3".into(), "x".into())),
        "store key \"k3\" refused: the store holds 3 keys, its most ([limits] store_max_keys)"
    );
    // Replacing a key frees its old size: 3 keys of 22 bytes, then k1 of 2 + 50.
    store::Host::set(&mut state, "k1".into(), "x".repeat(50)).unwrap();
    assert_eq!(
        over_limit(store::Host::set(&mut state, "k2".into(), "x".repeat(40))),
        "store key \"k2\" refused: the store would hold 116 bytes, past [limits] \
         store_max_bytes (100)"
    );
    store::Host::delete(&mut state, "k2".into()).unwrap();
    store::Host::set(&mut state, "k3".into(), "x".repeat(20)).unwrap();
    assert_eq!(node.datastore_keys().len(), 3);
}

#[test]
fn custom_notifications_are_held_to_their_rate_and_size() {
    let node = Node::start();
    let sink = Sink::default();
    let policy = "[limits]\nnotifications_rate = { per_sec = 1, burst = 2 }\n\
                  answer_max_bytes = 10\n\
                  [grants]\nnotifications = [\"inproc_event\"]\n";
    let mut state = instance(
        policy,
        asks(&[], false, &["inproc_event"]),
        &node,
        sink.outbox(),
    );
    assert_eq!(
        over_limit(events::Host::emit(
            &mut state,
            "inproc_event".into(),
            r#"{"n": 1000}"#.into()
        )),
        "notification \"inproc_event\" refused: its payload is 11 bytes, past [limits] \
         answer_max_bytes (10)"
    );
    for n in 0..2 {
        events::Host::emit(
            &mut state,
            "inproc_event".into(),
            format!(r#"{{"n": {n}}}"#),
        )
        .expect("within the burst");
    }
    assert_eq!(
        over_limit(events::Host::emit(
            &mut state,
            "inproc_event".into(),
            "{}".into()
        )),
        "notification \"inproc_event\" refused: past [limits] notifications_rate (1/s, bursts of 2)"
    );
    assert_eq!(sink.text().matches("inproc_event").count(), 2);
}

#[test]
fn a_node_call_that_outlasts_the_calls_deadline_is_a_trap_at_the_deadline() {
    let node = Node::start();
    node.answer("waitblockheight", json!({"__sleep_ms": 3000}));
    let policy = "[[grants.rpc]]\nmethod = \"waitblockheight\"\n";
    let mut state = instance(
        policy,
        asks(&["waitblockheight"], false, &[]),
        &node,
        Sink::default().outbox(),
    );
    let started = Instant::now();
    state.deadline = Deadline::after(started, Duration::from_millis(200));
    let result = node::Host::call(&mut state, "waitblockheight".into(), "{}".into(), None);
    let waited = started.elapsed();
    match result {
        Err(CapError::Trap(trap)) => assert_eq!(
            trap.to_string(),
            "the call's deadline passed while the guest was blocked"
        ),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(waited < Duration::from_millis(2000), "waited {waited:?}");
}
