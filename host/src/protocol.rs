//! lightningd's side of the plugin protocol: JSON-RPC 2.0 messages on our
//! stdin/stdout, each one followed by a blank line (`\n\n`).
//!
//! Reading: [`FrameReader`] cuts stdin into messages and [`parse_frame`] turns
//! each into a [`Message`], or into the JSON-RPC error that must be answered.
//! Writing: [`Outbox`] is the only writer of stdout, so nothing but protocol
//! messages ever reaches lightningd, and messages from concurrent calls never
//! interleave.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::io::{BufRead, Write};
use std::sync::Mutex;

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// The plugin failed while answering (guest trap, deadline, memory, bad answer).
pub const INTERNAL_ERROR: i64 = -32603;

/// One message from lightningd: a request when `id` is set, else a notification.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// Echoed back verbatim; lightningd uses numbers and strings such as
    /// `cli:myplugin#1/cln:myplugin#2`.
    #[serde(default)]
    pub id: Option<Value>,
    pub method: Option<String>,
    /// Kept as the exact text lightningd sent: guests get it unchanged.
    #[serde(default)]
    pub params: Option<Box<RawValue>>,
}

impl Message {
    /// The params as sent, or `[]` when lightningd sent none.
    pub fn into_params(self) -> Box<RawValue> {
        match self.params {
            Some(p) if p.get() != "null" => p,
            _ => RawValue::from_string("[]".into()).expect("[] is JSON"),
        }
    }
}

/// A JSON-RPC error object, as answered to lightningd or received from the node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attach JSON data (e.g. `{"cause": "deadline"}`).
    pub fn with_data(mut self, data: &Value) -> Self {
        self.data = serde_json::value::to_raw_value(data).ok();
        self
    }
}

/// What one frame from lightningd turned out to be.
#[derive(Debug)]
pub enum Frame {
    Message(Message),
    /// Not a usable message: answer this error (to `id`, or `null`).
    Invalid {
        id: Value,
        error: RpcError,
    },
}

/// Splits lightningd's output into messages: lines up to the next blank line.
///
/// lightningd writes each message on one line followed by an empty line; a
/// message spread over several lines (as a human might type it) also works.
pub struct FrameReader<R> {
    input: R,
    line: String,
}

impl<R: BufRead> FrameReader<R> {
    pub fn new(input: R) -> Self {
        FrameReader {
            input,
            line: String::new(),
        }
    }

    /// The next message's text, or `None` at end of input.
    pub fn next_frame(&mut self) -> std::io::Result<Option<String>> {
        let mut frame = String::new();
        loop {
            self.line.clear();
            if self.input.read_line(&mut self.line)? == 0 {
                return Ok((!frame.trim().is_empty()).then_some(frame));
            }
            if self.line.trim().is_empty() {
                if frame.trim().is_empty() {
                    continue;
                }
                return Ok(Some(frame));
            }
            frame.push_str(&self.line);
        }
    }
}

/// Parse one frame; a frame may hold several JSON values if lightningd (or a
/// person) left out the blank line between them.
pub fn parse_frame(frame: &str) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(frame).into_iter::<Box<RawValue>>();
    loop {
        match stream.next() {
            None => break,
            Some(Ok(raw)) => out.push(parse_message(&raw)),
            Some(Err(e)) => {
                out.push(Frame::Invalid {
                    id: Value::Null,
                    error: RpcError::new(PARSE_ERROR, format!("Parse error: {e}")),
                });
                break;
            }
        }
    }
    out
}

fn parse_message(raw: &RawValue) -> Frame {
    match serde_json::from_str::<Message>(raw.get()) {
        Ok(msg) if msg.method.is_some() => Frame::Message(msg),
        Ok(msg) => Frame::Invalid {
            id: msg.id.unwrap_or(Value::Null),
            error: RpcError::new(INVALID_REQUEST, "Invalid request: no method"),
        },
        Err(e) => {
            // Still echo the id when there is one, so the caller is not left waiting.
            let id = serde_json::from_str::<Value>(raw.get())
                .ok()
                .and_then(|v| v.get("id").cloned())
                .unwrap_or(Value::Null);
            Frame::Invalid {
                id,
                error: RpcError::new(INVALID_REQUEST, format!("Invalid request: {e}")),
            }
        }
    }
}

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
        buf.extend_from_slice(b"\n\n");
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(&buf)
            .and_then(|()| out.flush())
            .context("writing to lightningd")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &str) -> Vec<String> {
        let mut reader = FrameReader::new(input.as_bytes());
        std::iter::from_fn(|| reader.next_frame().unwrap()).collect()
    }

    #[test]
    fn frames_end_at_blank_lines_and_may_span_lines() {
        let input = "{\"id\":1,\"method\":\"a\"}\n\n\n{\n\"id\": 2,\n\"method\": \"b\"\n}\n\n{\"method\":\"c\"}";
        assert_eq!(
            frames(input),
            vec![
                "{\"id\":1,\"method\":\"a\"}\n",
                "{\n\"id\": 2,\n\"method\": \"b\"\n}\n",
                "{\"method\":\"c\"}",
            ]
        );
    }

    #[test]
    fn one_frame_may_hold_several_messages() {
        let parsed = parse_frame(
            "{\"id\":1,\"method\":\"a\"}\n{\"method\":\"b\",\"params\":{\"x\":[1, 2]}}",
        );
        let [Frame::Message(a), Frame::Message(b)] = parsed.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            (a.id.clone(), a.method.as_deref()),
            (Some(serde_json::json!(1)), Some("a"))
        );
        assert_eq!(b.id, None);
        // Params keep the exact text they were sent as.
        assert_eq!(b.params.as_ref().map(|p| p.get()), Some("{\"x\":[1, 2]}"));
    }

    #[test]
    fn bad_frames_become_the_errors_to_answer() {
        let parsed = parse_frame("{\"id\": 3, \"method\": 5}");
        let [Frame::Invalid { id, error }] = parsed.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!((id, error.code), (&serde_json::json!(3), INVALID_REQUEST));
        let parsed = parse_frame("{\"id\": 4, \"method\": \"x\"");
        let [Frame::Invalid { id, error }] = parsed.as_slice() else {
            panic!("{parsed:?}")
        };
        assert_eq!((id, error.code), (&Value::Null, PARSE_ERROR));
    }

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
}
