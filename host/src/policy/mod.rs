//! What the operator decides for one guest: which guest, its limits and the
//! capabilities granted to it. It lives outside the `.wasm`, in the plugin
//! file lightningd starts (the plugin file; see `guest::Files`), so swapping
//! the guest never changes what it may do.
//!
//! ```toml
//! #!/usr/local/bin/cln-wasm-host
//! wasm = "myplugin.wasm"   # the guest, relative to this file
//!
//! [limits]                # every one bounded by default (see `Limits`)
//! memory_mib = 64          # linear memories and tables per instance, together
//! hook_timeout_ms = 2000   # per hook, from its arrival
//! log_lines_rate = { per_sec = 100, burst = 1000 }
//!
//! [grants]
//! store = true             # the private key-value store
//! dir = { quota_mib = 16 } # a private directory, if the guest asks for one
//!
//! [[grants.rpc]]           # one table per granted node method
//! method = "getinfo"
//!
//! [[grants.rpc]]
//! method = "listpeers"
//! filter = { peers = [{ id = true }] }   # the guest never sees more
//!
//! [[grants.rpc]]
//! method = "pay"
//! params = ["pnameamount_msat<100000"]   # rune-style conditions, all must hold
//! ```
//!
//! Everything not granted is denied. [`Policy::check_rpc`] is the one place a
//! node method is allowed or refused.

mod condition;
pub mod filter;
pub mod hooks;
mod limits;

pub use condition::Condition;
pub use hooks::Hook;
pub use limits::{Limits, Rate};

use crate::protocol::lightningd;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The operator's decisions for one guest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The guest component, relative to the policy's own file (plugin files
    /// only; the tools are given the `.wasm` on their command line).
    #[serde(default)]
    pub wasm: Option<PathBuf>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub grants: Grants,
}

/// Capabilities granted by name; everything absent is denied.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Node methods, each with optional param conditions and filter.
    #[serde(default)]
    pub rpc: Vec<RpcGrant>,
    /// The private key-value store (in the node's datastore, under the
    /// plugin's name).
    #[serde(default)]
    pub store: bool,
    /// Hooks the guest may register, each with what its answers may do.
    #[serde(default)]
    pub hooks: Vec<HookGrant>,
    /// Notification topics it may receive; `*` (every topic but `log`) only
    /// when `*` itself is granted.
    #[serde(default)]
    pub subscriptions: Vec<String>,
    /// Custom notification topics it may emit.
    #[serde(default)]
    pub notifications: Vec<String>,
    /// Custom peer message types it may handle.
    #[serde(default)]
    pub custommessages: Vec<u16>,
    /// Feature bits it may set in lightningd's messages.
    #[serde(default)]
    pub featurebits: FeaturebitsGrant,
    /// A private directory (`wasm-data/<plugin>/`), if the guest asks for
    /// one; none by default: no files at all.
    #[serde(default)]
    pub dir: Option<DirGrant>,
}

/// The private directory granted, and the bytes it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// What the directory may hold, in MiB (each entry counts 4 KiB more):
    /// once over, the guest may only read there (see `caps::dir`).
    pub quota_mib: u64,
}

impl DirGrant {
    /// Largest quota: 1 TiB, so bytes never overflow.
    pub const MAX_QUOTA_MIB: u64 = 1 << 20;

    /// The quota in bytes.
    pub fn quota_bytes(&self) -> u64 {
        self.quota_mib.saturating_mul(1 << 20)
    }
}

/// One granted hook. With nothing but its name, only `continue` answers
/// reach lightningd.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookGrant {
    pub name: String,
    /// Outcomes besides `continue` (`disconnect`, `reject`, `fail`,
    /// `resolve`, `replace`, `return`, `abort`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<String>,
    /// Fields that move money or commands (`close_to`, `mindepth`, `reserve`,
    /// `psbt`, `our_funding_msat`, `payment_key`, `forward_to`, `payload`,
    /// `extra_tlvs`, `invoice_msat`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// `rpc_command` only: the commands whose answer it may `replace` or
    /// `return`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// Which feature bits a guest may set: none, odd (optional) ones, or even
/// (required) ones too, which make lightningd refuse peers that lack them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeaturebitsGrant {
    #[default]
    None,
    Optional,
    Required,
}

impl Grants {
    /// The grant for hook `name`, if any.
    pub fn hook(&self, name: &str) -> Option<&HookGrant> {
        self.hooks.iter().find(|h| h.name == name)
    }

    /// Whether the guest may receive `topic` (`*` only if granted as such).
    pub fn subscription(&self, topic: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|t| lightningd::subscription_covers(t, topic))
    }

    /// Whether the guest may set the feature bits `hex`.
    pub fn featurebits_allow(&self, hex: &str) -> bool {
        match self.featurebits {
            FeaturebitsGrant::None => false,
            FeaturebitsGrant::Optional => !sets_even_bit(hex),
            FeaturebitsGrant::Required => true,
        }
    }
}

/// Whether a feature bit string sets an even (required) bit: bit 0 is the
/// lowest of the last byte.
pub fn sets_even_bit(hex: &str) -> bool {
    // Each hex digit holds bits 4k..4k+3 counting from the right: the even
    // ones are its 1 and 4 bits.
    hex.chars()
        .filter_map(|c| c.to_digit(16))
        .any(|d| d & 0b0101 != 0)
}

/// One granted node method.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RpcGrant {
    pub method: String,
    /// Conditions on the params, as in CLN runes (see [`Condition`]); all
    /// must hold. Parsed once, when the policy is read.
    #[serde(default)]
    pub params: Vec<Condition>,
    /// A CLN filter the node's answer is cut down to.
    #[serde(
        default,
        deserialize_with = "toml_to_json",
        skip_serializing_if = "Option::is_none"
    )]
    pub filter: Option<Value>,
}

fn toml_to_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(Some(Value::deserialize(d)?))
}

/// Why a capability was refused: for the guest's error and the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial(pub String);

impl Policy {
    /// Read `path` if it exists; no file means default limits and no grants.
    pub fn load_or_default(path: &Path) -> anyhow::Result<Policy> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::default()),
            _ => Policy::load(path),
        }
    }

    /// Read and check the policy in `path`.
    pub fn load(path: &Path) -> anyhow::Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading policy {}", path.display()))?;
        Policy::parse(&text, &format!("policy {}", path.display()))
    }

    /// Parse and check a policy (a plugin file's text, `#!` line and all);
    /// errors name it `what`.
    pub fn parse(text: &str, what: &str) -> anyhow::Result<Policy> {
        let policy: Policy = toml::from_str(text).with_context(|| format!("parsing {what}"))?;
        policy
            .validate()
            .with_context(|| format!("checking {what}"))?;
        Ok(policy)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.limits.validate()?;
        for grant in &self.grants.hooks {
            let hook = Hook::find(&grant.name).with_context(|| {
                format!(
                    "[[grants.hooks]] {:?} is not a hook lightningd has",
                    grant.name
                )
            })?;
            let refused = grant
                .results
                .iter()
                .find(|r| r.as_str() == "continue" || !hook.knows_outcome(r))
                .map(|r| format!("result {r:?}"))
                .or_else(|| {
                    let unknown = grant.fields.iter().find(|f| !hook.guards(f));
                    unknown.map(|f| format!("field {f:?}"))
                })
                .or_else(|| {
                    (hook.name != "rpc_command" && !grant.methods.is_empty())
                        .then(|| "methods (rpc_command only)".to_string())
                });
            if let Some(what) = refused {
                bail!(
                    "[[grants.hooks]] {:?}: {what} cannot be granted (it takes {}; continue needs no grant)",
                    grant.name,
                    hook.grantable()
                );
            }
        }
        if let Some(dir) = &self.grants.dir
            && !(1..=DirGrant::MAX_QUOTA_MIB).contains(&dir.quota_mib)
        {
            bail!(
                "[grants] dir: quota_mib must be 1 to {} (MiB), not {}",
                DirGrant::MAX_QUOTA_MIB,
                dir.quota_mib
            );
        }
        for grant in &self.grants.rpc {
            if grant.method.is_empty() {
                bail!("a [[grants.rpc]] has an empty method");
            }
            if let Some(filter) = &grant.filter
                && !filter.is_object()
            {
                bail!(
                    "grant for {:?}: filter must be a table (a CLN filter object)",
                    grant.method
                );
            }
        }
        Ok(())
    }

    /// The grant that allows `method` with `params`, or why none does.
    /// Grants for the same method are alternatives: the first that holds wins.
    pub fn check_rpc(&self, method: &str, params: &Value) -> Result<&RpcGrant, Denial> {
        let mut why = None;
        for (n, grant) in self
            .grants
            .rpc
            .iter()
            .enumerate()
            .filter(|(_, g)| g.method == method)
        {
            match grant.params.iter().find(|c| !c.holds(params)) {
                None => return Ok(grant),
                Some(failed) => why.get_or_insert(Denial(format!(
                    "condition {:?} of [[grants.rpc]] #{} does not hold",
                    failed.text(),
                    n + 1
                ))),
            };
        }
        Err(why.unwrap_or_else(|| {
            Denial(format!(
                "no grant for {method:?} in the policy ([[grants.rpc]])"
            ))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(text: &str) -> Policy {
        let policy: Policy = toml::from_str(text).unwrap();
        policy.validate().unwrap();
        policy
    }

    #[test]
    fn rune_style_conditions() {
        let p = policy(
            r#"
            [[grants.rpc]]
            method = "pay"
            params = ["pnameamount_msat<100000", "pnamebolt11^lnbcrt|pnamebolt11^lntb", "pnamelabel!"]
            "#,
        );
        let ok = json!({"bolt11": "lnbcrt1xyz", "amount_msat": 5000});
        assert!(p.check_rpc("pay", &ok).is_ok());
        let too_much = json!({"bolt11": "lnbcrt1xyz", "amount_msat": 100000});
        assert_eq!(
            p.check_rpc("pay", &too_much).unwrap_err(),
            Denial(
                "condition \"pnameamount_msat<100000\" of [[grants.rpc]] #1 does not hold".into()
            )
        );
        assert!(
            p.check_rpc("pay", &json!({"bolt11": "lnbc1", "amount_msat": 1}))
                .is_err()
        );
        assert!(
            p.check_rpc("pay", &json!({"bolt11": "lntb1", "amount_msat": 1}))
                .is_ok()
        );
        assert!(
            p.check_rpc(
                "pay",
                &json!({"bolt11": "lntb1", "amount_msat": 1, "label": "x"})
            )
            .is_err()
        );
        // Positional params cannot be matched by name: refused.
        assert!(p.check_rpc("pay", &json!(["lnbcrt1xyz", 5000])).is_err());
        // Amounts as strings ("5000msat") are not integers: refused.
        assert!(
            p.check_rpc(
                "pay",
                &json!({"bolt11": "lnbcrt1", "amount_msat": "5000msat"})
            )
            .is_err()
        );
        assert_eq!(
            p.check_rpc("withdraw", &json!({})).unwrap_err(),
            Denial("no grant for \"withdraw\" in the policy ([[grants.rpc]])".into())
        );
    }

    #[test]
    fn positional_conditions_and_alternative_grants() {
        // Two grants for one method: either may allow a call.
        let grant = |condition: &str| {
            format!("[[grants.rpc]]\nmethod = \"listpeers\"\nparams = [\"{condition}\"]\n")
        };
        let p = policy(&(grant("pnum=0") + &grant("parr0^02")));
        assert!(p.check_rpc("listpeers", &json!([])).is_ok());
        assert!(p.check_rpc("listpeers", &json!({})).is_ok());
        assert!(p.check_rpc("listpeers", &json!(["02ab"])).is_ok());
        assert!(p.check_rpc("listpeers", &json!(["03ab"])).is_err());
    }

    #[test]
    fn typos_are_refused_at_start() {
        for bad in [
            "[[grants.rpc]]\nmethod = \"x\"\nparams = [\"amount<5\"]",
            "[[grants.rpc]]\nmethod = \"x\"\nparams = [\"pnamea<five\"]",
            "[[grants.rpc]]\nmethod = \"x\"\nfilter = true",
            "[grants]\ndir = { quota_mib = 0 }",
            "[grants]\ndir = { quota_mib = 16, path = \"/etc\" }",
            "[grants]\ndir = true",
        ] {
            let refused = toml::from_str::<Policy>(bad)
                .map_err(anyhow::Error::from)
                .and_then(|p| p.validate());
            assert!(refused.is_err(), "{bad}");
        }
        assert!(toml::from_str::<Policy>("[grants]\nnode = [\"getinfo\"]").is_err());
    }

    #[test]
    fn a_dir_grant_in_either_form() {
        let inline = policy("[grants]\ndir = { quota_mib = 16 }");
        let table = policy("[grants.dir]\nquota_mib = 16");
        assert_eq!(inline.grants.dir, Some(DirGrant { quota_mib: 16 }));
        assert_eq!(table.grants.dir, inline.grants.dir);
        assert_eq!(policy("").grants.dir, None);
    }
}
