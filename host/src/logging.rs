//! The host's own log (and its guests' output) goes to lightningd's log as
//! `log` notifications in plugin mode, and to stderr in the CLI modes. Never to
//! stdout: that pipe is the protocol.

use crate::protocol::Outbox;
use crate::shown::shown;
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;

/// A line the guest wrote (`events.log`, or its stdout/stderr when `stream`
/// names it), as the host logs it: always starting with `guest`, which no
/// line of the host's own does, and on one line with every character that
/// would not show as itself escaped ([`shown`]), so that a guest cannot pass
/// its words off as the host's audit.
pub fn guest_line(stream: Option<&str>, text: &str) -> String {
    match stream {
        Some(stream) => format!("guest {stream}: {}", shown(text)),
        None => format!("guest: {}", shown(text)),
    }
}

enum Sink {
    Lightningd(Arc<Outbox>),
    Stderr,
}

struct Logger {
    sink: Sink,
    max: log::LevelFilter,
}

#[derive(Serialize)]
struct LogParams<'a> {
    level: &'a str,
    message: &'a str,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        // Our own log at the chosen level; the libraries' (Cranelift is very
        // chatty at debug) only when something is wrong.
        let max = if metadata.target().starts_with(env!("CARGO_CRATE_NAME")) {
            self.max
        } else {
            log::LevelFilter::Warn
        };
        metadata.level() <= max
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        match &self.sink {
            Sink::Lightningd(outbox) => {
                // lightningd's levels for plugins: debug, info, warn, error.
                let level = match record.level() {
                    log::Level::Error => "error",
                    log::Level::Warn => "warn",
                    log::Level::Info => "info",
                    log::Level::Debug | log::Level::Trace => "debug",
                };
                // One entry per line keeps lightningd's log readable. Each
                // is escaped again: guest text a line embeds shows as it is
                // even where its own line forgot to escape it.
                for line in message.lines() {
                    let line = &shown(line).to_string();
                    if outbox
                        .notify(
                            "log",
                            LogParams {
                                level,
                                message: line,
                            },
                        )
                        .is_err()
                    {
                        let _ = writeln!(std::io::stderr(), "{level}: {line}");
                    }
                }
            }
            Sink::Stderr => {
                for line in message.lines() {
                    let _ = writeln!(std::io::stderr(), "{}: {}", record.level(), shown(line));
                }
            }
        }
    }

    fn flush(&self) {}
}

/// Plugin mode: everything goes to lightningd, which filters by level itself.
pub fn to_lightningd(outbox: Arc<Outbox>) {
    install(Logger {
        sink: Sink::Lightningd(outbox),
        max: log::LevelFilter::Debug,
    });
}

/// CLI modes: stderr, `info` and up unless `verbose`.
pub fn to_stderr(verbose: bool) {
    let max = if verbose {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    install(Logger {
        sink: Sink::Stderr,
        max,
    });
}

fn install(logger: Logger) {
    let max = logger.max;
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}
