//! Which plugin this is: its name and files, from the plugin file lightningd
//! started (or the `.wasm` a tool was given).

use crate::policy::Policy;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Where a plugin's parts live: its name, its guest, its policy's file.
///
/// The plugin lightningd starts is a small executable text file `DIR/NAME`
/// (`cln-wasm-host install` writes it) whose first line is
/// `#!/abs/path/of/cln-wasm-host`: the kernel runs it as
/// `cln-wasm-host DIR/NAME`, and the rest of the file is the operator's
/// policy in TOML (where `#!…` is a comment), naming the guest with
/// `wasm = "NAME.wasm"`. lightningd runs every plugin by its canonical path,
/// so a symlink to the host would run as `cln-wasm-host` and lose its name;
/// a file of its own keeps the name, is one file for the operator to review,
/// and every plugin shares one host binary.
#[derive(Clone)]
pub struct Files {
    pub name: String,
    pub wasm: PathBuf,
    /// The policy's file: the plugin file itself, or the tools' `--policy`.
    pub policy: PathBuf,
}

/// What every `.wasm` starts with; a plugin file is text.
const WASM_MAGIC: &[u8] = b"\0asm";

impl Files {
    /// From the plugin file the kernel gave us: its name is the file's name,
    /// its guest the policy's `wasm` (default `NAME.wasm`), beside it unless
    /// absolute.
    pub fn open(plugin_file: &Path) -> anyhow::Result<(Files, Policy)> {
        let name = plugin_file
            .file_name()
            .and_then(|n| n.to_str())
            .context("the plugin file has no usable file name")?
            .to_string();
        let policy = Policy::load(plugin_file)?;
        let dir = plugin_file.parent().unwrap_or(Path::new("."));
        let wasm = match &policy.wasm {
            Some(wasm) => dir.join(wasm),
            None => dir.join(format!("{name}.wasm")),
        };
        let files = Files {
            name,
            wasm,
            policy: plugin_file.to_path_buf(),
        };
        Ok((files, policy))
    }

    /// For the tools: `path` is a plugin file, or a `.wasm` whose name is its
    /// file stem and whose policy is `policy` (default: `NAME.toml` beside
    /// it; none there grants nothing).
    pub fn for_tool(path: &Path, policy: Option<PathBuf>) -> anyhow::Result<(Files, Policy)> {
        let mut magic = [0u8; 4];
        let is_wasm = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok_and(|()| magic == WASM_MAGIC);
        if !is_wasm && path.exists() {
            anyhow::ensure!(
                policy.is_none(),
                "{} is a plugin file: it carries its own policy, so --policy does not apply",
                path.display()
            );
            return Files::open(path);
        }
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .context("the .wasm path has no file name")?;
        let files = Files {
            name: name.to_string(),
            policy: policy.unwrap_or_else(|| path.with_extension("toml")),
            wasm: path.to_path_buf(),
        };
        let policy = Policy::load_or_default(&files.policy)?;
        Ok((files, policy))
    }
}
