//! Limits on one guest instance that wasmtime enforces for us: linear
//! memory (and tables) through a [`ResourceLimiter`].

use wasmtime::ResourceLimiter;

/// Caps linear memory growth and remembers that the cap was hit, so a trap that
/// follows is reported as what it is.
pub struct MemoryCap {
    max_bytes: usize,
    /// The cap was hit during the current call.
    pub hit: bool,
    /// The largest linear memory this instance has grown to.
    pub grown_to: usize,
}

impl MemoryCap {
    /// Past this share of the cap an instance is retired after its call:
    /// runtimes that never give memory back (componentize-js grows ~0.45 KiB
    /// a call) are replaced before they hit the cap, without failing a call.
    const RECYCLE_AT: f64 = 0.75;

    /// A cap of `max_bytes`.
    pub fn new(max_bytes: usize) -> MemoryCap {
        MemoryCap {
            max_bytes,
            hit: false,
            grown_to: 0,
        }
    }

    /// Grown past [`Self::RECYCLE_AT`] of the cap: retire after this call.
    pub fn worn_out(&self) -> bool {
        self.grown_to as f64 > self.max_bytes as f64 * Self::RECYCLE_AT
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        self.grown_to = self.grown_to.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}
