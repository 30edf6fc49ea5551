//! `[limits]`: what a guest may spend, each bounded by default. The operator
//! may loosen or tighten any of them; none can be switched off, since each is
//! something an untrusted guest can make the host or the node do over and
//! over (block lightningd's hooks, fill its log, its disk or its RPC queue).

use anyhow::bail;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Resource bounds; the defaults suit a small plugin like myplugin and leave
/// room for Python or JavaScript runtimes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memories and tables of one guest instance, together, in MiB
    /// (how many of each it may create: `sandbox::limits`).
    pub memory_mib: u64,
    /// Deadline for one RPC call, in milliseconds, counted from its arrival:
    /// waiting for an instance, guest CPU, sleeping and node I/O alike.
    pub call_timeout_ms: u64,
    /// Deadline for one hook or notification, counted the same way. Short:
    /// lightningd waits on every hook answer (a peer's connection, an HTLC),
    /// and notifications are served one at a time.
    pub hook_timeout_ms: u64,
    /// How many calls may run at once, each in its own instance.
    pub max_instances: usize,
    /// Instances kept for hooks and notifications, so a hook never waits
    /// behind calls. 0: they share the calls' instances (a guest whose every
    /// message must see the same memory runs with `max_instances = 1` and
    /// `hook_instances = 0`).
    pub hook_instances: usize,
    /// Largest answer the guest may give lightningd (a call's result or
    /// error, a hook's answer, a custom notification's payload), in bytes.
    pub answer_max_bytes: usize,
    /// Largest params (and filter) of one node call, in bytes.
    pub node_params_max_bytes: usize,
    /// Node calls (the store's included) one invocation may make: a call,
    /// a hook, a notification, `init` or `setconfig`. The guest acts only
    /// while lightningd has it handle one, so this bounds what it adds to
    /// the load lightningd drives (and node calls in flight are at most one
    /// per instance: `max_instances` + `hook_instances`).
    pub node_calls_per_invocation: u64,
    /// Node calls over time, the store's included: what invocations that
    /// others drive (a peer's messages reach hooks and notifications) may
    /// cause in all. Above what lightningd can answer one node call per
    /// incoming call.
    pub node_calls_rate: Rate,
    /// Custom notifications one invocation may emit.
    pub notifications_per_invocation: u64,
    /// Custom notifications emitted over time.
    pub notifications_rate: Rate,
    /// Lines the guest logs (`events.log`, stdout, stderr) and the host logs
    /// about it (its refusals); past the rate they are dropped and counted.
    pub log_lines_rate: Rate,
    /// Bytes of those lines.
    pub log_bytes_rate: Rate,
    /// Keys in the guest's store.
    pub store_max_keys: usize,
    /// Bytes in the guest's store, keys and values.
    pub store_max_bytes: usize,
    /// Largest `.wasm`, in MiB, checked before it is read.
    pub wasm_max_mib: u64,
    /// Wall time to compile the guest, in milliseconds: past it the guest
    /// does not start (lightningd gives a plugin 120 s to answer).
    pub compile_timeout_ms: u64,
    /// Address space of the process that compiles the guest, in MiB.
    pub compile_memory_mib: u64,
}

/// A rate: `per_sec` on average, with bursts of up to `burst` (by default one
/// second's worth).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_sec: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    burst: Option<u64>,
}

impl Rate {
    pub const fn new(per_sec: u64, burst: u64) -> Rate {
        Rate {
            per_sec,
            burst: Some(burst),
        }
    }

    /// How many may be spent at once, after a quiet spell.
    pub fn burst(&self) -> u64 {
        self.burst.unwrap_or(self.per_sec)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/s, bursts of {}", self.per_sec, self.burst())
    }
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            call_timeout_ms: 60_000,
            hook_timeout_ms: 2_000,
            max_instances: 4,
            hook_instances: 2,
            answer_max_bytes: MIB,
            node_params_max_bytes: MIB,
            node_calls_per_invocation: 1_000,
            node_calls_rate: Rate::new(50_000, 50_000),
            notifications_per_invocation: 100,
            notifications_rate: Rate::new(10_000, 10_000),
            log_lines_rate: Rate::new(100, 1_000),
            log_bytes_rate: Rate::new(64 * KIB as u64, MIB as u64),
            store_max_keys: 1_000,
            store_max_bytes: 4 * MIB,
            wasm_max_mib: 64,
            compile_timeout_ms: 90_000,
            compile_memory_mib: 1024,
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

    pub fn hook_timeout(&self) -> Duration {
        Duration::from_millis(self.hook_timeout_ms)
    }

    /// Every limit: its key, value and what it bounds, in the order the
    /// policy file documents them. The one list `rows` and `validate` read.
    fn entries(&self) -> [(&'static str, Bound, &'static str); 18] {
        use Bound::{Count, Per};
        let n = |v: usize| Count(v as u64);
        [
            (
                "memory_mib",
                Count(self.memory_mib),
                "linear memories and tables per instance, together",
            ),
            (
                "call_timeout_ms",
                Count(self.call_timeout_ms),
                "deadline per call from its arrival, sleeping and node I/O included",
            ),
            (
                "hook_timeout_ms",
                Count(self.hook_timeout_ms),
                "deadline per hook or notification, the same way",
            ),
            (
                "max_instances",
                n(self.max_instances),
                "calls served at the same time",
            ),
            (
                "hook_instances",
                n(self.hook_instances),
                "hooks and notifications served apart from calls (0: in the calls' instances)",
            ),
            (
                "answer_max_bytes",
                n(self.answer_max_bytes),
                "largest answer, hook answer or notification payload",
            ),
            (
                "node_params_max_bytes",
                n(self.node_params_max_bytes),
                "largest params of one node call",
            ),
            (
                "node_calls_per_invocation",
                Count(self.node_calls_per_invocation),
                "node calls (the store's included) per call, hook or notification",
            ),
            (
                "node_calls_rate",
                Per(self.node_calls_rate),
                "node calls in all, over time",
            ),
            (
                "notifications_per_invocation",
                Count(self.notifications_per_invocation),
                "custom notifications per call, hook or notification",
            ),
            (
                "notifications_rate",
                Per(self.notifications_rate),
                "custom notifications in all, over time",
            ),
            (
                "log_lines_rate",
                Per(self.log_lines_rate),
                "log lines; the rest are dropped and counted",
            ),
            (
                "log_bytes_rate",
                Per(self.log_bytes_rate),
                "bytes of log lines",
            ),
            (
                "store_max_keys",
                n(self.store_max_keys),
                "keys in the store",
            ),
            (
                "store_max_bytes",
                n(self.store_max_bytes),
                "bytes in the store, keys and values",
            ),
            (
                "wasm_max_mib",
                Count(self.wasm_max_mib),
                "largest .wasm, checked before it is read",
            ),
            (
                "compile_timeout_ms",
                Count(self.compile_timeout_ms),
                "wall time to compile the guest",
            ),
            (
                "compile_memory_mib",
                Count(self.compile_memory_mib),
                "address space of the process compiling the guest",
            ),
        ]
    }

    /// Every limit as `(key, value as TOML, what it bounds)`: what `inspect`
    /// shows and `install` writes.
    pub fn rows(&self) -> Vec<(&'static str, String, &'static str)> {
        self.entries()
            .into_iter()
            .map(|(key, bound, what)| {
                let value = match bound {
                    Bound::Count(n) => n.to_string(),
                    Bound::Per(Rate {
                        per_sec,
                        burst: None,
                    }) => format!("{{ per_sec = {per_sec} }}"),
                    Bound::Per(Rate {
                        per_sec,
                        burst: Some(burst),
                    }) => {
                        format!("{{ per_sec = {per_sec}, burst = {burst} }}")
                    }
                };
                (key, value, what)
            })
            .collect()
    }

    /// Every limit must let something through: zero would stop the guest
    /// for good, which is not a limit but a typo. (`hook_instances = 0`
    /// means hooks share the calls' instances.)
    pub fn validate(&self) -> anyhow::Result<()> {
        for (key, bound, _) in self.entries() {
            match bound {
                Bound::Count(0) if key != "hook_instances" => {
                    bail!("[limits] {key} must be greater than zero")
                }
                Bound::Per(rate) if rate.per_sec == 0 || rate.burst() == 0 => {
                    bail!("[limits] {key}: per_sec and burst must be greater than zero")
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// One limit's value.
enum Bound {
    Count(u64),
    Per(Rate),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_install_and_inspect_write_are_toml_for_the_same_limits() {
        let limits = Limits {
            log_lines_rate: Rate {
                per_sec: 7,
                burst: None,
            },
            ..Limits::default()
        };
        let text: String = limits
            .rows()
            .iter()
            .map(|(key, value, _)| format!("{key} = {value}\n"))
            .collect();
        assert_eq!(toml::from_str::<Limits>(&text).unwrap(), limits);
        assert_eq!(limits.log_lines_rate.burst(), 7);
    }

    #[test]
    fn a_limit_of_zero_is_refused() {
        let limits: Limits = toml::from_str("node_calls_rate = { per_sec = 0 }").unwrap();
        assert_eq!(
            limits.validate().unwrap_err().to_string(),
            "[limits] node_calls_rate: per_sec and burst must be greater than zero"
        );
        let limits: Limits = toml::from_str("hook_instances = 0").unwrap();
        limits
            .validate()
            .expect("hooks may share the calls' instances");
    }
}
