//! The compiled-code cache: Cranelift compiles a guest once per distinct file
//! and engine, later starts load the machine code (a Rust guest compiles in
//! ~100 ms, a Python or JavaScript runtime in seconds; loading takes ms).
//!
//! An entry is native code the host runs, so it is trusted like the host
//! binary: it is used only when a keyed MAC (BLAKE3) over the `.wasm`'s
//! SHA-256, this engine's identity and the code proves this user's host
//! compiled it from this very `.wasm`. The key is 32 random bytes in the
//! directory (`mac-key`, 0600). The directory is made 0700 and used only when
//! this user owns it and nobody else may write it; entries are written 0600
//! through a temporary file and a rename, and no symbolic link is followed.
//! Anything else is logged and compiled afresh.
//!
//! Entries are named by the SHA-256 of the `.wasm` and of the engine's
//! compilation settings, so a swapped guest or another host version never
//! looks up stale code. The directory is `$CLN_WASM_HOST_CACHE` (`off`
//! disables it), else `$XDG_CACHE_HOME/cln-wasm-host`, else
//! `~/.cache/cln-wasm-host`.

use super::compile;
use crate::policy::Limits;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// What makes the code: this engine's settings and this host's version.
fn engine_identity(engine: &Engine) -> [u8; 32] {
    let mut sha = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut sha);
    sha.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    sha.0.finalize().into()
}

/// The file name of the entry for `digest` made by `engine`.
fn entry_name(identity: &[u8; 32], digest: &str) -> String {
    let mut sha = Sha256::new();
    sha.update(digest.as_bytes());
    sha.update(identity);
    format!("{:x}.cwasm", sha.finalize())
}

/// The component for `wasm` (whose [`digest`] is given): from the cache when
/// this host compiled it before, else compiled now (within `limits`) and
/// stored. Cache trouble is logged and means a fresh compile, never a failure.
pub fn component(
    engine: &Engine,
    wasm: &[u8],
    digest: &str,
    limits: &Limits,
) -> anyhow::Result<Component> {
    let fresh = || -> anyhow::Result<(Vec<u8>, Component)> {
        let code = compile::compile(engine, wasm, limits)?;
        // SAFETY: `code` was compiled just now, from `wasm`, by this binary.
        let component = unsafe { Component::deserialize(engine, &code)? };
        Ok((code, component))
    };
    let Some(dir) = dir() else {
        return Ok(fresh()?.1);
    };
    let cache = match Cache::open(&dir) {
        Ok(cache) => cache,
        Err(e) => {
            log::warn!(
                "not using the compiled-code cache {}: {e:#}; compiling afresh, nothing cached",
                dir.display()
            );
            return Ok(fresh()?.1);
        }
    };
    let identity = engine_identity(engine);
    let path = cache.dir.join(entry_name(&identity, digest));
    match cache.load(engine, &path, &identity, digest) {
        Ok(Some(component)) => {
            log::debug!("loaded from the compiled-code cache ({})", path.display());
            return Ok(component);
        }
        Ok(None) => {}
        Err(e) => log::warn!(
            "refusing compiled-code cache entry {}: {e:#}; compiling afresh and replacing it",
            path.display()
        ),
    }
    let (code, component) = fresh()?;
    match cache.store(&path, &identity, digest, &code) {
        Ok(()) => log::debug!("compiled and cached ({})", path.display()),
        Err(e) => log::warn!("cannot write the compiled-code cache: {e:#}"),
    }
    Ok(component)
}

/// The cache directory, checked, and its MAC key.
struct Cache {
    dir: PathBuf,
    key: [u8; 32],
}

/// Names the MAC covers first, so that its key signs nothing else.
const MAC_CONTEXT: &[u8] = b"cln-wasm-host compiled-code cache entry v1\0";
const MAC_LEN: usize = 32;
const KEY_FILE: &str = "mac-key";

/// Distinguishes the temporary files of one process's concurrent writes.
static TEMP: AtomicU64 = AtomicU64::new(0);

impl Cache {
    /// `dir`, made 0700 if missing, if this user owns it and only this user
    /// may write it; its key, made if missing, under the same terms.
    fn open(dir: &Path) -> anyhow::Result<Cache> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            // Whatever the umask took away: the owner needs all of it.
            Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("setting the mode of {}", dir.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
        let meta = std::fs::symlink_metadata(dir)
            .with_context(|| format!("reading {}'s metadata", dir.display()))?;
        if meta.file_type().is_symlink() {
            bail!("it is a symbolic link");
        }
        if !meta.is_dir() {
            bail!("it is not a directory");
        }
        private(&meta, 0o022, "others may write it")?;
        let key = key(dir).with_context(|| format!("its key {}", dir.join(KEY_FILE).display()))?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            key,
        })
    }

    /// The MAC of `code` as the compilation of `digest` by `identity`.
    fn mac(&self, identity: &[u8; 32], digest: &str, code: &[u8]) -> blake3::Hash {
        let mut mac = blake3::Hasher::new_keyed(&self.key);
        mac.update(MAC_CONTEXT)
            .update(digest.as_bytes())
            .update(identity)
            .update(code);
        mac.finalize()
    }

    /// The entry at `path`: `None` when there is none, `Err` when it is not
    /// this host's compilation of `digest` (damaged, foreign, or planted).
    fn load(
        &self,
        engine: &Engine,
        path: &Path,
        identity: &[u8; 32],
        digest: &str,
    ) -> anyhow::Result<Option<Component>> {
        let mut file = match open_nofollow(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("opening it"),
        };
        if !file.metadata()?.is_file() {
            bail!("it is not a regular file");
        }
        // Read whole, then checked: what is deserialized is what was checked.
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).context("reading it")?;
        if bytes.len() < MAC_LEN {
            bail!("it is too short to hold a MAC");
        }
        let (mac, code) = bytes.split_at(MAC_LEN);
        let expected = self.mac(identity, digest, code);
        // blake3::Hash compares in constant time.
        if expected != blake3::Hash::from_bytes(mac.try_into().expect("MAC_LEN bytes")) {
            bail!(
                "its MAC does not match: it is not this host's compilation of this .wasm (damaged or foreign)"
            );
        }
        // SAFETY: the MAC proves this user's host compiled `code` from this
        // `.wasm` with this engine (the key never leaves this user's 0700
        // directory), and `code` is in our memory, not a file that may change.
        let component = unsafe { Component::deserialize(engine, code) }
            .map_err(anyhow::Error::from)
            .context("wasmtime refused it")?;
        Ok(Some(component))
    }

    /// Write `code` with its MAC at `path`, 0600, whole or not at all.
    fn store(
        &self,
        path: &Path,
        identity: &[u8; 32],
        digest: &str,
        code: &[u8],
    ) -> anyhow::Result<()> {
        let mac = self.mac(identity, digest, code);
        let tmp = temp_path(path);
        let result = (|| {
            let mut file = create_private(&tmp)?;
            file.write_all(mac.as_bytes())?;
            file.write_all(code)?;
            // Write then rename: a concurrent start never reads half a file,
            // and a link planted at `path` is replaced, not followed.
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.with_context(|| format!("writing {}", path.display()))
    }
}

/// The directory's MAC key, made now if it has none. Refused unless this
/// user owns it and nobody else may read or write it.
fn key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join(KEY_FILE);
    let file = match open_nofollow(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            make_key(&path)?;
            open_nofollow(&path).with_context(|| format!("opening {}", path.display()))?
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        bail!("it is not a regular file");
    }
    private(&meta, 0o077, "others may read or write it")?;
    let mut key = [0u8; 32];
    let mut reader = file.take(33);
    let mut bytes = Vec::with_capacity(33);
    reader.read_to_end(&mut bytes)?;
    if bytes.len() != key.len() {
        bail!("it does not hold a 32-byte key");
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// A new random key at `path`, unless another process just made one (a hard
/// link never replaces a file, so exactly one key wins).
fn make_key(path: &Path) -> anyhow::Result<()> {
    let mut key = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut key))
        .context("reading /dev/urandom for the cache's key")?;
    let tmp = temp_path(path);
    let written = create_private(&tmp).and_then(|mut file| file.write_all(&key));
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    linked.with_context(|| format!("making {}", path.display()))
}

/// Owned by this user, and none of `forbidden` (mode bits) set.
fn private(meta: &std::fs::Metadata, forbidden: u32, what: &str) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        bail!(
            "it is owned by uid {}, not this user (uid {me})",
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode & forbidden != 0 {
        bail!("{what} (mode {mode:04o})");
    }
    Ok(())
}

fn open_nofollow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// A new file only this user may read and write, whatever the umask.
fn create_private(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

fn temp_path(path: &Path) -> PathBuf {
    let n = TEMP.fetch_add(1, Ordering::Relaxed);
    path.with_extension(format!("tmp{}-{n}", std::process::id()))
}
