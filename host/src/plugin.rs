//! Plugin mode: the host as lightningd sees it. Requests enter in [`serve`],
//! which answers `getmanifest` and `init` itself and hands each method call to
//! its own thread ([`dispatch`]) that runs it in a guest instance.

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
use crate::workers::{Serial, Workers};
use anyhow::Context;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

/// lightningd kills a plugin 30 s after `shutdown`; finish calls well before.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// Where a plugin's parts live: `DIR/NAME` (this binary or a link to it),
/// `DIR/NAME.wasm` (the guest) and `DIR/NAME.toml` (the operator's policy).
#[derive(Clone)]
pub struct PluginFiles {
    pub name: String,
    pub wasm: PathBuf,
    pub policy: PathBuf,
}

impl PluginFiles {
    /// From the path lightningd started us by (not the link's target).
    pub fn beside(executable: &Path) -> anyhow::Result<PluginFiles> {
        let name = executable
            .file_name()
            .and_then(|n| n.to_str())
            .context("the plugin's executable has no usable file name")?
            .to_string();
        Ok(PluginFiles {
            wasm: executable.with_file_name(format!("{name}.wasm")),
            policy: executable.with_file_name(format!("{name}.toml")),
            name,
        })
    }

    /// For a `.wasm` given on the command line: the name is its file stem.
    pub fn for_wasm(wasm: &Path, policy: Option<PathBuf>) -> anyhow::Result<PluginFiles> {
        let name = wasm
            .file_stem()
            .and_then(|n| n.to_str())
            .context("the .wasm path has no file name")?;
        Ok(PluginFiles {
            name: name.to_string(),
            policy: policy.unwrap_or_else(|| wasm.with_extension("toml")),
            wasm: wasm.to_path_buf(),
        })
    }
}

/// A guest, loaded and asked for its manifest.
pub struct LoadedGuest {
    pub runtime: Arc<Runtime>,
    pub manifest: Manifest,
}

/// Load the policy and the component, and get a valid manifest from it.
/// `outbox` is where the guest's custom notifications go (none: the log).
pub fn load(files: &PluginFiles, outbox: Option<Arc<Outbox>>) -> anyhow::Result<LoadedGuest> {
    let policy = Policy::load_or_default(&files.policy)?;
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
        "{}: loaded {} in {:?}",
        files.name,
        files.wasm.display(),
        started.elapsed()
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
    count: Mutex<usize>,
    idle: Condvar,
}

impl InFlight {
    fn start(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn finish(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.idle.notify_all();
    }

    /// Wait until no call is running, or `grace` is over.
    fn drain(&self, grace: Duration) {
        let guard = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let (count, _) = self
            .idle
            .wait_timeout_while(guard, grace, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        if *count > 0 {
            log::warn!("exiting with {} call(s) still running", *count);
        }
    }
}

enum Phase {
    Manifest,
    Init,
    Serving,
}

/// What a message from lightningd asks of the guest.
#[derive(Clone, Copy)]
enum Kind {
    /// One of the guest's RPC methods: answered with its result or error.
    Call,
    /// A hook: always answered, with the safe default if the guest fails.
    Hook,
    /// A subscribed notification: nothing to answer.
    Notification,
}

/// Whether the guest subscribed to `topic` (`*` is all but `log`).
fn subscribed(manifest: &Manifest, topic: &str) -> bool {
    manifest
        .subscriptions
        .iter()
        .any(|s| s == topic || (s == "*" && topic != "log"))
}

/// Serve lightningd on `input`/`outbox` until `shutdown` or end of input.
/// Returns the exit code.
pub fn serve(files: &PluginFiles, input: impl BufRead, outbox: Arc<Outbox>) -> anyhow::Result<i32> {
    // Compile while lightningd is still sending getmanifest.
    let loaded_version = swap::stamp(files);
    let slot = load(files, Some(outbox.clone()))
        .map(|guest| Arc::new(GuestSlot::new(files.clone(), guest)));
    if let Err(e) = &slot {
        log::error!("cannot start plugin {}: {e:#}", files.name);
    }
    let dispatcher = Dispatcher {
        outbox: outbox.clone(),
        inflight: Arc::new(InFlight::default()),
        workers: Workers::default(),
        notifications: Serial::start("notifications")
            .context("starting the notification thread")?,
    };
    let run = |guest: &LoadedGuest, kind: Kind, msg: Message, id: Option<Value>| {
        dispatcher.dispatch(guest, kind, msg, id)
    };
    let mut reader = FrameReader::new(input);
    let mut phase = Phase::Manifest;
    while let Some(text) = reader.next_frame().context("reading from lightningd")? {
        for frame in crate::protocol::parse_frame(&text) {
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
                let guest = slot
                    .as_ref()
                    .ok()
                    .filter(|_| matches!(phase, Phase::Serving))
                    .map(|s| s.current());
                let wanted = guest
                    .as_ref()
                    .is_some_and(|g| subscribed(&g.manifest, &method));
                if let (true, Some(guest)) = (wanted, &guest) {
                    run(guest, Kind::Notification, msg, None);
                } else if method != "shutdown" {
                    log::debug!("{}: ignoring notification {method:?}", files.name);
                }
                if method == "shutdown" {
                    log::debug!("{}: shutdown requested", files.name);
                    dispatcher.inflight.drain(SHUTDOWN_GRACE);
                    return Ok(0);
                }
                continue;
            };
            let slot = match (&phase, method.as_str(), &slot) {
                (_, "getmanifest", Err(e)) => {
                    let message = format!("cannot start plugin {}: {e:#}", files.name);
                    outbox.error(&id, &RpcError::new(INTERNAL_ERROR, message))?;
                    return Ok(1);
                }
                (Phase::Manifest, "getmanifest", Ok(slot)) => {
                    match getmanifest(slot, &msg) {
                        Ok(result) => outbox.result(&id, &raw(&result))?,
                        Err(e) => {
                            let message = format!("cannot start plugin {}: {e:#}", files.name);
                            log::error!("{message}");
                            outbox.error(&id, &RpcError::new(INTERNAL_ERROR, message))?;
                            return Ok(1);
                        }
                    }
                    phase = Phase::Init;
                    continue;
                }
                (Phase::Init, "init", Ok(slot)) => {
                    let answer = match init(&slot.current(), &msg, &id) {
                        Ok(()) => {
                            swap::watch(slot.clone(), loaded_version);
                            json!({})
                        }
                        Err(reason) => {
                            log::error!("{}: disabled at init: {reason}", files.name);
                            json!({ "disable": reason })
                        }
                    };
                    outbox.result(&id, &raw(&answer))?;
                    phase = Phase::Serving;
                    continue;
                }
                (Phase::Serving, _, Ok(slot)) => slot,
                _ => {
                    let error = RpcError::new(
                        INVALID_REQUEST,
                        format!("unexpected {method:?} during the handshake"),
                    );
                    outbox.error(&id, &error)?;
                    continue;
                }
            };
            let guest = slot.current();
            let m = &guest.manifest;
            if m.methods.iter().any(|d| d.name == method) {
                run(&guest, Kind::Call, msg, Some(id));
            } else if m.hooks.iter().any(|h| h.name == method) {
                run(&guest, Kind::Hook, msg, Some(id));
            } else if method == "setconfig" || method == slot.reload_method() {
                // Off the reading thread: the guest or a compile may take a while.
                let (slot, outbox) = (slot.clone(), outbox.clone());
                let job = move || {
                    let answer = if method == "setconfig" {
                        setconfig(&slot.current(), &msg)
                    } else {
                        slot.reload()
                            .map(|digest| json!({ "sha256": digest }))
                            .map_err(|reason| RpcError::new(INTERNAL_ERROR, reason))
                    };
                    if let Err(e) = outbox.reply(&id, answer.map(|result| raw(&result))) {
                        log::error!("answering {id}: {e:#}");
                    }
                };
                if let Err(e) = dispatcher.workers.run(job) {
                    log::error!("cannot start a thread: {e}");
                }
            } else {
                let error = RpcError::new(METHOD_NOT_FOUND, format!("Unknown command '{method}'"));
                outbox.error(&id, &error)?;
            }
        }
    }
    log::debug!("{}: lightningd closed our stdin", files.name);
    dispatcher.inflight.drain(SHUTDOWN_GRACE);
    Ok(0)
}

/// The `getmanifest` answer. The guest is asked again if the node allows
/// deprecated APIs (it may then declare more); the host adds `NAME-reload`.
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
    log::info!("{}: option {config} changed by setconfig", session.plugin);
    Ok(json!({}))
}

/// Where guest work runs, and where its answers go.
struct Dispatcher {
    outbox: Arc<Outbox>,
    inflight: Arc<InFlight>,
    /// Calls and hooks, each on its own thread.
    workers: Workers,
    /// Notifications, one after another in the order they came.
    notifications: Serial,
}

impl Dispatcher {
    /// Run a call or hook on a worker thread and answer it when it is done,
    /// in whatever order things finish; queue a notification behind the
    /// previous ones.
    fn dispatch(&self, guest: &LoadedGuest, kind: Kind, msg: Message, id: Option<Value>) {
        let method = msg.method.clone().unwrap_or_default();
        let call = CallContext {
            id: id
                .as_ref()
                .map_or_else(|| format!("{method}:notification"), id_text),
            params: msg.params_or_empty(),
            method,
        };
        let runtime = guest.runtime.clone();
        self.inflight.start();
        let job = {
            let (outbox, inflight, id) = (self.outbox.clone(), self.inflight.clone(), id.clone());
            move || {
                let sent = match (kind, id) {
                    (Kind::Call, Some(id)) => outbox.reply(&id, answer(&runtime, call)),
                    (Kind::Hook, Some(id)) => outbox.result(&id, &hook_answer(&runtime, call)),
                    _ => {
                        let topic = call.method.clone();
                        if let Err(failure) = runtime.notify(call) {
                            log::warn!("{topic} notification: {}", RpcError::from(failure).message);
                        }
                        Ok(())
                    }
                };
                if let Err(e) = sent {
                    log::error!("answering lightningd: {e:#}");
                }
                inflight.finish();
            }
        };
        let queued = match kind {
            Kind::Notification => self.notifications.run(job),
            Kind::Call | Kind::Hook => self.workers.run(job),
        };
        if let Err(e) = queued {
            log::error!("cannot start a thread: {e}");
            if let Some(id) = id {
                let error = RpcError::new(
                    INTERNAL_ERROR,
                    format!("plugin host cannot start a thread: {e}"),
                );
                if let Err(e) = self.outbox.error(&id, &error) {
                    log::error!("answering {id}: {e:#}");
                }
            }
            self.inflight.finish();
        }
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
