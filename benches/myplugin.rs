//! The host running the Rust myplugin guest against the seed's native Python
//! plugin (`benches/seed/myplugin.py`) and three baselines doing the same work
//! (the leanest native plugin, `benches/floor`; one written with the official
//! `cln-plugin` crate, `benches/cln-plugin-baseline`; one with pyln-client,
//! `benches/pyln`), in the same run, against the same node stand-in: start-up,
//! per-call latency, throughput with calls in flight, and peak memory, each
//! the median of several rounds and also as a ratio to the floor; then the
//! host's own cost per call without node I/O (an `echo` through the host and
//! its test guest against the floor's), and the same myplugin in every guest
//! language. All are driven as lightningd drives a plugin (`\n\n`-framed
//! JSON-RPC over stdin/stdout). Prints figures; asserts only on answers.
//! Every timed call is written to `target/bench/myplugin-latency.csv`, and
//! plotted (matplotlib, in a venv of its own) to
//! `target/bench/myplugin-latency.png`.
//!
//! Run with `cargo bench --bench myplugin` (`-- quick`: the floor and the
//! host only, one round).

#[path = "../host/tests/support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use support::{NODE_ID, Node, guest_wasm, workspace};

/// The bench's policy: getinfo, with the default limits (the throughput
/// run's ~14,000 calls/s, each making one node call, are under them).
const GRANT_GETINFO: &str = "[[grants.rpc]]\nmethod = \"getinfo\"\n";
/// Rounds of the whole first table; each figure is the median over them.
const ROUNDS: usize = 3;
/// Spawns per plugin and round for the start-up median.
const STARTS: usize = 5;
/// Calls before anything is timed.
const WARMUP: usize = 100;
/// Timed sequential calls (one in flight), per plugin and round.
const SEQUENTIAL: usize = 2000;
/// The sequential calls are made in this many blocks, the plugins taking
/// turns, so that the machine's drifts (other load, CPU frequency) hit every
/// plugin alike.
const BLOCKS: usize = 10;
/// Calls kept outstanding in the throughput run, and how many in all.
const IN_FLIGHT: usize = 64;
const TOTAL: usize = 3000;
/// The whole bench gives up after this long rather than hang.
const WATCHDOG: Duration = Duration::from_secs(1200);
/// Spawns for the warm-start median of each language's guest.
const LANGUAGE_STARTS: usize = 5;
/// matplotlib, for the plot.
const MATPLOTLIB: &str = "matplotlib==3.10.8";

#[derive(Clone, Copy)]
enum Kind {
    Host,
    Python,
    /// The host with another guest, labelled.
    Guest(&'static str),
    /// A native baseline plugin, labelled.
    Baseline(&'static str),
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Host => "host + myplugin.wasm",
            Kind::Python => "seed myplugin.py",
            Kind::Guest(label) | Kind::Baseline(label) => label,
        }
    }
}

/// How a plugin is started: for the host, the plugin file `install` writes
/// (`support::plugin_file`), run by its canonical path as lightningd runs
/// it, set up once and started from many times.
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
        let exe = support::plugin_file(dir.path(), guest, &guest_wasm(guest), GRANT_GETINFO);
        Launcher {
            kind,
            program: support::as_lightningd_runs(&exe),
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

    /// `benches/floor`: the leanest native myplugin.
    fn floor() -> Launcher {
        Launcher::baseline(
            "floor (native, std + serde_json)",
            built_crate("floor", "floor"),
        )
    }

    /// `benches/cln-plugin-baseline`: myplugin with the `cln-plugin` crate.
    fn cln_plugin() -> Launcher {
        let exe = built_crate("cln-plugin-baseline", "cln-plugin-baseline");
        Launcher::baseline("cln-plugin 0.7.0 (Rust)", exe)
    }

    /// `benches/pyln/myplugin.py` with pyln-client, in the venv its setup
    /// script makes.
    fn pyln() -> Launcher {
        let python = python_venv("pyln", &["pyln-client==26.6.9"]);
        let plugin = workspace().join("benches/pyln/myplugin.py");
        Launcher {
            kind: Kind::Baseline("pyln-client 26.6.9 (Python)"),
            program: python,
            args: vec![plugin],
            cache: None,
            _dir: None,
        }
    }

    fn baseline(label: &'static str, program: PathBuf) -> Launcher {
        Launcher {
            kind: Kind::Baseline(label),
            program,
            args: Vec::new(),
            cache: None,
            _dir: None,
        }
    }
}

/// Builds the standalone crate `benches/NAME` (not in the workspace) in
/// release into `target/NAME`, and returns its binary `bin`.
fn built_crate(name: &str, bin: &str) -> PathBuf {
    let manifest = workspace().join("benches").join(name).join("Cargo.toml");
    let target = workspace().join("target").join(name);
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("running cargo to build a baseline plugin");
    assert!(status.success(), "building {} failed", manifest.display());
    let exe = target.join("release").join(bin);
    assert!(exe.exists(), "{} missing", exe.display());
    exe
}

/// The python of the venv `target/toolchains/NAME` with `requirements`
/// installed (by `benches/python-venv.sh`, once).
fn python_venv(name: &str, requirements: &[&str]) -> PathBuf {
    let script = workspace().join("benches/python-venv.sh");
    let status = Command::new(&script)
        .arg(name)
        .args(requirements)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(status.success(), "{} {name} failed", script.display());
    workspace()
        .join("target/toolchains")
        .join(name)
        .join("bin/python3")
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
        // As lightningd sets it (pyln-client prints its help without it).
        command.env("LIGHTNINGD_PLUGIN", "1");
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

    /// getmanifest then init with myplugin's option, as lightningd does
    /// (see `Plugin::handshake`).
    fn handshake(&mut self, node: &Node) {
        self.handshake_with(node, json!({"foo_opt": "bar"}));
    }

    fn handshake_with(&mut self, node: &Node, options: Value) {
        let manifest = self.request(
            json!(86),
            "getmanifest",
            json!({"allow-deprecated-apis": false}),
        );
        assert!(manifest["result"]["rpcmethods"].is_array(), "{manifest}");
        let init = self.request(
            json!("cln:init#151"),
            "init",
            support::init_params(options, node),
        );
        assert_eq!(init["result"], json!({}), "{init}");
    }

    /// `VmHWM` (peak resident set), `VmRSS` and `RssAnon` (the part no
    /// other process shares: not the executable's or libraries' pages) from
    /// /proc, in MiB.
    fn memory_mib(&self) -> (f64, f64, f64) {
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
        (field("VmHWM:"), field("VmRSS:"), field("RssAnon:"))
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

/// What the timed calls ask.
#[derive(Clone, Copy)]
enum Workload {
    /// The seed's method: a filtered getinfo on the node, then the answer.
    Myplugin,
    /// `echo`, which answers its params without the node.
    Echo,
}

impl Workload {
    fn request(self, i: usize) -> (Value, String) {
        let method = match self {
            Workload::Myplugin => "myplugin",
            Workload::Echo => "echo",
        };
        let id = json!(format!("cli:{method}#{i}/cln:{method}#{i}"));
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method,
            "params": {"foo1": "bar1", "foo2": "bar2"}});
        (id, format!("{msg}\n\n"))
    }

    fn expected(self) -> Value {
        let params = json!({"foo1": "bar1", "foo2": "bar2"});
        match self {
            Workload::Myplugin => {
                json!({"node_id": NODE_ID, "option": {"foo_opt": "bar"}, "cli_params": params})
            }
            Workload::Echo => json!({"method": "echo", "params": params}),
        }
    }
}

/// `count` calls one after the other; each one timed from the write of the
/// request to the parsed answer.
fn sequential(p: &mut Proc, work: Workload, first: usize, count: usize) -> Vec<Duration> {
    let expected = work.expected();
    let mut times = Vec::with_capacity(count);
    for i in first..first + count {
        let (id, text) = work.request(i);
        let started = Instant::now();
        p.send_text(&text);
        let answer = p.next_answer();
        times.push(started.elapsed());
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["result"], expected, "{answer}");
    }
    times
}

/// `count` sequential calls to each of `procs`, in [`BLOCKS`] turns.
fn interleaved(
    procs: &mut [Proc],
    work: Workload,
    first: usize,
    count: usize,
) -> Vec<Vec<Duration>> {
    let mut times = vec![Vec::with_capacity(count); procs.len()];
    let per_block = count.div_ceil(BLOCKS);
    for block in 0..BLOCKS {
        let start = first + block * per_block;
        let n = per_block.min((first + count).saturating_sub(start));
        for (p, t) in procs.iter_mut().zip(&mut times) {
            t.extend(sequential(p, work, start, n));
        }
    }
    times
}

/// A running plugin after its handshake and [`WARMUP`] calls.
fn warmed_up(launcher: &Launcher, node: &Node, work: Workload) -> Proc {
    let mut p = Proc::spawn(launcher);
    match work {
        Workload::Myplugin => p.handshake(node),
        Workload::Echo => p.handshake_with(node, json!({})),
    }
    sequential(&mut p, work, 0, WARMUP);
    p
}

/// `total` calls with `window` of them outstanding at all times; calls/s.
fn throughput(p: &mut Proc, first: usize, total: usize, window: usize) -> f64 {
    let texts: Vec<String> = (first..first + total)
        .map(|i| Workload::Myplugin.request(i).1)
        .collect();
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

/// The bench's own `getinfo` round trip to the node stand-in, as the host
/// makes it (chained id, `\n\n`, one kept connection): what a call costs at
/// the node, before any plugin.
fn direct_getinfo(node: &Node, count: usize) -> Vec<Duration> {
    let mut stream = UnixStream::connect(node.socket()).unwrap();
    let mut answers =
        serde_json::Deserializer::from_reader(BufReader::new(stream.try_clone().unwrap()))
            .into_iter::<Value>();
    let mut times = Vec::with_capacity(count);
    for i in 0..WARMUP + count {
        let id = format!("cli:myplugin#{i}/cln:myplugin#{i}/myplugin:getinfo#{i}");
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "getinfo", "params": [],
            "filter": {"id": true}});
        let text = format!("{msg}\n\n");
        let started = Instant::now();
        stream.write_all(text.as_bytes()).unwrap();
        let answer = answers.next().unwrap().unwrap();
        let took = started.elapsed();
        assert_eq!(answer["result"], json!({"id": NODE_ID}), "{answer}");
        if i >= WARMUP {
            times.push(took);
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

/// One plugin's figures: of one round, or the medians over all rounds.
#[derive(Clone, Copy)]
struct Figures {
    start_ms: f64,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    throughput: f64,
    peak_rss: f64,
    private_rss: f64,
}

impl Figures {
    /// The median of each figure over `rounds`.
    fn median(rounds: &[Figures]) -> Figures {
        let m = |f: fn(&Figures) -> f64| median_f64(rounds.iter().map(f).collect());
        Figures {
            start_ms: m(|f| f.start_ms),
            p50_us: m(|f| f.p50_us),
            p99_us: m(|f| f.p99_us),
            mean_us: m(|f| f.mean_us),
            throughput: m(|f| f.throughput),
            peak_rss: m(|f| f.peak_rss),
            private_rss: m(|f| f.private_rss),
        }
    }
}

fn median_f64(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// After its sequential calls: a plugin's throughput, then its memory.
fn load_and_memory(p: &mut Proc) -> (f64, f64, f64) {
    let tput = throughput(p, WARMUP + SEQUENTIAL, TOTAL, IN_FLIGHT);
    let (peak, _, private) = p.memory_mib();
    (tput, peak, private)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One round over every plugin: start-ups (the plugins alternating, and the
/// host without its cache after each turn, into `cold_starts`); sequential
/// calls, every plugin running and taking turns; then each one's throughput
/// and memory. Also every timed call, per plugin.
fn round(
    launchers: &[Launcher],
    cold: &Launcher,
    node: &Node,
    cold_starts: &mut Vec<Duration>,
) -> (Vec<Figures>, Vec<Vec<Duration>>) {
    let mut starts: Vec<Vec<Duration>> = vec![Vec::new(); launchers.len()];
    for _ in 0..STARTS {
        for (launcher, times) in launchers.iter().zip(starts.iter_mut()) {
            let started = Instant::now();
            let mut p = Proc::spawn(launcher);
            p.handshake(node);
            times.push(started.elapsed());
        }
        let started = Instant::now();
        Proc::spawn(cold).handshake(node);
        cold_starts.push(started.elapsed());
    }
    let mut procs: Vec<Proc> = launchers
        .iter()
        .map(|l| warmed_up(l, node, Workload::Myplugin))
        .collect();
    let times = interleaved(&mut procs, Workload::Myplugin, WARMUP, SEQUENTIAL);
    let figures = procs
        .iter_mut()
        .zip(&times)
        .zip(starts)
        .map(|((p, times), starts)| {
            let latency = latency(times.clone());
            let (throughput, peak_rss, private_rss) = load_and_memory(p);
            Figures {
                start_ms: ms(median(starts)),
                p50_us: us(latency.p50),
                p99_us: us(latency.p99),
                mean_us: us(latency.mean),
                throughput,
                peak_rss,
                private_rss,
            }
        })
        .collect();
    (figures, times)
}

/// The host's own cost per call without node I/O: `echo` through the host
/// and its test guest against the floor's `echo`, taking turns.
fn echo_overhead(node: &Node, cache: std::ffi::OsString) -> (Latency, Latency) {
    let host = Launcher::guest("misbehave", Kind::Guest("host + misbehave.wasm"), cache);
    let mut procs = [
        warmed_up(&Launcher::floor(), node, Workload::Echo),
        warmed_up(&host, node, Workload::Echo),
    ];
    let [floor, host] = interleaved(&mut procs, Workload::Echo, WARMUP, SEQUENTIAL)
        .try_into()
        .expect("two plugins");
    (latency(floor), latency(host))
}

/// Runs of [`per_op`]: 5 of 100 000 each.
const PER_OP_RUNS: u32 = 100_000;

/// What one `f()` costs in-process: the median of 5 runs, in ns.
fn per_op(mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..PER_OP_RUNS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(PER_OP_RUNS)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

/// What the policy's checks cost, in-process, per hook answer and per
/// answer written (the median of 5 runs of 100 000 each, in ns).
fn checks_cost() {
    use cln_wasm_host::policy::{Hook, HookGrant};
    use cln_wasm_host::protocol::Outbox;
    use serde_json::value::RawValue;
    const N: u32 = PER_OP_RUNS;
    let grant: HookGrant =
        toml::from_str("name = \"peer_connected\"\nresults = [\"disconnect\"]").unwrap();
    let hook = Hook::find("peer_connected").unwrap();
    let answer =
        r#"{"result": "disconnect", "error_message": "peer 02aa is denied by peerpolicy"}"#;
    let check = per_op(move || {
        let Ok(Value::Object(map)) = serde_json::from_str(std::hint::black_box(answer)) else {
            unreachable!()
        };
        std::hint::black_box(hook.check(&grant, &Value::Null, &map)).unwrap();
    });
    let outbox = Outbox::new(Box::new(std::io::sink()));
    let seed =
        json!({"node_id": NODE_ID, "option": {"foo_opt": "bar"}, "cli_params": {"foo1": "bar1"}});
    let compact = RawValue::from_string(seed.to_string()).unwrap();
    let spread = RawValue::from_string(serde_json::to_string_pretty(&seed).unwrap()).unwrap();
    let write = |raw: Box<RawValue>| {
        let outbox = &outbox;
        per_op(move || outbox.result(&json!("cli:x#1"), &raw).unwrap())
    };
    let (compact_ns, spread_ns) = (write(compact), write(spread));
    println!(
        "the policy's checks, in-process, median of 5 × {N}: a hook answer checked against its \
         grant {check:.0} ns (JSON parse included); an answer written to lightningd {compact_ns:.0} ns \
         when compact, {spread_ns:.0} ns when the guest spread it over lines (made one line)"
    );
    limits_cost();
}

/// What the limits' accounting costs, in-process: what a call pays (its
/// deadline), what each node call or notification pays (a token), and what
/// a log line pays, passed or dropped.
fn limits_cost() {
    use cln_wasm_host::caps::{Deadline, Meters};
    use cln_wasm_host::policy::{Limits, Rate};
    let deadline = per_op(|| {
        let d = Deadline::after(Instant::now(), Duration::from_secs(60));
        std::hint::black_box(d.remaining());
    });
    let generous = Limits {
        node_calls_rate: Rate::new(u64::MAX / 2, u64::MAX / 2),
        log_lines_rate: Rate::new(0, 0),
        ..Limits::default()
    };
    let meters = Meters::new(&generous);
    let token = per_op(|| {
        std::hint::black_box(meters.node_calls.take(1));
    });
    let dropped = per_op(|| {
        meters
            .log
            .log(log::Level::Info, std::hint::black_box("guest: a line"));
    });
    println!(
        "the limits' accounting, in-process, median of 5: a call's deadline {deadline:.0} ns; \
         a node call's (or notification's) token {token:.0} ns; a log line dropped {dropped:.0} ns"
    );
}

fn main() {
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("bench myplugin: gave up after {WATCHDOG:?}");
        std::process::exit(2);
    });

    let quick = std::env::args().any(|a| a == "quick");
    let node = Node::start();
    let cache = tempfile::tempdir().unwrap();
    // The floor first: every ratio is to it.
    let mut launchers = vec![Launcher::floor(), Launcher::host(cache.path().into())];
    if !quick {
        launchers.extend([Launcher::python(), Launcher::cln_plugin(), Launcher::pyln()]);
    }
    let rounds_wanted = if quick { 1 } else { ROUNDS };
    const FLOOR: usize = 0;
    const HOST: usize = 1;
    const SEED: usize = 2;
    let cold = Launcher::host("off".into());
    // Fill the cache: the host's start figure is a warm start.
    Proc::spawn(&launchers[HOST]).handshake(&node);

    let mut cold_starts = Vec::new();
    let mut samples: Vec<(String, Vec<Duration>)> = launchers
        .iter()
        .map(|l| (l.kind.label().to_string(), Vec::new()))
        .collect();
    let mut rounds = Vec::new();
    for _ in 0..rounds_wanted {
        let (figures, times) = round(&launchers, &cold, &node, &mut cold_starts);
        for ((_, all), times) in samples.iter_mut().zip(times) {
            all.extend(times);
        }
        rounds.push(figures);
    }
    let figures: Vec<Figures> = (0..launchers.len())
        .map(|i| Figures::median(&rounds.iter().map(|r| r[i]).collect::<Vec<_>>()))
        .collect();
    let (echo_floor, echo_host) = echo_overhead(&node, cache.path().into());
    let direct = latency(direct_getinfo(&node, SEQUENTIAL));

    let (floor, host) = (&figures[FLOOR], &figures[HOST]);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "myplugin: medians of {rounds_wanted} rounds; per round and plugin, {STARTS} spawns \
         (median), {SEQUENTIAL} sequential calls after {WARMUP} warm-up (in {BLOCKS} blocks, the \
         plugins taking turns), {TOTAL} calls with {IN_FLIGHT} in flight; {cpus} CPUs; (×) is \
         the ratio to the floor"
    );
    println!();
    println!(
        "| plugin | start (ms) | p50 (µs) | p99 (µs) | mean (µs) | throughput (calls/s) | peak RSS (MiB) | private RSS (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (launcher, f) in launchers.iter().zip(&figures) {
        // A figure and its ratio to the floor's, to `digits` decimals.
        let cell = |figure: fn(&Figures) -> f64, digits: usize| {
            let ratio = figure(f) / figure(floor);
            format!("{:.digits$} ({ratio:.2}×)", figure(f))
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            launcher.kind.label(),
            cell(|f| f.start_ms, 1),
            cell(|f| f.p50_us, 0),
            cell(|f| f.p99_us, 0),
            cell(|f| f.mean_us, 0),
            cell(|f| f.throughput, 0),
            cell(|f| f.peak_rss, 1),
            cell(|f| f.private_rss, 1),
        );
    }
    println!();
    println!(
        "host's own cost per call without node I/O (echo, {SEQUENTIAL} calls each, taking turns): \
         p50 floor {:.0} µs, host + guest {:.0} µs (+{:.0} µs, {:.2}×); p99 floor {:.0} µs, host \
         {:.0} µs",
        us(echo_floor.p50),
        us(echo_host.p50),
        us(echo_host.p50.saturating_sub(echo_floor.p50)),
        us(echo_host.p50) / us(echo_floor.p50),
        us(echo_floor.p99),
        us(echo_host.p99),
    );
    println!(
        "a getinfo from the bench to the node stand-in on a kept connection: p50 {:.0} µs, p99 \
         {:.0} µs",
        us(direct.p50),
        us(direct.p99),
    );
    println!(
        "host start without the compiled-code cache (Cranelift compiles the guest), median: \
         {:.1} ms; the table's host start is with the cache warm",
        ms(median(cold_starts))
    );
    if let Some(seed) = figures.get(SEED) {
        println!(
            "host / seed: start {:.2}×, p50 {:.2}×, p99 {:.2}×, throughput {:.2}×, peak RSS \
             {:.2}×; seed run by {}",
            host.start_ms / seed.start_ms,
            host.p50_us / seed.p50_us,
            host.p99_us / seed.p99_us,
            host.throughput / seed.throughput,
            host.peak_rss / seed.peak_rss,
            launchers[SEED].program.display()
        );
    }

    checks_cost();

    if !quick {
        samples.extend(languages(&node));
    }
    plot(&samples);
}

/// The same myplugin in every guest language, each through the host: size,
/// start with the compiled-code cache off (Cranelift compiles it) and warm,
/// and the same call figures as above. Returns the timed calls of the guests
/// other than Rust's (which the first table has).
fn languages(node: &Node) -> Vec<(String, Vec<Duration>)> {
    let guests = [
        ("myplugin", "Rust"),
        ("myplugin-py", "Python (componentize-py)"),
        ("myplugin-js", "JavaScript (componentize-js)"),
        ("myplugin-c", "C (wit-bindgen c)"),
    ];
    let mut samples = Vec::new();
    let mut rows = Vec::new();
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
        let mut p = warmed_up(&warm, node, Workload::Myplugin);
        let times = sequential(&mut p, Workload::Myplugin, WARMUP, SEQUENTIAL);
        let latency = latency(times.clone());
        let (throughput, peak, _) = load_and_memory(&mut p);
        rows.push(format!(
            "| {label} | {size} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} |",
            ms(cold),
            ms(median(starts)),
            us(latency.p50),
            us(latency.p99),
            throughput,
            peak,
        ));
        if guest != "myplugin" {
            samples.push((format!("host + {label} guest"), times));
        }
    }
    println!();
    println!("myplugin in each guest language, through the host (same node stand-in):");
    println!();
    println!(
        "| guest | size (KiB) | cold start (ms) | warm start (ms) | p50 (µs) | p99 (µs) | throughput (calls/s) | peak RSS (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    samples
}

/// Every timed sequential call to `target/bench/myplugin-latency.csv`, and
/// their distributions per plugin to `target/bench/myplugin-latency.png`.
fn plot(samples: &[(String, Vec<Duration>)]) {
    let dir = workspace().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("myplugin-latency.csv");
    let mut text = String::from("plugin,latency_us\n");
    for (label, times) in samples {
        for t in times {
            text.push_str(&format!("\"{label}\",{:.1}\n", us(*t)));
        }
    }
    std::fs::write(&csv, text).unwrap();
    let png = dir.join("myplugin-latency.png");
    let python = python_venv("plot", &[MATPLOTLIB]);
    let status = Command::new(python)
        .arg(workspace().join("benches/plot.py"))
        .arg(&csv)
        .arg(&png)
        .status()
        .expect("running benches/plot.py");
    assert!(status.success(), "benches/plot.py failed");
    println!();
    println!("timed calls: {}; plot: {}", csv.display(), png.display());
}
