//! A bounded pool of reusable items (a guest's instances): idle ones are
//! reused, new ones made while fewer than the limit are alive, and callers
//! beyond it wait for one to come back, until their deadline.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Why [`Pool::checkout`] gave no item.
#[derive(Debug, PartialEq)]
pub enum Wait<E> {
    /// Making a new item failed.
    Failed(E),
    /// None came free before the deadline.
    TimedOut,
}

pub struct Pool<T> {
    state: Mutex<State<T>>,
    freed: Condvar,
    max: usize,
}

struct State<T> {
    idle: Vec<T>,
    /// Items alive: idle, checked out, or being made.
    live: usize,
    /// Callers waiting for an item (signalled only if there are any: a
    /// wake-up per call would cost a system call each).
    waiting: usize,
}

impl<T> Pool<T> {
    /// A pool of at most `max` items alive at once.
    pub fn new(max: usize) -> Pool<T> {
        Pool {
            state: Mutex::new(State {
                idle: Vec::new(),
                live: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle item, a new one from `make` while under the limit, or wait for
    /// one until `until`. A failed `make` frees its place.
    pub fn checkout<E>(
        &self,
        until: Instant,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Wait<E>> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.idle.pop() {
                return Ok(item);
            }
            if state.live < self.max {
                state.live += 1;
                drop(state);
                return make().map_err(|e| {
                    self.release(self.lock());
                    Wait::Failed(e)
                });
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Wait::TimedOut);
            }
            state.waiting += 1;
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            state.waiting -= 1;
        }
    }

    /// Give `item` back for reuse.
    pub fn checkin(&self, item: T) {
        let mut state = self.lock();
        state.idle.push(item);
        if state.waiting > 0 {
            self.freed.notify_one();
        }
    }

    /// Drop `item` (it cannot be used again); its place is free.
    pub fn discard(&self, item: T) {
        drop(item);
        self.release(self.lock());
    }

    /// Drop every idle item: later checkouts make new ones.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.live -= state.idle.len();
        state.idle.clear();
        self.freed.notify_all();
    }

    /// One item fewer is alive: a waiting caller may make one.
    fn release(&self, mut state: MutexGuard<'_, State<T>>) {
        state.live -= 1;
        if state.waiting > 0 {
            self.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::channel;
    use std::time::Duration;

    /// Far enough away never to come.
    fn later() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn idle_items_are_reused_and_new_ones_made_only_under_the_limit() {
        let made = AtomicUsize::new(0);
        let make = || Ok::<_, ()>(made.fetch_add(1, Ordering::SeqCst));
        let pool = Pool::new(2);
        let (a, b) = (
            pool.checkout(later(), make).unwrap(),
            pool.checkout(later(), make).unwrap(),
        );
        assert_eq!((a, b), (0, 1));
        pool.checkin(b);
        assert_eq!(pool.checkout(later(), make), Ok(1));
        assert_eq!(made.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn at_the_limit_a_caller_waits_for_an_item_to_come_back() {
        let pool = Arc::new(Pool::new(1));
        let first = pool.checkout(later(), || Ok::<_, ()>("first")).unwrap();
        let (tx, rx) = channel();
        let waiter = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let got = pool.checkout(later(), || Ok::<_, ()>("second")).unwrap();
                tx.send(got).unwrap();
            })
        };
        // It cannot have an item while the only one is out.
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        pool.checkin(first);
        assert_eq!(rx.recv().unwrap(), "first");
        waiter.join().unwrap();
    }

    #[test]
    fn failed_makes_and_discarded_items_free_their_place() {
        let pool = Pool::new(1);
        assert_eq!(
            pool.checkout(later(), || Err::<u8, _>("no")),
            Err(Wait::Failed("no"))
        );
        let item = pool.checkout(later(), || Ok::<_, ()>(1)).unwrap();
        pool.discard(item);
        let item = pool.checkout(later(), || Ok::<_, ()>(2)).unwrap();
        pool.checkin(item);
        pool.clear();
        assert_eq!(pool.checkout(later(), || Ok::<_, ()>(3)), Ok(3));
    }

    #[test]
    fn a_caller_waits_no_later_than_its_deadline() {
        let pool = Pool::new(1);
        let _held = pool.checkout(later(), || Ok::<_, ()>(1)).unwrap();
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(pool.checkout(soon, || Ok::<_, ()>(2)), Err(Wait::TimedOut));
        assert!(Instant::now() >= soon);
    }
}
