//! A guest's stdout and stderr. They must never reach the host's stdout (the
//! protocol pipe): each complete line becomes a log entry instead, tagged
//! with the stream (lightningd already names the plugin), within the guest's
//! log budget.

use crate::caps::Meters;
use crate::caps::quota::MAX_LOG_LINE;
use crate::logging::guest_line;
use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line logged (longer ones are cut), and longest partial line kept
/// before it is logged anyway.
const MAX_LINE: usize = MAX_LOG_LINE;

/// One guest stream (stdout or stderr) of one instance.
#[derive(Clone)]
pub struct GuestOutput {
    inner: Arc<Mutex<Lines>>,
}

struct Lines {
    stream: &'static str,
    level: log::Level,
    pending: Vec<u8>,
    meters: Arc<Meters>,
}

impl GuestOutput {
    pub fn new(stream: &'static str, level: log::Level, meters: Arc<Meters>) -> Self {
        GuestOutput {
            inner: Arc::new(Mutex::new(Lines {
                stream,
                level,
                pending: Vec::new(),
                meters,
            })),
        }
    }

    /// Log what is left of an unfinished line, e.g. at the end of a call.
    pub fn flush_partial(&self) {
        let mut lines = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !lines.pending.is_empty() {
            let rest = std::mem::take(&mut lines.pending);
            lines.emit(&rest);
        }
    }

    /// Log each complete line; keep the unfinished one. Linear in `bytes`
    /// however many lines they hold (500 kB of `\n` is 500,000 lines).
    fn write(&self, bytes: &[u8]) {
        let mut lines = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if lines.pending.is_empty() {
                lines.emit(&rest[..end]);
            } else {
                let mut line = std::mem::take(&mut lines.pending);
                line.extend_from_slice(&rest[..end]);
                lines.emit(&line);
            }
            rest = &rest[end + 1..];
        }
        lines.pending.extend_from_slice(rest);
        if lines.pending.len() > MAX_LINE {
            let long = std::mem::take(&mut lines.pending);
            lines.emit(&long);
        }
    }
}

impl Lines {
    /// Log one line, cut to [`MAX_LINE`] bytes.
    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]);
        let text = text.trim_end_matches('\r');
        let line = guest_line(Some(self.stream), text);
        self.meters.log.log(self.level, &line);
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        GuestOutput::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
