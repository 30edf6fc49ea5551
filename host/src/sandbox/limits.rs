//! Limits on one guest instance that wasmtime enforces for us, through a
//! [`ResourceLimiter`] on its `Store`: the bytes of every linear memory and
//! table together, how many of each (and of core instances) it may create,
//! and how much the host copies out of the guest in one crossing.

use crate::policy::Limits;
use wasmtime::ResourceLimiter;

/// Linear memories one instance may create. Each reserves wasmtime's whole
/// address-space slot (gigabytes of virtual memory) even when empty, so their
/// number is bounded apart from their bytes. The real guests use one each
/// (myplugin, peerpolicy, the Python, JS and C builds; README "Limits").
pub const MAX_MEMORIES: usize = 4;
/// Tables one instance may create. The real guests use 2 (the component's
/// shims add one to the guest's own).
pub const MAX_TABLES: usize = 16;
/// Core instances one instance may create. The real guests use 3 (Rust),
/// 4 (JS), 5 (C) and 14 (Python).
pub const MAX_CORE_INSTANCES: usize = 64;

/// What wasmtime keeps per table element: a pointer.
const TABLE_ELEMENT_BYTES: usize = size_of::<usize>();

/// Room above the largest answer or node params in one crossing, for the
/// rest of it (a method name, a filter, list entries as the host holds them).
const CROSSING_SLACK: usize = 64 << 10;

/// The most the host copies out of the guest in one crossing (an export's
/// result, an import's arguments), set as wasmtime's hostcall fuel: wasmtime
/// counts each string's bytes and each list's entries against it *before*
/// copying them, and stops the lift past it. So a manifest whose strings
/// alias one large buffer is refused after at most this many bytes, not
/// copied once per alias. The size checks that name a limit
/// (`answer_max_bytes`, `node_params_max_bytes`) come after, on what was
/// copied.
pub fn crossing_bytes(limits: &Limits) -> usize {
    limits
        .answer_max_bytes
        .max(limits.node_params_max_bytes)
        .saturating_add(CROSSING_SLACK)
}

/// Whether `e` is wasmtime stopping a lift at [`crossing_bytes`]. wasmtime
/// keeps that error's type private, so its message is what tells it apart
/// (a test pins it: `a_manifest_aliasing_one_string_is_refused_before_it_is_copied`).
pub fn past_crossing(e: &wasmtime::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .to_string()
            .starts_with("too much data is being copied between the host and the guest")
    })
}

/// Caps the bytes of an instance's linear memories and tables together
/// (`[limits] memory_mib`), and their number, and remembers that the cap was
/// hit, so a trap that follows is reported as what it is.
pub struct MemoryCap {
    max_bytes: usize,
    /// The cap was hit during the current call (or the instantiation).
    pub hit: bool,
    /// Bytes of every memory and table the instance holds now. They never
    /// shrink, so this is also the most it held.
    held: usize,
    /// The last memory growth allowed, taken back if wasmtime then reports
    /// that it failed (the OS refused the pages). Tables need no such
    /// record: past their own maximum, the only way their growth fails
    /// once allowed, `table_growing` refuses it itself.
    pending: usize,
}

impl MemoryCap {
    /// Past this share of the cap an instance is retired after its call:
    /// runtimes that never give memory back (componentize-js grows ~0.45 KiB
    /// a call) are replaced before they hit the cap, without failing a call.
    const RECYCLE_AT: f64 = 0.75;

    /// A cap of `max_bytes` for memories and tables together.
    pub fn new(max_bytes: usize) -> MemoryCap {
        MemoryCap {
            max_bytes,
            hit: false,
            held: 0,
            pending: 0,
        }
    }

    /// Bytes of memories and tables held now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Grown past [`Self::RECYCLE_AT`] of the cap: retire after this call.
    pub fn worn_out(&self) -> bool {
        self.held as f64 > self.max_bytes as f64 * Self::RECYCLE_AT
    }

    /// Count `grown` more bytes, if the sum stays within the cap.
    fn grow(&mut self, grown: usize) -> bool {
        match self.held.checked_add(grown) {
            Some(total) if total <= self.max_bytes => {
                self.held = total;
                true
            }
            _ => {
                self.hit = true;
                false
            }
        }
    }
}

impl ResourceLimiter for MemoryCap {
    /// Also called when a memory is created (`current` 0, `desired` its
    /// minimum), so every memory of the instance is counted from its start.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Past its own maximum the growth fails anyway: not counted.
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let grown = desired.saturating_sub(current);
        if !self.grow(grown) {
            return Ok(false);
        }
        self.pending = grown;
        Ok(true)
    }

    /// wasmtime calls this right after an allowed growth fails (with 64 KiB
    /// pages, the only kind the engine accepts, never otherwise).
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.held = self.held.saturating_sub(std::mem::take(&mut self.pending));
        log::debug!("a memory growth failed: {error:#}");
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let grown = desired
            .saturating_sub(current)
            .saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow(grown))
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn memories_and_tables_share_one_cap() {
        let mut cap = MemoryCap::new(64 * MIB);
        assert!(cap.memory_growing(0, 63 * MIB, None).unwrap());
        // A second memory of 63 MiB would be 126 MiB in all.
        assert!(!cap.memory_growing(0, 63 * MIB, None).unwrap());
        assert!(cap.hit);
        // A table of 2^20 elements is 8 MiB: past the last MiB left.
        assert!(!cap.table_growing(0, 1 << 20, None).unwrap());
        assert!(cap.table_growing(0, 1 << 17, None).unwrap());
        assert_eq!(cap.held(), 64 * MIB);
        assert!(cap.worn_out());
    }

    #[test]
    fn a_growth_that_fails_after_it_was_allowed_is_taken_back() {
        let mut cap = MemoryCap::new(64 * MIB);
        assert!(cap.memory_growing(MIB, 33 * MIB, None).unwrap());
        assert_eq!(cap.held(), 32 * MIB);
        cap.memory_grow_failed(wasmtime::format_err!("no pages"))
            .unwrap();
        assert_eq!(cap.held(), 0);
        assert!(!cap.worn_out());
        // Past a memory's own maximum: refused, nothing counted.
        assert!(!cap.memory_growing(0, 2 * MIB, Some(MIB)).unwrap());
        assert!(!cap.table_growing(0, 10, Some(5)).unwrap());
        assert_eq!((cap.held(), cap.hit), (0, false));
    }
}
