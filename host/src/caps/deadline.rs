//! When the call an instance is answering must be over, and the trap that
//! ends it when it blocks past that point (in a sleep, a poll or a node call):
//! the epoch clock only interrupts guest code that runs.

use std::time::{Duration, Instant};

/// The moment a call must be answered by, and the budget it was given.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub budget: Duration,
}

impl Deadline {
    /// `budget` from `start` (a call's arrival).
    pub fn after(start: Instant, budget: Duration) -> Deadline {
        Deadline {
            at: start + budget,
            budget,
        }
    }

    /// Time left; zero once it has passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// The trap raised when a guest blocks past its deadline; the sandbox
/// reports it as the deadline, as it does the epoch clock's interrupt.
#[derive(Debug)]
pub struct DeadlineReached;

impl std::fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call's deadline passed while the guest was blocked")
    }
}

impl std::error::Error for DeadlineReached {}
