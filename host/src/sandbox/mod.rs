//! The sandbox every guest runs in: one wasmtime [`Engine`] per process (its
//! linker of WASI and our world, and the clock deadlines count in), each
//! [`Guest`] with its pool of instances, the limits wasmtime enforces, the
//! state a guest's instance carries ([`HostState`]), the compiled-code
//! cache, compilation under bounds, and where guest output goes.

pub mod cache;
pub mod compile;
mod guest;
mod limits;
mod output;
mod poll;
pub mod pool;

pub use guest::{CallFailure, Guest};

use crate::bindings::Plugin;
use crate::caps::InstanceState;
use anyhow::Context as _;
use limits::MemoryCap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::Config;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the deadline clock ticks; deadlines are rounded up to it.
const TICK: Duration = Duration::from_millis(5);

/// The state of one guest instance (its wasmtime `Store` data): what WASI
/// gives it, its limits, and what its capabilities see.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryCap,
    caps: InstanceState,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What every guest of this process shares (a hot swap loads another guest
/// into it): one engine, whose settings key the compiled-code cache, the
/// linker of WASI and our world, and the clock deadlines count in.
pub struct Engine {
    engine: wasmtime::Engine,
    linker: Linker<HostState>,
    ticker: Ticker,
}

impl Engine {
    /// The process's engine, made on first use.
    pub fn get() -> anyhow::Result<&'static Engine> {
        static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
        ENGINE
            .get_or_init(|| Engine::new().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("cannot set up the sandbox: {e}"))
    }

    fn new() -> anyhow::Result<Engine> {
        let engine = wasmtime::Engine::new(&config())?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        // Blocking in WASI (a sleep, a poll) ends at the call's deadline.
        poll::add_to_linker(&mut linker)?;
        // Our world's imports, each interface implemented in `caps`.
        Plugin::add_to_linker::<HostState, HasSelf<InstanceState>>(&mut linker, |s| &mut s.caps)?;
        let ticker = Ticker::start(engine.clone())?;
        Ok(Engine {
            engine,
            linker,
            ticker,
        })
    }
}

/// The engine's settings: one place, since the compiling child
/// ([`compile`]) must make code this process's engine accepts.
fn config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    // 64 KiB pages only: then a memory growth fails after the limiter
    // allowed it only when the OS refuses (see `limits::MemoryCap`).
    config.wasm_custom_page_sizes(false);
    config
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

    fn start(engine: wasmtime::Engine) -> anyhow::Result<Ticker> {
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
