//! `cln-wasm-host inspect PLUGIN.wasm`: what a guest asks for and what the
//! current policy would grant it, for an operator to review before starting
//! it. Nothing runs but the guest's `manifest` export.

use crate::guest::{self, Files};
use crate::policy::Policy;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Arguments of the `inspect` subcommand.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The guest component (`.wasm`), or an installed plugin file.
    #[arg(value_name = "PLUGIN")]
    pub wasm: PathBuf,
    /// The policy for a `.wasm` (default: PLUGIN.toml beside it, if any); a
    /// plugin file carries its own.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// Print the review as JSON on stdout.
pub fn run(args: InspectArgs) -> anyhow::Result<i32> {
    let (files, policy) = Files::for_tool(&args.wasm, args.policy)?;
    let guest = guest::load(&files, policy, None)?;
    let session = guest.sandbox.session();
    let policy: &Policy = &session.policy;
    let manifest = &guest.manifest;

    let rpc: Vec<Value> = manifest
        .rpc
        .iter()
        .map(|ask| {
            let grants: Vec<_> = policy
                .grants
                .rpc
                .iter()
                .filter(|g| g.method == ask.method)
                .collect();
            json!({
                "method": ask.method,
                "reason": ask.reason,
                "granted": !grants.is_empty(),
                "grants": grants,
            })
        })
        .collect();
    let granted_not_asked: Vec<&str> = policy
        .grants
        .rpc
        .iter()
        .map(|g| g.method.as_str())
        .filter(|m| !manifest.rpc.iter().any(|ask| ask.method == *m))
        .collect();
    let review = json!({
        "plugin": files.name,
        "wasm": files.wasm,
        "sha256": guest.sandbox.digest,
        "policy": {
            "file": files.policy,
            "exists": files.policy.exists(),
            "limits": policy.limits,
        },
        "manifest": guest::manifest::getmanifest_result(manifest),
        "asks": {
            "rpc": rpc,
            "store": { "asked": manifest.wants_store, "granted": policy.grants.store },
        },
        // Grants that do nothing: the guest never asks for these methods.
        "granted_but_not_asked": granted_not_asked,
        "sandbox": "no files, no environment, no arguments, no sockets; stdout and stderr go to lightningd's log",
    });
    println!("{}", serde_json::to_string_pretty(&review)?);
    Ok(0)
}
