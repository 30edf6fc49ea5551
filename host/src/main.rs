//! cln-wasm-host: a Core Lightning plugin whose logic is a sandboxed
//! WebAssembly component.
//!
//! Started with no arguments (as lightningd starts plugins) it is the plugin
//! named after its own file: `DIR/NAME` runs `DIR/NAME.wasm` under the policy
//! `DIR/NAME.toml`. With a subcommand it is a tool for plugin authors.
//!
//! Where things are: `plugin` (requests enter and are dispatched), `protocol`
//! (framing and messages), `manifest` (the guest's manifest in lightningd's
//! terms), `runtime` (the sandbox and its instances), `capabilities` (what a
//! guest may reach; grants checked here), `policy` (what the operator sets),
//! `node` (the node's RPC socket), `devrunner` and `standin` (the `call` tool).

mod bindings;
mod cache;
mod capabilities;
mod devrunner;
mod filter;
mod guest_output;
mod inspect;
mod logging;
mod manifest;
mod node;
mod plugin;
mod policy;
mod protocol;
mod runtime;
mod standin;
mod swap;
mod workers;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(version, about = "A WebAssembly-sandboxed plugin host for Core Lightning", long_about = None,
    after_help = "With no command, runs as the lightningd plugin named after this executable: \
DIR/NAME runs DIR/NAME.wasm under the policy DIR/NAME.toml.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one method of a guest against a stand-in node (or a real node's
    /// socket) and print the answer.
    Call(devrunner::CallArgs),
    /// Show what a guest asks for (node methods, the store) and what its
    /// policy would grant, without starting it.
    Inspect(inspect::InspectArgs),
}

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run() -> anyhow::Result<i32> {
    if std::env::args_os().len() > 1 {
        let cli = Cli::parse();
        logging::to_stderr(false);
        return match cli.command {
            Some(Command::Call(args)) => devrunner::run(args),
            Some(Command::Inspect(args)) => inspect::run(args),
            None => Ok(0),
        };
    }
    let executable = invoked_as()?;
    let files = plugin::PluginFiles::beside(&executable)?;
    if std::io::stdin().is_terminal() {
        eprintln!(
            "{} is a Core Lightning plugin: start it with `lightning-cli plugin start {}`, \
             or see `--help` for the tools. Waiting for lightningd's getmanifest on stdin.",
            files.name,
            executable.display()
        );
    }
    let outbox = Arc::new(protocol::Outbox::new(Box::new(std::io::stdout())));
    logging::to_lightningd(outbox.clone());
    let stdin = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
    plugin::serve(&files, stdin, outbox)
}

/// The path we were started by, links not resolved: a link `myplugin` to the
/// host is the plugin `myplugin`.
fn invoked_as() -> anyhow::Result<PathBuf> {
    let argv0 = PathBuf::from(std::env::args_os().next().context("no argv[0]")?);
    if argv0.components().count() > 1 {
        return Ok(argv0);
    }
    // Started through PATH: find the same entry the shell found.
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&argv0))
        .find(|p| p.is_file())
        .with_context(|| format!("cannot find {} on PATH", argv0.display()))
}
