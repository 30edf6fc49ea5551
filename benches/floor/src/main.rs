//! The leanest native myplugin: a floor for `benches/myplugin.rs`. One thread,
//! std and serde_json only. Reads `\n\n`-framed JSON-RPC on stdin, answers
//! `getmanifest` (the seed's manifest) and `init`, keeps one connection to the
//! node's socket (opened at `init`), and answers each `myplugin` call after a
//! filtered `getinfo` on it, passing the call's params through as raw JSON.
//! `echo` answers `{"method":"echo","params":…}` without the node, as the
//! host's test guest does: the bench's measure of per-call overhead without
//! node I/O. Exits on end of input or `shutdown`.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

const MANIFEST: &str = concat!(
    r#"{"options":[{"name":"foo_opt","type":"string","default":"bar","description":"description"}],"#,
    r#""rpcmethods":[{"name":"myplugin","usage":"","description":"description"},"#,
    r#"{"name":"echo","usage":"","description":"answers the method name and params"}],"#,
    r#""dynamic":true,"nonnumericids":true}"#
);

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Init {
    #[serde(default)]
    options: Options,
    configuration: Configuration,
}

#[derive(Deserialize, Default)]
struct Options {
    foo_opt: Option<String>,
}

#[derive(Deserialize)]
struct Configuration {
    #[serde(rename = "lightning-dir")]
    lightning_dir: PathBuf,
    #[serde(rename = "rpc-file")]
    rpc_file: String,
}

#[derive(Deserialize)]
struct GetinfoAnswer<'a> {
    #[serde(borrow)]
    result: Option<GetinfoResult<'a>>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct GetinfoResult<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
}

/// The next `\n\n`-terminated frame (or what is left at end of input) into
/// `buf`; false at end of input with nothing read.
fn read_frame(input: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    loop {
        if input.read_until(b'\n', buf)? == 0 {
            return Ok(!buf.iter().all(u8::is_ascii_whitespace));
        }
        if buf.ends_with(b"\n\n") {
            if buf.iter().all(u8::is_ascii_whitespace) {
                buf.clear();
                continue;
            }
            return Ok(true);
        }
    }
}

/// The node's socket and one connection to it.
struct Node {
    path: PathBuf,
    conn: Option<(UnixStream, BufReader<UnixStream>)>,
    calls: u64,
    buf: Vec<u8>,
}

impl Node {
    /// The node id (raw JSON) from `getinfo`, or the node's error (raw JSON).
    fn getinfo(&mut self, incoming: &str) -> io::Result<Result<String, String>> {
        self.calls += 1;
        let id = serde_json::to_string(&format!("{incoming}/floor:getinfo#{}", self.calls))?;
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"getinfo","params":[],"filter":{{"id":true}}}}"#
        ) + "\n\n";
        // One retry on a fresh connection if the kept one has gone away.
        for attempt in 0..2 {
            if self.conn.is_none() {
                let stream = UnixStream::connect(&self.path)?;
                let reader = BufReader::new(stream.try_clone()?);
                self.conn = Some((stream, reader));
            }
            let (stream, reader) = self.conn.as_mut().unwrap();
            let sent = stream.write_all(request.as_bytes());
            let got = sent.and_then(|()| read_frame(reader, &mut self.buf));
            match got {
                Ok(true) => {
                    let answer: GetinfoAnswer = serde_json::from_slice(&self.buf)?;
                    return Ok(match (answer.result, answer.error) {
                        (Some(r), _) => Ok(r.id.get().to_string()),
                        (None, Some(e)) => Err(e.get().to_string()),
                        (None, None) => {
                            Err(r#"{"code":-32603,"message":"empty getinfo answer"}"#.into())
                        }
                    });
                }
                Ok(false) | Err(_) if attempt == 0 => self.conn = None,
                Ok(false) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Err(e) => return Err(e),
            }
        }
        unreachable!()
    }
}

fn main() -> io::Result<()> {
    let mut input = io::stdin().lock();
    let mut output = io::stdout().lock();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut foo_opt = String::from("\"bar\"");
    let mut node: Option<Node> = None;
    while read_frame(&mut input, &mut buf)? {
        let request: Request = serde_json::from_slice(&buf)?;
        let params = request.params.map_or("null", RawValue::get);
        let Some(id) = request.id else {
            if request.method == "shutdown" {
                break;
            }
            continue; // other notifications
        };
        let id = id.get();
        out.clear();
        write!(out, r#"{{"jsonrpc":"2.0","id":{id},"#)?;
        match &*request.method {
            "getmanifest" => write!(out, r#""result":{MANIFEST}}}"#)?,
            "init" => {
                let init: Init = serde_json::from_str(params)?;
                if let Some(value) = init.options.foo_opt {
                    foo_opt = serde_json::to_string(&value)?;
                }
                let c = init.configuration;
                let mut n = Node {
                    path: c.lightning_dir.join(c.rpc_file),
                    conn: None,
                    calls: 0,
                    buf: Vec::new(),
                };
                let stream = UnixStream::connect(&n.path)?;
                n.conn = Some((stream.try_clone()?, BufReader::new(stream)));
                node = Some(n);
                out.extend_from_slice(br#""result":{}}"#);
            }
            "myplugin" => {
                // The incoming id as text: a string's contents, else as is.
                let incoming: Cow<str> = match serde_json::from_str::<String>(id) {
                    Ok(s) => s.into(),
                    Err(_) => id.into(),
                };
                let answer = match node.as_mut() {
                    Some(n) => n.getinfo(&incoming)?,
                    None => Err(r#"{"code":-32603,"message":"not initialized"}"#.into()),
                };
                match answer {
                    Ok(node_id) => write!(
                        out,
                        r#""result":{{"node_id":{node_id},"option":{{"foo_opt":{foo_opt}}},"cli_params":{params}}}}}"#
                    )?,
                    Err(error) => write!(out, r#""error":{error}}}"#)?,
                }
            }
            "echo" => write!(
                out,
                r#""result":{{"method":"echo","params":{params}}}}}"#
            )?,
            other => {
                let message = serde_json::to_string(&format!("Unknown method '{other}'"))?;
                write!(out, r#""error":{{"code":-32601,"message":{message}}}}}"#)?;
            }
        }
        out.extend_from_slice(b"\n\n");
        output.write_all(&out)?;
        output.flush()?;
    }
    Ok(())
}
