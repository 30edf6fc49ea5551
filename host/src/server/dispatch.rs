//! After the handshake: where each message from lightningd is routed
//! ([`Serving::route`]) and run in the guest ([`Serving::run`]), on the
//! thread that read it.

use super::config::{id_text, setconfig};
use super::inbox::{Inbox, Incoming};
use super::raw;
use super::threads::{InFlight, NotQueued, Serial};
use crate::caps::CallContext;
use crate::guest::LoadedGuest;
use crate::guest::manifest::Route as GuestRoute;
use crate::guest::swap::GuestSlot;
use crate::protocol::{INTERNAL_ERROR, METHOD_NOT_FOUND, Message, Outbox, RpcError, lightningd};
use anyhow::Context;
use serde_json::{Value, json};
use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// After the handshake: every message from lightningd is read by whichever
/// thread is free (leader/follower). The thread that reads a call hands the
/// reading to another thread and runs the call itself, so a call never waits
/// for a thread to wake up, and a slow call never holds up the ones after it.
/// Notifications go to one thread, in the order they came.
pub struct Serving<R> {
    slot: Arc<GuestSlot>,
    outbox: Arc<Outbox>,
    inflight: Arc<InFlight>,
    /// Notifications, one after another in the order lightningd sent them.
    notifications: Serial,
    /// Held by the one thread reading; the others wait for it here.
    inbox: Mutex<Inbox<R>>,
    /// Threads that are not running a request: reading, or waiting to read.
    readers: AtomicUsize,
}

/// Notifications that may wait for the guest, at most: each takes no more
/// than `hook_timeout_ms`, so a slow guest can keep the host holding no more.
const NOTIFICATIONS_QUEUED: usize = 1024;

/// What became of one message.
enum Route {
    /// Answered or queued while reading (errors, notifications).
    Done,
    /// Guest work: run it, and answer if it has an id.
    Run(Work),
    /// Stop serving: `shutdown`, end of input, or stdin failed.
    Stop(anyhow::Result<i32>),
}

/// A request that runs on the thread that read it.
enum Work {
    /// One of the guest's RPC methods: answered with its result or error.
    Call(Arc<LoadedGuest>, CallContext, Value),
    /// A hook: always answered, with the safe default if the guest fails.
    Hook(Arc<LoadedGuest>, CallContext, Value),
    /// `setconfig` on one of the guest's dynamic options.
    SetConfig(Arc<LoadedGuest>, Message, Value),
    /// `NAME-reload`: load the `.wasm` again.
    Reload(Value),
}

impl<R: BufRead + Send + 'static> Serving<R> {
    /// Serve calls with the guest in `slot` until `shutdown` or the end of
    /// `inbox`, then wait (up to `grace`) for the calls in flight. Returns
    /// the exit code.
    pub fn serve(
        slot: Arc<GuestSlot>,
        outbox: Arc<Outbox>,
        inbox: Inbox<R>,
        grace: Duration,
    ) -> anyhow::Result<i32> {
        let serving = Arc::new(Serving {
            slot,
            outbox,
            inflight: Arc::new(InFlight::default()),
            notifications: Serial::start("notifications", NOTIFICATIONS_QUEUED)
                .context("starting the notification thread")?,
            inbox: Mutex::new(inbox),
            readers: AtomicUsize::new(0),
        });
        let (done, finished) = mpsc::channel();
        serving.add_reader(&done);
        drop(done);
        super::signals::stop_after(serving.inflight.clone(), grace);
        let code = finished
            .recv()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no thread is left to read from lightningd")));
        serving.inflight.drain(grace);
        code
    }

    /// Start one more thread that reads from lightningd when its turn comes.
    fn add_reader(self: &Arc<Self>, done: &mpsc::Sender<anyhow::Result<i32>>) {
        self.readers.fetch_add(1, Ordering::AcqRel);
        let (serving, done) = (self.clone(), done.clone());
        let spawned = std::thread::Builder::new()
            .name("call".into())
            .spawn(move || serving.read_and_run(&done));
        if let Err(e) = spawned {
            // The thread that asked reads again once its call is done.
            self.readers.fetch_sub(1, Ordering::AcqRel);
            log::error!("cannot start a thread ({e}): requests wait for the running one");
        }
    }

    fn read_and_run(self: Arc<Self>, done: &mpsc::Sender<anyhow::Result<i32>>) {
        loop {
            let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
            let route = match inbox.next(&self.outbox) {
                Ok(Some(incoming)) => self.route(incoming),
                Ok(None) => Route::Stop(Ok(0)),
                Err(e) => Route::Stop(Err(e)),
            };
            match route {
                Route::Done => {}
                Route::Stop(code) => {
                    inbox.close();
                    // Only the first stop is waited for.
                    let _ = done.send(code);
                    return;
                }
                Route::Run(work) => {
                    if self.readers.fetch_sub(1, Ordering::AcqRel) == 1 {
                        self.add_reader(done);
                    }
                    drop(inbox);
                    self.run(work);
                    self.inflight.finish();
                    self.readers.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Decide what `incoming` asks for, answering at once what needs no
    /// guest. Runs with the inbox held, so notifications queue in arrival
    /// order.
    fn route(&self, incoming: Incoming) -> Route {
        let guest = self.slot.current();
        let (id, method, msg) = match incoming {
            Incoming::Shutdown(msg) => {
                // Read nothing more; calls in flight (and the guest's own
                // `shutdown`, if it subscribed) finish before we exit.
                self.notify_if_subscribed(&guest, "shutdown".into(), msg);
                return Route::Stop(Ok(0));
            }
            Incoming::Notification { method, msg } => {
                self.notify_if_subscribed(&guest, method, msg);
                return Route::Done;
            }
            Incoming::Request { id, method, msg } => (id, method, msg),
        };
        // One lookup: a name means one thing (`guest::manifest::routes`).
        let work = match guest.routes.get(&method) {
            Some(GuestRoute::Method) => {
                Work::Call(guest.clone(), call_context(method, msg, id_text(&id)), id)
            }
            Some(GuestRoute::Hook) => {
                Work::Hook(guest.clone(), call_context(method, msg, id_text(&id)), id)
            }
            Some(GuestRoute::SetConfig) => Work::SetConfig(guest, msg, id),
            Some(GuestRoute::Reload) => Work::Reload(id),
            Some(GuestRoute::Audit) => {
                let stats = guest.sandbox.session().audit.to_json();
                return self.answered(self.outbox.result(&id, &raw(&stats)));
            }
            None => {
                let error = RpcError::new(METHOD_NOT_FOUND, format!("Unknown command '{method}'"));
                return self.answered(self.outbox.error(&id, &error));
            }
        };
        self.inflight.start();
        Route::Run(work)
    }

    /// Answered at once: stop if lightningd can no longer be written to.
    fn answered(&self, sent: anyhow::Result<()>) -> Route {
        match sent {
            Ok(()) => Route::Done,
            Err(e) => Route::Stop(Err(e)),
        }
    }

    /// Queue notification `topic` behind the previous ones, if the guest
    /// subscribed to it (`*` is all but `log`).
    fn notify_if_subscribed(&self, guest: &Arc<LoadedGuest>, topic: String, msg: Message) {
        let subscribed = guest
            .manifest
            .subscriptions
            .iter()
            .any(|s| lightningd::subscription_covers(&s.topic, &topic));
        if !subscribed {
            if topic != "shutdown" {
                log::debug!("ignoring notification {topic:?}");
            }
            return;
        }
        let id = format!("{topic}:notification");
        // Kept only to say which one was dropped, if the queue is full.
        let queued_topic = topic.clone();
        let call = call_context(topic, msg, id);
        let sandbox = guest.sandbox.clone();
        let inflight = self.inflight.clone();
        self.inflight.start();
        let queued = self.notifications.run(move || {
            // Its deadline counts from its turn: the ones before it are
            // bounded by theirs.
            let call = CallContext {
                arrived: Instant::now(),
                ..call
            };
            let topic = call.method.clone();
            if let Err(failure) = sandbox.notify(call) {
                log::warn!("{topic} notification: {failure}");
            }
            inflight.finish();
        });
        if let Err(not_queued) = queued {
            self.inflight.finish();
            match not_queued {
                // The guest is slower than lightningd: its doing, so its log budget.
                NotQueued::Full => {
                    let meters = &guest.sandbox.session().meters;
                    let line = format!(
                        "{queued_topic} notification dropped: {NOTIFICATIONS_QUEUED} are waiting \
                         for the guest"
                    );
                    meters.log.log(log::Level::Warn, &line);
                    meters.log.report_dropped();
                }
                NotQueued::Closed => log::error!("cannot queue a notification: its thread is gone"),
            }
        }
    }

    /// Run a request and answer it.
    fn run(&self, work: Work) {
        let (id, answer) = match work {
            Work::Call(guest, call, id) => (id, guest.answer(call)),
            Work::Hook(guest, call, id) => (id, Ok(guest.answer_hook(call))),
            Work::SetConfig(guest, msg, id) => {
                (id, setconfig(&guest, &msg).map(|()| raw(&json!({}))))
            }
            Work::Reload(id) => {
                let digest = self.slot.reload();
                let answer = digest
                    .map(|digest| raw(&json!({ "sha256": digest })))
                    .map_err(|reason| RpcError::new(INTERNAL_ERROR, reason));
                (id, answer)
            }
        };
        if let Err(e) = self.outbox.reply(&id, answer) {
            log::error!("answering {id}: {e:#}");
        }
    }
}

/// What the guest gets to know about one message; `id` prefixes the ids of
/// the node calls it causes. Its deadline counts from now.
fn call_context(method: String, msg: Message, id: String) -> CallContext {
    CallContext {
        id,
        method,
        params: msg.into_params(),
        arrived: Instant::now(),
    }
}
