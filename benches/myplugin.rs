//! The host running the Rust myplugin guest against the seed's native Python
//! plugin (`benches/seed/myplugin.py`), in the same run, against the same node
//! stand-in: start-up, per-call latency, throughput with calls in flight, and
//! peak memory. Both are driven as lightningd drives a plugin (`\n\n`-framed
//! JSON-RPC over stdin/stdout). Prints figures; asserts only on answers.
//!
//! Run with `cargo bench --bench myplugin`.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use support::{NODE_ID, Node, guest_wasm, host_bin, workspace};

const GRANT_GETINFO: &str = "[[grants.rpc]]\nmethod = \"getinfo\"\n";
/// Spawns per plugin for the start-up median.
const STARTS: usize = 10;
/// Calls before anything is timed.
const WARMUP: usize = 100;
/// Timed sequential calls (one in flight).
const SEQUENTIAL: usize = 2000;
/// Calls kept outstanding in the throughput run, and how many in all.
const IN_FLIGHT: usize = 64;
const TOTAL: usize = 5000;
/// The whole bench gives up after this long rather than hang.
const WATCHDOG: Duration = Duration::from_secs(1200);
/// Spawns for the warm-start median of each language's guest.
const LANGUAGE_STARTS: usize = 5;

#[derive(Clone, Copy)]
enum Kind {
    Host,
    Python,
    /// The host with another guest, labelled.
    Guest(&'static str),
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Host => "host + myplugin.wasm",
            Kind::Python => "seed myplugin.py",
            Kind::Guest(label) => label,
        }
    }
}

/// How a plugin is started: for the host, the layout `support::Plugin::spawn`
/// makes (a link `myplugin` to the host, with `myplugin.wasm` and
/// `myplugin.toml` beside it), set up once and started from many times.
struct Launcher {
    kind: Kind,
    program: PathBuf,
    args: Vec<PathBuf>,
    /// The host's compiled-code cache: a directory, or "off".
    cache: Option<std::ffi::OsString>,
    _dir: Option<tempfile::TempDir>,
}

impl Launcher {
    /// The host with its compiled-code cache in `cache` ("off": compile at
    /// every start).
    fn host(cache: std::ffi::OsString) -> Launcher {
        Launcher::guest("myplugin", Kind::Host, cache)
    }

    /// The host running `guest` (a myplugin in some language).
    fn guest(guest: &str, kind: Kind, cache: std::ffi::OsString) -> Launcher {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join(guest);
        std::os::unix::fs::symlink(host_bin(), &exe).unwrap();
        std::fs::copy(guest_wasm(guest), dir.path().join(format!("{guest}.wasm"))).unwrap();
        std::fs::write(dir.path().join(format!("{guest}.toml")), GRANT_GETINFO).unwrap();
        Launcher {
            kind,
            program: exe,
            args: Vec::new(),
            cache: Some(cache),
            _dir: Some(dir),
        }
    }

    fn python() -> Launcher {
        let script = workspace().join("benches/seed/myplugin.py");
        assert!(script.exists(), "{} missing", script.display());
        Launcher {
            kind: Kind::Python,
            program: python3(),
            args: vec![script],
            cache: None,
            _dir: None,
        }
    }
}

/// The interpreter `python3` resolves to, found once: started through a
/// version manager's shim (pyenv's is a shell script) it would be timed too.
fn python3() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("running python3");
    assert!(out.status.success(), "python3 failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

type Messages =
    serde_json::StreamDeserializer<'static, serde_json::de::IoRead<BufReader<ChildStdout>>, Value>;

/// A running plugin, read on the calling thread: the seed writes its answers
/// back to back with no separator, so stdout is read as a stream of JSON
/// values rather than `\n\n` frames.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Messages,
}

impl Proc {
    fn spawn(launcher: &Launcher) -> Proc {
        let mut command = Command::new(&launcher.program);
        if let Some(cache) = &launcher.cache {
            command.env("CLN_WASM_HOST_CACHE", cache);
        }
        let mut child = command
            .args(&launcher.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", launcher.program.display()));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Proc {
            stdin: child.stdin.take(),
            out: serde_json::Deserializer::from_reader(stdout).into_iter(),
            child,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send_text(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The next message that carries an id (log notifications are skipped).
    fn next_answer(&mut self) -> Value {
        loop {
            let msg = self
                .out
                .next()
                .expect("plugin closed its stdout")
                .expect("plugin wrote something that is not JSON");
            if msg.get("id").is_some() {
                return msg;
            }
        }
    }

    fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_text(&format!("{msg}\n\n"));
        let answer = self.next_answer();
        assert_eq!(answer["id"], id, "{answer}");
        answer
    }

    /// getmanifest then init, as lightningd does (see `Plugin::handshake`).
    fn handshake(&mut self, node: &Node) {
        let manifest = self.request(
            json!(86),
            "getmanifest",
            json!({"allow-deprecated-apis": false}),
        );
        assert!(manifest["result"]["rpcmethods"].is_array(), "{manifest}");
        let init = self.request(
            json!("cln:init#151"),
            "init",
            support::init_params(json!({"foo_opt": "bar"}), node),
        );
        assert_eq!(init["result"], json!({}), "{init}");
    }

    /// `VmHWM` (peak resident set) and `VmRSS` from /proc, in MiB.
    fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .unwrap_or_else(|| panic!("no {name} in /proc/{}/status", self.pid()))
                / 1024.0
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Proc {
    /// Close stdin (both plugins exit on end of input), then make sure.
    fn drop(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn call_text(i: usize) -> (Value, String) {
    let id = json!(format!("cli:myplugin#{i}/cln:myplugin#{i}"));
    let msg = json!({"jsonrpc": "2.0", "id": id, "method": "myplugin",
        "params": {"foo1": "bar1", "foo2": "bar2"}});
    (id, format!("{msg}\n\n"))
}

fn expected_result() -> Value {
    json!({"node_id": NODE_ID, "option": {"foo_opt": "bar"}, "cli_params": {"foo1": "bar1", "foo2": "bar2"}})
}

/// `count` calls one after the other; each one timed from the write of the
/// request to the parsed answer.
fn sequential(p: &mut Proc, first: usize, count: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(count);
    for i in first..first + count {
        let (id, text) = call_text(i);
        let started = Instant::now();
        p.send_text(&text);
        let answer = p.next_answer();
        times.push(started.elapsed());
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["result"], expected_result(), "{answer}");
    }
    times
}

/// `total` calls with `window` of them outstanding at all times; calls/s.
fn throughput(p: &mut Proc, first: usize, total: usize, window: usize) -> f64 {
    let texts: Vec<String> = (first..first + total).map(|i| call_text(i).1).collect();
    let started = Instant::now();
    let mut sent = 0;
    let initial: String = texts[..window.min(total)].concat();
    p.send_text(&initial);
    sent += window.min(total);
    for _ in 0..total {
        let answer = p.next_answer();
        assert!(answer.get("result").is_some(), "{answer}");
        if sent < total {
            p.send_text(&texts[sent]);
            sent += 1;
        }
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// The bench's own `getinfo` round trip to the node stand-in, each as the
/// plugin it is subtracted from makes it: the host's request (chained id,
/// `\n\n`) on one kept connection, as the host pools them; the seed's exact
/// bytes (`json.dumps`, id "1", no separator) on a new connection each time.
fn direct_getinfo(node: &Node, count: usize, keep: bool) -> Vec<Duration> {
    let request = |i: usize| {
        if keep {
            let id = format!("cli:myplugin#{i}/cln:myplugin#{i}/myplugin:getinfo#{i}");
            let msg = json!({"jsonrpc": "2.0", "id": id, "method": "getinfo", "params": [], "filter": {"id": true}});
            format!("{msg}\n\n")
        } else {
            r#"{"jsonrpc": "2.0", "id": "1", "method": "getinfo", "params": [], "filter": {"id": true}}"#
                .to_string()
        }
    };
    let check = |answer: Value| assert_eq!(answer["result"], json!({"id": NODE_ID}), "{answer}");
    let mut times = Vec::with_capacity(count);
    if keep {
        let mut stream = UnixStream::connect(node.socket()).unwrap();
        let mut answers =
            serde_json::Deserializer::from_reader(BufReader::new(stream.try_clone().unwrap()))
                .into_iter::<Value>();
        for i in 0..WARMUP + count {
            let text = request(i);
            let started = Instant::now();
            stream.write_all(text.as_bytes()).unwrap();
            let answer = answers.next().unwrap().unwrap();
            let took = started.elapsed();
            check(answer);
            if i >= WARMUP {
                times.push(took);
            }
        }
    } else {
        for i in 0..WARMUP + count {
            let text = request(i);
            let started = Instant::now();
            let mut stream = UnixStream::connect(node.socket()).unwrap();
            stream.write_all(text.as_bytes()).unwrap();
            let answer = serde_json::Deserializer::from_reader(BufReader::new(&stream))
                .into_iter::<Value>()
                .next()
                .unwrap()
                .unwrap();
            drop(stream);
            let took = started.elapsed();
            check(answer);
            if i >= WARMUP {
                times.push(took);
            }
        }
    }
    times
}

struct Latency {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

/// Nearest-rank percentiles.
fn latency(mut times: Vec<Duration>) -> Latency {
    assert!(!times.is_empty());
    times.sort();
    let rank = |p: f64| {
        let k = (p * times.len() as f64).ceil() as usize;
        times[k.clamp(1, times.len()) - 1]
    };
    Latency {
        p50: rank(0.50),
        p99: rank(0.99),
        mean: times.iter().sum::<Duration>() / times.len() as u32,
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2
    }
}

struct Figures {
    start: Duration,
    latency: Latency,
    throughput: f64,
    peak_rss: f64,
    rss_end: f64,
}

/// One long-lived plugin: warm-up, sequential calls, throughput, memory.
fn run_calls(launcher: &Launcher, node: &Node) -> (Latency, f64, f64, f64) {
    let mut p = Proc::spawn(launcher);
    p.handshake(node);
    sequential(&mut p, 0, WARMUP);
    let lat = latency(sequential(&mut p, WARMUP, SEQUENTIAL));
    let tput = throughput(&mut p, WARMUP + SEQUENTIAL, TOTAL, IN_FLIGHT);
    let (peak, now) = p.memory_mib();
    (lat, tput, peak, now)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("bench myplugin: gave up after {WATCHDOG:?}");
        std::process::exit(2);
    });

    let node = Node::start();
    let cache = tempfile::tempdir().unwrap();
    let launchers = [Launcher::host(cache.path().into()), Launcher::python()];
    let cold = Launcher::host("off".into());
    // Fill the cache: the host's start figure is a warm start.
    Proc::spawn(&launchers[0]).handshake(&node);

    // Start-up: spawn until init is answered, alternating the plugins.
    let mut cold_starts = Vec::new();
    let mut starts: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..STARTS {
        for (launcher, times) in launchers.iter().zip(starts.iter_mut()) {
            let started = Instant::now();
            let mut p = Proc::spawn(launcher);
            p.handshake(&node);
            times.push(started.elapsed());
        }
        let started = Instant::now();
        Proc::spawn(&cold).handshake(&node);
        cold_starts.push(started.elapsed());
    }

    let direct_kept = latency(direct_getinfo(&node, SEQUENTIAL, true));
    let direct_fresh = latency(direct_getinfo(&node, SEQUENTIAL, false));

    let figures: Vec<Figures> = launchers
        .iter()
        .zip(starts)
        .map(|(launcher, starts)| {
            let (latency, throughput, peak_rss, rss_end) = run_calls(launcher, &node);
            Figures {
                start: median(starts),
                latency,
                throughput,
                peak_rss,
                rss_end,
            }
        })
        .collect();
    let (host, python) = (&figures[0], &figures[1]);

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "myplugin: {STARTS} spawns per plugin (median), {SEQUENTIAL} sequential calls after \
         {WARMUP} warm-up, {TOTAL} calls with {IN_FLIGHT} in flight; {cpus} CPUs; seed run by {}",
        launchers[1].program.display()
    );
    println!();
    println!(
        "| plugin | start (ms) | p50 (µs) | p99 (µs) | mean (µs) | throughput (calls/s) | peak RSS (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (launcher, f) in launchers.iter().zip(&figures) {
        println!(
            "| {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |",
            launcher.kind.label(),
            ms(f.start),
            us(f.latency.p50),
            us(f.latency.p99),
            us(f.latency.mean),
            f.throughput,
            f.peak_rss,
        );
    }
    let ratio = |h: f64, p: f64| h / p;
    println!(
        "| ratio host/python | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
        ratio(ms(host.start), ms(python.start)),
        ratio(us(host.latency.p50), us(python.latency.p50)),
        ratio(us(host.latency.p99), us(python.latency.p99)),
        ratio(us(host.latency.mean), us(python.latency.mean)),
        ratio(host.throughput, python.throughput),
        ratio(host.peak_rss, python.peak_rss),
    );
    println!();
    println!(
        "direct getinfo from the bench to the node stand-in, p50: {:.0} µs for the host's request \
         on a kept connection (p99 {:.0} µs), {:.0} µs for the seed's on a new connection per \
         call (p99 {:.0} µs)",
        us(direct_kept.p50),
        us(direct_kept.p99),
        us(direct_fresh.p50),
        us(direct_fresh.p99),
    );
    println!(
        "per-call overhead without node I/O, p50: host {:.0} µs (myplugin p50 − kept-connection \
         getinfo p50), seed {:.0} µs (myplugin p50 − new-connection getinfo p50)",
        us(host.latency.p50.saturating_sub(direct_kept.p50)),
        us(python.latency.p50.saturating_sub(direct_fresh.p50)),
    );
    println!(
        "host start without the compiled-code cache (Cranelift compiles the guest), median: \
         {:.1} ms; the table's host start is with the cache warm",
        ms(median(cold_starts))
    );
    println!(
        "RSS at the end of the calls (VmRSS): host {:.1} MiB, seed {:.1} MiB; peak is VmHWM",
        host.rss_end, python.rss_end
    );

    languages(&node);
}

/// The same myplugin in every guest language, each through the host: size,
/// start with the compiled-code cache off (Cranelift compiles it) and warm,
/// and the same call figures as above.
fn languages(node: &Node) {
    let guests = [
        ("myplugin", "Rust"),
        ("myplugin-py", "Python (componentize-py)"),
        ("myplugin-js", "JavaScript (componentize-js)"),
        ("myplugin-c", "C (wit-bindgen c)"),
    ];
    println!();
    println!("myplugin in each guest language, through the host (same node stand-in):");
    println!();
    println!(
        "| guest | size (KiB) | cold start (ms) | warm start (ms) | p50 (µs) | p99 (µs) | throughput (calls/s) | peak RSS (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (guest, label) in guests {
        let size = std::fs::metadata(guest_wasm(guest)).map_or(0, |m| m.len()) / 1024;
        let started = Instant::now();
        Proc::spawn(&Launcher::guest(guest, Kind::Guest(label), "off".into())).handshake(node);
        let cold = started.elapsed();
        let cache = tempfile::tempdir().unwrap();
        let warm = Launcher::guest(guest, Kind::Guest(label), cache.path().into());
        Proc::spawn(&warm).handshake(node);
        let starts = (0..LANGUAGE_STARTS)
            .map(|_| {
                let started = Instant::now();
                Proc::spawn(&warm).handshake(node);
                started.elapsed()
            })
            .collect();
        let (latency, throughput, peak, _) = run_calls(&warm, node);
        println!(
            "| {} | {size} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} |",
            warm.kind.label(),
            ms(cold),
            ms(median(starts)),
            us(latency.p50),
            us(latency.p99),
            throughput,
            peak,
        );
    }
}
