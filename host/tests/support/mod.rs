//! Plays lightningd for the host under test: spawns the real binary as a
//! plugin, speaks the protocol over its stdin/stdout, and serves a node
//! stand-in on a unix socket.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long any single expected message may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// lightningd's limit for each phase of the plugin handshake.
pub const HANDSHAKE_PHASE: Duration = Duration::from_secs(120);

pub const NODE_ID: &str = "02a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn host_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cln-wasm-host"))
}

/// Runs one of the host's tools (`install`, `call`, `inspect`) as an
/// operator or author would, with the tests' compiled-code cache.
pub fn host_tool_output(args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    Command::new(host_bin())
        .env("CLN_WASM_HOST_CACHE", shared_cache())
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("running the host")
}

/// A tool's stdout; fails the test, showing the tool's stderr, if it fails.
pub fn host_tool_text(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = host_tool_output(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the tool prints text")
}

/// A tool's stdout as JSON.
pub fn host_tool(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Value {
    serde_json::from_str(&host_tool_text(args)).expect("the tool prints JSON")
}

/// The test guests and myplugin, built once per test binary for wasm32-wasip2.
/// `misbehave-v2` is misbehave built with its `v2` feature: other logic, the
/// same manifest; `misbehave-trapper` traps on every call. `misbehave-hostile` declares everything an attacker would;
/// `misbehave-thief` also a method named like lightningd's `getinfo`,
/// `misbehave-impostor` one named like its `htlc_accepted` hook.
pub fn guest_wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target"));
        let dir = target.join("wasm32-wasip2/release");
        let build = |args: &[&str]| {
            let status = Command::new(env!("CARGO"))
                .current_dir(workspace())
                .args(["build", "--release", "--target", "wasm32-wasip2"])
                .args(args)
                .status()
                .expect("running cargo to build the guests");
            assert!(status.success(), "building the guests failed: {args:?}");
        };
        for feature in ["v2", "trapper", "hostile", "thief", "impostor"] {
            build(&[
                "-p",
                "misbehave",
                "--features",
                &format!("misbehave/{feature}"),
            ]);
            let variant = dir.join(format!("misbehave-{feature}.wasm"));
            std::fs::copy(dir.join("misbehave.wasm"), variant).unwrap();
        }
        build(&["-p", "myplugin", "-p", "peerpolicy", "-p", "misbehave"]);
        dir
    });
    if let Some((script, args)) = language_guest(name) {
        return built_by_script(name, script, args);
    }
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{} missing", path.display());
    path
}

/// The build script of a guest written in another language than Rust, and
/// its arguments. The pyln guests are pyln-client plugins, unedited, built by
/// pyln-build.sh into `target/guests/NAME.wasm`.
fn language_guest(name: &str) -> Option<(&'static str, &'static [&'static str])> {
    const PYLN: &str = "guest/python/pyln-build.sh";
    match name {
        "myplugin-py" => Some(("guest/python/build.sh", &[])),
        "myplugin-js" => Some(("guest/js/build.sh", &[])),
        "myplugin-c" => Some(("guest/c/build.sh", &[])),
        "myplugin-pyln" => Some((
            PYLN,
            &["benches/pyln/myplugin.py", "--name", "myplugin-pyln"],
        )),
        "pylnfull" => Some((PYLN, &["host/tests/guests/pyln/pylnfull.py"])),
        "kitfull-py" => Some((
            "guest/python/build.sh",
            &[
                "--app",
                "host/tests/guests/python/kitfull.py",
                "--name",
                "kitfull-py",
            ],
        )),
        _ => None,
    }
}

/// `target/guests/NAME.wasm`, built once per test binary by its script (which
/// installs its pinned toolchain on first use).
fn built_by_script(name: &str, script: &str, args: &[&str]) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let path = workspace()
        .join("target/guests")
        .join(format!("{name}.wasm"));
    if !built.iter().any(|b| b == name) {
        let status = Command::new(workspace().join(script))
            .current_dir(workspace())
            .args(args)
            .status()
            .expect("running a guest build script");
        assert!(status.success(), "{script} failed");
        // Compile it once into the tests' shared cache, so that tests running
        // side by side do not all compile a large runtime at the same time.
        let status = Command::new(host_bin())
            .env("CLN_WASM_HOST_CACHE", shared_cache())
            .arg("inspect")
            .arg(&path)
            .stdout(Stdio::null())
            .status()
            .expect("running cln-wasm-host inspect");
        assert!(status.success(), "inspect {} failed", path.display());
        built.push(name.to_string());
    }
    assert!(path.exists(), "{script} did not produce {}", path.display());
    path
}

/// One compiled-code cache for the tests of a binary, never the user's own.
pub fn shared_cache() -> &'static Path {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// What the node stand-in answers `getinfo` with, until the test sets it.
pub fn getinfo() -> Value {
    json!({
        "id": NODE_ID, "alias": "TESTNODE", "color": "02a1b2", "num_peers": 0,
        "version": "v25.09", "blockheight": 101, "network": "regtest",
    })
}

/// A node stand-in: answers `getinfo` (top-level filter applied, like
/// lightningd), records every request, and can vanish and come back.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub rpc_file: String,
    state: Arc<NodeState>,
}

struct NodeState {
    requests: Mutex<Vec<Value>>,
    getinfo: Mutex<Value>,
    /// Results for other methods, set by the test.
    canned: Mutex<std::collections::HashMap<String, Value>>,
    /// lightningd's datastore: key (as JSON text) -> string.
    datastore: Mutex<std::collections::BTreeMap<String, String>>,
    /// Open connections by number (to cut them when the node vanishes);
    /// each leaves when it closes, so plugins that connect per call (the
    /// seed, pyln-client) do not pile up file descriptors.
    conns: Mutex<std::collections::HashMap<u64, UnixStream>>,
    gone: AtomicBool,
}

impl Node {
    pub fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(NodeState {
            requests: Mutex::new(Vec::new()),
            getinfo: Mutex::new(getinfo()),
            conns: Mutex::new(Default::default()),
            gone: AtomicBool::new(false),
            canned: Mutex::new(Default::default()),
            datastore: Mutex::new(Default::default()),
        });
        let node = Node {
            dir,
            rpc_file: "lightning-rpc".into(),
            state,
        };
        node.listen();
        node
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join(&self.rpc_file)
    }

    fn listen(&self) {
        let listener = UnixListener::bind(self.socket()).unwrap();
        let state = self.state.clone();
        state.gone.store(false, Ordering::SeqCst);
        std::thread::spawn(move || {
            for (n, stream) in (0u64..).zip(listener.incoming()) {
                if state.gone.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { return };
                state
                    .conns
                    .lock()
                    .unwrap()
                    .insert(n, stream.try_clone().unwrap());
                let state = state.clone();
                std::thread::spawn(move || {
                    serve(stream, &state);
                    state.conns.lock().unwrap().remove(&n);
                });
            }
        });
    }

    /// What `getinfo` answers from now on; `{"__error": {...}}` makes it an error.
    pub fn set_getinfo(&self, info: Value) {
        *self.state.getinfo.lock().unwrap() = info;
    }

    /// What `method` answers from now on (its `result`; `{"__sleep_ms": N}`
    /// answers after N ms, `{"__big_bytes": N}` answers `{"big": "xx…"}` of
    /// N bytes, `{"__cut_after": N}` writes the answer's first N bytes and
    /// closes the connection).
    pub fn answer(&self, method: &str, result: Value) {
        self.state
            .canned
            .lock()
            .unwrap()
            .insert(method.into(), result);
    }

    /// The datastore's keys, each a JSON array of strings.
    pub fn datastore_keys(&self) -> Vec<Value> {
        self.state
            .datastore
            .lock()
            .unwrap()
            .keys()
            .map(|k| serde_json::from_str(k).unwrap())
            .collect()
    }

    /// Every request the node received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Forget the requests recorded so far (a soak would hold millions).
    pub fn forget_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// The socket disappears and every open connection is cut.
    pub fn vanish(&self) {
        self.state.gone.store(true, Ordering::SeqCst);
        std::fs::remove_file(self.socket()).unwrap();
        let _ = UnixStream::connect(self.socket()); // wakes the accept loop (fails: no file)
        for (_, c) in self.state.conns.lock().unwrap().drain() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    /// The node is back at the same path.
    pub fn come_back(&self) {
        self.listen();
    }
}

fn serve(stream: UnixStream, state: &NodeState) {
    let mut out = stream.try_clone().unwrap();
    for request in
        serde_json::Deserializer::from_reader(std::io::BufReader::new(stream)).into_iter::<Value>()
    {
        let Ok(request) = request else { return };
        if state.gone.load(Ordering::SeqCst) {
            return;
        }
        state.requests.lock().unwrap().push(request.clone());
        let id = request["id"].clone();
        let answer = match request["method"].as_str() {
            Some("getinfo") if state.getinfo.lock().unwrap().get("__error").is_some() => {
                let error = state.getinfo.lock().unwrap()["__error"].clone();
                json!({"jsonrpc": "2.0", "id": id, "error": error})
            }
            Some("getinfo") => {
                let info = state.getinfo.lock().unwrap().clone();
                let result = match request.get("filter").and_then(Value::as_object) {
                    Some(filter) => Value::Object(
                        info.as_object()
                            .unwrap()
                            .iter()
                            .filter(|(k, _)| filter.contains_key(*k))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                    None => info,
                };
                json!({"jsonrpc": "2.0", "id": id, "result": result})
            }
            Some(method @ ("datastore" | "listdatastore" | "deldatastore")) => {
                let key = request["params"]["key"].to_string();
                let mut store = state.datastore.lock().unwrap();
                let entry = |value: &str| json!({"key": request["params"]["key"], "string": value});
                let result = match method {
                    "datastore" => {
                        let value = request["params"]["string"].as_str().unwrap().to_string();
                        let answer = entry(&value);
                        store.insert(key, value);
                        Ok(answer)
                    }
                    // As lightningd: the key itself and its children.
                    "listdatastore" => {
                        let prefix = request["params"]["key"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let entries: Vec<Value> = store
                            .iter()
                            .filter_map(|(k, v)| {
                                let k: Vec<Value> = serde_json::from_str(k).unwrap();
                                (k.starts_with(&prefix) && k.len() <= prefix.len() + 1)
                                    .then(|| json!({"key": k, "string": v}))
                            })
                            .collect();
                        Ok(json!({ "datastore": entries }))
                    }
                    _ => store
                        .remove(&key)
                        .map(|v| entry(&v))
                        .ok_or(json!({"code": 1200, "message": "Does not exist"})),
                };
                match result {
                    Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
                }
            }
            other => {
                let canned = other.and_then(|m| state.canned.lock().unwrap().get(m).cloned());
                // `{"__sleep_ms": N}`: a method that takes its time (and then
                // answers an empty result), as `waitblockheight` does.
                if let Some(ms) = canned.as_ref().and_then(|c| c["__sleep_ms"].as_u64()) {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                if let Some(n) = canned.as_ref().and_then(|c| c["__cut_after"].as_u64()) {
                    let answer =
                        json!({"jsonrpc": "2.0", "id": id, "result": {"cut": "x".repeat(1000)}});
                    let text = answer.to_string();
                    let _ = out.write_all(&text.as_bytes()[..(n as usize).min(text.len())]);
                    let _ = out.shutdown(std::net::Shutdown::Both);
                    return;
                }
                if let Some(n) = canned.as_ref().and_then(|c| c["__big_bytes"].as_u64()) {
                    let result = json!({"big": "x".repeat(n as usize)});
                    let answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
                    if out.write_all(format!("{answer}\n\n").as_bytes()).is_err() {
                        return;
                    }
                    continue;
                }
                match canned {
                    Some(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    None => {
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("Unknown command '{}'", other.unwrap_or(""))}})
                    }
                }
            }
        };
        if out.write_all(format!("{answer}\n\n").as_bytes()).is_err() {
            return;
        }
    }
}

/// `init`'s params as lightningd v25 sends them, for a node at `node`.
pub fn init_params(options: Value, node: &Node) -> Value {
    json!({
        "options": options,
        "configuration": {
            "lightning-dir": node.dir.path(),
            "rpc-file": node.rpc_file,
            "startup": false,
            "network": "regtest",
            "feature_set": {"init": "08a000080269a2", "node": "88a000080269a2", "channel": "", "invoice": "02000000024100"}
        }
    })
}

/// The host under test, started the way lightningd starts a plugin: the
/// plugin file `install` writes (`NAME`: `#!<host>`, the guest's name, the
/// policy; `NAME.wasm` beside it), run by its canonical path with no
/// arguments, from lightningd's network directory.
pub struct Plugin {
    pub name: String,
    pub dir: tempfile::TempDir,
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    stash: VecDeque<Value>,
    logs: Vec<Value>,
    /// What the manifest subscribes to, once the handshake has shown it:
    /// lightningd sends no other notification.
    subscriptions: Option<Vec<String>>,
}

/// Write the plugin file `DIR/NAME` as `cln-wasm-host install` does: the
/// `#!` line naming the host, the guest, then `policy`; `NAME.wasm` beside it.
pub fn plugin_file(dir: &Path, name: &str, wasm: &Path, policy: &str) -> PathBuf {
    std::fs::copy(wasm, dir.join(format!("{name}.wasm"))).unwrap();
    write_plugin_file(dir, name, policy)
}

/// `DIR/NAME` holding `text`.
pub fn text_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Only the plugin file `DIR/NAME` of [`plugin_file`], naming `NAME.wasm`.
pub fn write_plugin_file(dir: &Path, name: &str, policy: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join(name);
    let text = format!(
        "#!{}\nwasm = \"{name}.wasm\"\n{policy}",
        host_bin().display()
    );
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    file
}

/// What lightningd executes for the plugin at `path`: its canonical path
/// (`plugin_register` resolves it with realpath), so links are followed.
pub fn as_lightningd_runs(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Plugin {
    pub fn spawn(name: &str, wasm: &Path, policy: &str) -> Plugin {
        Self::spawn_cached(name, wasm, policy, shared_cache())
    }

    /// Like `spawn`, with the compiled-code cache in `cache`.
    pub fn spawn_cached(name: &str, wasm: &Path, policy: &str, cache: &Path) -> Plugin {
        let dir = tempfile::tempdir().unwrap();
        let file = plugin_file(dir.path(), name, wasm, policy);
        Self::spawn_exe(name, dir, &file, cache)
    }

    /// Start `exe` as lightningd does: the canonical path, no arguments, in
    /// the node's network directory (lightningd chdirs there), here
    /// `DIR/regtest`.
    pub fn spawn_exe(name: &str, dir: tempfile::TempDir, exe: &Path, cache: &Path) -> Plugin {
        let cwd = dir.path().join("regtest");
        std::fs::create_dir_all(&cwd).unwrap();
        let mut child = Command::new(as_lightningd_runs(exe))
            .current_dir(&cwd)
            .env("CLN_WASM_HOST_CACHE", cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            // Every message must be JSON followed by a blank line: anything
            // else on stdout fails the test.
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 {
                    return;
                }
                let msg: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("plugin wrote a non-JSON line to stdout: {line:?}: {e}")
                });
                let mut blank = String::new();
                reader.read_line(&mut blank).unwrap();
                assert_eq!(blank, "\n", "message not followed by a blank line");
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        Plugin {
            name: name.into(),
            dir,
            stdin: child.stdin.take(),
            child,
            rx,
            stash: VecDeque::new(),
            logs: Vec::new(),
            subscriptions: None,
        }
    }

    pub fn send_raw(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Send `msg`; a notification only if the manifest subscribes to it, as
    /// lightningd does (`*` is every topic but `log`).
    pub fn send(&mut self, msg: &Value) {
        if let (None, Some(topic)) = (msg.get("id"), msg["method"].as_str()) {
            let topics = self
                .subscriptions
                .as_ref()
                .expect("lightningd sends notifications only after the handshake");
            assert!(
                topics
                    .iter()
                    .any(|t| t == topic || (t == "*" && topic != "log")),
                "lightningd would not send {topic:?}: the manifest subscribes to {topics:?}"
            );
        }
        self.send_raw(&format!("{msg}\n\n"));
    }

    pub fn send_request(&mut self, id: Value, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
    }

    pub fn request(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send_request(id.clone(), method, params);
        self.response(&id)
    }

    /// The next message that is not a log notification (logs are kept).
    fn next(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(msg) if msg["method"] == "log" => self.logs.push(msg["params"].clone()),
                Ok(msg) => return Some(msg),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// The answer to request `id` (other answers are kept for later).
    pub fn response(&mut self, id: &Value) -> Value {
        self.response_within(id, PATIENCE)
    }

    /// The answer to request `id`, waiting at most `patience`.
    pub fn response_within(&mut self, id: &Value, patience: Duration) -> Value {
        if let Some(pos) = self.stash.iter().position(|m| &m["id"] == id) {
            return self.stash.remove(pos).unwrap();
        }
        let deadline = Instant::now() + patience;
        loop {
            let msg = self
                .next(deadline)
                .unwrap_or_else(|| panic!("no answer to {id} (logs: {:?})", self.logs));
            if &msg["id"] == id {
                return msg;
            }
            self.stash.push_back(msg);
        }
    }

    /// The ids of answers in the order they arrived, for `count` answers.
    pub fn answer_order(&mut self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        let mut order = Vec::new();
        while order.len() < count {
            let msg = self.next(deadline).expect("answers missing");
            order.push(msg["id"].clone());
            self.stash.push_back(msg);
        }
        order
    }

    /// getmanifest then init, as lightningd does; returns both answers.
    /// Each handshake phase gets what lightningd gives it: 120 s (a large
    /// guest compiled cold on a busy machine takes tens of seconds).
    pub fn handshake(&mut self, options: Value, node: &Node) -> (Value, Value) {
        self.send_request(
            json!(86),
            "getmanifest",
            json!({"allow-deprecated-apis": false}),
        );
        let manifest = self.response_within(&json!(86), HANDSHAKE_PHASE);
        self.subscriptions =
            serde_json::from_value(manifest["result"]["subscriptions"].clone()).ok();
        let init = self.request(json!("cln:init#151"), "init", init_params(options, node));
        (manifest, init)
    }

    /// Log messages received so far (waits `settle` for late ones).
    pub fn logs(&mut self, settle: Duration) -> Vec<String> {
        let deadline = Instant::now() + settle;
        while let Some(msg) = self.next(deadline) {
            self.stash.push_back(msg);
        }
        self.log_lines()
    }

    fn log_lines(&self) -> Vec<String> {
        let text = |l: &Value, k: &str| l[k].as_str().unwrap_or("?").to_string();
        self.logs
            .iter()
            .map(|l| format!("{}: {}", text(l, "level"), text(l, "message")))
            .collect()
    }

    /// The next notification `method` the plugin sent (not `log`).
    pub fn notification(&mut self, method: &str) -> Value {
        let matches = |m: &Value| m.get("id").is_none() && m["method"] == method;
        if let Some(pos) = self.stash.iter().position(matches) {
            return self.stash.remove(pos).unwrap();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let msg = self
                .next(deadline)
                .unwrap_or_else(|| panic!("no {method} notification"));
            if matches(&msg) {
                return msg;
            }
            self.stash.push_back(msg);
        }
    }

    /// Wait (up to `PATIENCE`) for a log line starting with `prefix`.
    pub fn wait_log(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self.log_lines().into_iter().find(|l| l.starts_with(prefix));
            if let Some(line) = found {
                return line;
            }
            let msg = self.next(deadline.min(Instant::now() + Duration::from_millis(100)));
            if let Some(msg) = msg {
                self.stash.push_back(msg);
            }
            assert!(
                Instant::now() < deadline,
                "no log line {prefix:?} in {:?}",
                self.logs
            );
        }
    }

    /// Messages that arrived but were never asked for (e.g. a second answer
    /// to the same id), after waiting `settle` for late ones.
    pub fn unclaimed(&mut self, settle: Duration) -> Vec<Value> {
        self.logs(settle);
        self.stash.drain(..).collect()
    }

    /// The error a plugin that cannot start answers `getmanifest` with;
    /// it must then exit unsuccessfully.
    pub fn startup_error(&mut self) -> String {
        let answer = self.request(json!(1), "getmanifest", json!({}));
        assert!(!self.wait_exit(Duration::from_secs(10)).success());
        answer["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_string()
    }

    /// The host's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Wait for the process to end by itself.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "plugin did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
