//! One guest: its compiled component, the WASI context it is allowed, and
//! two small pools of instances, one for calls and one for hooks and
//! notifications (so a hook never waits behind a stuck call), that serve
//! under a memory cap and a deadline counted from each call's arrival.
//!
//! A guest that traps (a panic, the deadline, the memory cap) cannot be entered
//! again: its instance is dropped and the next call gets a fresh one from the
//! pre-linked component, so the host keeps serving. What the dropped instance
//! held in memory is lost; see README "Guest state".

use super::limits::{self, MemoryCap};
use super::output::GuestOutput;
use super::pool::{Pool, Wait};
use super::{Engine, HostState, TICK, cache, compile};
use crate::bindings::{Manifest, OptionValue, Plugin, PluginPre};
use crate::caps::{CallContext, Deadline, DeadlineReached, InstanceState, Session};
use crate::policy::Limits;
use crate::protocol::{INTERNAL_ERROR, RpcError};
use anyhow::Context as _;
use serde_json::json;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Why a call produced no answer from the guest.
#[derive(Debug, Clone)]
pub enum CallFailure {
    /// The call was not over by its deadline (the budget it had).
    Deadline(Duration),
    /// The guest tried to grow its memory beyond the cap.
    Memory(u64),
    /// The guest trapped (a panic, `unreachable`, a bad memory access…).
    Trap(String),
    /// No instance could be created for the call.
    Instantiate(String),
    /// The guest handed the host more than it copies in one crossing
    /// ([`limits::crossing_bytes`]): copying stopped there.
    TooLarge(usize),
}

impl CallFailure {
    /// What caused it, for the error's data: `deadline`, `memory`, `trap`,
    /// `instantiate`.
    fn cause(&self) -> &'static str {
        match self {
            CallFailure::Deadline(_) => "deadline",
            CallFailure::Memory(_) => "memory",
            CallFailure::Trap(_) => "trap",
            CallFailure::Instantiate(_) => "instantiate",
            CallFailure::TooLarge(_) => "size",
        }
    }
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::Deadline(d) => write!(
                f,
                "plugin call exceeded its deadline of {} ms",
                d.as_millis()
            ),
            CallFailure::Memory(mib) => write!(f, "plugin exceeded its memory limit of {mib} MiB"),
            CallFailure::Trap(m) => write!(f, "plugin trapped: {m}"),
            CallFailure::Instantiate(m) => write!(f, "plugin could not be instantiated: {m}"),
            CallFailure::TooLarge(bytes) => write!(
                f,
                "plugin handed the host more than {bytes} bytes at once, past [limits] \
                 answer_max_bytes and node_params_max_bytes: the copy was stopped there"
            ),
        }
    }
}

/// The error lightningd's caller gets: the message, and the cause as data.
impl From<CallFailure> for RpcError {
    fn from(f: CallFailure) -> RpcError {
        RpcError::new(INTERNAL_ERROR, f.to_string()).with_data(&json!({ "cause": f.cause() }))
    }
}

/// The `.wasm` at `path`, refused unread when it is over `wasm_max_mib`.
fn read_bounded(path: &Path, limits: &Limits) -> anyhow::Result<Vec<u8>> {
    let reading = || format!("reading {}", path.display());
    let max = limits.wasm_max_mib.saturating_mul(1 << 20);
    let too_big = |len: u64| {
        anyhow::anyhow!(
            "{} is {:.1} MiB, over [limits] wasm_max_mib = {}",
            path.display(),
            len as f64 / f64::from(1 << 20),
            limits.wasm_max_mib
        )
    };
    let file = std::fs::File::open(path).with_context(reading)?;
    let len = file.metadata().with_context(reading)?.len();
    if len > max {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // It may grow while read: never past the bound.
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, max.saturating_add(1)),
        &mut bytes,
    )
    .with_context(reading)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

struct Instance {
    store: Store<HostState>,
    plugin: Plugin,
    output: [GuestOutput; 2],
    /// Whether its private directory was preopened writable (`None`: it
    /// has none).
    dir_writable: Option<bool>,
}

/// One guest component, ready to instantiate, and its instances.
pub struct Guest {
    engine: &'static Engine,
    pre: PluginPre<HostState>,
    limits: Limits,
    /// SHA-256 of the `.wasm`, hex: which guest this is, for logs and swaps.
    pub digest: String,
    session: RwLock<Arc<Session>>,
    /// Instances for calls and the handshake.
    instances: Pool<Instance>,
    /// Instances for hooks and notifications; `None` when
    /// `hook_instances = 0` (they share the calls', so every message sees
    /// the same memory).
    hook_instances: Option<Pool<Instance>>,
}

impl Guest {
    /// Compile and link `wasm`; fails with a message for the operator when the
    /// file is missing, is not a component, does not implement our world, or
    /// is over `wasm_max_mib` or takes more than the compile limits.
    pub fn load(wasm: &Path, session: Arc<Session>) -> anyhow::Result<Guest> {
        let engine = Engine::get()?;
        let limits = &session.policy.limits;
        let bytes = read_bounded(wasm, limits)?;
        let digest = cache::digest(&bytes);
        let component = cache::component(&engine.engine, &bytes, &digest, limits).map_err(|e| {
            if e.is::<compile::Exceeded>() {
                e.context(format!("cannot compile {}", wasm.display()))
            } else {
                e.context(format!(
                    "{} is not a valid WebAssembly component",
                    wasm.display()
                ))
            }
        })?;
        let pre = engine
            .linker
            .instantiate_pre(&component)
            .and_then(PluginPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} does not implement the cln:plugin/plugin world (see wit/plugin.wit)",
                    wasm.display()
                )
            })?;
        Ok(Guest {
            engine,
            pre,
            instances: Pool::new(session.policy.limits.max_instances),
            hook_instances: match session.policy.limits.hook_instances {
                0 => None,
                n => Some(Pool::new(n)),
            },
            limits: session.policy.limits.clone(),
            digest,
            session: RwLock::new(session),
        })
    }

    /// Ask the guest for its manifest.
    pub fn manifest(&self) -> Result<Manifest, CallFailure> {
        let deadline = self.call_deadline(Instant::now());
        self.with_instance(&self.instances, None, deadline, |plugin, store| {
            plugin.call_manifest(store)
        })
    }

    fn call_deadline(&self, arrived: Instant) -> Deadline {
        Deadline::after(arrived, self.limits.call_timeout())
    }

    fn hook_deadline(&self, arrived: Instant) -> Deadline {
        Deadline::after(arrived, self.limits.hook_timeout())
    }

    /// Where hooks and notifications run.
    fn hook_lane(&self) -> &Pool<Instance> {
        self.hook_instances.as_ref().unwrap_or(&self.instances)
    }

    /// Install what `init` decided (options, the node); instances made before
    /// it are dropped so every call sees the same session.
    pub fn set_session(&self, session: Session) {
        *self.session.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(session);
        self.instances.clear();
        if let Some(hooks) = &self.hook_instances {
            hooks.clear();
        }
    }

    /// The current session (options, node, policy).
    pub fn session(&self) -> Arc<Session> {
        self.session
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Serve one call; `Ok` holds the guest's own answer (result or error).
    pub fn call(&self, call: CallContext) -> Result<Result<String, RpcError>, CallFailure> {
        let deadline = self.call_deadline(call.arrived);
        let answer =
            self.with_instance(&self.instances, Some(call), deadline, |plugin, store| {
                plugin.call_handle(store)
            })?;
        Ok(answer.map_err(RpcError::from))
    }

    /// The guest's `init`: `Ok(Err(reason))` when it refuses to run.
    pub fn init(&self, call: CallContext) -> Result<Result<(), String>, CallFailure> {
        let deadline = self.call_deadline(call.arrived);
        self.with_instance(&self.instances, Some(call), deadline, |plugin, store| {
            plugin.call_init(store)
        })
    }

    /// A hook call: the guest's JSON answer (checked by the caller), within
    /// the hook deadline, in the hooks' own instances.
    pub fn hook(&self, call: CallContext) -> Result<String, CallFailure> {
        let (name, payload) = (call.method.clone(), call.params.get().to_string());
        let deadline = self.hook_deadline(call.arrived);
        self.with_instance(self.hook_lane(), Some(call), deadline, |plugin, store| {
            plugin.call_hook(store, &name, &payload)
        })
    }

    /// A notification the guest subscribed to: served one at a time, so
    /// within the hook deadline, and beside the hooks.
    pub fn notify(&self, call: CallContext) -> Result<(), CallFailure> {
        let (topic, payload) = (call.method.clone(), call.params.get().to_string());
        let deadline = self.hook_deadline(call.arrived);
        self.with_instance(self.hook_lane(), Some(call), deadline, |plugin, store| {
            plugin.call_notify(store, &topic, &payload)
        })
    }

    /// `setconfig` on a dynamic option: `Ok(Err(reason))` when refused.
    pub fn set_option(
        &self,
        name: &str,
        value: &OptionValue,
    ) -> Result<Result<(), String>, CallFailure> {
        let deadline = self.call_deadline(Instant::now());
        self.with_instance(&self.instances, None, deadline, |plugin, store| {
            plugin.call_set_option(store, name, value)
        })
    }

    /// Run `f` in an instance from `lane`, by `deadline`: waiting for an
    /// instance, running, sleeping and node calls all count.
    fn with_instance<R>(
        &self,
        lane: &Pool<Instance>,
        call: Option<CallContext>,
        deadline: Deadline,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        // Instantiating runs guest code too.
        let _ticking = self.engine.ticker.enter();
        let checkout = || {
            lane.checkout(deadline.at, || self.instantiate(deadline))
                .map_err(|wait| match wait {
                    Wait::TimedOut => CallFailure::Deadline(deadline.budget),
                    Wait::Failed(e) => CallFailure::Instantiate(format!("{e:#}")),
                })
        };
        let mut instance = checkout()?;
        // An instance whose directory is writable while the quota is spent
        // (or the other way round) is replaced: WASI's permissions are fixed
        // when it is made. At most one pass per idle instance.
        let dir = instance.store.data().caps.session.dir.clone();
        while let Some(dir) = &dir
            && instance.dir_writable != Some(dir.writable())
        {
            lane.discard(instance);
            instance = checkout()?;
        }
        if deadline.passed() {
            lane.checkin(instance);
            return Err(CallFailure::Deadline(deadline.budget));
        }
        let state = instance.store.data_mut();
        state.caps.begin(call, deadline);
        state.limiter.hit = false;
        instance
            .store
            .set_epoch_deadline(ticks(deadline.remaining()));
        let outcome = f(&instance.plugin, &mut instance.store);
        instance.store.data_mut().caps.call = None;
        if let Some(dir) = &dir {
            let session = &instance.store.data().caps.session;
            dir.recount(&session.name, &session.audit);
        }
        for out in &instance.output {
            out.flush_partial();
        }
        instance
            .store
            .data()
            .caps
            .session
            .meters
            .log
            .report_dropped();
        match outcome {
            Ok(r) if instance.store.data().limiter.worn_out() => {
                let mib = instance.store.data().limiter.held() >> 20;
                log::debug!("retiring an instance grown to {mib} MiB");
                lane.discard(instance);
                Ok(r)
            }
            Ok(r) => {
                lane.checkin(instance);
                Ok(r)
            }
            Err(e) => {
                let failure = if instance.store.data().limiter.hit {
                    CallFailure::Memory(self.limits.memory_mib)
                } else if e.downcast_ref::<DeadlineReached>().is_some() {
                    CallFailure::Deadline(deadline.budget)
                } else if limits::past_crossing(&e) {
                    CallFailure::TooLarge(limits::crossing_bytes(&self.limits))
                } else if let Some(trap) = e.downcast_ref::<Trap>() {
                    match trap {
                        Trap::Interrupt => CallFailure::Deadline(deadline.budget),
                        other => CallFailure::Trap(other.to_string()),
                    }
                } else {
                    CallFailure::Trap(e.root_cause().to_string())
                };
                if let CallFailure::TooLarge(_) = failure {
                    let audit = &instance.store.data().caps.session.audit;
                    audit.count("over_limits", "copy_bound", false);
                }
                log::warn!("{failure}; replacing the instance");
                log::debug!("{e:?}");
                lane.discard(instance);
                Err(failure)
            }
        }
    }

    fn instantiate(&self, deadline: Deadline) -> anyhow::Result<Instance> {
        let session = self.session();
        let stdout = GuestOutput::new("stdout", log::Level::Info, session.meters.clone());
        let stderr = GuestOutput::new("stderr", log::Level::Warn, session.meters.clone());
        // Nothing is granted: no args, no env, no sockets, an empty stdin;
        // stdout and stderr go to the log. No preopened directory but the
        // guest's own, when asked for and granted, as its `.`; read-only
        // once over its quota.
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let dir_writable = match &session.dir {
            None => None,
            Some(dir) => {
                let writable = dir.writable();
                let perms = if writable {
                    FsPerms::ReadWrite
                } else {
                    FsPerms::ReadOnly
                };
                wasi.preopened_dir(dir.preopen_path(), ".", perms)
                    .map_err(|e| anyhow::anyhow!("preopening {}: {e}", dir.path.display()))?;
                Some(writable)
            }
        };
        let wasi = wasi.build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryCap::new(self.limits.memory_bytes()),
            caps: InstanceState::new(session, deadline),
        };
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(limits::crossing_bytes(&self.limits));
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks(deadline.remaining()));
        let plugin = self.pre.instantiate(&mut store).map_err(|e| {
            if store.data().limiter.hit {
                e.context(format!(
                    "its memories and tables exceed [limits] memory_mib ({} MiB)",
                    self.limits.memory_mib
                ))
            } else {
                e
            }
        })?;
        Ok(Instance {
            store,
            plugin,
            output: [stdout, stderr],
            dir_writable,
        })
    }
}

/// `time` in ticks of the epoch clock, at least one.
fn ticks(time: Duration) -> u64 {
    let ticks = time.as_nanos().div_ceil(TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}
