//! The fuzz targets' bodies: each takes the fuzzer's bytes and panics only
//! on a real fault (a crash, or two readings that must agree and do not).
//! The same file is compiled into the libFuzzer binaries (`fuzz/`, nightly)
//! and into the stable test that replays the corpus
//! (`host/tests/fuzz_corpus.rs`), so CI runs every input ever kept.

use cln_wasm_host::bindings::cln::plugin::types::{
    Featurebits, HookDecl, MessageRequest, MethodDecl, RpcRequest, TopicRequest,
};
use cln_wasm_host::bindings::{Manifest, OptionDecl, OptionType, OptionValue};
use cln_wasm_host::guest::manifest;
use cln_wasm_host::node::take_answer;
use cln_wasm_host::policy::Policy;
use cln_wasm_host::policy::hooks::{HOOKS, Hook};
use cln_wasm_host::protocol::{FrameReader, json, parse_frame};
use serde_json::Value;
use std::io::BufReader;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("frames", frames),
    ("node_answer", node_answer),
    ("policy", policy),
    ("manifest", manifest_check),
    ("hook_answer", hook_answer),
];

/// lightningd's stdin cut into frames: whole, and split at every byte (a
/// one-byte buffer), must give the same frames; each frame parses to
/// messages or to the error that answers it.
pub fn frames(data: &[u8]) {
    fn read<R: std::io::BufRead>(
        reader: &mut FrameReader<R>,
    ) -> Vec<Result<String, std::io::ErrorKind>> {
        let mut frames = vec![];
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => frames.push(Ok(frame)),
                Ok(None) => return frames,
                Err(e) => {
                    frames.push(Err(e.kind()));
                    return frames;
                }
            }
        }
    }
    let whole = read(&mut FrameReader::new(data));
    let split = read(&mut FrameReader::new(BufReader::with_capacity(1, data)));
    assert_eq!(whole, split, "frames differ when split at every byte");
    for frame in whole.iter().flatten() {
        let _ = parse_frame(frame);
    }
}

/// The node's answers, fed to the reader in pieces whose sizes the input's
/// first byte sets, must be the answers read from the whole text.
pub fn node_answer(data: &[u8]) {
    let Some((&step, text)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let answers = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let (mut buf, mut scanned, mut got) = (Vec::new(), 0, Vec::new());
        for piece in pieces {
            buf.extend_from_slice(piece);
            loop {
                match take_answer(&mut buf, &mut scanned) {
                    Ok(Some(answer)) => got.push(Ok(format!("{answer:?}"))),
                    Ok(None) => break,
                    Err(_) => {
                        got.push(Err(()));
                        return got;
                    }
                }
            }
        }
        got
    };
    let whole = answers(&mut std::iter::once(text));
    let pieces = answers(&mut text.chunks(step));
    assert_eq!(
        whole, pieces,
        "answers differ when read {step} bytes at a time"
    );
}

/// A plugin file (its policy, conditions and filters): parsed and checked,
/// then asked about some node calls.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::parse(text, "fuzzed") else {
        return;
    };
    for (method, params) in [
        ("getinfo", Value::Null),
        (
            "pay",
            serde_json::json!({"bolt11": "lnbc1", "amount_msat": 1000}),
        ),
        ("withdraw", serde_json::json!(["bcrt1q", 1000])),
    ] {
        let _ = policy.check_rpc(method, &params);
    }
    for hook in HOOKS {
        let _ = policy.grants.hook(hook.name);
    }
}

/// Bytes as a stream of small choices.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A name lightningd or the host cares about, or raw bytes.
    fn name(&mut self) -> String {
        const NAMES: &[&str] = &[
            "getinfo",
            "pay",
            "init",
            "shutdown",
            "htlc_accepted",
            "rpc_command",
            "connect",
            "*",
            "fuzz",
            "fuzz-reload",
            "fuzz-audit",
            "log",
            "getinfo\u{200b}",
            "Foo",
            "a-b_c",
            "network",
            "",
            "setconfig",
            "block_added",
            "dev-x",
        ];
        let pick = self.byte();
        if usize::from(pick) < NAMES.len() * 8 {
            return NAMES[usize::from(pick) % NAMES.len()].to_string();
        }
        let len = usize::from(self.byte() % 16).min(self.0.len());
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8_lossy(text).into_owned()
    }

    fn names(&mut self) -> Vec<String> {
        (0..self.byte() % 4).map(|_| self.name()).collect()
    }

    fn maybe_name(&mut self) -> Option<String> {
        self.flag().then(|| self.name())
    }

    fn value(&mut self) -> Option<OptionValue> {
        Some(match self.byte() % 6 {
            0 => return None,
            1 => OptionValue::String(self.name()),
            2 => OptionValue::Int(i64::from(self.byte()) - 128),
            3 => OptionValue::Bool(self.flag()),
            4 => OptionValue::StringList(self.names()),
            _ => OptionValue::IntList(vec![i64::from(self.byte())]),
        })
    }
}

/// An arbitrary manifest, checked as the host checks a guest's: validation
/// and routing must agree (a manifest that validates routes every name once).
pub fn manifest_check(data: &[u8]) {
    let mut c = Choices(data);
    let types = [
        OptionType::String,
        OptionType::Int,
        OptionType::Bool,
        OptionType::Flag,
    ];
    let m = Manifest {
        dynamic: c.flag(),
        options: (0..c.byte() % 4)
            .map(|_| OptionDecl {
                name: c.name(),
                type_: types[usize::from(c.byte() % 4)],
                default: c.value(),
                description: c.name(),
                multi: c.flag(),
                dynamic: c.flag(),
                deprecated: c.flag(),
            })
            .collect(),
        methods: (0..c.byte() % 4)
            .map(|_| MethodDecl {
                name: c.name(),
                usage: c.name(),
                description: c.name(),
                long_description: c.maybe_name(),
                deprecated: c.flag(),
            })
            .collect(),
        rpc: (0..c.byte() % 4)
            .map(|_| RpcRequest {
                method: c.name(),
                reason: c.name(),
            })
            .collect(),
        wants_store: c.flag(),
        hooks: (0..c.byte() % 3)
            .map(|_| HookDecl {
                name: c.name(),
                before: c.names(),
                after: c.names(),
                reason: c.name(),
            })
            .collect(),
        subscriptions: (0..c.byte() % 3)
            .map(|_| TopicRequest {
                topic: c.name(),
                reason: c.name(),
            })
            .collect(),
        notifications: (0..c.byte() % 3)
            .map(|_| TopicRequest {
                topic: c.name(),
                reason: c.name(),
            })
            .collect(),
        featurebits: Featurebits {
            init: c.maybe_name(),
            node: c.maybe_name(),
            channel: c.maybe_name(),
            invoice: c.maybe_name(),
            reason: c.name(),
        },
        dir: c.maybe_name(),
        custommessages: (0..c.byte() % 3)
            .map(|_| MessageRequest {
                message_type: u16::from_le_bytes([c.byte(), c.byte()]),
                reason: c.name(),
            })
            .collect(),
    };
    if manifest::validate(&m, "fuzz").is_ok()
        && let Err(e) = manifest::routes(&m, "fuzz")
    {
        panic!("validated but not routable: {e:#}");
    }
}

/// A guest's answer to a hook, checked against a grant as the host checks
/// it. The differential: what is forwarded is our serialization of the
/// checked value, so lightningd (which takes the first of duplicate keys)
/// must read from those bytes exactly the value that was checked, and that
/// value must pass the check again.
pub fn hook_answer(data: &[u8]) {
    let mut c = Choices(data);
    let hook: &Hook = &HOOKS[usize::from(c.byte()) % HOOKS.len()];
    let grant_text = match c.byte() % 3 {
        0 => format!("[[grants.hooks]]\nname = \"{}\"\n", hook.name),
        1 => format!(
            "[[grants.hooks]]\nname = \"{}\"\nresults = [\"disconnect\", \"fail\", \"reject\", \"resolve\", \"abort\", \"replace\", \"return\"]\n",
            hook.name
        ),
        _ => format!(
            "[[grants.hooks]]\nname = \"{}\"\nfields = [\"close_to\", \"mindepth\", \"psbt\", \"payment_key\", \"payload\"]\n",
            hook.name
        ),
    };
    let Ok(policy) = Policy::parse(&grant_text, "fuzzed grant") else {
        return;
    };
    let Some(grant) = policy.grants.hook(hook.name) else {
        return;
    };
    let text = String::from_utf8_lossy(c.0);
    let payload = serde_json::json!({ hook.name: {"psbt": "cHNidP8B", "method": "pay"},
                                      "rpc_command": {"method": "pay"} });
    let Ok(checked) = json::strict(&text) else {
        return;
    };
    let Value::Object(answer) = &checked.0 else {
        return;
    };
    if hook.check(grant, &payload, answer).is_err() {
        return;
    }
    let forwarded = checked.to_raw();
    let read = as_lightningd_reads(forwarded.get());
    assert_eq!(
        read, checked.0,
        "lightningd would read {forwarded} otherwise"
    );
    let Value::Object(again) = &read else {
        panic!("forwarded a non-object: {forwarded}");
    };
    assert!(hook.check(grant, &payload, again).is_ok());
}

/// `text` as lightningd reads it. `json_get_member` takes the first of
/// duplicate keys and serde_json the last; text that [`json::strict`]
/// accepts has no duplicate key, so there both read the same value.
fn as_lightningd_reads(text: &str) -> Value {
    let strict =
        json::strict(text).expect("our serialization has no duplicate key and no excess depth");
    let value: Value = serde_json::from_str(text).expect("our serialization parses");
    assert_eq!(value, strict.0);
    value
}
