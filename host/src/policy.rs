//! What the operator decides for one guest: its limits and the capabilities
//! granted to it. It lives outside the `.wasm`, in `NAME.toml` beside the
//! plugin, so swapping the guest never changes what it may do.
//!
//! ```toml
//! [limits]
//! memory_mib = 64          # linear memory per instance
//! call_timeout_ms = 60000  # per call, node I/O included
//! max_instances = 4        # calls served at the same time
//!
//! [grants]
//! node = ["getinfo"]       # node capabilities; none unless listed
//! ```

use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// The node capabilities this host knows how to grant. Anything else in a
/// policy file is a typo or a newer host's capability, refused at start-up.
pub const NODE_CAPABILITIES: &[&str] = &["getinfo"];

/// The operator's decisions for one guest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub grants: Grants,
}

/// Resource bounds; the defaults suit a small plugin like myplugin and leave
/// room for Python or JavaScript runtimes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory per guest instance, in MiB.
    pub memory_mib: u64,
    /// Deadline for one call, in milliseconds: guest CPU and node I/O alike.
    pub call_timeout_ms: u64,
    /// How many calls may run at once, each in its own instance.
    pub max_instances: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            call_timeout_ms: 60_000,
            max_instances: 4,
        }
    }
}

impl Limits {
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
}

/// Capabilities granted by name; everything absent is denied.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Node RPC capabilities, e.g. `["getinfo"]`.
    #[serde(default)]
    pub node: BTreeSet<String>,
}

impl Policy {
    /// Read `path` if it exists; no file means default limits and no grants.
    pub fn load_or_default(path: &Path) -> anyhow::Result<Policy> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Policy::default()),
            Err(e) => return Err(e).with_context(|| format!("reading policy {}", path.display())),
        };
        let policy: Policy =
            toml::from_str(&text).with_context(|| format!("parsing policy {}", path.display()))?;
        policy
            .validate()
            .with_context(|| format!("checking policy {}", path.display()))?;
        Ok(policy)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(unknown) = self
            .grants
            .node
            .iter()
            .find(|c| !NODE_CAPABILITIES.contains(&c.as_str()))
        {
            bail!("unknown node capability {unknown:?}; this host grants {NODE_CAPABILITIES:?}");
        }
        if self.limits.memory_mib == 0
            || self.limits.call_timeout_ms == 0
            || self.limits.max_instances == 0
        {
            bail!("limits must be greater than zero");
        }
        Ok(())
    }

    /// The one place a node capability is checked.
    pub fn allows_node(&self, capability: &str) -> bool {
        self.grants.node.contains(capability)
    }
}
