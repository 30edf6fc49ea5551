//! SIGTERM and SIGINT end the plugin as `shutdown` does: the calls and hooks
//! in flight are answered (within their deadlines and the shutdown grace),
//! then the host exits 0. Dying by the signal instead would leave lightningd
//! with a hook it never got an answer to, which it takes as if the plugin
//! had said nothing (`plugin_hook.c`: "Plugin died from … hook call"): a
//! policy hook such as a peer filter would let through what it was about to
//! refuse.
//!
//! The signals are blocked in every thread ([`block`], before the first one
//! starts) and taken by one thread with `sigwait`, so no handler runs in a
//! signal context. A second signal while the calls finish exits at once.

use super::threads::InFlight;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The signals that end the plugin.
const ENDING: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGINT];

/// The calls in flight the first signal waits for, and for how long, once
/// the host serves; until then a signal exits at once (nothing is in flight
/// during the handshake).
static STOP: Mutex<Option<(Arc<InFlight>, Duration)>> = Mutex::new(None);

fn ending_set() -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset write only the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in ENDING {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Block SIGTERM and SIGINT in this thread, and so in every thread started
/// from it, then take them on a thread of their own. Call it before any
/// other thread starts. The compiler child unblocks them ([`unblock`]):
/// masks survive `exec`.
pub fn block() {
    let set = ending_set();
    // SAFETY: pthread_sigmask reads the set we pass.
    let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if blocked != 0 {
        log::warn!("cannot block SIGTERM and SIGINT (error {blocked}): they kill the host at once");
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || watch(set));
    if let Err(e) = spawned {
        unblock();
        log::warn!(
            "cannot start the signal thread ({e}): SIGTERM and SIGINT kill the host at once"
        );
    }
}

/// Let SIGTERM and SIGINT act as the default again, in this thread.
pub fn unblock() {
    let set = ending_set();
    // SAFETY: pthread_sigmask reads the set we pass.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
}

/// From now on the first signal waits up to `grace` for `inflight` to
/// finish (as `shutdown` does), then exits 0.
pub fn stop_after(inflight: Arc<InFlight>, grace: Duration) {
    *STOP.lock().unwrap_or_else(|p| p.into_inner()) = Some((inflight, grace));
}

fn name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGTERM => "SIGTERM",
        _ => "SIGINT",
    }
}

fn watch(set: libc::sigset_t) {
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: sigwait reads the set and writes the signal number.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            continue;
        }
        let stop = STOP.lock().unwrap_or_else(|p| p.into_inner()).take();
        match stop {
            Some((inflight, grace)) => {
                log::info!(
                    "{}: finishing the calls in flight, then exiting",
                    name(signal)
                );
                // Answers are written whole and flushed as they are sent:
                // once none is in flight, nothing is left to write.
                std::thread::spawn(move || {
                    inflight.drain(grace);
                    std::process::exit(0);
                });
            }
            None => {
                log::info!("{}: exiting now", name(signal));
                std::process::exit(0);
            }
        }
    }
}
