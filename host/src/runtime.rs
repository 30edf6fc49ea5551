//! The sandbox: one compiled guest component, the WASI context it is allowed,
//! and a small pool of instances that serve calls under a memory cap and a
//! per-call deadline.
//!
//! A guest that traps (a panic, the deadline, the memory cap) cannot be entered
//! again: its instance is dropped and the next call gets a fresh one from the
//! pre-linked component, so the host keeps serving. What the dropped instance
//! held in memory is lost; see README "Guest state".

use crate::bindings::{Manifest, OptionValue, Plugin, PluginPre};
use crate::capabilities::{CallContext, HostState, Session};
use crate::guest_output::GuestOutput;
use crate::policy::Limits;
use crate::protocol::{INTERNAL_ERROR, RpcError};
use anyhow::Context as _;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::WasiCtxBuilder;

/// How often the deadline clock ticks; deadlines are rounded up to it.
const TICK: Duration = Duration::from_millis(5);

/// Why a call produced no answer from the guest.
#[derive(Debug, Clone)]
pub enum CallFailure {
    /// The guest ran past the per-call deadline.
    Deadline(Duration),
    /// The guest tried to grow its memory beyond the cap.
    Memory(u64),
    /// The guest trapped (a panic, `unreachable`, a bad memory access…).
    Trap(String),
    /// No instance could be created for the call.
    Instantiate(String),
}

impl From<CallFailure> for RpcError {
    fn from(f: CallFailure) -> RpcError {
        let (cause, message) = match f {
            CallFailure::Deadline(d) => (
                "deadline",
                format!("plugin call exceeded its deadline of {} ms", d.as_millis()),
            ),
            CallFailure::Memory(mib) => (
                "memory",
                format!("plugin exceeded its memory limit of {mib} MiB"),
            ),
            CallFailure::Trap(m) => ("trap", format!("plugin trapped: {m}")),
            CallFailure::Instantiate(m) => (
                "instantiate",
                format!("plugin could not be instantiated: {m}"),
            ),
        };
        RpcError::new(INTERNAL_ERROR, message).with_data(&json!({ "cause": cause }))
    }
}

/// Caps linear memory growth and remembers that the cap was hit, so a trap that
/// follows is reported as what it is.
pub struct MemoryCap {
    max_bytes: usize,
    hit: bool,
    /// The largest linear memory this instance has grown to.
    grown_to: usize,
}

impl MemoryCap {
    /// Past this share of the cap an instance is retired after its call:
    /// runtimes that never give memory back (componentize-js grows ~0.45 KiB
    /// a call) are replaced before they hit the cap, without failing a call.
    const RECYCLE_AT: f64 = 0.75;

    fn worn_out(&self) -> bool {
        self.grown_to as f64 > self.max_bytes as f64 * Self::RECYCLE_AT
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        self.grown_to = self.grown_to.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

struct Instance {
    store: Store<HostState>,
    plugin: Plugin,
    output: [GuestOutput; 2],
}

#[derive(Default)]
struct Pool {
    idle: Vec<Instance>,
    live: usize,
    /// Calls waiting for an instance (signalled only if there are any).
    waiting: usize,
}

/// One guest component, ready to instantiate, and its instances.
pub struct Runtime {
    sandbox: &'static Sandbox,
    pre: PluginPre<HostState>,
    limits: Limits,
    /// SHA-256 of the `.wasm`, hex: which guest this is, for logs and swaps.
    pub digest: String,
    session: RwLock<Arc<Session>>,
    pool: Mutex<Pool>,
    freed: Condvar,
}

impl Runtime {
    /// Compile and link `wasm`; fails with a message for the operator when the
    /// file is missing, is not a component, or does not implement our world.
    pub fn load(wasm: &Path, session: Arc<Session>) -> anyhow::Result<Runtime> {
        let sandbox = Sandbox::get()?;
        let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
        let digest = crate::cache::digest(&bytes);
        let component = crate::cache::component(&sandbox.engine, &bytes, &digest)
            .with_context(|| format!("{} is not a valid WebAssembly component", wasm.display()))?;
        let pre = sandbox
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
        Ok(Runtime {
            sandbox,
            pre,
            limits: session.policy.limits.clone(),
            digest,
            session: RwLock::new(session),
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
        })
    }

    /// Ask the guest for its manifest.
    pub fn manifest(&self) -> Result<Manifest, CallFailure> {
        self.with_instance(None, |plugin, store| plugin.call_manifest(store))
    }

    /// Install what `init` decided (options, the node); instances made before
    /// it are dropped so every call sees the same session.
    pub fn set_session(&self, session: Session) {
        *self.session.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(session);
        let mut pool = self.lock_pool();
        pool.live -= pool.idle.len();
        pool.idle.clear();
        self.freed.notify_all();
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
        let answer = self.with_instance(Some(call), |plugin, store| plugin.call_handle(store))?;
        Ok(answer.map_err(crate::capabilities::rpc_error_from_guest))
    }

    /// The guest's `init`: `Ok(Err(reason))` when it refuses to run.
    pub fn init(&self, call: CallContext) -> Result<Result<(), String>, CallFailure> {
        self.with_instance(Some(call), |plugin, store| plugin.call_init(store))
    }

    /// A hook call: the guest's JSON answer (checked by the caller).
    pub fn hook(&self, call: CallContext) -> Result<String, CallFailure> {
        let (name, payload) = (call.method.clone(), call.params.get().to_string());
        self.with_instance(Some(call), |plugin, store| {
            plugin.call_hook(store, &name, &payload)
        })
    }

    /// A notification the guest subscribed to.
    pub fn notify(&self, call: CallContext) -> Result<(), CallFailure> {
        let (topic, payload) = (call.method.clone(), call.params.get().to_string());
        self.with_instance(Some(call), |plugin, store| {
            plugin.call_notify(store, &topic, &payload)
        })
    }

    /// `setconfig` on a dynamic option: `Ok(Err(reason))` when refused.
    pub fn set_option(
        &self,
        name: &str,
        value: &OptionValue,
    ) -> Result<Result<(), String>, CallFailure> {
        self.with_instance(None, |plugin, store| {
            plugin.call_set_option(store, name, value)
        })
    }

    fn with_instance<R>(
        &self,
        call: Option<CallContext>,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        // Instantiating runs guest code too.
        let _ticking = self.sandbox.ticker.enter();
        let mut instance = self.checkout()?;
        let state = instance.store.data_mut();
        state.call = call;
        state.limiter.hit = false;
        instance.store.set_epoch_deadline(self.deadline_ticks());
        let outcome = f(&instance.plugin, &mut instance.store);
        instance.store.data_mut().call = None;
        for out in &instance.output {
            out.flush_partial();
        }
        match outcome {
            Ok(r) if instance.store.data().limiter.worn_out() => {
                let mib = instance.store.data().limiter.grown_to >> 20;
                log::debug!("retiring an instance grown to {mib} MiB");
                self.discard(instance);
                Ok(r)
            }
            Ok(r) => {
                self.checkin(instance);
                Ok(r)
            }
            Err(e) => {
                let failure = if instance.store.data().limiter.hit {
                    CallFailure::Memory(self.limits.memory_mib)
                } else if let Some(trap) = e.downcast_ref::<Trap>() {
                    match trap {
                        Trap::Interrupt => CallFailure::Deadline(self.limits.call_timeout()),
                        other => CallFailure::Trap(other.to_string()),
                    }
                } else {
                    CallFailure::Trap(e.root_cause().to_string())
                };
                log::warn!(
                    "{}; replacing the instance",
                    RpcError::from(failure.clone()).message
                );
                log::debug!("{e:?}");
                self.discard(instance);
                Err(failure)
            }
        }
    }

    /// The per-call deadline in ticks of the epoch clock.
    fn deadline_ticks(&self) -> u64 {
        let ticks = self
            .limits
            .call_timeout()
            .as_nanos()
            .div_ceil(TICK.as_nanos());
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle instance, a new one while under `max_instances`, or wait.
    fn checkout(&self) -> Result<Instance, CallFailure> {
        let mut pool = self.lock_pool();
        loop {
            if let Some(instance) = pool.idle.pop() {
                return Ok(instance);
            }
            if pool.live < self.limits.max_instances {
                pool.live += 1;
                drop(pool);
                return self.instantiate().map_err(|e| {
                    self.release(self.lock_pool());
                    CallFailure::Instantiate(format!("{e:#}"))
                });
            }
            pool.waiting += 1;
            pool = self.freed.wait(pool).unwrap_or_else(|p| p.into_inner());
            pool.waiting -= 1;
        }
    }

    fn checkin(&self, instance: Instance) {
        let mut pool = self.lock_pool();
        pool.idle.push(instance);
        if pool.waiting > 0 {
            self.freed.notify_one();
        }
    }

    fn discard(&self, instance: Instance) {
        drop(instance);
        self.release(self.lock_pool());
    }

    /// One instance fewer is live: a waiting call may make one.
    fn release(&self, mut pool: std::sync::MutexGuard<'_, Pool>) {
        pool.live -= 1;
        if pool.waiting > 0 {
            self.freed.notify_one();
        }
    }

    fn instantiate(&self) -> anyhow::Result<Instance> {
        let session = self.session();
        let stdout = GuestOutput::new("stdout", log::Level::Info);
        let stderr = GuestOutput::new("stderr", log::Level::Warn);
        // Nothing is granted: no args, no env, no preopened dirs, no sockets,
        // an empty stdin; stdout and stderr go to the log.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryCap {
                max_bytes: self.limits.memory_bytes(),
                hit: false,
                grown_to: 0,
            },
            session,
            call: None,
        };
        let mut store = Store::new(&self.sandbox.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks());
        let plugin = self.pre.instantiate(&mut store)?;
        Ok(Instance {
            store,
            plugin,
            output: [stdout, stderr],
        })
    }
}

/// What every guest of this process shares (a hot swap loads another guest
/// into it): one engine, whose settings key the compiled-code cache, the
/// linker of WASI and our world, and the clock deadlines count in.
struct Sandbox {
    engine: Engine,
    linker: Linker<HostState>,
    ticker: Ticker,
}

impl Sandbox {
    fn get() -> anyhow::Result<&'static Sandbox> {
        static SANDBOX: OnceLock<Result<Sandbox, String>> = OnceLock::new();
        SANDBOX
            .get_or_init(|| Sandbox::new().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("cannot set up the sandbox: {e}"))
    }

    fn new() -> anyhow::Result<Sandbox> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        let ticker = Ticker::start(engine.clone())?;
        Ok(Sandbox {
            engine,
            linker,
            ticker,
        })
    }
}

/// A call in progress, as the ticker counts them.
struct Ticking<'a>(&'a Ticker);

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.0.counts.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The clock deadlines count in: advances the engine's epoch every [`TICK`]
/// while guest code runs, and sleeps once no guest has run for
/// [`Ticker::IDLE`], so an idle plugin does not wake its machine 200 times a
/// second.
struct Ticker {
    counts: Arc<TickerCounts>,
    thread: std::thread::Thread,
}

/// Shared between the ticker's thread and the calls that wake it.
#[derive(Default)]
struct TickerCounts {
    /// Guest calls in progress.
    running: AtomicUsize,
    parked: AtomicBool,
}

impl Ticker {
    const IDLE: Duration = Duration::from_secs(1);

    fn start(engine: Engine) -> anyhow::Result<Ticker> {
        let counts = Arc::new(TickerCounts::default());
        let shared = counts.clone();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                let idle_ticks = Ticker::IDLE.as_nanos() / TICK.as_nanos();
                let mut idle = 0;
                loop {
                    engine.increment_epoch();
                    if shared.running.load(Ordering::SeqCst) > 0 {
                        idle = 0;
                    } else if idle < idle_ticks {
                        idle += 1;
                    } else {
                        // A call that starts now sees `parked` and wakes us.
                        shared.parked.store(true, Ordering::SeqCst);
                        if shared.running.load(Ordering::SeqCst) == 0 {
                            std::thread::park();
                        }
                        shared.parked.store(false, Ordering::SeqCst);
                        idle = 0;
                        continue;
                    }
                    std::thread::sleep(TICK);
                }
            })
            .context("starting the epoch ticker thread")?;
        Ok(Ticker {
            counts,
            thread: thread.thread().clone(),
        })
    }

    /// Guest code is about to run: the clock must be ticking until the
    /// guard is dropped.
    fn enter(&self) -> Ticking<'_> {
        self.counts.running.fetch_add(1, Ordering::SeqCst);
        if self.counts.parked.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        Ticking(self)
    }
}
