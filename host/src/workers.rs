//! Threads that run calls. Spawning a thread per call cost about a third of
//! the host's own per-call time; these threads stay and wait for the next one.
//! A call never waits for another call's thread: when no thread is idle, a new
//! one is started.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// A growing set of worker threads fed from one queue.
pub struct Workers {
    queue: Sender<Job>,
    jobs: Arc<Mutex<Receiver<Job>>>,
    /// Threads waiting for a job and not yet promised to one.
    idle: Arc<AtomicUsize>,
}

impl Default for Workers {
    fn default() -> Self {
        let (queue, jobs) = channel();
        Workers {
            queue,
            jobs: Arc::new(Mutex::new(jobs)),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Workers {
    /// Run `job` on a thread of its own as soon as possible.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let promised = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !promised {
            let (jobs, idle) = (self.jobs.clone(), self.idle.clone());
            std::thread::Builder::new()
                .name("call".into())
                .spawn(move || work(&jobs, &idle))?;
        }
        self.queue
            .send(Box::new(job))
            .map_err(|_| std::io::Error::other("worker queue closed"))
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, idle: &AtomicUsize) {
    loop {
        let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
        idle.fetch_add(1, Ordering::AcqRel);
    }
}

/// One thread that runs jobs in the order they came: notifications reach the
/// guest in the order lightningd sent them (a `connect` before its
/// `disconnect`).
pub struct Serial {
    queue: Sender<Job>,
}

impl Serial {
    pub fn start(name: &str) -> std::io::Result<Serial> {
        let (queue, jobs) = channel::<Job>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for job in jobs {
                    job();
                }
            })?;
        Ok(Serial { queue })
    }

    /// Queue `job` behind the ones before it.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        self.queue
            .send(Box::new(job))
            .map_err(|_| std::io::Error::other("serial queue closed"))
    }
}
