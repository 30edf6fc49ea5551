//! The seed's session replayed against a real Core Lightning node: a regtest
//! bitcoind and a lightningd in a temporary directory, the host installed as
//! a dynamic plugin (`myplugin` -> cln-wasm-host, `myplugin.wasm`,
//! `myplugin.toml`), started and stopped with the `plugin` command and called
//! like `lightning-cli myplugin …`.
//!
//! It runs only when `LIGHTNINGD` names a lightningd binary; otherwise it
//! says so on stderr and passes. Optional: `BITCOIND` and `BITCOIN_CLI`
//! (default: found on PATH, bitcoin-cli also beside `BITCOIND`), and
//! `LIGHTNING_CLI` to make the plugin calls through lightning-cli, exactly as
//! in the seed, instead of straight over the node's unix socket.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{guest_wasm, host_bin};

const SKIP: &str = "skipped: set LIGHTNINGD=/path/to/lightningd (and have bitcoind/bitcoin-cli on PATH or BITCOIND) to run against a real node";

const GRANT_GETINFO: &str = "[[grants.rpc]]\nmethod = \"getinfo\"\n";
const RPC_USER: &str = "wasmhost";
const RPC_PASSWORD: &str = "wasmhostpass";
/// bitcoind's test framework's unspendable regtest address: blocks can be
/// mined to it when bitcoind has no wallet support.
const UNSPENDABLE: &str = "bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq3xueyj";

/// How long bitcoind and lightningd may take to come up.
const STARTUP: Duration = Duration::from_secs(120);
/// How long one call to the node may take (the first `plugin start` compiles
/// the guest).
const CALL: Duration = Duration::from_secs(120);

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("finding a free local port")
        .port()
}

fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({e})"),
    }
}

/// A daemon run as our child: stopped (politely, then not) when dropped, its
/// logs printed if the test is failing.
struct Daemon {
    name: &'static str,
    child: Child,
    logs: Vec<PathBuf>,
    stop: Option<Box<dyn FnOnce()>>,
}

impl Daemon {
    fn spawn(name: &'static str, cmd: &mut Command, output: PathBuf, logs: Vec<PathBuf>) -> Daemon {
        let out = File::create(&output).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name} ({:?}): {e}", cmd.get_program()));
        let mut logs = logs;
        logs.push(output);
        Daemon {
            name,
            child,
            logs,
            stop: None,
        }
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited during the test: {status}", self.name);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in &self.logs {
                eprintln!(
                    "---- {} {} (last lines) ----\n{}",
                    self.name,
                    log.display(),
                    tail(log, 80)
                );
            }
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Some(stop) = self.stop.take() {
                stop();
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// bitcoin-cli against our regtest bitcoind.
#[derive(Clone)]
struct BitcoinCli {
    exe: PathBuf,
    datadir: PathBuf,
    rpcport: u16,
}

impl BitcoinCli {
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.exe)
            .arg("-regtest")
            .arg(format!("-datadir={}", self.datadir.display()))
            .arg("-rpcconnect=127.0.0.1")
            .arg(format!("-rpcport={}", self.rpcport))
            .arg(format!("-rpcuser={RPC_USER}"))
            .arg(format!("-rpcpassword={RPC_PASSWORD}"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.exe.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "bitcoin-cli {args:?}: {} {stdout} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// A regtest bitcoind in `datadir`, answering RPC, out of initial block
/// download (one block mined), with a wallet when it has wallet support.
fn start_bitcoind(bitcoind: &Path, cli: BitcoinCli, work: &Path) -> Daemon {
    std::fs::create_dir_all(&cli.datadir).unwrap();
    // Everything in bitcoin.conf too, so that any bitcoin-cli pointed at the
    // datadir (lightningd's bcli plugin included) finds the node.
    std::fs::write(
        cli.datadir.join("bitcoin.conf"),
        format!(
            "regtest=1\nserver=1\nlisten=0\nprinttoconsole=0\nfallbackfee=0.00001\n\
             rpcuser={RPC_USER}\nrpcpassword={RPC_PASSWORD}\n\
             [regtest]\nrpcport={}\nrpcbind=127.0.0.1\nrpcallowip=127.0.0.1\n",
            cli.rpcport
        ),
    )
    .unwrap();
    let mut daemon = Daemon::spawn(
        "bitcoind",
        Command::new(bitcoind)
            .arg("-regtest")
            .arg(format!("-datadir={}", cli.datadir.display()))
            .arg("-server=1")
            .arg("-listen=0")
            .arg("-printtoconsole=0")
            .arg(format!("-rpcport={}", cli.rpcport))
            .arg("-rpcbind=127.0.0.1")
            .arg("-rpcallowip=127.0.0.1")
            .arg(format!("-rpcuser={RPC_USER}"))
            .arg(format!("-rpcpassword={RPC_PASSWORD}")),
        work.join("bitcoind.out"),
        vec![cli.datadir.join("regtest/debug.log")],
    );
    let stopper = cli.clone();
    daemon.stop = Some(Box::new(move || {
        let _ = stopper.run(&["stop"]);
    }));

    let deadline = Instant::now() + STARTUP;
    loop {
        daemon.assert_running();
        match cli.run(&["getblockchaininfo"]) {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => panic!("bitcoind never answered: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }

    // As contrib/startup_regtest.sh: a wallet, and a block to leave initial
    // block download.
    let address = match cli.run(&["createwallet", "wasmhost"]) {
        Ok(_) => cli
            .run(&["-rpcwallet=wasmhost", "getnewaddress"])
            .unwrap_or_else(|e| panic!("getnewaddress: {e}")),
        Err(e) => {
            eprintln!("no bitcoind wallet ({e}); mining to an unspendable address");
            UNSPENDABLE.to_string()
        }
    };
    cli.run(&["generatetoaddress", "1", &address])
        .unwrap_or_else(|e| panic!("mining a block: {e}"));
    daemon
}

/// The node's JSON-RPC, straight over its unix socket.
fn socket_call(
    socket: &Path,
    method: &str,
    params: &Value,
    timeout: Duration,
) -> std::io::Result<Result<Value, Value>> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!(
        "real_lightningd:{method}#{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    stream.write_all(format!("{request}\n").as_bytes())?;
    // Whole answers, however they are split on the wire; anything not ours
    // (notifications) is skipped.
    for msg in serde_json::Deserializer::from_reader(BufReader::new(stream)).into_iter::<Value>() {
        let msg = msg?;
        if msg["id"] != json!(id) {
            continue;
        }
        return Ok(match msg.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(msg["result"].clone()),
        });
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("lightningd closed the connection without answering {method}"),
    ))
}

/// The node, reached over its socket, or for the plugin's calls through
/// lightning-cli when `LIGHTNING_CLI` is set.
struct Node {
    lightning_dir: PathBuf,
    socket: PathBuf,
    lightning_cli: Option<PathBuf>,
}

impl Node {
    /// A call over the socket; transport failures fail the test.
    fn rpc(&self, method: &str, params: Value) -> Result<Value, Value> {
        socket_call(&self.socket, method, &params, CALL)
            .unwrap_or_else(|e| panic!("{method} over {}: {e}", self.socket.display()))
    }

    /// A call as a user makes it: `lightning-cli [-k] METHOD ARGS…` when
    /// LIGHTNING_CLI is set, else over the socket.
    fn call(&self, method: &str, params: Value) -> Result<Value, Value> {
        let Some(cli) = &self.lightning_cli else {
            return self.rpc(method, params);
        };
        let plain = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut cmd = Command::new(cli);
        cmd.arg(format!("--lightning-dir={}", self.lightning_dir.display()))
            .arg("--network=regtest")
            .arg("-J");
        match &params {
            Value::Object(map) => {
                cmd.arg("-k").arg(method);
                cmd.args(map.iter().map(|(k, v)| format!("{k}={}", plain(v))));
            }
            Value::Array(items) => {
                cmd.arg(method);
                cmd.args(items.iter().map(plain));
            }
            other => panic!("params must be an object or an array, not {other}"),
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run LIGHTNING_CLI={}: {e}", cli.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match serde_json::from_str::<Value>(&stdout) {
            Ok(v) if out.status.success() => Ok(v),
            Ok(v) => Err(v),
            Err(e) => Err(json!({
                "lightning-cli": format!("{} (no JSON: {e})", out.status),
                "stdout": stdout,
                "stderr": stderr,
            })),
        }
    }
}

/// lightningd on regtest in `lightning_dir`, up and answering `getinfo`.
fn start_lightningd(
    lightningd: &Path,
    bitcoin: &BitcoinCli,
    lightning_dir: &Path,
    work: &Path,
) -> Daemon {
    std::fs::create_dir_all(lightning_dir).unwrap();
    let socket = lightning_dir.join("regtest/lightning-rpc");
    let mut daemon = Daemon::spawn(
        "lightningd",
        Command::new(lightningd)
            .current_dir(work)
            .arg("--network=regtest")
            .arg(format!("--lightning-dir={}", lightning_dir.display()))
            .arg(format!("--bitcoin-datadir={}", bitcoin.datadir.display()))
            .arg(format!("--bitcoin-cli={}", bitcoin.exe.display()))
            .arg("--bitcoin-rpcconnect=127.0.0.1")
            .arg(format!("--bitcoin-rpcport={}", bitcoin.rpcport))
            .arg(format!("--bitcoin-rpcuser={RPC_USER}"))
            .arg(format!("--bitcoin-rpcpassword={RPC_PASSWORD}"))
            // Our own port, none of the defaults (9735, 19846 for regtest):
            // a node the user runs is left alone.
            .arg(format!("--addr=127.0.0.1:{}", free_port()))
            // cln-grpc listens on 9736 by default.
            .arg("--disable-plugin=cln-grpc")
            // As startup_regtest.sh: harmless on a fresh database, needed by
            // development builds.
            .arg("--database-upgrade=true")
            .arg("--log-level=debug")
            .arg(format!(
                "--log-file={}",
                lightning_dir.join("log").display()
            )),
        work.join("lightningd.out"),
        vec![lightning_dir.join("log")],
    );
    let stop_socket = socket.clone();
    daemon.stop = Some(Box::new(move || {
        let _ = socket_call(&stop_socket, "stop", &json!([]), Duration::from_secs(10));
    }));

    let deadline = Instant::now() + STARTUP;
    loop {
        daemon.assert_running();
        let last = if socket.exists() {
            match socket_call(&socket, "getinfo", &json!([]), Duration::from_secs(10)) {
                Ok(Ok(info)) if info["id"].is_string() => break,
                other => format!("{other:?}"),
            }
        } else {
            format!("no {}", socket.display())
        };
        assert!(
            Instant::now() < deadline,
            "lightningd not answering getinfo: {last}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    daemon
}

fn seed_answer(node_id: &str, foo_opt: &str, cli_params: Value) -> Value {
    json!({ "node_id": node_id, "option": { "foo_opt": foo_opt }, "cli_params": cli_params })
}

/// The answer, exactly, keys in the seed's order.
fn assert_answer(what: &str, answer: Result<Value, Value>, expected: Value) {
    let answer = answer.unwrap_or_else(|e| panic!("{what}: error {e}"));
    assert_eq!(answer, expected, "{what}");
    let keys: Vec<&str> = answer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["node_id", "option", "cli_params"],
        "{what}: key order"
    );
}

fn assert_started(what: &str, answer: Result<Value, Value>, plugin: &Path) {
    let answer = answer.unwrap_or_else(|e| panic!("{what}: error {e}"));
    assert_eq!(answer["command"], json!("start"), "{what}: {answer}");
    let listed = answer["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| Path::new(n) == plugin || n.ends_with("/myplugin"))
        })
        .unwrap_or_else(|| panic!("{what}: {} not listed: {answer}", plugin.display()));
    assert_eq!(listed["active"], json!(true), "{what}: {listed}");
    assert_eq!(listed["dynamic"], json!(true), "{what}: {listed}");
}

#[test]
fn myplugin_answers_like_the_seed_on_a_real_node() {
    let Some(lightningd) = env_path("LIGHTNINGD") else {
        // Straight to stderr, past the test harness's capture, so a plain
        // `cargo test` shows why nothing ran.
        let _ = writeln!(std::io::stderr(), "{SKIP}");
        return;
    };
    let version = Command::new(&lightningd)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run LIGHTNINGD={}: {e}", lightningd.display()));
    eprintln!(
        "lightningd {}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let bitcoind = env_path("BITCOIND")
        .or_else(|| which("bitcoind"))
        .expect("no bitcoind: put it on PATH or set BITCOIND=/path/to/bitcoind");
    let bitcoin_cli_exe = env_path("BITCOIN_CLI")
        .or_else(|| Some(bitcoind.with_file_name("bitcoin-cli")).filter(|p| p.is_file()))
        .or_else(|| which("bitcoin-cli"))
        .expect("no bitcoin-cli: put it on PATH, beside BITCOIND, or set BITCOIN_CLI");

    // Short paths: the node's socket path must fit a sockaddr_un.
    let tmp = if Path::new("/tmp").is_dir() {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    // Dropped last: the daemons below stop first (locals drop in reverse).
    let work = tempfile::Builder::new()
        .prefix("clnwasm")
        .tempdir_in(tmp)
        .unwrap();
    let root = work.path().canonicalize().unwrap();

    // The plugin, installed as an operator would: NAME -> host, NAME.wasm,
    // NAME.toml granting getinfo.
    let plugin_dir = root.join("plugin");
    std::fs::create_dir(&plugin_dir).unwrap();
    let plugin = plugin_dir.join("myplugin");
    std::os::unix::fs::symlink(host_bin(), &plugin).unwrap();
    std::fs::copy(guest_wasm("myplugin"), plugin_dir.join("myplugin.wasm")).unwrap();
    std::fs::write(plugin_dir.join("myplugin.toml"), GRANT_GETINFO).unwrap();
    let plugin_arg = plugin.to_str().expect("a UTF-8 temp path");

    let bitcoin = BitcoinCli {
        exe: bitcoin_cli_exe,
        datadir: root.join("bitcoin"),
        rpcport: free_port(),
    };
    let _bitcoind = start_bitcoind(&bitcoind, bitcoin.clone(), &root);
    let lightning_dir = root.join("lightning");
    let mut lightningd = start_lightningd(&lightningd, &bitcoin, &lightning_dir, &root);

    let node = Node {
        socket: lightning_dir.join("regtest/lightning-rpc"),
        lightning_dir,
        lightning_cli: env_path("LIGHTNING_CLI"),
    };
    eprintln!(
        "plugin calls go {}",
        match &node.lightning_cli {
            Some(cli) => format!("through {}", cli.display()),
            None => "over the node's socket".into(),
        }
    );
    let info = node.rpc("getinfo", json!([])).expect("getinfo");
    assert_eq!(info["network"], json!("regtest"), "{info}");
    let node_id = info["id"].as_str().expect("getinfo id").to_string();

    // lightning-cli -k plugin subcommand=start plugin=/abs/path/myplugin foo_opt=BAR
    let started = node.call(
        "plugin",
        json!({"subcommand": "start", "plugin": plugin_arg, "foo_opt": "BAR"}),
    );
    assert_started("plugin start foo_opt=BAR", started, &plugin);

    // lightning-cli -k myplugin foo1=bar1 foo2=bar2
    assert_answer(
        "myplugin foo1=bar1 foo2=bar2",
        node.call("myplugin", json!({"foo1": "bar1", "foo2": "bar2"})),
        seed_answer(&node_id, "BAR", json!({"foo1": "bar1", "foo2": "bar2"})),
    );
    // lightning-cli myplugin bar1 bar2
    assert_answer(
        "myplugin bar1 bar2",
        node.call("myplugin", json!(["bar1", "bar2"])),
        seed_answer(&node_id, "BAR", json!(["bar1", "bar2"])),
    );
    // lightning-cli myplugin
    assert_answer(
        "myplugin",
        node.call("myplugin", json!([])),
        seed_answer(&node_id, "BAR", json!([])),
    );

    // lightning-cli plugin stop /abs/path/myplugin: the method goes away.
    let stopped = node
        .call(
            "plugin",
            json!({"subcommand": "stop", "plugin": plugin_arg}),
        )
        .unwrap_or_else(|e| panic!("plugin stop: error {e}"));
    assert_eq!(stopped["command"], json!("stop"), "{stopped}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match node.call("myplugin", json!([])) {
            Err(e) if e["code"] == json!(-32601) => break,
            other => assert!(
                Instant::now() < deadline,
                "myplugin still served after plugin stop: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    lightningd.assert_running();

    // Started again without foo_opt: the default applies.
    let started = node.call(
        "plugin",
        json!({"subcommand": "start", "plugin": plugin_arg}),
    );
    assert_started("plugin start", started, &plugin);
    assert_answer(
        "myplugin (default foo_opt)",
        node.call("myplugin", json!([])),
        seed_answer(&node_id, "bar", json!([])),
    );
    assert_answer(
        "myplugin foo1=bar1 foo2=bar2 (default foo_opt)",
        node.call("myplugin", json!({"foo1": "bar1", "foo2": "bar2"})),
        seed_answer(&node_id, "bar", json!({"foo1": "bar1", "foo2": "bar2"})),
    );
    assert_answer(
        "myplugin bar1 bar2 (default foo_opt)",
        node.call("myplugin", json!(["bar1", "bar2"])),
        seed_answer(&node_id, "bar", json!(["bar1", "bar2"])),
    );
    lightningd.assert_running();
}
