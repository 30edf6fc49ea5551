//! The threads' bookkeeping: the one thread notifications run on, in the
//! order lightningd sent them ([`Serial`]), and the count of calls in flight
//! that shutdown waits for ([`InFlight`]).

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// One thread that runs jobs in the order they came: notifications reach the
/// guest in the order lightningd sent them (a `connect` before its
/// `disconnect`). At most `capacity` wait: a guest slower than lightningd's
/// notifications cannot make the host hold them without bound.
pub struct Serial {
    queue: SyncSender<Job>,
}

/// Why a job was not queued.
#[derive(Debug)]
pub enum NotQueued {
    /// `capacity` jobs are waiting already.
    Full,
    /// The thread is gone.
    Closed,
}

impl Serial {
    pub fn start(name: &str, capacity: usize) -> std::io::Result<Serial> {
        let (queue, jobs) = sync_channel::<Job>(capacity);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for job in jobs {
                    job();
                }
            })?;
        Ok(Serial { queue })
    }

    /// Queue `job` behind the ones before it, if there is room.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> Result<(), NotQueued> {
        self.queue.try_send(Box::new(job)).map_err(|e| match e {
            TrySendError::Full(_) => NotQueued::Full,
            TrySendError::Disconnected(_) => NotQueued::Closed,
        })
    }
}

/// Counts calls in flight so shutdown can wait for them.
#[derive(Default)]
pub struct InFlight {
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

    pub fn start(&self) {
        self.lock().count += 1;
    }

    pub fn finish(&self) {
        let mut running = self.lock();
        running.count -= 1;
        if running.draining && running.count == 0 {
            self.idle.notify_all();
        }
    }

    /// Wait until no call is running, or `grace` is over.
    pub fn drain(&self, grace: Duration) {
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
