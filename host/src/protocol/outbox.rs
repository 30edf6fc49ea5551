//! Writing to lightningd: [`Outbox`] is the only writer of stdout, so nothing
//! but protocol messages ever reaches lightningd, and messages from concurrent
//! calls never interleave.

use super::messages::RpcError;
use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::io::Write;
use std::sync::Mutex;

#[derive(Serialize)]
struct ResultOut<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: &'a RawValue,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    error: &'a RpcError,
}

#[derive(Serialize)]
struct NotificationOut<'a, P: Serialize> {
    jsonrpc: &'static str,
    method: &'a str,
    params: P,
}

/// The single writer of the protocol pipe (our stdout).
pub struct Outbox {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Outbox {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Outbox {
            out: Mutex::new(out),
        }
    }

    /// Answer request `id` with `result`, forwarded as the exact JSON text.
    pub fn result(&self, id: &Value, result: &RawValue) -> anyhow::Result<()> {
        self.send(&ResultOut {
            jsonrpc: "2.0",
            id,
            result,
        })
    }

    /// Answer request `id` with an error.
    pub fn error(&self, id: &Value, error: &RpcError) -> anyhow::Result<()> {
        self.send(&ErrorOut {
            jsonrpc: "2.0",
            id,
            error,
        })
    }

    /// Answer request `id` with whichever `answer` is.
    pub fn reply(&self, id: &Value, answer: Result<Box<RawValue>, RpcError>) -> anyhow::Result<()> {
        match answer {
            Ok(result) => self.result(id, &result),
            Err(error) => self.error(id, &error),
        }
    }

    /// Send a notification such as `log`.
    pub fn notify(&self, method: &str, params: impl Serialize) -> anyhow::Result<()> {
        self.send(&NotificationOut {
            jsonrpc: "2.0",
            method,
            params,
        })
    }

    fn send(&self, msg: &impl Serialize) -> anyhow::Result<()> {
        let mut buf = serde_json::to_vec(msg).context("encoding a message for lightningd")?;
        // A guest's JSON is forwarded as its text: whatever whitespace it
        // holds, the message stays one compact line, so no blank line of the
        // guest's choosing ever ends a message early.
        compact(&mut buf);
        buf.extend_from_slice(b"\n\n");
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(&buf)
            .and_then(|()| out.flush())
            .context("writing to lightningd")
    }
}

/// Drop the whitespace between the tokens of the JSON text in `buf`. JSON
/// strings cannot hold raw control characters, so no newline survives.
fn compact(buf: &mut Vec<u8>) {
    if !buf
        .iter()
        .any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return;
    }
    let (mut in_string, mut escaped) = (false, false);
    buf.retain(|&b| {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            return true;
        }
        match b {
            b'"' => in_string = true,
            b' ' | b'\t' | b'\n' | b'\r' => return false,
            _ => {}
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{METHOD_NOT_FOUND, RpcError};

    #[test]
    fn outbox_writes_one_message_and_a_blank_line() {
        #[derive(Clone, Default)]
        struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Shared::default();
        let outbox = Outbox::new(Box::new(sink.clone()));
        let result = RawValue::from_string("{\"b\":1,\"a\":2}".into()).unwrap();
        outbox
            .result(&serde_json::json!("cli:x#1/cln:x#2"), &result)
            .unwrap();
        outbox
            .error(
                &serde_json::json!(7),
                &RpcError::new(METHOD_NOT_FOUND, "no"),
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(sink.0.lock().unwrap().clone()).unwrap(),
            "{\"jsonrpc\":\"2.0\",\"id\":\"cli:x#1/cln:x#2\",\"result\":{\"b\":1,\"a\":2}}\n\n\
             {\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32601,\"message\":\"no\"}}\n\n"
        );
    }

    #[test]
    fn whitespace_between_tokens_is_dropped_and_strings_kept() {
        let mut buf = b"{ \"a\" :\n\n [1 ,\t2.0],\r\n \"s\": \" x\\\" \\\\ \\n y \" }".to_vec();
        compact(&mut buf);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"a\":[1,2.0],\"s\":\" x\\\" \\\\ \\n y \"}"
        );
    }
}
