//! `cln-wasm-host install GUEST.wasm [--name NAME] [--dir DIR]`: make a guest
//! a plugin lightningd can start, as an operator would, without a copy of the
//! host binary.
//!
//! It writes `DIR/NAME.wasm` (the guest, not executable, so a `--plugin-dir`
//! skips it) and `DIR/NAME`, the plugin file lightningd starts: a `#!` line
//! naming this binary, then the operator's policy (see
//! [`crate::guest::Files`]). The policy grants nothing; every
//! capability the guest asks for is written into it as a commented-out grant
//! with the guest's reason, for the operator to review and uncomment.

use super::review::{self, Ask, Kind};
use crate::bindings::Manifest;
use crate::guest::{self, Files};
use crate::policy::{Hook, Limits, Policy};
use crate::shown::{quoted, shown};
use anyhow::{Context, bail, ensure};
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Arguments of the `install` subcommand.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// The guest component.
    pub wasm: PathBuf,
    /// The plugin's name, as `plugin list` and the node's log show it
    /// (default: the .wasm's file stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Where to put the plugin: DIR/NAME and DIR/NAME.wasm.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Start from this policy (limits and grants the operator already
    /// reviewed) instead of one granting nothing.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Replace an existing plugin file, and the policy in it.
    #[arg(long)]
    pub force: bool,
}

/// Longest `#!` line the kernel reads (Linux: 256 bytes with `#!` and the
/// newline): a longer one would run something else, or nothing.
const MAX_SHEBANG: usize = 255;

/// Write the plugin and print how to start it.
pub fn run(args: InstallArgs) -> anyhow::Result<i32> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .wasm
            .file_stem()
            .and_then(|s| s.to_str())
            .context("the .wasm path has no file name; give --name")?
            .to_string(),
    };
    check_name(&name)?;
    let (policy, policy_text) = match &args.policy {
        Some(path) => {
            let policy = Policy::load(path)?;
            ensure!(
                policy.wasm.is_none(),
                "{} names a guest itself (`wasm = ...`); install names it",
                path.display()
            );
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            (policy, Some(text))
        }
        None => (Policy::default(), None),
    };

    // Load it as the plugin would: not a component of our world, or a bad
    // manifest, is refused before anything is written.
    let files = Files {
        name: name.clone(),
        wasm: args.wasm.clone(),
        policy: args.policy.clone().unwrap_or_default(),
    };
    let guest = guest::load(&files, policy.clone(), None)?;

    let host = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("finding this binary's own path")?;
    let host = host
        .to_str()
        .filter(|h| !h.chars().any(char::is_whitespace) && h.len() + 2 < MAX_SHEBANG)
        .with_context(|| {
            format!(
                "{} cannot be named in a `#!` line (no spaces, under {MAX_SHEBANG} bytes): \
                 install cln-wasm-host somewhere else",
                host.display()
            )
        })?
        .to_string();

    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let plugin_file = dir.join(&name);
    let wasm_file = dir.join(format!("{name}.wasm"));
    if plugin_file.exists() && !args.force {
        bail!(
            "{} exists: --force replaces it and the policy in it; to change only the guest, \
             copy the new .wasm over {} (the running plugin swaps it in)",
            plugin_file.display(),
            wasm_file.display()
        );
    }

    let same_file = args.wasm.canonicalize().ok() == wasm_file.canonicalize().ok();
    if !same_file {
        let bytes = std::fs::read(&args.wasm)
            .with_context(|| format!("reading {}", args.wasm.display()))?;
        write_replacing(&wasm_file, &bytes, 0o644)?;
    }
    let text = plugin_file_text(&host, &name, &plugin_file, &guest.declared, policy_text);
    write_replacing(&plugin_file, text.as_bytes(), 0o755)?;
    // What was written must be what the plugin will read.
    Files::open(&plugin_file)
        .with_context(|| format!("the written {} does not read back", plugin_file.display()))?;

    print!(
        "{}",
        how_to_start(&name, &plugin_file, &wasm_file, &guest.declared, &policy)
    );
    Ok(0)
}

/// A name lightningd accepts in a plugin directory (it skips names with
/// other punctuation) and that a shell need not quote.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && !name.ends_with(".wasm")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ensure!(
        ok,
        "plugin name {name:?}: use letters, digits, '-', '_' and '.', not first, and no .wasm \
         ending (the guest is NAME.wasm)"
    );
    Ok(())
}

/// Replace `path` whole (write beside it, then rename), so that lightningd
/// or a running plugin never reads half a file.
fn write_replacing(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.installing",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("plugin")
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// The plugin file: the `#!` line, what this file is, the guest, and the
/// policy: `policy` as the operator wrote it, or one granting nothing. What
/// the guest asks for and is not granted follows as commented-out grants.
fn plugin_file_text(
    host: &str,
    name: &str,
    plugin_file: &Path,
    manifest: &Manifest,
    policy: Option<String>,
) -> String {
    let mut text = format!(
        "#!{host}\n\
         # The Core Lightning plugin {name:?}: the WebAssembly guest below, run in the\n\
         # sandbox of cln-wasm-host. lightningd starts this file; the rest of it is the\n\
         # operator's policy for the guest (TOML): what it may do. Nothing is granted but\n\
         # what is written here. Restart the plugin after an edit.\n\
         # Review: cln-wasm-host inspect {}\n\n\
         wasm = \"{name}.wasm\"\n\n",
        plugin_file.display()
    );
    let granted = match policy {
        Some(policy_text) => {
            let policy: Policy = toml::from_str(&policy_text).unwrap_or_default();
            text.push_str(policy_text.trim_end());
            text.push_str("\n\n");
            policy
        }
        None => {
            text.push_str(
                "[limits]                 # each bounded by default; loosen or tighten\n",
            );
            for (key, value, what) in Limits::default().rows() {
                let _ = writeln!(text, "# {:<52} # {what}", format!("{key} = {value}"));
            }
            text.push_str("\n[grants]\n");
            Policy::default()
        }
    };
    let asks = review::asks(manifest, &granted.grants);
    let open = |kind: Kind| asks.iter().filter(move |a| a.kind == kind && !a.granted);
    let explain = |text: &mut String, a: &Ask| {
        let reason = if a.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", shown(&a.reason))
        };
        let _ = writeln!(text, "# The guest asks for {}{reason}", a.label());
        if let Some(danger) = a.danger {
            let _ = writeln!(text, "# DANGEROUS: {danger}");
        }
    };
    // Keys of [grants] first: a table header ends them.
    if let Some(store) = open(Kind::Store).next() {
        explain(&mut text, store);
        text.push_str("# store = true\n\n");
    }
    if let Some(dir) = open(Kind::Dir).next() {
        explain(&mut text, dir);
        let _ = writeln!(
            text,
            "# dir = {{ quota_mib = 16 }}   # wasm-data/{name}/ where lightningd runs; read-only once over\n"
        );
    }
    for (kind, key) in [
        (Kind::Subscription, "subscriptions"),
        (Kind::Notification, "notifications"),
        (Kind::CustomMessage, "custommessages"),
    ] {
        let names: Vec<String> = open(kind)
            .map(|a| match kind {
                Kind::CustomMessage => a.name.clone(),
                _ => quoted(&a.name).to_string(),
            })
            .collect();
        if names.is_empty() {
            continue;
        }
        open(kind).for_each(|a| explain(&mut text, a));
        let _ = writeln!(text, "# {key} = [{}]\n", names.join(", "));
    }
    let bits: Vec<&Ask> = open(Kind::Featurebits).collect();
    if !bits.is_empty() {
        bits.iter().for_each(|a| explain(&mut text, a));
        let level = if bits.iter().any(|a| a.danger.is_some()) {
            "required"
        } else {
            "optional"
        };
        let _ = writeln!(text, "# featurebits = {level:?}\n");
    }
    for a in open(Kind::NodeMethod) {
        explain(&mut text, a);
        let _ = writeln!(text, "# [[grants.rpc]]\n# method = {}\n", quoted(&a.name));
    }
    for a in open(Kind::Hook) {
        explain(&mut text, a);
        let more = Hook::find(&a.name).map_or(String::new(), |h| {
            format!(
                "\n# (only `continue` passes; it may also be given {})",
                h.grantable()
            )
        });
        let _ = writeln!(
            text,
            "# [[grants.hooks]]\n# name = {}{more}\n",
            quoted(&a.name)
        );
    }
    text.truncate(text.trim_end().len());
    text.push('\n');
    text
}

/// What the operator reads after installing: what is granted, what is asked,
/// and the ways to start the plugin.
fn how_to_start(
    name: &str,
    plugin_file: &Path,
    wasm_file: &Path,
    manifest: &Manifest,
    policy: &Policy,
) -> String {
    let mut out = format!(
        "installed plugin {name}: {} (guest {})\n",
        plugin_file.display(),
        wasm_file.display()
    );
    let open: Vec<Ask> = review::asks(manifest, &policy.grants)
        .into_iter()
        .filter(|a| !a.granted)
        .collect();
    if open.is_empty() {
        out.push_str("The guest asks for nothing its policy does not grant.\n");
    } else {
        let _ = write!(
            out,
            "The guest asks for these, not granted (uncomment a grant in {} to allow it):\n{}",
            plugin_file.display(),
            review::to_text(&open)
        );
    }
    let options: String = manifest
        .options
        .iter()
        .map(|o| format!(" {}=...", o.name))
        .collect();
    let p = plugin_file.display();
    let dir = plugin_file.parent().unwrap_or(Path::new("/")).display();
    let _ = write!(
        out,
        "Start it:\n  \
         lightning-cli -k plugin subcommand=start plugin={p}{options}\n\
         or when the node starts: lightningd --plugin={p}\n\
         (or plugin={p} in the node's config file, or --plugin-dir={dir})\n"
    );
    out
}
