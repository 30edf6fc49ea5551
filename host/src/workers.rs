//! The thread that runs notifications, in the order lightningd sent them.

use std::sync::mpsc::{Sender, channel};

type Job = Box<dyn FnOnce() + Send>;

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
