//! The client for the node's JSON-RPC socket (`<lightning-dir>/<rpc-file>`).
//!
//! Only the host holds it: guests reach the node through granted capabilities
//! (see `capabilities`). Connections are kept and reused; a call that finds
//! every connection busy opens another, so one slow node call never holds the
//! others. Answers are read whole, whatever their size.

use crate::protocol::RpcError;
use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a node call gave no result.
#[derive(Debug)]
pub enum NodeError {
    /// The node answered with a JSON-RPC error: handed to the guest as is.
    Rpc(RpcError),
    /// The socket is missing, closed or answered garbage.
    Transport(anyhow::Error),
}

impl From<NodeError> for RpcError {
    fn from(e: NodeError) -> RpcError {
        match e {
            NodeError::Rpc(e) => e,
            NodeError::Transport(e) => RpcError::new(
                crate::protocol::INTERNAL_ERROR,
                format!("node unreachable: {e:#}"),
            ),
        }
    }
}

#[derive(Serialize)]
struct Request<'a> {
    jsonrpc: &'static str,
    id: &'a str,
    method: &'a str,
    params: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Response {
    id: Option<Value>,
    result: Option<Box<RawValue>>,
    error: Option<RpcError>,
}

struct Conn {
    stream: BufReader<UnixStream>,
}

/// A pool of connections to one node socket.
pub struct NodeClient {
    path: PathBuf,
    plugin: String,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
    next_id: AtomicU64,
}

impl NodeClient {
    /// No connection is made until the first call: a node socket that is not
    /// there yet (or any more) is an error for that call, not for the plugin.
    pub fn new(path: PathBuf, plugin: &str, timeout: Duration) -> Self {
        NodeClient {
            path,
            plugin: plugin.to_string(),
            timeout,
            idle: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Call `method` on the node on behalf of the incoming request `parent_id`.
    ///
    /// The outgoing id chains the incoming one as lightningd's own plugins do
    /// (`cli:myplugin#1/cln:myplugin#2/myplugin:getinfo#3`), so the node's logs
    /// show which call caused which.
    pub fn call(
        &self,
        parent_id: &str,
        method: &str,
        params: &RawValue,
        filter: Option<&RawValue>,
    ) -> Result<Box<RawValue>, NodeError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{parent_id}/{}:{method}#{n}", self.plugin);
        let mut body = serde_json::to_vec(&Request {
            jsonrpc: "2.0",
            id: &id,
            method,
            params,
            filter,
        })
        .map_err(|e| NodeError::Transport(e.into()))?;
        body.extend_from_slice(b"\n\n");

        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let response = match pooled {
            Some(mut conn) => match roundtrip(&mut conn, &body) {
                Ok(r) => Ok((conn, r)),
                // An idle connection the node closed (e.g. it restarted): the
                // request never reached it, so one retry on a fresh one is safe.
                Err(Failure::Stale) => self.fresh_roundtrip(&body),
                Err(Failure::Broken(e)) => Err(e),
            },
            None => self.fresh_roundtrip(&body),
        };
        let (conn, response) = response.map_err(NodeError::Transport)?;
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);

        if response.id.as_ref().and_then(Value::as_str) != Some(id.as_str()) {
            return Err(NodeError::Transport(anyhow!(
                "node answered id {:?} to request {id}",
                response.id
            )));
        }
        match (response.result, response.error) {
            (_, Some(error)) => Err(NodeError::Rpc(error)),
            (Some(result), None) => Ok(result),
            (None, None) => Err(NodeError::Transport(anyhow!(
                "node answer has neither result nor error"
            ))),
        }
    }

    fn fresh_roundtrip(&self, body: &[u8]) -> anyhow::Result<(Conn, Response)> {
        let stream = UnixStream::connect(&self.path)
            .with_context(|| format!("connecting to {}", self.path.display()))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut conn = Conn {
            stream: BufReader::new(stream),
        };
        match roundtrip(&mut conn, body) {
            Ok(r) => Ok((conn, r)),
            Err(Failure::Stale) => Err(anyhow!("node closed the connection without answering")),
            Err(Failure::Broken(e)) => Err(e),
        }
    }
}

enum Failure {
    /// Closed before a single byte of the answer: the request was not served.
    Stale,
    Broken(anyhow::Error),
}

fn roundtrip(conn: &mut Conn, body: &[u8]) -> Result<Response, Failure> {
    if let Err(e) = conn.stream.get_mut().write_all(body) {
        return Err(match e.kind() {
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => Failure::Stale,
            _ => Failure::Broken(anyhow::Error::new(e).context("sending to the node")),
        });
    }
    // Skip the blank line left from the previous answer; end of input before
    // the first byte of this answer means the node never took the request.
    loop {
        let buf = match conn.stream.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Err(Failure::Stale),
            Err(e) => {
                return Err(Failure::Broken(
                    anyhow::Error::new(e).context("reading the node's answer"),
                ));
            }
        };
        if buf.is_empty() {
            return Err(Failure::Stale);
        }
        let blanks = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let done = blanks < buf.len();
        conn.stream.consume(blanks);
        if done {
            break;
        }
    }
    // Reads exactly one JSON value, however long, and leaves what follows it.
    let mut de = serde_json::Deserializer::from_reader(&mut conn.stream);
    Response::deserialize(&mut de)
        .map_err(|e| Failure::Broken(anyhow::Error::new(e).context("reading the node's answer")))
}
