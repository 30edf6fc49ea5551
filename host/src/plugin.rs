//! Plugin mode: the host as lightningd sees it. Requests enter in [`serve`],
//! which answers `getmanifest` and `init` itself and hands each method call to
//! its own thread ([`dispatch`]) that runs it in a guest instance.

use crate::bindings::Manifest;
use crate::capabilities::{CallContext, Session};
use crate::manifest;
use crate::node::NodeClient;
use crate::policy::Policy;
use crate::protocol::{
    Frame, FrameReader, INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, Message, Outbox,
    RpcError,
};
use crate::runtime::Runtime;
use crate::swap::{self, GuestSlot};
use crate::workers::Workers;
use anyhow::Context;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
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
pub fn load(files: &PluginFiles) -> anyhow::Result<LoadedGuest> {
    let policy = Policy::load_or_default(&files.policy)?;
    load_with(files, Arc::new(Session::before_init(&files.name, policy)))
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

/// Apply `init`'s options and configuration: the session every call will see.
pub fn start_session(
    guest: &LoadedGuest,
    options: &serde_json::Map<String, Value>,
    rpc_path: Option<PathBuf>,
) -> Result<(), String> {
    let options = manifest::typed_options(&guest.manifest.options, options)?;
    let old = guest.runtime.session();
    let node =
        rpc_path.map(|path| NodeClient::new(path, &old.plugin, old.policy.limits.call_timeout()));
    guest.runtime.set_session(Session {
        plugin: old.plugin.clone(),
        policy: old.policy.clone(),
        options_json: manifest::options_json(&options),
        options,
        node,
        requested_rpc: guest
            .manifest
            .rpc
            .iter()
            .map(|r| r.method.clone())
            .collect(),
        wants_store: guest.manifest.wants_store,
    });
    Ok(())
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

/// Serve lightningd on `input`/`outbox` until `shutdown` or end of input.
/// Returns the exit code.
pub fn serve(files: &PluginFiles, input: impl BufRead, outbox: Arc<Outbox>) -> anyhow::Result<i32> {
    // Compile while lightningd is still sending getmanifest.
    let loaded_version = swap::stamp(files);
    let slot = load(files).map(|guest| Arc::new(GuestSlot::new(files.clone(), guest)));
    if let Err(e) = &slot {
        log::error!("cannot start plugin {}: {e:#}", files.name);
    }
    let inflight = Arc::new(InFlight::default());
    let workers = Workers::default();
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
            let method = msg.method.as_deref().unwrap_or_default();
            let Some(id) = msg.id.clone() else {
                if method == "shutdown" {
                    log::debug!("{}: shutdown requested", files.name);
                    inflight.drain(SHUTDOWN_GRACE);
                    return Ok(0);
                }
                log::debug!("{}: ignoring notification {method:?}", files.name);
                continue;
            };
            let slot = match (&phase, method, &slot) {
                (_, "getmanifest", Err(e)) => {
                    let message = format!("cannot start plugin {}: {e:#}", files.name);
                    outbox.error(&id, &RpcError::new(INTERNAL_ERROR, message))?;
                    return Ok(1);
                }
                (Phase::Manifest, "getmanifest", Ok(slot)) => {
                    outbox.result(&id, &raw(&getmanifest_result(slot)))?;
                    phase = Phase::Init;
                    continue;
                }
                (Phase::Init, "init", Ok(slot)) => {
                    let answer = match init(&slot.current(), &msg) {
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
            if guest.manifest.methods.iter().any(|m| m.name == method) {
                dispatch(&guest, msg, id, &outbox, &inflight, &workers);
            } else if method == slot.reload_method() {
                let (slot, outbox) = (slot.clone(), outbox.clone());
                let reload = move || {
                    let sent = match slot.reload() {
                        Ok(digest) => outbox.result(&id, &raw(&json!({ "sha256": digest }))),
                        Err(reason) => outbox.error(&id, &RpcError::new(INTERNAL_ERROR, reason)),
                    };
                    if let Err(e) = sent {
                        log::error!("answering {id}: {e:#}");
                    }
                };
                if let Err(e) = workers.run(reload) {
                    log::error!("cannot start a thread for a reload: {e}");
                }
            } else {
                let error = RpcError::new(METHOD_NOT_FOUND, format!("Unknown command '{method}'"));
                outbox.error(&id, &error)?;
            }
        }
    }
    log::debug!("{}: lightningd closed our stdin", files.name);
    inflight.drain(SHUTDOWN_GRACE);
    Ok(0)
}

/// The guest's manifest plus what the host adds: `NAME-reload`.
fn getmanifest_result(slot: &GuestSlot) -> Value {
    let mut result = manifest::getmanifest_result(&slot.current().manifest);
    if let Some(methods) = result["rpcmethods"].as_array_mut() {
        methods.push(json!({
            "name": slot.reload_method(),
            "usage": "",
            "description": "Load this plugin's .wasm again and serve new calls with it, if its manifest is unchanged",
        }));
    }
    result
}

fn raw(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("serde_json values serialize")
}

/// `init`: type the options, find the node's socket. `Err` is the reason
/// lightningd shows when it disables the plugin.
fn init(guest: &LoadedGuest, msg: &Message) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct InitParams {
        #[serde(default)]
        options: serde_json::Map<String, Value>,
        configuration: Configuration,
    }
    #[derive(serde::Deserialize)]
    struct Configuration {
        #[serde(rename = "lightning-dir")]
        lightning_dir: PathBuf,
        #[serde(rename = "rpc-file")]
        rpc_file: PathBuf,
    }
    let params = msg.params.as_ref().ok_or("init without params")?;
    let params: InitParams =
        serde_json::from_str(params.get()).map_err(|e| format!("malformed init params: {e}"))?;
    let rpc = params
        .configuration
        .lightning_dir
        .join(params.configuration.rpc_file);
    start_session(guest, &params.options, Some(rpc))
}

/// Run one method call on its own thread and answer it when it is done, in
/// whatever order calls finish.
fn dispatch(
    guest: &LoadedGuest,
    msg: Message,
    id: Value,
    outbox: &Arc<Outbox>,
    inflight: &Arc<InFlight>,
    workers: &Workers,
) {
    let call = CallContext {
        id: match &id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        params: msg.params_or_empty(),
        method: msg.method.unwrap_or_default(),
    };
    let runtime = guest.runtime.clone();
    inflight.start();
    let spawned = workers.run({
        let (outbox, inflight, id) = (outbox.clone(), inflight.clone(), id.clone());
        move || {
            let sent = match answer(&runtime, call) {
                Ok(result) => outbox.result(&id, &result),
                Err(error) => outbox.error(&id, &error),
            };
            if let Err(e) = sent {
                log::error!("answering {id}: {e:#}");
            }
            inflight.finish();
        }
    });
    if let Err(e) = spawned {
        log::error!("cannot start a thread for call {id}: {e}");
        let error = RpcError::new(
            INTERNAL_ERROR,
            format!("plugin host cannot start a thread: {e}"),
        );
        if let Err(e) = outbox.error(&id, &error) {
            log::error!("answering {id}: {e:#}");
        }
        inflight.finish();
    }
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
