//! A guest's private directory, when it asks for one (`manifest.dir`) and
//! the operator grants it (`[grants] dir`): `wasm-data/<plugin>/` under the
//! directory the host runs in (lightningd starts plugins in its network
//! directory, e.g. `~/.lightning/regtest/`), made 0700 by the host.
//!
//! It is opened here with `cap-std`, and WASI gets that very directory (by
//! its descriptor) as the guest's `.`: wasmtime-wasi resolves every path
//! beneath it, so `..`, absolute paths and symlinks cannot leave it.
//!
//! WASI has no quota hook, so the quota is kept between invocations: after
//! each one the host adds up what the directory holds ([`PrivateDir::usage`]).
//! Once it is over, every instance made from then on gets the directory
//! read-only, and instances made before are replaced before their next
//! invocation: the guest may read, not write, until the operator frees space
//! or raises the quota. So a guest holds at most its quota plus what the
//! invocations running when it crossed wrote before they ended (each within
//! its deadline).

use super::Audit;
use crate::policy::DirGrant;
use anyhow::{Context, bail};
use cap_std::fs::{Dir, Permissions, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where private directories live, under the directory the host runs in.
pub const DATA_DIR: &str = "wasm-data";

/// What each entry costs against the quota on top of its length: a file
/// system block, so empty files and directories are not free.
pub const ENTRY_BYTES: u64 = 4096;

/// One guest's directory, opened, and where its quota stands.
pub struct PrivateDir {
    /// Opened once; what WASI preopens and what usage walks.
    dir: Dir,
    /// For the log and the preopen's fallback.
    pub path: PathBuf,
    pub grant: DirGrant,
    /// Whether it was over its quota at the last count.
    over: AtomicBool,
    /// Bytes at the last count.
    held: AtomicU64,
}

impl PrivateDir {
    /// Make (if need be) and open `<base>/wasm-data/<plugin>/`, both 0700;
    /// refused when either is something else than a directory (a symlink
    /// included), or `plugin` is not one plain file name.
    pub fn open(base: &Path, plugin: &str, grant: DirGrant) -> anyhow::Result<PrivateDir> {
        if plugin.is_empty()
            || plugin == "."
            || plugin == ".."
            || plugin.contains(['/', '\\', '\0'])
        {
            bail!("plugin name {plugin:?} cannot name a directory");
        }
        let path = base.join(DATA_DIR).join(plugin);
        let opening = || format!("opening the plugin's directory {}", path.display());
        let base = Dir::open_ambient_dir(base, cap_std::ambient_authority())
            .with_context(|| format!("opening {}", base.display()))
            .with_context(opening)?;
        let data = private_subdir(&base, DATA_DIR).with_context(opening)?;
        let dir = private_subdir(&data, plugin).with_context(opening)?;
        let private = PrivateDir {
            dir,
            path,
            grant,
            over: AtomicBool::new(false),
            held: AtomicU64::new(0),
        };
        Ok(private)
    }

    /// Where WASI opens it: the descriptor cap-std holds (so the guest gets
    /// the directory checked here, even if the path is swapped since), or
    /// its path where `/proc` is missing.
    pub fn preopen_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        let fd = PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()));
        if fd.exists() { fd } else { self.path.clone() }
    }

    /// Whether the guest may write there now (under its quota at the last
    /// count).
    pub fn writable(&self) -> bool {
        !self.over.load(Ordering::SeqCst)
    }

    /// Bytes it held at the last count.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// Count what it holds now, after an invocation; on crossing the quota
    /// either way, log it (and count going over in `audit`). An error
    /// counting counts as over: writes stop rather than run unbounded.
    pub fn recount(&self, plugin: &str, audit: &Audit) {
        let (held, over) = match self.usage() {
            Ok(held) => (held, held > self.grant.quota_bytes()),
            Err(e) => {
                log::warn!(
                    "cannot count what {} holds ({e:#}): read-only until it can",
                    self.path.display()
                );
                (self.held(), true)
            }
        };
        self.held.store(held, Ordering::SeqCst);
        let was_over = self.over.swap(over, Ordering::SeqCst);
        if over && !was_over {
            audit.count("over_limits", "dir_quota", false);
            log::warn!(
                "plugin {plugin}'s directory {} holds {held} bytes, over [grants] dir \
                 quota_mib = {}: it may read there but not write until it holds less",
                self.path.display(),
                self.grant.quota_mib
            );
        } else if was_over && !over {
            log::info!(
                "plugin {plugin}'s directory holds {held} bytes, under its quota again: writable"
            );
        }
    }

    /// Bytes the directory holds: every entry's length plus [`ENTRY_BYTES`],
    /// subdirectories included; symlinks counted, never followed. Stops
    /// counting once past twice the quota (that is over enough).
    pub fn usage(&self) -> anyhow::Result<u64> {
        let stop = self.grant.quota_bytes().saturating_mul(2);
        let mut held = 0u64;
        let mut pending = vec![self.dir.try_clone().context("reopening the directory")?];
        while let Some(dir) = pending.pop() {
            for entry in dir.entries().context("listing the directory")? {
                let entry = entry.context("listing the directory")?;
                let meta = entry.metadata().context("reading an entry's metadata")?;
                held = held.saturating_add(meta.len()).saturating_add(ENTRY_BYTES);
                if held > stop {
                    return Ok(held);
                }
                if entry
                    .file_type()
                    .context("reading an entry's type")?
                    .is_dir()
                {
                    pending.push(entry.open_dir().context("opening a subdirectory")?);
                }
            }
        }
        Ok(held)
    }
}

/// `name` in `parent`, made if missing, checked to be a directory (not a
/// symlink to one) and made 0700: the host's user alone may look in.
fn private_subdir(parent: &Dir, name: &str) -> anyhow::Result<Dir> {
    match parent.create_dir(name) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {name}")),
    }
    let meta = parent
        .symlink_metadata(name)
        .with_context(|| format!("reading {name}"))?;
    if !meta.is_dir() {
        bail!("{name} exists and is not a directory (a symlink is refused)");
    }
    parent
        .set_permissions(name, Permissions::from_mode(0o700))
        .with_context(|| format!("making {name} 0700"))?;
    parent
        .open_dir(name)
        .with_context(|| format!("opening {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn made_private_and_counted() {
        let base = tempfile::tempdir().unwrap();
        let grant = DirGrant { quota_mib: 1 };
        let dir = PrivateDir::open(base.path(), "p", grant).unwrap();
        for d in [base.path().join(DATA_DIR), dir.path.clone()] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
        }
        assert_eq!(dir.usage().unwrap(), 0);
        std::fs::write(dir.path.join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path.join("sub")).unwrap();
        std::fs::write(dir.path.join("sub/b"), [0u8; 10]).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path.join("out")).unwrap();
        // The symlink counts as itself ("/etc": 4 bytes), never followed.
        let sub = std::fs::metadata(dir.path.join("sub")).unwrap().len();
        assert_eq!(dir.usage().unwrap(), 100 + 10 + 4 + sub + 4 * ENTRY_BYTES);
        let audit = Audit::default();
        dir.recount("p", &audit);
        assert!(dir.writable());
        std::fs::write(dir.path.join("big"), vec![0u8; 1 << 20]).unwrap();
        dir.recount("p", &audit);
        assert!(!dir.writable());
        assert_eq!(audit.to_json()["over_limits"]["dir_quota"], 1);
        std::fs::remove_file(dir.path.join("big")).unwrap();
        dir.recount("p", &audit);
        assert!(dir.writable());
    }

    #[test]
    fn refused_when_not_a_plain_directory() {
        let base = tempfile::tempdir().unwrap();
        let grant = DirGrant { quota_mib: 1 };
        for bad in ["", ".", "..", "a/b"] {
            assert!(
                PrivateDir::open(base.path(), bad, grant).is_err(),
                "{bad:?}"
            );
        }
        std::fs::create_dir(base.path().join(DATA_DIR)).unwrap();
        std::os::unix::fs::symlink("/tmp", base.path().join(DATA_DIR).join("p")).unwrap();
        let e = PrivateDir::open(base.path(), "p", grant).err().unwrap();
        assert!(format!("{e:#}").contains("not a directory"), "{e:#}");
    }
}
