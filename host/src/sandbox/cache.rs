//! The compiled-code cache: Cranelift compiles a guest once per distinct file
//! and engine, later starts load the machine code (a Rust guest compiles in
//! ~100 ms, a Python or JavaScript runtime in seconds; loading takes ms).
//!
//! Entries are keyed by the SHA-256 of the `.wasm` and of the engine's
//! compilation settings, so a swapped guest or another host version never
//! loads stale code. The directory is `$CLN_WASM_HOST_CACHE` (`off` disables
//! it), else `$XDG_CACHE_HOME/cln-wasm-host`, else `~/.cache/cln-wasm-host`.
//! It must be writable by the node's user only: its files are trusted code.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept, if anywhere.
pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("CLN_WASM_HOST_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .map(|base| base.join("cln-wasm-host")),
    }
}

/// Feeds `Hash` values into SHA-256.
struct Sha(Sha256);

impl Hasher for Sha {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }
}

/// SHA-256 of a `.wasm`, in hex.
pub fn digest(wasm: &[u8]) -> String {
    format!("{:x}", Sha256::digest(wasm))
}

fn key(engine: &Engine, digest: &str) -> String {
    let mut sha = Sha(Sha256::new());
    sha.0.update(digest.as_bytes());
    engine.precompile_compatibility_hash().hash(&mut sha);
    sha.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    format!("{:x}", sha.0.finalize())
}

/// The component for `wasm` (whose [`digest`] is given): from the cache when it was compiled before,
/// else compiled now and stored. Cache trouble is logged, never fatal.
pub fn component(engine: &Engine, wasm: &[u8], digest: &str) -> anyhow::Result<Component> {
    let Some(dir) = dir() else {
        return Ok(Component::new(engine, wasm)?);
    };
    let path = dir.join(format!("{}.cwasm", key(engine, digest)));
    if path.exists() {
        // SAFETY: the file was written by `serialize` below, in a directory
        // only the node's user may write, under a key that includes the
        // source's hash; wasmtime also checks it matches this engine.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                log::debug!("loaded from the compiled-code cache ({})", path.display());
                return Ok(component);
            }
            Err(e) => log::warn!("ignoring cache entry {}: {e}", path.display()),
        }
    }
    let component = Component::new(engine, wasm)?;
    if let Err(e) = store(&dir, &path, &component) {
        log::warn!("cannot write the compiled-code cache: {e:#}");
    } else {
        log::debug!("compiled and cached ({})", path.display());
    }
    Ok(component)
}

fn store(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let bytes = component.serialize()?;
    // Write then rename: a concurrent start never reads half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}
