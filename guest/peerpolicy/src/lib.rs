//! peerpolicy: refuse connections from peers on a deny list, and count
//! connections, disconnections and refusals.
//!
//! - option `peerpolicy-deny` (multi): node ids to disconnect;
//! - option `peerpolicy-enforce` (bool, dynamic, default true): `false` only
//!   logs denied peers, a dry run the operator switches with `setconfig`;
//! - hook `peer_connected`: `disconnect` a denied peer, `continue` otherwise;
//! - subscriptions `connect` and `disconnect`: counted;
//! - method `peerpolicy-stats`: `{"connects": N, "disconnects": N, "rejected": N}`.
//!
//! Counters live in this instance's memory (the policy runs one instance):
//! they restart from zero when the plugin restarts.

use cln_guest::{
    Guest, HookDecl, LogLevel, Manifest, MethodDecl, OptionDecl, OptionType, OptionValue, RpcError,
    TopicRequest, config, events,
};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static CONNECTS: AtomicU64 = AtomicU64::new(0);
static DISCONNECTS: AtomicU64 = AtomicU64::new(0);
static REJECTED: AtomicU64 = AtomicU64::new(0);

struct PeerPolicy;

fn enforcing() -> bool {
    !matches!(
        config::get_option("peerpolicy-enforce"),
        Some(OptionValue::Bool(false))
    )
}

fn denied(id: &str) -> bool {
    match config::get_option("peerpolicy-deny") {
        Some(OptionValue::StringList(ids)) => ids.iter().any(|d| d.eq_ignore_ascii_case(id)),
        _ => false,
    }
}

impl Guest for PeerPolicy {
    fn manifest() -> Manifest {
        Manifest {
            dynamic: true,
            options: vec![
                OptionDecl {
                    multi: true,
                    ..OptionDecl::new(
                        "peerpolicy-deny",
                        OptionType::String,
                        None,
                        "A node id to disconnect on connection (repeatable)",
                    )
                },
                OptionDecl {
                    dynamic: true,
                    ..OptionDecl::new(
                        "peerpolicy-enforce",
                        OptionType::Bool,
                        Some(OptionValue::Bool(true)),
                        "Disconnect denied peers (false: only log them)",
                    )
                },
            ],
            methods: vec![MethodDecl {
                long_description: Some(
                    "Counts since the plugin started: connects and disconnects from the \
                     connect/disconnect notifications, rejected from peer_connected."
                        .into(),
                ),
                ..MethodDecl::new(
                    "peerpolicy-stats",
                    "Connections, disconnections and refusals seen by peerpolicy",
                )
            }],
            hooks: vec![HookDecl::new(
                "peer_connected",
                "to disconnect a peer on peerpolicy-deny as it connects",
            )],
            subscriptions: vec![
                TopicRequest::new("connect", "to count connections"),
                TopicRequest::new("disconnect", "to count disconnections"),
            ],
            ..Manifest::default()
        }
    }

    fn init() -> Result<(), String> {
        Ok(())
    }

    fn handle() -> Result<String, RpcError> {
        Ok(json!({
            "connects": CONNECTS.load(Relaxed),
            "disconnects": DISCONNECTS.load(Relaxed),
            "rejected": REJECTED.load(Relaxed),
        })
        .to_string())
    }

    fn hook(_name: String, payload: String) -> String {
        let payload: Value = serde_json::from_str(&payload).unwrap_or_default();
        let id = payload["peer"]["id"].as_str().unwrap_or_default();
        if !id.is_empty() && denied(id) {
            if !enforcing() {
                events::log(
                    LogLevel::Info,
                    &format!(
                        "peer {id} is on peerpolicy-deny; letting it in (peerpolicy-enforce=false)"
                    ),
                );
                return json!({"result": "continue"}).to_string();
            }
            REJECTED.fetch_add(1, Relaxed);
            events::log(
                LogLevel::Info,
                &format!("rejected peer {id}: it is on peerpolicy-deny"),
            );
            return json!({
                "result": "disconnect",
                "error_message": format!("peer {id} is denied by peerpolicy"),
            })
            .to_string();
        }
        json!({"result": "continue"}).to_string()
    }

    fn notify(topic: String, _payload: String) {
        match topic.as_str() {
            "connect" => CONNECTS.fetch_add(1, Relaxed),
            "disconnect" => DISCONNECTS.fetch_add(1, Relaxed),
            _ => 0,
        };
    }

    /// Only `peerpolicy-enforce` is dynamic; the host has typed it already.
    fn set_option(name: String, _value: OptionValue) -> Result<(), String> {
        match name.as_str() {
            "peerpolicy-enforce" => Ok(()),
            _ => Err(format!("{name} cannot be changed at runtime")),
        }
    }
}

cln_guest::export!(PeerPolicy);
