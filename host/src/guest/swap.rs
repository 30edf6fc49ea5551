//! Hot swap: when `NAME.wasm` changes on disk, or the operator calls
//! `NAME-reload`, the host compiles and checks the new component and, if its
//! manifest is the one lightningd already has, routes new calls to it. Calls in
//! flight finish on the guest they started on (they hold it), so no call is
//! lost or answered twice. A file that does not load, or whose manifest
//! differs (new options or methods need `plugin stop`/`plugin start`), is
//! refused with a log line and the old guest keeps serving.

use super::files::Files;
use super::load::{LoadedGuest, fetch_manifest, load_with};
use super::manifest;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How often the watcher looks at `NAME.wasm`. A change is acted on once the
/// file has stayed the same for one more look, so a file still being written
/// is not loaded half-way.
const POLL: Duration = Duration::from_millis(300);

/// The guest that serves new calls, and how to replace it.
pub struct GuestSlot {
    files: Files,
    current: RwLock<Arc<LoadedGuest>>,
    /// One swap at a time (the watcher and `NAME-reload` may race).
    swapping: Mutex<()>,
}

impl GuestSlot {
    pub fn new(files: Files, guest: LoadedGuest) -> GuestSlot {
        GuestSlot {
            files,
            current: RwLock::new(Arc::new(guest)),
            swapping: Mutex::new(()),
        }
    }

    /// The guest new calls go to.
    pub fn current(&self) -> Arc<LoadedGuest> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ask the current guest for its manifest again (after the node said it
    /// allows deprecated APIs, which the guest may read).
    pub fn reask_manifest(&self) -> anyhow::Result<()> {
        let old = self.current();
        let manifest = fetch_manifest(&old.sandbox, &self.files.wasm)?;
        if manifest::same(&manifest, &old.declared) {
            return Ok(());
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(LoadedGuest::new(old.sandbox.clone(), manifest)?);
        Ok(())
    }

    /// The method the host adds for the operator: `NAME-reload`.
    pub fn reload_method(&self) -> String {
        manifest::reload_method(&self.files.name)
    }

    /// The host's `NAME-audit`.
    pub fn audit_method(&self) -> String {
        manifest::audit_method(&self.files.name)
    }

    /// Load `NAME.wasm` again and swap it in if it fits. `Ok` holds the new
    /// guest's SHA-256; `Err` why the old one keeps serving.
    pub fn reload(&self) -> Result<String, String> {
        let _one = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current();
        let refuse = |reason: String| {
            log::warn!(
                "not swapping in {}: {reason}; the old guest keeps serving",
                self.files.wasm.display()
            );
            Err(reason)
        };
        let new = match load_with(&self.files, old.sandbox.session()) {
            Ok(new) => new,
            Err(e) => return refuse(format!("{e:#}")),
        };
        if !manifest::same(&new.manifest, &old.manifest) {
            return refuse(
                "its manifest differs; `plugin stop` and `plugin start` are needed to apply it"
                    .into(),
            );
        }
        let digest = new.sandbox.digest.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        log::info!(
            "now serving {} (sha256 {digest})",
            self.files.wasm.display()
        );
        Ok(digest)
    }
}

/// What identifies a version of the file without reading it.
#[derive(PartialEq, Clone, Copy, Debug)]
pub struct Stamp {
    len: u64,
    mtime_ns: i128,
    inode: u64,
}

/// The file's stamp now (`None` if it is missing); take it before loading.
pub fn stamp(files: &Files) -> Option<Stamp> {
    let meta = std::fs::metadata(&files.wasm).ok()?;
    let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    Some(Stamp {
        len: meta.len(),
        mtime_ns,
        inode: meta.ino(),
    })
}

/// Watch `NAME.wasm` for the life of the process, swapping on each change
/// after the version `seen` (the one loaded).
pub fn watch(slot: Arc<GuestSlot>, mut seen: Option<Stamp>) {
    let spawned = std::thread::Builder::new()
        .name("wasm-watcher".into())
        .spawn(move || {
            let mut pending: Option<Stamp> = None;
            loop {
                std::thread::sleep(POLL);
                let now = stamp(&slot.files);
                if now == seen {
                    pending = None;
                    continue;
                }
                // Changed: act once it holds still for a poll.
                if now.is_some() && pending == now {
                    let _ = slot.reload();
                    seen = now;
                    pending = None;
                } else {
                    pending = now;
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot watch for a new .wasm: {e}; `NAME-reload` still works");
    }
}
