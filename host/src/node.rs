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
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a node call gave no result.
#[derive(Debug)]
pub enum NodeError {
    /// The node answered with a JSON-RPC error: handed to the guest as is.
    Rpc(RpcError),
    /// The socket is missing, closed or answered garbage.
    Transport(anyhow::Error),
    /// The caller's deadline came before the answer; the connection is
    /// dropped (its answer would come late, on it).
    Deadline,
}

impl From<NodeError> for RpcError {
    fn from(e: NodeError) -> RpcError {
        match e {
            NodeError::Rpc(e) => e,
            NodeError::Transport(e) => RpcError::new(
                crate::protocol::INTERNAL_ERROR,
                format!("node unreachable: {e:#}"),
            ),
            NodeError::Deadline => RpcError::new(
                crate::protocol::INTERNAL_ERROR,
                "the node did not answer before the call's deadline",
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

/// One answer of the node, as read from its socket.
#[derive(Deserialize, Debug)]
pub struct Response {
    pub id: Option<Value>,
    pub result: Option<Box<RawValue>>,
    pub error: Option<RpcError>,
}

/// One kept connection, and what it has read past the last answer.
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    chunk: Box<[u8]>,
    /// The socket's timeouts as last set (read, write).
    timeouts: [Option<Duration>; 2],
}

/// A pool of connections to one node socket.
pub struct NodeClient {
    path: PathBuf,
    /// The plugin's name, in the ids of its calls.
    name: String,
    idle: Mutex<Vec<Conn>>,
    next_id: AtomicU64,
}

impl NodeClient {
    /// No connection is made until the first call: a node socket that is not
    /// there yet (or any more) is an error for that call, not for the plugin.
    pub fn new(path: PathBuf, name: &str) -> Self {
        NodeClient {
            path,
            name: name.to_string(),
            idle: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Call `method` on the node on behalf of the incoming request
    /// `parent_id`, giving up at `until`.
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
        until: Instant,
    ) -> Result<Box<RawValue>, NodeError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{parent_id}/{}:{method}#{n}", self.name);
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
            Some(mut conn) => match roundtrip(&mut conn, &body, until) {
                Ok(r) => Ok((conn, r)),
                // An idle connection the node closed (e.g. it restarted): the
                // request never reached it, so one retry on a fresh one is safe.
                Err(Failure::Stale) => self.fresh_roundtrip(&body, until),
                Err(other) => Err(other),
            },
            None => self.fresh_roundtrip(&body, until),
        };
        let (conn, response) = response.map_err(|f| match f {
            Failure::Deadline => NodeError::Deadline,
            Failure::Stale => {
                NodeError::Transport(anyhow!("node closed the connection without answering"))
            }
            Failure::Broken(e) => NodeError::Transport(e),
        })?;
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

    fn fresh_roundtrip(&self, body: &[u8], until: Instant) -> Result<(Conn, Response), Failure> {
        let stream = UnixStream::connect(&self.path)
            .with_context(|| format!("connecting to {}", self.path.display()))
            .map_err(Failure::Broken)?;
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
            timeouts: [None; 2],
        };
        roundtrip(&mut conn, body, until).map(|r| (conn, r))
    }
}

enum Failure {
    /// Closed before a single byte of the answer: the request was not served.
    Stale,
    Broken(anyhow::Error),
    /// `until` passed first.
    Deadline,
}

/// Which of a socket's timeouts.
#[derive(Clone, Copy)]
enum Op {
    Read = 0,
    Write = 1,
}

/// A socket timeout may be this far from the time left rather than be set
/// again (a system call) for every node call: sequential calls with the same
/// budget find the one the last call set.
const TIMEOUT_SLACK: Duration = Duration::from_millis(5);

/// Let the next socket operation block no later than `until`, give or take
/// [`TIMEOUT_SLACK`] (a read that times out early waits the rest).
fn block_until(conn: &mut Conn, until: Instant, op: Op) -> Result<(), Failure> {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failure::Deadline);
    }
    let fits = |set: Duration| set.abs_diff(left) <= TIMEOUT_SLACK;
    if conn.timeouts[op as usize].is_some_and(fits) {
        return Ok(());
    }
    let set = match op {
        Op::Read => UnixStream::set_read_timeout,
        Op::Write => UnixStream::set_write_timeout,
    };
    set(&conn.stream, Some(left)).map_err(|e| Failure::Broken(e.into()))?;
    conn.timeouts[op as usize] = Some(left);
    Ok(())
}

/// A timed-out socket operation reports `WouldBlock` (or `TimedOut`).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

fn roundtrip(conn: &mut Conn, body: &[u8], until: Instant) -> Result<Response, Failure> {
    block_until(conn, until, Op::Write)?;
    if let Err(e) = conn.stream.write_all(body) {
        return Err(match e.kind() {
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => Failure::Stale,
            // Part of the request may be written: the connection is dropped.
            _ if timed_out(&e) => Failure::Deadline,
            _ => Failure::Broken(anyhow::Error::new(e).context("sending to the node")),
        });
    }
    read_answer(conn, until)
}

/// Read one answer whole, however long. lightningd ends each answer with a
/// blank line (`\n\n`, which JSON text never holds inside a string), so the
/// text is parsed once per blank line seen rather than byte by byte; what
/// follows the answer stays in `conn.buf`. End of input before the first byte
/// of the answer means the node never took the request.
fn read_answer(conn: &mut Conn, until: Instant) -> Result<Response, Failure> {
    let broken = |e: anyhow::Error| Failure::Broken(e.context("reading the node's answer"));
    let mut scanned = 0;
    loop {
        if let Some(response) = take_answer(&mut conn.buf, &mut scanned).map_err(broken)? {
            return Ok(response);
        }
        block_until(conn, until, Op::Read)?;
        match conn.stream.read(&mut conn.chunk) {
            Ok(0) if conn.buf.iter().all(u8::is_ascii_whitespace) => return Err(Failure::Stale),
            Ok(0) => return Err(broken(anyhow!("the node closed the connection mid-answer"))),
            Ok(n) => conn.buf.extend_from_slice(&conn.chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Early (a timeout set for an earlier call): wait the rest.
            Err(e) if timed_out(&e) && Instant::now() < until => {}
            Err(e) if timed_out(&e) => return Err(Failure::Deadline),
            Err(e) if e.kind() == ErrorKind::ConnectionReset && conn.buf.is_empty() => {
                return Err(Failure::Stale);
            }
            Err(e) => return Err(broken(e.into())),
        }
    }
}

/// The answer at the front of `buf`, taken out of it, once `buf` holds it
/// whole; `Ok(None)` until then. `scanned` (0 for a new answer) is how far
/// `buf` was already searched for the blank line that may end it, so that a
/// long answer read in many pieces is searched once.
pub fn take_answer(buf: &mut Vec<u8>, scanned: &mut usize) -> anyhow::Result<Option<Response>> {
    while let Some(at) = find_blank_line(&buf[*scanned..]) {
        let end = *scanned + at;
        match serde_json::from_slice::<Response>(&buf[..end]) {
            Ok(response) => {
                buf.drain(..end + 2);
                *scanned = 0;
                return Ok(Some(response));
            }
            // Whitespace inside the answer; it goes on.
            Err(e) if e.is_eof() => *scanned = end + 1,
            Err(e) => return Err(e.into()),
        }
    }
    *scanned = buf.len().saturating_sub(1);
    Ok(None)
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\n\n")
}
