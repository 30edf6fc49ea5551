//! Plugin mode: the host as lightningd sees it. Requests enter in [`serve`],
//! which answers `getmanifest` and `init` itself ([`handshake`]); after that,
//! [`Serving::route`] decides what each message asks for and
//! [`Serving::run`] runs it in a guest instance, on the thread that read it.

use crate::bindings::Manifest;
use crate::bindings::OptionValue;
use crate::capabilities::{CallContext, Declared, Session, Settings};
use crate::manifest;
use crate::node::NodeClient;
use crate::policy::Policy;
use crate::protocol::{
    Frame, FrameReader, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, Message,
    Outbox, RpcError,
};
use crate::runtime::Runtime;
use crate::swap::{self, GuestSlot};
use crate::workers::Serial;
use anyhow::Context;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};

/// lightningd kills a plugin 30 s after `shutdown`; finish calls well before.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// Where a plugin's parts live.
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
pub struct PluginFiles {
    pub name: String,
    pub wasm: PathBuf,
    /// The policy's file: the plugin file itself, or the tools' `--policy`.
    pub policy: PathBuf,
}

/// What every `.wasm` starts with; a plugin file is text.
const WASM_MAGIC: &[u8] = b"\0asm";

impl PluginFiles {
    /// From the plugin file the kernel gave us: its name is the file's name,
    /// its guest the policy's `wasm` (default `NAME.wasm`), beside it unless
    /// absolute.
    pub fn open(plugin_file: &Path) -> anyhow::Result<(PluginFiles, Policy)> {
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
        let files = PluginFiles {
            name,
            wasm,
            policy: plugin_file.to_path_buf(),
        };
        Ok((files, policy))
    }

    /// For the tools: `path` is a plugin file, or a `.wasm` whose name is its
    /// file stem and whose policy is `policy` (default: `NAME.toml` beside
    /// it; none there grants nothing).
    pub fn for_tool(path: &Path, policy: Option<PathBuf>) -> anyhow::Result<(PluginFiles, Policy)> {
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
            return PluginFiles::open(path);
        }
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .context("the .wasm path has no file name")?;
        let files = PluginFiles {
            name: name.to_string(),
            policy: policy.unwrap_or_else(|| path.with_extension("toml")),
            wasm: path.to_path_buf(),
        };
        let policy = Policy::load_or_default(&files.policy)?;
        Ok((files, policy))
    }
}

/// A guest, loaded and asked for its manifest.
pub struct LoadedGuest {
    pub runtime: Arc<Runtime>,
    pub manifest: Manifest,
}

/// Load the component under `policy`, and get a valid manifest from it.
/// `outbox` is where the guest's custom notifications go (none: the log).
pub fn load(
    files: &PluginFiles,
    policy: Policy,
    outbox: Option<Arc<Outbox>>,
) -> anyhow::Result<LoadedGuest> {
    load_with(
        files,
        Arc::new(Session::before_init(&files.name, policy, outbox)),
    )
}

/// Load `files.wasm` into an existing session (a hot swap keeps the options,
/// the node and the policy).
pub fn load_with(files: &PluginFiles, session: Arc<Session>) -> anyhow::Result<LoadedGuest> {
    let started = Instant::now();
    let runtime = Runtime::load(&files.wasm, session)?;
    let manifest = runtime
        .manifest()
        .map_err(|f| anyhow::anyhow!("{}", RpcError::from(f).message))?;
    manifest::validate(&manifest)
        .with_context(|| format!("{}'s manifest", files.wasm.display()))?;
    log::debug!(
        "loaded {} in {:.1} ms",
        files.wasm.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(LoadedGuest {
        runtime: Arc::new(runtime),
        manifest,
    })
}

/// Members of init's configuration a guest gets: not the paths of the
/// node's files (it cannot open them, and they tell it the host's layout).
const HIDDEN_CONFIGURATION: &[&str] = &["lightning-dir", "rpc-file"];

/// Apply `init`: type the options, keep the configuration, connect the node,
/// then run the guest's own `init`. `Err` is the reason lightningd shows when
/// it disables the plugin.
pub fn start_session(
    guest: &LoadedGuest,
    options: &Map<String, Value>,
    configuration: &Map<String, Value>,
    rpc_path: Option<PathBuf>,
    init_id: &str,
) -> Result<(), String> {
    let options = manifest::typed_options(&guest.manifest.options, options)?;
    let old = guest.runtime.session();
    let node =
        rpc_path.map(|path| NodeClient::new(path, &old.plugin, old.policy.limits.call_timeout()));
    let mut configuration = configuration.clone();
    configuration.retain(|k, _| !HIDDEN_CONFIGURATION.contains(&k.as_str()));
    let mut settings = Settings {
        configuration: Value::Object(configuration).to_string(),
        allow_deprecated_apis: old.settings().allow_deprecated_apis,
        ..Settings::default()
    };
    settings.set_options(options);
    let m = &guest.manifest;
    guest.runtime.set_session(Session {
        plugin: old.plugin.clone(),
        policy: old.policy.clone(),
        node,
        outbox: old.outbox.clone(),
        declared: Declared {
            rpc: m.rpc.iter().map(|r| r.method.clone()).collect(),
            store: m.wants_store,
            notifications: m.notifications.iter().cloned().collect(),
        },
        settings: RwLock::new(settings),
    });
    let call = CallContext {
        id: init_id.to_string(),
        method: "init".into(),
        params: RawValue::from_string("{}".into()).expect("{} is JSON"),
    };
    match guest.runtime.init(call) {
        Ok(answer) => answer,
        Err(failure) => Err(format!("init failed: {}", RpcError::from(failure).message)),
    }
}

/// Counts calls in flight so shutdown can wait for them.
#[derive(Default)]
struct InFlight {
    state: Mutex<Running>,
    idle: Condvar,
}

#[derive(Default)]
struct Running {
    count: usize,
    /// Someone waits for `count` to reach 0 (only then is it signalled:
    /// a wake-up per call would cost a system call each).
    draining: bool,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self) {
        self.lock().count += 1;
    }

    fn finish(&self) {
        let mut running = self.lock();
        running.count -= 1;
        if running.draining && running.count == 0 {
            self.idle.notify_all();
        }
    }

    /// Wait until no call is running, or `grace` is over.
    fn drain(&self, grace: Duration) {
        let mut guard = self.lock();
        guard.draining = true;
        let (running, _) = self
            .idle
            .wait_timeout_while(guard, grace, |r| r.count > 0)
            .unwrap_or_else(|p| p.into_inner());
        if running.count > 0 {
            log::warn!("exiting with {} call(s) still running", running.count);
        }
    }
}

enum Phase {
    Manifest,
    Init,
}

/// Whether the guest subscribed to `topic` (`*` is all but `log`).
fn subscribed(manifest: &Manifest, topic: &str) -> bool {
    manifest
        .subscriptions
        .iter()
        .any(|s| s == topic || (s == "*" && topic != "log"))
}

/// lightningd's messages, one at a time: frames are read from `input` and
/// split into messages (a frame may hold several).
struct Inbox<R> {
    reader: FrameReader<R>,
    pending: VecDeque<Frame>,
    closed: bool,
}

impl<R: BufRead> Inbox<R> {
    fn new(input: R) -> Self {
        Inbox {
            reader: FrameReader::new(input),
            pending: VecDeque::new(),
            closed: false,
        }
    }

    /// The next message, or `None` once lightningd closed our stdin or sent
    /// `shutdown` (see [`Inbox::close`]).
    fn next(&mut self) -> anyhow::Result<Option<Frame>> {
        while self.pending.is_empty() && !self.closed {
            match self
                .reader
                .next_frame()
                .context("reading from lightningd")?
            {
                Some(text) => self.pending.extend(crate::protocol::parse_frame(&text)),
                None => {
                    log::debug!("lightningd closed our stdin");
                    self.closed = true;
                }
            }
        }
        Ok(self.pending.pop_front())
    }

    /// Read nothing more.
    fn close(&mut self) {
        self.closed = true;
        self.pending.clear();
    }
}

/// How the handshake ended.
enum Started {
    /// `init` was answered: serve calls with this guest.
    Serving(Arc<GuestSlot>),
    /// Exit with this code (shutdown, end of input, or a guest that
    /// cannot start).
    Exit(i32),
}

/// Serve lightningd on `input`/`outbox` as the plugin `plugin` (its files
/// and policy, or why they cannot be read) until `shutdown` or end of input.
/// Returns the exit code.
pub fn serve(
    plugin: anyhow::Result<(PluginFiles, Policy)>,
    input: impl BufRead + Send + 'static,
    outbox: Arc<Outbox>,
) -> anyhow::Result<i32> {
    // Compile while lightningd is still sending getmanifest.
    let slot = plugin.and_then(|(files, policy)| {
        let loaded_version = swap::stamp(&files);
        let guest = load(&files, policy, Some(outbox.clone()))?;
        Ok((Arc::new(GuestSlot::new(files, guest)), loaded_version))
    });
    if let Err(e) = &slot {
        log::error!("cannot start plugin: {e:#}");
    }
    let mut inbox = Inbox::new(input);
    let slot = match handshake(&mut inbox, slot, &outbox)? {
        Started::Serving(slot) => slot,
        Started::Exit(code) => return Ok(code),
    };
    let serving = Arc::new(Serving {
        slot,
        outbox,
        inflight: Arc::new(InFlight::default()),
        notifications: Serial::start("notifications")
            .context("starting the notification thread")?,
        inbox: Mutex::new(inbox),
        readers: AtomicUsize::new(0),
    });
    let (done, finished) = mpsc::channel();
    serving.add_reader(&done);
    drop(done);
    let code = finished
        .recv()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no thread is left to read from lightningd")));
    serving.inflight.drain(SHUTDOWN_GRACE);
    code
}

/// Started by lightningd as something that is not a plugin (the host binary
/// itself, e.g. lying in a `--plugin-dir`): answer `getmanifest` with
/// `disable`, so lightningd logs `reason` and carries on starting, then exit.
pub fn serve_disabled(reason: &str, input: impl BufRead) -> anyhow::Result<i32> {
    let outbox = Outbox::new(Box::new(std::io::stdout()));
    let mut inbox = Inbox::new(input);
    while let Some(frame) = inbox.next()? {
        if let Frame::Message(Message { id: Some(id), .. }) = frame {
            outbox.result(&id, &raw(&json!({ "disable": reason })))?;
            return Ok(0);
        }
    }
    Ok(0)
}

/// `getmanifest`, then `init`, answered in order on the calling thread.
fn handshake<R: BufRead>(
    inbox: &mut Inbox<R>,
    slot: anyhow::Result<(Arc<GuestSlot>, Option<swap::Stamp>)>,
    outbox: &Outbox,
) -> anyhow::Result<Started> {
    let mut phase = Phase::Manifest;
    while let Some(frame) = inbox.next()? {
        let msg = match frame {
            Frame::Message(msg) => msg,
            Frame::Invalid { id, error } => {
                log::warn!("bad message from lightningd: {}", error.message);
                outbox.error(&id, &error)?;
                continue;
            }
        };
        let method = msg.method.clone().unwrap_or_default();
        let Some(id) = msg.id.clone() else {
            if method == "shutdown" {
                log::debug!("shutdown requested");
                return Ok(Started::Exit(0));
            }
            log::debug!("ignoring notification {method:?}");
            continue;
        };
        match (&phase, method.as_str(), &slot) {
            (_, "getmanifest", Err(e)) => {
                let message = format!("cannot start plugin: {e:#}");
                outbox.error(&id, &RpcError::new(INTERNAL_ERROR, message))?;
                return Ok(Started::Exit(1));
            }
            (Phase::Manifest, "getmanifest", Ok((slot, _))) => {
                match getmanifest(slot, &msg) {
                    Ok(result) => outbox.result(&id, &raw(&result))?,
                    Err(e) => {
                        let message = format!("cannot start plugin: {e:#}");
                        log::error!("{message}");
                        outbox.error(&id, &RpcError::new(INTERNAL_ERROR, message))?;
                        return Ok(Started::Exit(1));
                    }
                }
                phase = Phase::Init;
            }
            (Phase::Init, "init", Ok((slot, loaded_version))) => {
                let answer = match init(&slot.current(), &msg, &id) {
                    Ok(()) => {
                        swap::watch(slot.clone(), *loaded_version);
                        json!({})
                    }
                    Err(reason) => {
                        log::error!("disabled at init: {reason}");
                        json!({ "disable": reason })
                    }
                };
                outbox.result(&id, &raw(&answer))?;
                return Ok(Started::Serving(slot.clone()));
            }
            _ => {
                let error = RpcError::new(
                    INVALID_REQUEST,
                    format!("unexpected {method:?} during the handshake"),
                );
                outbox.error(&id, &error)?;
            }
        }
    }
    Ok(Started::Exit(0))
}

/// The `getmanifest` answer. The guest is asked again if the node allows
/// deprecated APIs (it may then declare more); the host adds `NAME-reload`
/// and the `shutdown` subscription.
fn getmanifest(slot: &GuestSlot, msg: &Message) -> anyhow::Result<Value> {
    let allow = msg
        .params
        .as_ref()
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|p| p["allow-deprecated-apis"].as_bool())
        .unwrap_or(false);
    if allow {
        slot.current()
            .runtime
            .session()
            .settings_mut()
            .allow_deprecated_apis = true;
        slot.reask_manifest()?;
    }
    let mut result = manifest::getmanifest_result(&slot.current().manifest);
    // lightningd tells only subscribers about `shutdown`, and kills the others
    // at once: the host always subscribes, to finish calls in flight.
    if let Some(topics) = result["subscriptions"].as_array_mut()
        && !topics.iter().any(|t| t == "shutdown")
    {
        topics.push(json!("shutdown"));
    }
    if let Some(methods) = result["rpcmethods"].as_array_mut() {
        methods.push(json!({
            "name": slot.reload_method(),
            "usage": "",
            "description": "Load this plugin's .wasm again and serve new calls with it, if its manifest is unchanged",
        }));
    }
    Ok(result)
}

fn raw(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("serde_json values serialize")
}

/// `init`: type the options, find the node's socket, run the guest's init.
/// `Err` is the reason lightningd shows when it disables the plugin.
fn init(guest: &LoadedGuest, msg: &Message, id: &Value) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct InitParams {
        #[serde(default)]
        options: Map<String, Value>,
        configuration: Map<String, Value>,
    }
    let params = msg.params.as_ref().ok_or("init without params")?;
    let params: InitParams =
        serde_json::from_str(params.get()).map_err(|e| format!("malformed init params: {e}"))?;
    let path = |key: &str| {
        params
            .configuration
            .get(key)
            .and_then(Value::as_str)
            .map(PathBuf::from)
    };
    let (Some(dir), Some(file)) = (path("lightning-dir"), path("rpc-file")) else {
        return Err("init's configuration lacks lightning-dir or rpc-file".into());
    };
    start_session(
        guest,
        &params.options,
        &params.configuration,
        Some(dir.join(file)),
        &id_text(id),
    )
}

/// An incoming id as the prefix of the ids of node calls it causes.
fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `setconfig` on one of the guest's options: checked against the manifest,
/// typed, then the guest's `set-option` decides.
fn setconfig(guest: &LoadedGuest, msg: &Message) -> Result<Value, RpcError> {
    #[derive(serde::Deserialize)]
    struct Params {
        config: String,
        val: Option<Value>,
    }
    let invalid = |m: String| RpcError::new(INVALID_PARAMS, m);
    let params = msg
        .params
        .as_ref()
        .ok_or_else(|| invalid("setconfig without params".into()))?;
    let Params { config, val } = serde_json::from_str(params.get())
        .map_err(|e| invalid(format!("setconfig params: {e}")))?;
    let decl = manifest::find(&guest.manifest.options, &config).map_err(invalid)?;
    if !decl.dynamic {
        return Err(invalid(format!("option {config:?} is not dynamic")));
    }
    // A flag given without a value is being set.
    let typed = manifest::typed_value(decl, &val.unwrap_or(Value::Bool(true))).map_err(invalid)?;
    let value = typed.clone().unwrap_or(OptionValue::Bool(false));
    match guest.runtime.set_option(&config, &value) {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(invalid(reason)),
        Err(failure) => return Err(failure.into()),
    }
    let session = guest.runtime.session();
    let mut settings = session.settings_mut();
    let mut options = settings.options.clone();
    match typed {
        Some(v) => options.insert(config.clone(), v),
        None => options.remove(&config),
    };
    settings.set_options(options);
    log::info!("option {config} changed by setconfig");
    Ok(json!({}))
}

/// After the handshake: every message from lightningd is read by whichever
/// thread is free (leader/follower). The thread that reads a call hands the
/// reading to another thread and runs the call itself, so a call never waits
/// for a thread to wake up, and a slow call never holds up the ones after it.
/// Notifications go to one thread, in the order they came.
struct Serving<R> {
    slot: Arc<GuestSlot>,
    outbox: Arc<Outbox>,
    inflight: Arc<InFlight>,
    /// Notifications, one after another in the order lightningd sent them.
    notifications: Serial,
    /// Held by the one thread reading; the others wait for it here.
    inbox: Mutex<Inbox<R>>,
    /// Threads that are not running a request: reading, or waiting to read.
    readers: AtomicUsize,
}

/// What became of one message.
enum Route {
    /// Answered or queued while reading (errors, notifications).
    Done,
    /// Guest work: run it, and answer if it has an id.
    Run(Work),
    /// Stop serving: `shutdown`, end of input, or stdin failed.
    Stop(anyhow::Result<i32>),
}

/// A request that runs on the thread that read it.
enum Work {
    /// One of the guest's RPC methods: answered with its result or error.
    Call(Arc<LoadedGuest>, CallContext, Value),
    /// A hook: always answered, with the safe default if the guest fails.
    Hook(Arc<LoadedGuest>, CallContext, Value),
    /// `setconfig` on one of the guest's dynamic options.
    SetConfig(Arc<LoadedGuest>, Message, Value),
    /// `NAME-reload`: load the `.wasm` again.
    Reload(Value),
}

impl<R: BufRead + Send + 'static> Serving<R> {
    /// Start one more thread that reads from lightningd when its turn comes.
    fn add_reader(self: &Arc<Self>, done: &mpsc::Sender<anyhow::Result<i32>>) {
        self.readers.fetch_add(1, Ordering::AcqRel);
        let (serving, done) = (self.clone(), done.clone());
        let spawned = std::thread::Builder::new()
            .name("call".into())
            .spawn(move || serving.read_and_run(&done));
        if let Err(e) = spawned {
            // The thread that asked reads again once its call is done.
            self.readers.fetch_sub(1, Ordering::AcqRel);
            log::error!("cannot start a thread ({e}): requests wait for the running one");
        }
    }

    fn read_and_run(self: Arc<Self>, done: &mpsc::Sender<anyhow::Result<i32>>) {
        loop {
            let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
            let route = match inbox.next() {
                Ok(Some(frame)) => self.route(frame),
                Ok(None) => Route::Stop(Ok(0)),
                Err(e) => Route::Stop(Err(e)),
            };
            match route {
                Route::Done => {}
                Route::Stop(code) => {
                    inbox.close();
                    // Only the first stop is waited for.
                    let _ = done.send(code);
                    return;
                }
                Route::Run(work) => {
                    if self.readers.fetch_sub(1, Ordering::AcqRel) == 1 {
                        self.add_reader(done);
                    }
                    drop(inbox);
                    self.run(work);
                    self.inflight.finish();
                    self.readers.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Decide what `frame` asks for, answering at once what needs no guest.
    /// Runs with the inbox held, so notifications queue in arrival order.
    fn route(&self, frame: Frame) -> Route {
        let msg = match frame {
            Frame::Message(msg) => msg,
            Frame::Invalid { id, error } => {
                log::warn!("bad message from lightningd: {}", error.message);
                return self.answered(self.outbox.error(&id, &error));
            }
        };
        let method = msg.method.clone().unwrap_or_default();
        let guest = self.slot.current();
        let Some(id) = msg.id.clone() else {
            let shutdown = method == "shutdown";
            if subscribed(&guest.manifest, &method) {
                let id = format!("{method}:notification");
                self.notify(&guest, call_context(method, msg, id));
            } else if !shutdown {
                log::debug!("ignoring notification {method:?}");
            }
            if shutdown {
                // Read nothing more; calls in flight (and the guest's own
                // `shutdown`, if it subscribed) finish before we exit.
                log::debug!("shutdown requested");
                return Route::Stop(Ok(0));
            }
            return Route::Done;
        };
        let m = &guest.manifest;
        let work = if m.methods.iter().any(|d| d.name == method) {
            Work::Call(guest.clone(), call_context(method, msg, id_text(&id)), id)
        } else if m.hooks.iter().any(|h| h.name == method) {
            Work::Hook(guest.clone(), call_context(method, msg, id_text(&id)), id)
        } else if method == "setconfig" {
            Work::SetConfig(guest, msg, id)
        } else if method == self.slot.reload_method() {
            Work::Reload(id)
        } else {
            let error = RpcError::new(METHOD_NOT_FOUND, format!("Unknown command '{method}'"));
            return self.answered(self.outbox.error(&id, &error));
        };
        self.inflight.start();
        Route::Run(work)
    }

    /// Stop if lightningd can no longer be written to.
    fn answered(&self, sent: anyhow::Result<()>) -> Route {
        match sent {
            Ok(()) => Route::Done,
            Err(e) => Route::Stop(Err(e)),
        }
    }

    /// Queue a notification behind the previous ones.
    fn notify(&self, guest: &LoadedGuest, call: CallContext) {
        let runtime = guest.runtime.clone();
        let inflight = self.inflight.clone();
        self.inflight.start();
        let queued = self.notifications.run(move || {
            let topic = call.method.clone();
            if let Err(failure) = runtime.notify(call) {
                log::warn!("{topic} notification: {}", RpcError::from(failure).message);
            }
            inflight.finish();
        });
        if let Err(e) = queued {
            log::error!("cannot queue a notification: {e}");
            self.inflight.finish();
        }
    }

    /// Run a request and answer it.
    fn run(&self, work: Work) {
        let (id, answer) = match work {
            Work::Call(guest, call, id) => (id, answer(&guest.runtime, call)),
            Work::Hook(guest, call, id) => (id, Ok(hook_answer(&guest.runtime, call))),
            Work::SetConfig(guest, msg, id) => {
                (id, setconfig(&guest, &msg).map(|result| raw(&result)))
            }
            Work::Reload(id) => {
                let digest = self.slot.reload();
                let answer = digest
                    .map(|digest| raw(&json!({ "sha256": digest })))
                    .map_err(|reason| RpcError::new(INTERNAL_ERROR, reason));
                (id, answer)
            }
        };
        if let Err(e) = self.outbox.reply(&id, answer) {
            log::error!("answering {id}: {e:#}");
        }
    }
}

/// What the guest gets to know about one message; `id` prefixes the ids of
/// the node calls it causes.
fn call_context(method: String, msg: Message, id: String) -> CallContext {
    CallContext {
        id,
        method,
        params: msg.into_params(),
    }
}

/// Every hook lightningd has accepts `continue`: what the host answers when
/// the guest cannot (an error answer to a hook would stop lightningd).
const HOOK_SAFE_DEFAULT: &str = r#"{"result":"continue"}"#;

/// The guest's answer to a hook, or the safe default (and a log line why).
pub fn hook_answer(runtime: &Runtime, call: CallContext) -> Box<RawValue> {
    let name = call.method.clone();
    let why = match runtime.hook(call) {
        Ok(text) => match serde_json::from_str::<Box<RawValue>>(&text) {
            Ok(answer) if answer.get().trim_start().starts_with('{') => return answer,
            Ok(_) => "the guest's answer is not a JSON object".to_string(),
            Err(e) => format!("the guest's answer is not JSON: {e}"),
        },
        Err(failure) => RpcError::from(failure).message,
    };
    log::warn!("{name} hook: {why}; answering {HOOK_SAFE_DEFAULT}");
    RawValue::from_string(HOOK_SAFE_DEFAULT.into()).expect("the default is JSON")
}

/// The guest's answer to one call, as lightningd must get it.
pub fn answer(runtime: &Runtime, call: CallContext) -> Result<Box<RawValue>, RpcError> {
    let method = call.method.clone();
    let text = runtime.call(call).map_err(RpcError::from)??;
    RawValue::from_string(text).map_err(|e| {
        log::warn!("{method}: the guest's answer is not JSON: {e}");
        RpcError::new(INTERNAL_ERROR, format!("plugin answered invalid JSON: {e}"))
    })
}
