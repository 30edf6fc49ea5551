//! What a guest may spend over time: node calls, custom notifications and
//! log lines per second (token buckets), and what it may keep in its store.
//! One [`Meters`] per plugin, shared by its instances and kept across `init`
//! and swaps, so neither more instances nor a new `.wasm` buys more.

use crate::policy::{Limits, Rate};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Longest line a guest gets into lightningd's log (it is for lines, not
/// documents); longer ones are cut.
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A token bucket: `burst` tokens at most, refilled at `per_sec`.
pub struct Bucket {
    rate: Rate,
    level: Mutex<Level>,
}

struct Level {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Full: a guest may spend its burst at once.
    pub fn new(rate: Rate) -> Bucket {
        Bucket {
            rate,
            level: Mutex::new(Level {
                tokens: rate.burst() as f64,
                at: Instant::now(),
            }),
        }
    }

    /// Spend `n` tokens if there are that many.
    pub fn take(&self, n: u64) -> bool {
        let mut level = self.level.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(level.at).as_secs_f64() * self.rate.per_sec as f64;
        level.tokens = (level.tokens + refill).min(self.rate.burst() as f64);
        level.at = now;
        if level.tokens >= n as f64 {
            level.tokens -= n as f64;
            true
        } else {
            false
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }
}

/// The log lines a guest causes: its own (`events.log`, stdout, stderr) and
/// the host's refusals of what it tried. Past the rate, lines are dropped
/// and counted, and the count is logged in one line when the call ends.
pub struct LogBudget {
    lines: Bucket,
    bytes: Bucket,
    dropped: AtomicU64,
}

impl LogBudget {
    /// Log `line` at `level` (cut to [`MAX_LOG_LINE`]), or count it dropped.
    pub fn log(&self, level: log::Level, line: &str) {
        let line = truncated(line, MAX_LOG_LINE);
        if self.lines.take(1) && self.bytes.take(line.len() as u64) {
            log::log!(level, "{line}");
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Say how many lines were dropped since the last time, if any: one line
    /// for the lot.
    pub fn report_dropped(&self) {
        if self.dropped.load(Ordering::Relaxed) == 0 {
            return;
        }
        let n = self.dropped.swap(0, Ordering::Relaxed);
        if n > 0 {
            log::warn!(
                "{n} lines dropped: the guest logged past [limits] log_lines_rate ({}) or \
                 log_bytes_rate ({})",
                self.lines.rate(),
                self.bytes.rate()
            );
        }
    }
}

/// What the guest keeps in its store, as last read from or written to the
/// node: each key's size (key and value bytes).
#[derive(Default)]
pub struct StoreUsage {
    sizes: HashMap<String, usize>,
    bytes: usize,
}

impl StoreUsage {
    /// Usage with `key` holding `size` bytes; `Err` names the limit it
    /// would pass, and how.
    pub fn reserve(
        &mut self,
        key: &str,
        size: usize,
        limits: &Limits,
    ) -> Result<Option<usize>, (&'static str, String)> {
        let old = self.sizes.get(key).copied();
        let keys = self.sizes.len() + usize::from(old.is_none());
        let bytes = self.bytes - old.unwrap_or(0) + size;
        if keys > limits.store_max_keys {
            return Err((
                "store_max_keys",
                format!(
                    "the store holds {} keys, its most ([limits] store_max_keys)",
                    self.sizes.len()
                ),
            ));
        }
        if bytes > limits.store_max_bytes {
            return Err((
                "store_max_bytes",
                format!(
                    "the store would hold {bytes} bytes, past [limits] store_max_bytes ({})",
                    limits.store_max_bytes
                ),
            ));
        }
        self.set(key, Some(size));
        Ok(old)
    }

    /// `key` now holds `size` bytes, or nothing.
    pub fn set(&mut self, key: &str, size: Option<usize>) {
        if let Some(old) = self.sizes.remove(key) {
            self.bytes -= old;
        }
        if let Some(size) = size {
            self.bytes += size;
            self.sizes.insert(key.to_string(), size);
        }
    }
}

/// One plugin's meters.
pub struct Meters {
    pub log: LogBudget,
    pub node_calls: Bucket,
    pub notifications: Bucket,
    /// `None` until read from the node, at the first write.
    store: Mutex<Option<StoreUsage>>,
}

impl Meters {
    pub fn new(limits: &Limits) -> Meters {
        Meters {
            log: LogBudget {
                lines: Bucket::new(limits.log_lines_rate),
                bytes: Bucket::new(limits.log_bytes_rate),
                dropped: AtomicU64::new(0),
            },
            node_calls: Bucket::new(limits.node_calls_rate),
            notifications: Bucket::new(limits.notifications_rate),
            store: Mutex::new(None),
        }
    }

    /// The store's usage, held: `None` if it was never read.
    pub fn store(&self) -> MutexGuard<'_, Option<StoreUsage>> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_refills_at_its_rate() {
        let bucket = Bucket::new(Rate::new(1000, 3));
        assert!(bucket.take(1) && bucket.take(2));
        assert!(!bucket.take(1));
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(bucket.take(3));
        assert!(!bucket.take(4), "never more than the burst");
    }

    #[test]
    fn the_store_counts_keys_and_bytes_and_replacing_a_key_frees_its_old_size() {
        let limits = Limits {
            store_max_keys: 2,
            store_max_bytes: 100,
            ..Limits::default()
        };
        let mut usage = StoreUsage::default();
        assert_eq!(usage.reserve("a", 60, &limits), Ok(None));
        assert_eq!(usage.reserve("a", 50, &limits), Ok(Some(60)));
        assert_eq!(
            usage.reserve("b", 51, &limits),
            Err((
                "store_max_bytes",
                "the store would hold 101 bytes, past [limits] store_max_bytes (100)".into()
            ))
        );
        assert_eq!(usage.reserve("b", 50, &limits), Ok(None));
        assert_eq!(
            usage.reserve("c", 0, &limits),
            Err((
                "store_max_keys",
                "the store holds 2 keys, its most ([limits] store_max_keys)".into()
            ))
        );
        usage.set("a", None);
        assert_eq!(usage.reserve("c", 50, &limits), Ok(None));
    }
}
