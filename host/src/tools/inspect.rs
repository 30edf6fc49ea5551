//! `cln-wasm-host inspect PLUGIN`: what a guest asks for, with its reasons,
//! what the policy grants it and which asks are dangerous, for an operator to
//! review before starting it. Nothing runs but the guest's `manifest` export.

use super::review::{self, Kind};
use crate::guest::{self, Files};
use crate::policy::Policy;
use crate::shown::{json_pretty, quoted};
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
    /// Print the review as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Print the review on stdout: for a person, or as JSON with `--json`.
pub fn run(args: InspectArgs) -> anyhow::Result<i32> {
    let (files, policy) = Files::for_tool(&args.wasm, args.policy)?;
    let guest = guest::load(&files, policy, None)?;
    let session = guest.sandbox.session();
    let policy: &Policy = &session.policy;
    let declared = &guest.declared;
    let asks = review::asks(declared, &policy.grants);
    // Grants that do nothing: the guest never asks for these methods.
    let granted_not_asked: Vec<&str> = policy
        .grants
        .rpc
        .iter()
        .map(|g| g.method.as_str())
        .filter(|m| !declared.rpc.iter().any(|ask| ask.method == *m))
        .collect();
    if !args.json {
        let mut text = format!(
            "plugin {}: {} (sha256 {})\n\
             policy: {}{}\n\
             The guest asks for:\n{}",
            files.name,
            files.wasm.display(),
            guest.sandbox.digest,
            files.policy.display(),
            if files.policy.exists() {
                ""
            } else {
                " (none: nothing granted)"
            },
            review::to_text(&asks),
        );
        if asks.is_empty() {
            text.push_str("  nothing\n");
        }
        for method in &granted_not_asked {
            text.push_str(&format!(
                "Granted but never asked for: node method {}\n",
                quoted(method)
            ));
        }
        text.push_str("Limits:\n");
        for (key, value, what) in policy.limits.rows() {
            text.push_str(&format!("  {:<52} {what}\n", format!("{key} = {value}")));
        }
        text.push_str(&format!("Sandbox: {SANDBOX}\n"));
        print!("{text}");
        return Ok(0);
    }
    let rpc: Vec<Value> = declared
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
    let review = json!({
        "plugin": files.name,
        "wasm": files.wasm,
        "sha256": guest.sandbox.digest,
        "policy": {
            "file": files.policy,
            "exists": files.policy.exists(),
            "limits": policy.limits,
        },
        // As lightningd would see it: what the policy grants of it.
        "manifest": guest::manifest::getmanifest_result(&guest.manifest),
        "asks": {
            "rpc": rpc,
            "store": { "asked": declared.wants_store, "granted": policy.grants.store },
            "dir": {
                "asked": declared.dir.is_some(),
                "reason": declared.dir,
                "granted": policy.grants.dir,
            },
            "hooks": review::to_json(&asks, Kind::Hook),
            "subscriptions": review::to_json(&asks, Kind::Subscription),
            "notifications": review::to_json(&asks, Kind::Notification),
            "custommessages": review::to_json(&asks, Kind::CustomMessage),
            "featurebits": review::to_json(&asks, Kind::Featurebits),
        },
        "granted_but_not_asked": granted_not_asked,
        "sandbox": SANDBOX,
    });
    // The guest's words escaped where they would not show as themselves.
    println!("{}", json_pretty(&review));
    Ok(0)
}

const SANDBOX: &str = "no files but its private directory when asked for and granted ([grants] dir), \
     no environment, no arguments, no sockets; stdout and stderr go to lightningd's log";
