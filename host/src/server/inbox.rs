//! Where lightningd's messages enter: frames read from stdin, split into
//! messages, and sorted into what they ask for. A bad frame is answered with
//! its JSON-RPC error here, once, whatever phase the plugin is in.

use crate::protocol::{Frame, FrameReader, Message, Outbox, parse_frame};
use anyhow::Context;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::BufRead;

/// One message from lightningd, by what it asks for.
pub enum Incoming {
    /// A request: it must be answered, with its `id`.
    Request {
        id: Value,
        method: String,
        msg: Message,
    },
    /// A notification other than `shutdown`.
    Notification { method: String, msg: Message },
    /// `shutdown`: finish up and exit.
    Shutdown(Message),
}

/// lightningd's messages, one at a time: frames are read from `input` and
/// split into messages (a frame may hold several).
pub struct Inbox<R> {
    reader: FrameReader<R>,
    pending: VecDeque<Frame>,
    closed: bool,
}

impl<R: BufRead> Inbox<R> {
    pub fn new(input: R) -> Self {
        Inbox {
            reader: FrameReader::new(input),
            pending: VecDeque::new(),
            closed: false,
        }
    }

    /// The next message, or `None` once lightningd closed our stdin or the
    /// inbox was closed (see [`Inbox::close`]). Bad frames are answered on
    /// `outbox` and skipped; `Err` if stdin or `outbox` failed.
    pub fn next(&mut self, outbox: &Outbox) -> anyhow::Result<Option<Incoming>> {
        loop {
            let Some(frame) = self.next_frame()? else {
                return Ok(None);
            };
            let msg = match frame {
                Frame::Message(msg) => msg,
                Frame::Invalid { id, error } => {
                    log::warn!("bad message from lightningd: {}", error.message);
                    outbox.error(&id, &error)?;
                    continue;
                }
            };
            let method = msg.method.clone().unwrap_or_default();
            return Ok(Some(match msg.id.clone() {
                Some(id) => Incoming::Request { id, method, msg },
                None if method == "shutdown" => {
                    log::debug!("shutdown requested");
                    Incoming::Shutdown(msg)
                }
                None => Incoming::Notification { method, msg },
            }));
        }
    }

    fn next_frame(&mut self) -> anyhow::Result<Option<Frame>> {
        while self.pending.is_empty() && !self.closed {
            match self
                .reader
                .next_frame()
                .context("reading from lightningd")?
            {
                Some(text) => self.pending.extend(parse_frame(&text)),
                None => {
                    log::debug!("lightningd closed our stdin");
                    self.closed = true;
                }
            }
        }
        Ok(self.pending.pop_front())
    }

    /// Read nothing more.
    pub fn close(&mut self) {
        self.closed = true;
        self.pending.clear();
    }
}
