//! Compiled code is native code the host runs: issue #18's attacks on the
//! compiled-code cache (another guest's code under this guest's key, a
//! damaged entry, a directory others may write or own) and on compilation
//! itself (a compile bomb, an oversized `.wasm`), each contained.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use support::{NODE_ID, Node, Plugin, guest_wasm};

const POLICY: &str = "[[grants.rpc]]\nmethod = \"getinfo\"\n";

/// Start `guest` with the compiled-code cache in `cache` through `init`,
/// check it serves its own method, and return it (logs still to read).
fn start(guest: &str, cache: &Path) -> Plugin {
    let node = Node::start();
    let mut plugin = Plugin::spawn_cached(guest, &guest_wasm(guest), POLICY, cache);
    let (manifest, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    let methods: Vec<&str> = manifest["result"]["rpcmethods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    match guest {
        "myplugin" => {
            assert!(methods.contains(&"myplugin"), "{methods:?}");
            assert!(!methods.contains(&"version"), "{methods:?}");
            let answer = plugin.request(json!(1), "myplugin", json!([]));
            assert_eq!(
                answer["result"],
                json!({"node_id": NODE_ID, "option": {"foo_opt": "bar"}, "cli_params": []})
            );
        }
        _ => {
            assert!(methods.contains(&"version"), "{methods:?}");
            let answer = plugin.request(json!(1), "version", json!([]));
            assert_eq!(answer["result"]["version"], json!(1), "{answer}");
        }
    }
    plugin
}

/// The cache's entries (not its key), sorted.
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    found.sort();
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn another_guests_code_under_this_guests_key_is_not_run() {
    let cache = tempfile::tempdir().unwrap();
    start("misbehave", cache.path()).wait_log("debug: compiled and cached");
    let theirs = entries(cache.path()).pop().unwrap();
    start("myplugin", cache.path()).wait_log("debug: compiled and cached");
    let ours = entries(cache.path())
        .into_iter()
        .find(|p| p != &theirs)
        .unwrap();
    // The attack: misbehave's valid compiled code where myplugin's belongs.
    std::fs::copy(&theirs, &ours).unwrap();
    let line = start("myplugin", cache.path()).wait_log("warn: refusing compiled-code cache entry");
    assert_eq!(
        line,
        format!(
            "warn: refusing compiled-code cache entry {}: its MAC does not match: it is not this \
             host's compilation of this .wasm (damaged or foreign); compiling afresh and replacing it",
            ours.display()
        )
    );
    // Replaced: the next start loads myplugin's own code.
    start("myplugin", cache.path()).wait_log("debug: loaded from the compiled-code cache");
    assert_ne!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
}

#[test]
fn a_damaged_entry_is_detected_before_it_runs_and_replaced() {
    let cache = tempfile::tempdir().unwrap();
    start("myplugin", cache.path()).wait_log("debug: compiled and cached");
    let entry = entries(cache.path()).pop().unwrap();
    let good = std::fs::read(&entry).unwrap();
    // The attack: code overwritten with int3 in the middle of the entry.
    let mut damaged = good.clone();
    let middle = damaged.len() / 2;
    damaged[middle..middle + 4096].fill(0xcc);
    std::fs::write(&entry, &damaged).unwrap();
    let line = start("myplugin", cache.path()).wait_log("warn: refusing compiled-code cache entry");
    assert!(line.contains(": its MAC does not match: "), "{line}");
    let replaced = std::fs::read(&entry).unwrap();
    assert_ne!(replaced, damaged);
    start("myplugin", cache.path()).wait_log("debug: loaded from the compiled-code cache");
}

#[test]
fn a_link_in_place_of_an_entry_is_not_followed() {
    let cache = tempfile::tempdir().unwrap();
    start("myplugin", cache.path()).wait_log("debug: compiled and cached");
    let entry = entries(cache.path()).pop().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("code");
    std::fs::rename(&entry, &target).unwrap();
    std::os::unix::fs::symlink(&target, &entry).unwrap();
    let line = start("myplugin", cache.path()).wait_log("warn: refusing compiled-code cache entry");
    assert!(line.contains(": opening it: "), "{line}");
    // The link itself was replaced by a file.
    assert!(std::fs::symlink_metadata(&entry).unwrap().is_file());
}

/// Starting `myplugin` with its cache in `dir` does not use the cache: the
/// warning is `why`, the guest runs compiled afresh, and nothing is written.
fn refused_cache_dir(dir: &Path, why: &str) {
    let before: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let line = start("myplugin", dir).wait_log("warn: not using the compiled-code cache");
    assert_eq!(
        line,
        format!(
            "warn: not using the compiled-code cache {}: {why}; compiling afresh, nothing cached",
            dir.display()
        )
    );
    let after: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(after, before);
}

#[test]
fn a_cache_dir_others_may_write_is_refused_and_the_guest_runs_compiled_afresh() {
    let cache = tempfile::tempdir().unwrap();
    // The attack: a world-writable directory holding planted code under
    // myplugin's key (anyone reading the .wasm can compute it).
    start("myplugin", cache.path()).wait_log("debug: compiled and cached");
    start("misbehave", cache.path()).wait_log("debug: compiled and cached");
    let found = entries(cache.path());
    std::fs::copy(&found[0], &found[1]).unwrap();
    for mode in [0o777, 0o770, 0o720] {
        std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        refused_cache_dir(
            cache.path(),
            &format!("others may write it (mode {mode:04o})"),
        );
    }
}

#[test]
fn a_cache_key_others_may_read_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    start("myplugin", cache.path()).wait_log("debug: compiled and cached");
    let key = cache.path().join("mac-key");
    assert_eq!(mode(&key), 0o600);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused_cache_dir(
        cache.path(),
        &format!(
            "its key {}: others may read or write it (mode 0644)",
            key.display()
        ),
    );
}

#[test]
fn a_cache_dir_that_is_a_link_is_refused() {
    let real = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let link = parent.path().join("cache");
    std::os::unix::fs::symlink(real.path(), &link).unwrap();
    refused_cache_dir(&link, "it is a symbolic link");
}

#[test]
fn a_cache_dir_owned_by_another_user_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can give a directory to another user");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(cache.path(), Some(65534), Some(65534)).unwrap();
    refused_cache_dir(
        cache.path(),
        "it is owned by uid 65534, not this user (uid 0)",
    );
}

#[test]
fn the_dir_its_key_and_entries_are_private_under_umask_002() {
    // SAFETY: umask only sets the process's file mode mask; the plugins
    // started below inherit it.
    unsafe { libc::umask(0o002) };
    let parent = tempfile::tempdir().unwrap();
    let cache = parent.path().join("made/by/the/host");
    start("myplugin", &cache).wait_log("debug: compiled and cached");
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&cache.join("mac-key")), 0o600);
    let found = entries(&cache);
    assert_eq!(found.len(), 1);
    assert_eq!(mode(&found[0]), 0o600);
    // And what is in it: the key and the entry, no temporary file left.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
}

/// A component whose one function keeps `locals` values live across as many
/// branches: Cranelift's register allocation grows with their product (here
/// 4.4 s at 4,000 locals; at 8,000, past 2 GiB of memory in 7 s).
fn compile_bomb(locals: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 1..=locals {
        body.push_str(&format!(
            "local.get 0 i64.const {i} i64.add local.set {i}\n"
        ));
    }
    for i in 1..=locals {
        body.push_str(&format!(
            "local.get {i} local.get 0 i64.gt_s \
             (if (then local.get 0 local.get {i} i64.add local.set 0))\n"
        ));
    }
    let text = format!(
        "(component (core module (func (export \"f\") (param i64) (result i64) \
         (local {}) {body} local.get 0)) (core instance (instantiate 0)))",
        vec!["i64"; locals].join(" ")
    );
    wat::parse_str(text).unwrap()
}

const BOMB_LOCALS: usize = 10_000;
const TIMEOUT: &str = "compiling it took longer than [limits] compile_timeout_ms = 1000";

/// The plugin `bomb` in `dir` (its `.wasm` holding `wasm`, its policy
/// `policy`) fails to start: the reason lightningd gets.
fn startup_error(wasm: &[u8], policy: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let exe = support::write_plugin_file(dir.path(), "bomb", policy);
    std::fs::write(dir.path().join("bomb.wasm"), wasm).unwrap();
    let cache = tempfile::tempdir().unwrap();
    Plugin::spawn_exe("bomb", dir, &exe, cache.path()).startup_error()
}

#[test]
fn a_compile_bomb_fails_to_start_with_the_reason() {
    let message = startup_error(
        &compile_bomb(BOMB_LOCALS),
        "[limits]\ncompile_timeout_ms = 1000\n",
    );
    assert!(
        message.starts_with("cannot start plugin: cannot compile "),
        "{message}"
    );
    assert!(
        message.ends_with(&format!("bomb.wasm: {TIMEOUT}")),
        "{message}"
    );
}

#[test]
fn a_compile_bomb_fails_install_and_inspect_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("bomb.wasm");
    std::fs::write(&wasm, compile_bomb(BOMB_LOCALS)).unwrap();
    let policy = support::text_file(
        dir.path(),
        "reviewed.toml",
        "[limits]\ncompile_timeout_ms = 1000\n",
    );
    let into = dir.path().join("plugins");
    std::fs::create_dir(&into).unwrap();
    for args in [
        vec![
            &"inspect" as &dyn AsRef<std::ffi::OsStr>,
            &wasm,
            &"--policy",
            &policy,
        ],
        vec![&"install", &wasm, &"--dir", &into, &"--policy", &policy],
    ] {
        let out = support::host_tool_output(&args);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim_end(),
            format!("error: cannot compile {}: {TIMEOUT}", wasm.display())
        );
    }
    // install wrote nothing.
    assert_eq!(std::fs::read_dir(&into).unwrap().count(), 0);
}

#[test]
fn a_swap_to_a_compile_bomb_is_refused_and_the_old_guest_keeps_serving() {
    // Compiled once with the default limits, so the start below loads it.
    support::host_tool_text(&[&"inspect", &guest_wasm("misbehave")]);
    let node = Node::start();
    let policy = format!("[limits]\ncompile_timeout_ms = 1000\n\n{POLICY}");
    let mut plugin = Plugin::spawn("misbehave", &guest_wasm("misbehave"), &policy);
    plugin.handshake(json!({}), &node);
    let wasm = plugin.dir.path().join("misbehave.wasm");
    std::fs::write(&wasm, compile_bomb(BOMB_LOCALS)).unwrap();
    let answer = plugin.request(json!("r"), "misbehave-reload", json!([]));
    assert_eq!(
        answer["error"]["message"],
        json!(format!("cannot compile {}: {TIMEOUT}", wasm.display())),
        "{answer}"
    );
    let line = plugin.wait_log("warn: not swapping in ");
    assert!(
        line.ends_with(&format!("{TIMEOUT}; the old guest keeps serving")),
        "{line}"
    );
    let answer: Value = plugin.request(json!(2), "version", json!([]));
    assert_eq!(answer["result"]["version"], json!(1), "{answer}");
}

#[test]
fn a_compile_over_its_memory_fails_to_start_with_the_reason() {
    let wasm = std::fs::read(guest_wasm("myplugin")).unwrap();
    let message = startup_error(&wasm, "[limits]\ncompile_memory_mib = 16\n");
    assert!(
        message.ends_with(
            "bomb.wasm: compiling it needed more memory than [limits] compile_memory_mib = 16"
        ),
        "{message}"
    );
}

#[test]
fn a_wasm_over_wasm_max_mib_is_refused_unread() {
    let message = startup_error(&vec![0u8; 3 << 20], "[limits]\nwasm_max_mib = 2\n");
    assert!(message.starts_with("cannot start plugin: "), "{message}");
    assert!(
        message.ends_with("bomb.wasm is 3.0 MiB, over [limits] wasm_max_mib = 2"),
        "{message}"
    );
}
