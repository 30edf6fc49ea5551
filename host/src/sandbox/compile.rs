//! Compiling a guest under bounds. Cranelift's time and memory grow faster
//! than a component's size (a 1.1 MB component with 24,000 live locals in
//! one function compiles for minutes), so the binary compiles in a child
//! process: itself again, with the hidden subcommand [`SUBCOMMAND`], under
//! `RLIMIT_AS` (`[limits] compile_memory_mib`) and `RLIMIT_CPU`, killed at
//! the wall deadline (`[limits] compile_timeout_ms`). The child gets the
//! `.wasm` on stdin and answers the serialized code on stdout.
//!
//! A library user (the in-process tests) compiles in its own process, with
//! no bound but the `.wasm`'s size, unless it calls [`in_child`] with the path
//! of a host binary.

use crate::policy::Limits;
use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The hidden subcommand the binary compiles in.
pub const SUBCOMMAND: &str = "internal-compile";

/// The host binary compiles run in, once [`in_child`] named it.
static CHILD: OnceLock<PathBuf> = OnceLock::new();

/// Compile every guest from now on in a child process running `exe` (the
/// host binary; on Linux `/proc/self/exe`, which still runs this very binary
/// after an upgrade replaced the file).
pub fn in_child(exe: PathBuf) {
    let _ = CHILD.set(exe);
}

/// Why a compilation was stopped: a bound it went past. Start-up, `install`,
/// `inspect` and a swap refuse the guest with this reason.
#[derive(Debug)]
pub enum Exceeded {
    Time(u64),
    Memory(u64),
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exceeded::Time(ms) => write!(
                f,
                "compiling it took longer than [limits] compile_timeout_ms = {ms}"
            ),
            Exceeded::Memory(mib) => write!(
                f,
                "compiling it needed more memory than [limits] compile_memory_mib = {mib}"
            ),
        }
    }
}

impl std::error::Error for Exceeded {}

/// `wasm` compiled by `engine`'s settings into serialized code, within
/// `limits` when compiling in a child.
pub fn compile(engine: &wasmtime::Engine, wasm: &[u8], limits: &Limits) -> anyhow::Result<Vec<u8>> {
    match CHILD.get() {
        Some(exe) => compile_in_child(exe, wasm, limits),
        None => Ok(engine.precompile_component(wasm)?),
    }
}

/// How often the parent looks whether the child is done.
const POLL: Duration = Duration::from_millis(2);

fn compile_in_child(exe: &Path, wasm: &[u8], limits: &Limits) -> anyhow::Result<Vec<u8>> {
    let timeout = Duration::from_millis(limits.compile_timeout_ms);
    // The CPU limit is a backstop should this process die and leave the
    // child; the wall deadline is what holds. Every thread compiles.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let cpu_secs = timeout.as_secs().saturating_add(1).saturating_mul(threads);
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .arg(limits.compile_memory_mib.to_string())
        .arg(cpu_secs.to_string())
        .env_clear()
        // glibc reserves 64 MiB of address space per malloc arena, up to 8
        // per CPU: without a cap the memory bound would depend on the CPUs.
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} to compile", exe.display()))?;
    let started = Instant::now();
    let mut stdin = child.stdin.take().context("the compiler's stdin")?;
    let (mut stdout, mut stderr) = (
        child.stdout.take().context("the compiler's stdout")?,
        child.stderr.take().context("the compiler's stderr")?,
    );
    let code_max = limits.compile_memory_mib.saturating_mul(1 << 20);
    let outcome = std::thread::scope(|s| {
        // The child reads all its input before it writes, and dies at
        // the deadline, so none of these threads outlives it.
        s.spawn(move || {
            let _ = stdin.write_all(wasm);
        });
        let code = s.spawn(move || {
            let mut code = Vec::new();
            (&mut stdout)
                .take(code_max)
                .read_to_end(&mut code)
                .map(|_| code)
        });
        let message = s.spawn(move || {
            let mut text = String::new();
            let _ = (&mut stderr).take(64 << 10).read_to_string(&mut text);
            text
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(Exceeded::Time(limits.compile_timeout_ms));
                }
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(anyhow::Error::new(e).context("waiting for the compiler"));
                }
            }
        };
        let code = code.join().ok();
        let message = message.join().unwrap_or_default();
        Ok((status, code, message))
    })?;
    let (status, code, message) = outcome;
    let status = status?;
    match (status.success(), code) {
        (true, Some(Ok(code))) => Ok(code),
        (true, _) => bail!("reading the compiled code from the compiler failed"),
        (false, _) => Err(failure(status, message.trim(), limits)),
    }
}

/// What a child that did not succeed tells: its own error (the component
/// is invalid), or the bound it hit.
fn failure(status: ExitStatus, message: &str, limits: &Limits) -> anyhow::Error {
    use std::os::unix::process::ExitStatusExt;
    let out_of_memory = message.contains("memory allocation of")
        || message.contains("out of memory")
        || message.contains("os error 12");
    match status.signal() {
        _ if out_of_memory => Exceeded::Memory(limits.compile_memory_mib).into(),
        Some(libc::SIGXCPU) => Exceeded::Time(limits.compile_timeout_ms).into(),
        Some(signal) => anyhow::anyhow!("the compiler died of signal {signal}: {message}"),
        None => anyhow::anyhow!("{message}"),
    }
}

/// The child: `SUBCOMMAND MEMORY_MIB CPU_SECS`, the `.wasm` on stdin, the
/// serialized code on stdout; an error on stderr and exit code 1.
pub fn child_main(args: &[String]) -> i32 {
    match child(args) {
        Ok(code) => match std::io::stdout().lock().write_all(&code) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    }
}

fn child(args: &[String]) -> anyhow::Result<Vec<u8>> {
    let [memory_mib, cpu_secs] = args else {
        bail!("usage: {SUBCOMMAND} MEMORY_MIB CPU_SECS");
    };
    let memory: u64 = memory_mib.parse().context("MEMORY_MIB")?;
    let cpu: u64 = cpu_secs.parse().context("CPU_SECS")?;
    limit(libc::RLIMIT_AS, memory.saturating_mul(1 << 20), "RLIMIT_AS")?;
    limit(libc::RLIMIT_CPU, cpu, "RLIMIT_CPU")?;
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches
    // no memory. Should the parent die, the compile dies with it.
    #[cfg(target_os = "linux")]
    let _ = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let mut wasm = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut wasm)
        .context("reading the .wasm")?;
    let engine = wasmtime::Engine::new(&super::config())?;
    Ok(engine.precompile_component(&wasm)?)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

fn limit(resource: Resource, value: u64, name: &str) -> anyhow::Result<()> {
    let rlimit = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    if unsafe { libc::setrlimit(resource, &rlimit) } != 0 {
        return Err(std::io::Error::last_os_error()).context(format!("setting {name}"));
    }
    Ok(())
}
