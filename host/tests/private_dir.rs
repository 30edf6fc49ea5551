//! A private directory, when granted (issue #20, item 5): a guest that asks
//! for one and is granted `[grants] dir` gets `wasm-data/<plugin>/` under
//! the directory lightningd runs it in, as its `.`, 0700; it reaches nothing
//! outside (`..`, absolute paths, symlinks); its quota stops its writes; and
//! without the grant it has no files at all.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use support::{Node, Plugin, guest_wasm};

const GRANTED: &str = "[grants]\ndir = { quota_mib = 1 }\n";

/// Where the host keeps plugin `name`'s directory: under lightningd's
/// network directory (`DIR/regtest`, where the plugin was started).
fn data_dir(plugin: &Plugin) -> PathBuf {
    plugin
        .dir
        .path()
        .join("regtest/wasm-data")
        .join(&plugin.name)
}

fn started(policy: &str, node: &Node) -> Plugin {
    let mut plugin = Plugin::spawn("mb", &guest_wasm("misbehave"), policy);
    let (_, init) = plugin.handshake(json!({}), node);
    assert!(init.get("result").is_some(), "{init}");
    plugin
}

fn call(plugin: &mut Plugin, id: u64, method: &str, params: Value) -> Value {
    let answer = plugin.request(json!(id), method, params);
    answer
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{method}: {answer}"))
}

#[test]
fn a_granted_guest_keeps_its_files_across_a_restart() {
    let node = Node::start();
    let mut plugin = started(GRANTED, &node);
    let written = call(
        &mut plugin,
        1,
        "writefile",
        json!({"path": "state.json", "text": "{\"n\": 1}"}),
    );
    assert_eq!(written, json!({"written": 8}));
    let sub = call(
        &mut plugin,
        2,
        "writefile",
        json!({"path": "./a/../b", "text": "x"}),
    );
    assert_eq!(sub["kind"], "NotFound", "{sub}");
    let read = call(&mut plugin, 3, "readfile", json!({"path": "state.json"}));
    assert_eq!(read, json!({"text": "{\"n\": 1}"}));

    // On the host: in wasm-data/mb/, which only the host's user may enter.
    let dir = data_dir(&plugin);
    assert_eq!(
        std::fs::read_to_string(dir.join("state.json")).unwrap(),
        "{\"n\": 1}"
    );
    for d in [dir.parent().unwrap(), &dir] {
        let mode = std::fs::metadata(d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", d.display());
    }

    // A new process for the same plugin, in the same node directory.
    let home = std::mem::replace(&mut plugin.dir, tempfile::tempdir().unwrap());
    drop(plugin);
    let exe = home.path().join("mb");
    let mut again = Plugin::spawn_exe("mb", home, &exe, support::shared_cache());
    let (_, init) = again.handshake(json!({}), &node);
    assert!(init.get("result").is_some(), "{init}");
    let read = call(&mut again, 4, "readfile", json!({"path": "state.json"}));
    assert_eq!(read, json!({"text": "{\"n\": 1}"}));
    let listed = call(&mut again, 5, "listdir", json!({}));
    assert_eq!(listed, json!({"entries": ["state.json"]}));
}

#[test]
fn nothing_outside_the_directory_is_reached() {
    let node = Node::start();
    let mut plugin = started(GRANTED, &node);
    let dir = data_dir(&plugin);
    // Beside the directory, and elsewhere on the host: what an escape seeks.
    let beside = dir.parent().unwrap().join("secret");
    std::fs::write(&beside, "beside").unwrap();
    let outside = plugin.dir.path().join("outside");
    std::fs::write(&outside, "outside").unwrap();

    let mut id = 10;
    let mut refused = |plugin: &mut Plugin, method: &str, params: Value| {
        id += 1;
        let answer = call(plugin, id, method, params.clone());
        assert!(answer.get("error").is_some(), "{method} {params}: {answer}");
        answer
    };
    for path in [
        "../secret",
        "../../outside",
        "a/../../secret",
        "/etc/passwd",
        "/proc/self/environ",
    ] {
        refused(&mut plugin, "readfile", json!({"path": path}));
        refused(&mut plugin, "writefile", json!({"path": path, "text": "x"}));
    }
    refused(&mut plugin, "listdir", json!({"path": ".."}));
    // `/` is the guest's own directory (its only preopen), not the host's.
    let root = call(&mut plugin, 9, "listdir", json!({"path": "/"}));
    assert_eq!(root, json!({"entries": []}));

    // A symlink planted inside pointing out, absolute or relative, is not
    // followed, neither to read nor to write through.
    std::os::unix::fs::symlink(&outside, dir.join("abs")).unwrap();
    std::os::unix::fs::symlink("../secret", dir.join("rel")).unwrap();
    std::os::unix::fs::symlink(dir.parent().unwrap(), dir.join("up")).unwrap();
    for path in ["abs", "rel", "up/secret"] {
        refused(&mut plugin, "readfile", json!({"path": path}));
        refused(&mut plugin, "writefile", json!({"path": path, "text": "x"}));
    }
    // The guest's own symlinks out lead nowhere either.
    for (target, link) in [("/etc/passwd", "mine"), ("../secret", "mine2")] {
        let _ = call(
            &mut plugin,
            40,
            "symlink",
            json!({"target": target, "link": link}),
        );
        refused(&mut plugin, "readfile", json!({"path": link}));
    }
    assert_eq!(std::fs::read_to_string(&beside).unwrap(), "beside");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "outside");
    // A symlink inside to a file inside still works: only leaving is refused.
    call(
        &mut plugin,
        50,
        "writefile",
        json!({"path": "f", "text": "in"}),
    );
    std::os::unix::fs::symlink("f", dir.join("g")).unwrap();
    let read = call(&mut plugin, 51, "readfile", json!({"path": "g"}));
    assert_eq!(read, json!({"text": "in"}));
}

#[test]
fn over_its_quota_a_guest_may_read_not_write_and_the_host_keeps_serving() {
    let node = Node::start();
    let mut plugin = started(GRANTED, &node);
    call(
        &mut plugin,
        1,
        "writefile",
        json!({"path": "keep", "text": "kept"}),
    );
    // 1.5 MiB in one call: over the 1 MiB quota once it ends.
    let big = call(
        &mut plugin,
        2,
        "writefile",
        json!({"path": "big", "bytes": 3 << 19}),
    );
    assert_eq!(big, json!({"written": 3 << 19}));
    let line = plugin.wait_log("warn: plugin mb's directory");
    assert!(
        line.contains("over [grants] dir quota_mib = 1: it may read there but not write"),
        "{line}"
    );
    // Then every write is refused, reads still work, other calls are served.
    let refused = call(
        &mut plugin,
        3,
        "writefile",
        json!({"path": "more", "text": "x"}),
    );
    assert!(refused.get("error").is_some(), "{refused}");
    let refused = call(
        &mut plugin,
        4,
        "writefile",
        json!({"path": "keep", "text": "x"}),
    );
    assert!(refused.get("error").is_some(), "{refused}");
    let read = call(&mut plugin, 5, "readfile", json!({"path": "keep"}));
    assert_eq!(read, json!({"text": "kept"}));
    let echo = call(&mut plugin, 6, "echo", json!([1]));
    assert_eq!(echo["params"], json!([1]));
    let audit = call(&mut plugin, 7, "mb-audit", json!({}));
    assert_eq!(audit["over_limits"]["dir_quota"], 1, "{audit}");
    assert!(!data_dir(&plugin).join("more").exists());

    // The operator frees space: writable again.
    std::fs::remove_file(data_dir(&plugin).join("big")).unwrap();
    call(&mut plugin, 8, "echo", json!([]));
    let written = call(
        &mut plugin,
        9,
        "writefile",
        json!({"path": "more", "text": "x"}),
    );
    assert_eq!(written, json!({"written": 1}));
}

#[test]
fn without_the_grant_there_are_no_files_at_all() {
    let node = Node::start();
    // Asked for, not granted: refused, logged and audited.
    let mut plugin = started("", &node);
    let line = plugin.wait_log("warn: refused: the guest asks for a private directory");
    assert!(line.contains("[grants] dir"), "{line}");
    for (method, params) in [
        ("writefile", json!({"path": "x", "text": "x"})),
        ("readfile", json!({"path": "x"})),
        ("listdir", json!({})),
        ("readfile", json!({"path": "/etc/passwd"})),
    ] {
        let answer = call(&mut plugin, 1, method, params);
        assert!(answer.get("error").is_some(), "{method}: {answer}");
    }
    let audit = call(&mut plugin, 2, "mb-audit", json!({}));
    assert_eq!(audit["denied"]["dir"], 1, "{audit}");
    assert!(!plugin.dir.path().join("regtest/wasm-data").exists());
}

#[test]
fn install_writes_the_ask_and_inspect_shows_it() {
    let wasm = guest_wasm("misbehave");
    let review = support::host_tool(&[&"inspect", &wasm, &"--json"]);
    assert_eq!(
        review["asks"]["dir"],
        json!({"asked": true, "reason": "to test the private directory", "granted": null})
    );
    let text = support::host_tool_text(&[&"inspect", &wasm]);
    assert!(
        text.contains("  not granted  a private directory: to test the private directory\n"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = support::host_tool_text(&[&"install", &wasm, &"--dir", &dir.path()]);
    assert!(out.contains("a private directory"), "{out}");
    let file = std::fs::read_to_string(dir.path().join("misbehave")).unwrap();
    assert!(
        file.contains(
            "# The guest asks for a private directory: to test the private directory\n\
             # dir = { quota_mib = 16 }"
        ),
        "{file}"
    );
}
