//! cln-wasm-host: a Core Lightning plugin whose logic is a sandboxed
//! WebAssembly component. This is the command line; the host is the library
//! (`lib.rs` maps its layers).
//!
//! lightningd starts a plugin file written by `install` (`DIR/NAME`, whose
//! `#!` line names this binary), so the kernel runs `cln-wasm-host DIR/NAME`:
//! the plugin NAME, its guest and policy as that file says. With a
//! subcommand it is a tool for operators and plugin authors.

use clap::{Parser, Subcommand};
use cln_wasm_host::sandbox::compile;
use cln_wasm_host::shown::shown;
use cln_wasm_host::tools::{call, inspect, install};
use cln_wasm_host::{guest, logging, protocol, server};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(version, about = "A WebAssembly-sandboxed plugin host for Core Lightning", long_about = None,
    args_conflicts_with_subcommands = true,
    after_help = "lightningd runs a plugin file written by `install`; its `#!` line runs \
this binary with the file as the only argument.")]
struct Cli {
    /// Run as the plugin this file describes (how lightningd starts it).
    #[arg(value_name = "PLUGIN_FILE")]
    plugin: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Make a guest a plugin lightningd can start: writes DIR/NAME (the
    /// plugin file, holding a policy that grants nothing) and DIR/NAME.wasm.
    Install(install::InstallArgs),
    /// Run one method of a guest against a stand-in node (or a real node's
    /// socket) and print the answer.
    Call(call::CallArgs),
    /// Show what a guest asks for (node methods, the store) and what its
    /// policy would grant, without starting it.
    Inspect(inspect::InspectArgs),
}

/// What lightningd is told when it runs the binary itself as a plugin (say,
/// from a `--plugin-dir` holding it, or through a link, which it resolves).
const NOT_A_PLUGIN: &str = "this is the cln-wasm-host binary, not a plugin: \
    install a guest with `cln-wasm-host install GUEST.wasm --dir DIR` and start the plugin file DIR/NAME it writes";

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == compile::SUBCOMMAND) {
        let rest: Vec<String> = args[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        // The host's mask of signals survives exec: the compile is
        // stopped by them as any process is.
        server::signals::unblock();
        std::process::exit(compile::child_main(&rest));
    }
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", shown(&format!("{e:#}")));
            1
        }
    };
    std::process::exit(code);
}

fn run() -> anyhow::Result<i32> {
    // Every guest this binary loads compiles in a bounded child: itself.
    let me = PathBuf::from("/proc/self/exe");
    compile::in_child(if me.exists() {
        me
    } else {
        std::env::current_exe()?
    });
    let stdin = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
    let interactive = std::io::stdin().is_terminal();
    let cli = Cli::parse();
    let plugin_file = match (cli.command, cli.plugin) {
        (Some(command), _) => {
            logging::to_stderr(false);
            return match command {
                Command::Install(args) => install::run(args),
                Command::Call(args) => call::run(args),
                Command::Inspect(args) => inspect::run(args),
            };
        }
        (None, Some(plugin_file)) => plugin_file,
        (None, None) if interactive => {
            eprintln!("{NOT_A_PLUGIN}; see --help");
            return Ok(2);
        }
        (None, None) => return server::serve_disabled(NOT_A_PLUGIN, stdin),
    };
    if interactive {
        eprintln!(
            "{} is a Core Lightning plugin: start it with `lightning-cli plugin start {}`. \
             Waiting for lightningd's getmanifest on stdin.",
            plugin_file.display(),
            plugin_file.display()
        );
    }
    let outbox = Arc::new(protocol::Outbox::new(Box::new(std::io::stdout())));
    logging::to_lightningd(outbox.clone());
    // Before the first thread starts, so that every thread has them blocked.
    server::signals::block();
    server::serve(guest::Files::open(&plugin_file), stdin, outbox)
}
