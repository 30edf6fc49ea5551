//! `cln-wasm-host call PLUGIN.wasm METHOD [PARAMS…]`: run one call of a guest
//! without a node, the way lightningd would, and print the JSON answer. For
//! plugin authors iterating on a guest.

use super::standin::StandIn;
use crate::caps::CallContext;
use crate::guest::{self, Files};
use crate::protocol::RpcError;
use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Arguments of the `call` subcommand.
#[derive(clap::Args, Debug)]
pub struct CallArgs {
    /// The guest component (`.wasm`), or an installed plugin file.
    #[arg(value_name = "PLUGIN")]
    pub wasm: PathBuf,
    /// The method to call, one the guest's manifest declares.
    pub method: String,
    /// Params as lightning-cli takes them: positional, or `key=value` with `-k`.
    /// Values that parse as JSON (numbers, true, {…}) are passed as JSON.
    pub params: Vec<String>,
    /// Params are `key=value` pairs (like `lightning-cli -k`).
    #[arg(short = 'k', long)]
    pub keywords: bool,
    /// A startup option, `name=value` (repeatable), as `plugin start` takes them.
    #[arg(short = 'o', long = "option", value_name = "NAME=VALUE")]
    pub options: Vec<String>,
    /// A real node's RPC socket (`<lightning-dir>/<network>/lightning-rpc`)
    /// instead of the built-in stand-in.
    #[arg(long, value_name = "PATH")]
    pub rpc_socket: Option<PathBuf>,
    /// The policy for a `.wasm` (default: PLUGIN.toml beside it, if any); a
    /// plugin file carries its own.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// Run the call; prints the answer on stdout, or the error on stderr and fails.
pub fn run(args: CallArgs) -> anyhow::Result<i32> {
    let (files, policy) = Files::for_tool(&args.wasm, args.policy.clone())?;
    let guest = guest::load(&files, policy, None)?;
    let options = parse_options(&args.options)?;
    let standin;
    let socket = match &args.rpc_socket {
        Some(path) => path.clone(),
        None => {
            standin = StandIn::start()?;
            standin.path().to_path_buf()
        }
    };
    let configuration = serde_json::json!({"network": "regtest", "startup": true});
    let configuration = configuration.as_object().expect("an object");
    guest
        .start_session(&options, configuration, Some(socket), "cli:init")
        .map_err(|reason| anyhow!("init refused: {reason}"))?;
    if !guest.manifest.methods.iter().any(|m| m.name == args.method) {
        bail!("Unknown command '{}'", args.method);
    }
    let call = CallContext {
        id: format!("cli:{}#{}", args.method, std::process::id()),
        method: args.method.clone(),
        params: serde_json::value::to_raw_value(&parse_params(&args.params, args.keywords)?)?,
        arrived: std::time::Instant::now(),
    };
    match guest.answer(call) {
        Ok(result) => {
            let pretty: Value = serde_json::from_str(result.get())?;
            println!("{}", serde_json::to_string_pretty(&pretty)?);
            Ok(0)
        }
        Err(RpcError {
            code,
            message,
            data,
        }) => {
            let error = serde_json::json!({ "code": code, "message": message, "data": data });
            eprintln!("{}", serde_json::to_string_pretty(&error)?);
            Ok(1)
        }
    }
}

fn json_or_string(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn parse_params(params: &[String], keywords: bool) -> anyhow::Result<Value> {
    if !keywords {
        return Ok(Value::Array(
            params.iter().map(|p| json_or_string(p)).collect(),
        ));
    }
    let mut map = Map::new();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("{p:?} is not key=value (given -k)"))?;
        map.insert(k.to_string(), json_or_string(v));
    }
    Ok(Value::Object(map))
}

/// `--option name=value`; a bare `name` sets a flag; a name given more than
/// once is a list, as lightningd passes `multi` options. Values stay strings
/// and are typed by the guest's declarations, as lightningd's are.
fn parse_options(options: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for o in options {
        let (name, value) = match o.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (o.clone(), Value::Bool(true)),
        };
        match map.get_mut(&name) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                map.insert(name, value);
            }
        }
    }
    Ok(map)
}
