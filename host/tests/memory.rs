//! Memory a guest makes the host hold is counted per instance, whatever
//! holds it: every linear memory and table together under `memory_mib`,
//! their number bounded, and the host's own copy of what the guest hands it
//! stopped at the bound before it is made. The guests here are components
//! written in WAT, each implementing the plugin world around one attack; the
//! host runs them as lightningd would, and its peak RSS is read from the
//! kernel (`wait4`'s `ru_maxrss`) once it has exited.
//!
//! Why the RSS bound: the host's own footprint (wasmtime, compiling these
//! small components) is 16 MiB, and an instance may hold `memory_mib` (64
//! MiB by default). 2 × memory_mib + 64 MiB leaves that room twice over, and
//! is far below what each attack reached unbounded (1023 MiB, 784 MiB, 1096
//! MiB; 79, 16 and 16 MiB now).

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const MIB: u64 = 1 << 20;
/// The default `memory_mib`, in bytes.
const MEMORY: u64 = 64 * MIB;
/// See the module's doc.
const PEAK_RSS_BOUND: u64 = 2 * MEMORY + 64 * MIB;

/// The plugin world's types, as the guest exports them.
const TYPES: &str = r#"
  (type $option-type' (enum "string" "int" "bool" "flag"))
  (export $option-type "option-type" (type $option-type'))
  (type $option-value' (variant (case "string" string) (case "int" s64) (case "bool" bool)
    (case "string-list" (list string)) (case "int-list" (list s64))))
  (export $option-value "option-value" (type $option-value'))
  (type $option-decl' (record (field "name" string) (field "type" $option-type)
    (field "default" (option $option-value)) (field "description" string)
    (field "multi" bool) (field "dynamic" bool) (field "deprecated" bool)))
  (export $option-decl "option-decl" (type $option-decl'))
  (type $method-decl' (record (field "name" string) (field "usage" string)
    (field "description" string) (field "long-description" (option string))
    (field "deprecated" bool)))
  (export $method-decl "method-decl" (type $method-decl'))
  (type $hook-decl' (record (field "name" string) (field "before" (list string))
    (field "after" (list string)) (field "reason" string)))
  (export $hook-decl "hook-decl" (type $hook-decl'))
  (type $topic-request' (record (field "topic" string) (field "reason" string)))
  (export $topic-request "topic-request" (type $topic-request'))
  (type $message-request' (record (field "message-type" u16) (field "reason" string)))
  (export $message-request "message-request" (type $message-request'))
  (type $featurebits' (record (field "init" (option string)) (field "node" (option string))
    (field "channel" (option string)) (field "invoice" (option string)) (field "reason" string)))
  (export $featurebits "featurebits" (type $featurebits'))
  (type $rpc-request' (record (field "method" string) (field "reason" string)))
  (export $rpc-request "rpc-request" (type $rpc-request'))
  (type $manifest' (record (field "dynamic" bool) (field "options" (list $option-decl))
    (field "methods" (list $method-decl)) (field "rpc" (list $rpc-request))
    (field "wants-store" bool) (field "dir" (option string)) (field "hooks" (list $hook-decl))
    (field "subscriptions" (list $topic-request)) (field "notifications" (list $topic-request))
    (field "featurebits" $featurebits) (field "custommessages" (list $message-request))))
  (export $manifest "manifest-record" (type $manifest'))
  (type $rpc-error' (record (field "code" s64) (field "message" string) (field "data" (option string))))
  (export $rpc-error "rpc-error" (type $rpc-error'))
"#;

/// The core functions of the main module besides `manifest`: `init`
/// answers ok (the zero byte at 0), the rest trap (no test calls them).
const CORE_EXPORTS: &str = r#"
    (func (export "init") (result i32) (i32.const 0))
    (func (export "handle") (result i32) unreachable)
    (func (export "hook") (param i32 i32 i32 i32) (result i32) unreachable)
    (func (export "notify") (param i32 i32 i32 i32) unreachable)
    (func (export "set-option") (param i32 i32 i32 i64 i32) (result i32) unreachable)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 4096))
"#;

/// A component of the plugin world: the core module `main` (its memory,
/// `manifest` and [`CORE_EXPORTS`]) and `extra`, the attack's own items.
fn plugin_component(main: &str, extra: &str) -> Vec<u8> {
    let text = format!(
        r#"(component
  (core module $main {main} {CORE_EXPORTS})
  (core instance $m (instantiate $main))
  (alias core export $m "memory" (core memory $mem))
  (alias core export $m "realloc" (core func $realloc))
  {extra}
  {TYPES}
  (func $manifest-f (result $manifest)
    (canon lift (core func $m "manifest") (memory $mem)))
  (export "manifest" (func $manifest-f))
  (func $init-f (result (result (error string)))
    (canon lift (core func $m "init") (memory $mem)))
  (export "init" (func $init-f))
  (func $handle-f (result (result string (error $rpc-error)))
    (canon lift (core func $m "handle") (memory $mem)))
  (export "handle" (func $handle-f))
  (func $hook-f (param "name" string) (param "payload" string) (result string)
    (canon lift (core func $m "hook") (memory $mem) (realloc $realloc)))
  (export "hook" (func $hook-f))
  (func $notify-f (param "topic" string) (param "payload" string)
    (canon lift (core func $m "notify") (memory $mem) (realloc $realloc)))
  (export "notify" (func $notify-f))
  (func $set-option-f (param "name" string) (param "value" $option-value)
    (result (result (error string)))
    (canon lift (core func $m "set-option") (memory $mem) (realloc $realloc)))
  (export "set-option" (func $set-option-f))
)"#
    );
    wat::parse_str(&text).unwrap_or_else(|e| panic!("the test's component: {e}"))
}

/// A main module of one page whose manifest is empty (all zeros at 1024).
const SMALL_MAIN: &str = r#"(memory (export "memory") 1)
    (func (export "manifest") (result i32) (i32.const 1024))"#;

/// How one run of the host went.
struct Run {
    /// Its answer to `getmanifest`.
    answer: Value,
    /// Its exit code.
    code: i32,
    /// Its peak resident memory, in bytes.
    peak_rss: u64,
}

/// Start the host on `wasm` with `policy` as lightningd would, ask for the
/// manifest, close its input, and reap it with its resource usage.
// The child is reaped, by `wait4` rather than `Child::wait`, for its rusage.
#[allow(clippy::zombie_processes)]
fn getmanifest(wasm: &[u8], policy: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let guest = dir.path().join("source.wasm");
    std::fs::write(&guest, wasm).unwrap();
    let file = support::plugin_file(dir.path(), "attack", &guest, policy);
    let mut child = Command::new(support::as_lightningd_runs(&file))
        .current_dir(dir.path())
        .env("CLN_WASM_HOST_CACHE", dir.path().join("cache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "getmanifest", "params": {}});
    writeln!(stdin, "{request}\n").unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let answer = loop {
        let line = lines.next().expect("the host answers getmanifest").unwrap();
        if line.is_empty() {
            continue;
        }
        let msg: Value = serde_json::from_str(&line).unwrap();
        if msg["id"] == json!(1) {
            break msg;
        }
    };
    drop(stdin);
    for _ in lines {}
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child` is ours and not yet reaped; the pointers are valid.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "the host did not exit: {status}");
    eprintln!("the host's peak RSS: {} KiB", usage.ru_maxrss);
    Run {
        answer,
        code: libc::WEXITSTATUS(status),
        // Linux counts ru_maxrss in KiB.
        peak_rss: u64::try_from(usage.ru_maxrss).unwrap() * 1024,
    }
}

/// The error message of a refused `getmanifest`.
fn refusal(run: &Run) -> &str {
    run.answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not refused: {}", run.answer))
}

/// `count` instances of a core module holding a memory of `pages` pages,
/// each of its OS pages touched at start, as the attack of issue #18 does.
fn memories(count: usize, pages: u32) -> String {
    let bytes = pages * 65536;
    let module = if pages == 0 {
        "(core module $big (memory 0))".to_string()
    } else {
        format!(
            r#"(core module $big (memory {pages})
    (func $touch (local $a i32)
      (loop $each
        (i32.store8 (local.get $a) (i32.const 1))
        (local.set $a (i32.add (local.get $a) (i32.const 4096)))
        (br_if $each (i32.lt_u (local.get $a) (i32.const {bytes})))))
    (start $touch))"#
        )
    };
    module + &"\n  (core instance (instantiate $big))".repeat(count)
}

/// `instances` instances of a core module holding `per_module` funcref
/// tables of `elements` each, every element set at start.
fn tables(instances: usize, per_module: usize, elements: u32) -> String {
    let tables = format!("(table {elements} funcref) ").repeat(per_module);
    let fills: String = (0..per_module)
        .map(|t| format!("(table.fill {t} (i32.const 0) (ref.func $f) (i32.const {elements})) "))
        .collect();
    let module = format!(
        "(core module $tables {tables} (elem declare func $f) (func $f) \
         (func $fill {fills}) (start $fill))"
    );
    module + &"\n  (core instance (instantiate $tables))".repeat(instances)
}

#[test]
fn a_component_built_here_serves_its_manifest() {
    // The harness itself: a plain WAT guest starts, with memories and tables
    // well within the limits. (Otherwise the refusals below prove nothing.)
    let wasm = plugin_component(SMALL_MAIN, &(memories(1, 16) + &tables(2, 2, 1000)));
    let run = getmanifest(&wasm, "");
    assert_eq!(
        run.answer["result"]["rpcmethods"][0]["name"],
        json!("attack-reload"),
        "{}",
        run.answer
    );
    assert_eq!(run.code, 0);
}

#[test]
fn sixteen_memories_of_63_mib_are_refused_at_instantiation() {
    let wasm = plugin_component(SMALL_MAIN, &memories(16, 1008));
    let run = getmanifest(&wasm, "");
    let message = refusal(&run);
    assert!(
        message.starts_with(
            "cannot start plugin: plugin could not be instantiated: \
             its memories and tables exceed [limits] memory_mib (64 MiB)"
        ),
        "{message}"
    );
    assert_eq!(run.code, 1);
    assert!(
        run.peak_rss < PEAK_RSS_BOUND,
        "peak RSS {} MiB",
        run.peak_rss / MIB
    );
}

#[test]
fn memories_are_counted_whatever_their_size() {
    // Empty memories hold no bytes, but each reserves gigabytes of address.
    let wasm = plugin_component(SMALL_MAIN, &memories(4, 0));
    let message = getmanifest(&wasm, "").answer.to_string();
    assert!(
        message.contains("resource limit exceeded: memory count too high at 5"),
        "{message}"
    );
}

#[test]
fn ninety_six_tables_of_a_million_funcrefs_are_refused_at_instantiation() {
    let wasm = plugin_component(SMALL_MAIN, &tables(12, 8, 1 << 20));
    let run = getmanifest(&wasm, "");
    let message = refusal(&run);
    assert!(
        message.starts_with(
            "cannot start plugin: plugin could not be instantiated: \
             its memories and tables exceed [limits] memory_mib (64 MiB)"
        ),
        "{message}"
    );
    assert_eq!(run.code, 1);
    assert!(
        run.peak_rss < PEAK_RSS_BOUND,
        "peak RSS {} MiB",
        run.peak_rss / MIB
    );
}

#[test]
fn tables_are_counted_whatever_their_size() {
    let wasm = plugin_component(SMALL_MAIN, &tables(17, 1, 0));
    let message = getmanifest(&wasm, "").answer.to_string();
    assert!(
        message.contains("resource limit exceeded: table count too high at 17"),
        "{message}"
    );
}

/// WAT data-string escapes of `words`, little-endian.
fn le(words: &[u32]) -> String {
    words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("\\{b:02x}"))
        .collect()
}

/// A main module whose manifest declares 15 methods `a`…`o`, every
/// description the same `len` bytes at 64 KiB (`x` ten times, then zeros).
fn aliasing_main(len: u32) -> String {
    const METHODS: u32 = 2048;
    const NAMES: u32 = 4000;
    const TEXT: u32 = 65536;
    // The manifest record: `methods` (at offset 12) is the only field set.
    let manifest = le(&[0, 0, 0, METHODS, 15]);
    // A method-decl: name, usage, description, long-description, deprecated.
    let methods: String = (0..15)
        .map(|i| le(&[NAMES + i, 1, 0, 0, TEXT, len, 0, 0, 0, 0]))
        .collect();
    let pages = (TEXT + len).div_ceil(65536) + 1;
    format!(
        r#"(memory (export "memory") {pages})
    (func (export "manifest") (result i32) (i32.const 1024))
    (data (i32.const 1024) "{manifest}")
    (data (i32.const {METHODS}) "{methods}")
    (data (i32.const {NAMES}) "abcdefghijklmno")
    (data (i32.const {TEXT}) "xxxxxxxxxx")"#
    )
}

#[test]
fn a_manifest_aliasing_one_string_is_refused_before_it_is_copied() {
    // The same layout with a short description is a valid manifest.
    let run = getmanifest(&plugin_component(&aliasing_main(10), ""), "");
    let methods = run.answer["result"]["rpcmethods"].as_array().unwrap();
    assert_eq!(methods.len(), 15 + 2, "{}", run.answer);
    assert_eq!(methods[14]["name"], json!("o"));
    assert_eq!(methods[14]["description"], json!("xxxxxxxxxx"));

    // 15 × 8 MiB, unbounded: 120 MiB copied, a 755 MB manifest serialized.
    let run = getmanifest(&plugin_component(&aliasing_main(8 << 20), ""), "");
    assert_eq!(
        refusal(&run),
        "cannot start plugin: plugin handed the host more than 1114112 bytes at once, \
         past [limits] answer_max_bytes and node_params_max_bytes: the copy was stopped there"
    );
    assert_eq!(run.answer["error"]["code"], json!(-32603));
    assert_eq!(run.code, 1);
    assert!(
        run.peak_rss < PEAK_RSS_BOUND,
        "peak RSS {} MiB",
        run.peak_rss / MIB
    );
}
