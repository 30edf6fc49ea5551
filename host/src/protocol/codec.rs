//! Reading lightningd's messages: [`FrameReader`] cuts stdin into frames at
//! blank lines, and [`parse_frame`] turns each into [`Message`]s, or into the
//! JSON-RPC error that must be answered.

use super::codes::{INVALID_REQUEST, PARSE_ERROR};
use super::messages::{Message, RpcError};
use serde_json::Value;
use serde_json::value::RawValue;
use std::io::BufRead;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{INVALID_REQUEST, PARSE_ERROR};

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
}
