//! A guest's instances in-process: the `misbehave` test guest loaded into
//! the sandbox and called directly, with no host process and no lightningd.

#[path = "support/mod.rs"]
mod support;

use cln_wasm_host::caps::{CallContext, Session};
use cln_wasm_host::policy::Policy;
use cln_wasm_host::sandbox::{CallFailure, Guest};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;
use support::guest_wasm;

fn misbehave(policy: &str) -> Arc<Guest> {
    let policy: Policy = toml::from_str(policy).unwrap();
    let session = Session::before_init("misbehave", policy, None);
    Arc::new(Guest::load(&guest_wasm("misbehave"), Arc::new(session)).unwrap())
}

fn call(guest: &Guest, method: &str, params: Value) -> Result<Value, CallFailure> {
    let call = CallContext {
        id: format!("test:{method}"),
        method: method.into(),
        params: RawValue::from_string(params.to_string()).unwrap(),
        arrived: std::time::Instant::now(),
    };
    let answer = guest.call(call)?.expect("the guest's own answer");
    Ok(serde_json::from_str(&answer).unwrap())
}

#[test]
fn an_instance_is_reused_until_it_traps_then_replaced() {
    let guest = misbehave("[limits]\nmax_instances = 1\n");
    for served in 1..=3 {
        assert_eq!(
            call(&guest, "count", json!([])).unwrap(),
            json!({"calls": served})
        );
    }
    let failure = call(&guest, "crash", json!([])).unwrap_err();
    assert!(matches!(failure, CallFailure::Trap(_)), "{failure:?}");
    assert!(
        failure.to_string().starts_with("plugin trapped: "),
        "{failure}"
    );
    // A fresh instance: its count starts again.
    assert_eq!(
        call(&guest, "count", json!([])).unwrap(),
        json!({"calls": 1})
    );
}

#[test]
fn limits_cut_a_call_and_the_next_one_is_served() {
    let guest = misbehave("[limits]\ncall_timeout_ms = 300\nmemory_mib = 16\n");
    let failure = call(&guest, "spin", json!([])).unwrap_err();
    assert_eq!(
        failure.to_string(),
        "plugin call exceeded its deadline of 300 ms"
    );
    let failure = call(&guest, "hog", json!([])).unwrap_err();
    assert_eq!(
        failure.to_string(),
        "plugin exceeded its memory limit of 16 MiB"
    );
    assert_eq!(
        call(&guest, "echo", json!(["x"])).unwrap(),
        json!({"method": "echo", "params": ["x"]})
    );
}

#[test]
fn calls_beyond_max_instances_wait_for_an_instance_and_are_all_served() {
    let guest = misbehave("[limits]\nmax_instances = 2\n");
    let calls: Vec<_> = (0..6)
        .map(|n| {
            let guest = guest.clone();
            std::thread::spawn(move || call(&guest, "sleep", json!([50 + n])))
        })
        .collect();
    for (n, handle) in calls.into_iter().enumerate() {
        let answer = handle.join().unwrap().unwrap();
        assert_eq!(answer, json!({"slept_ms": 50 + n, "params": [50 + n]}));
    }
}
