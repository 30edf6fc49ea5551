//! A plugin's identity as lightningd sees it, and `install`, which makes it.
//!
//! lightningd runs a plugin by its canonical path, with no arguments, from its
//! network directory: these tests run the host exactly so. The layout the
//! host once used (a link `NAME` to the host binary) must fail here, as it
//! failed under a real lightningd.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use support::{NODE_ID, Node, Plugin, guest_wasm, host_bin, shared_cache};

const GRANT_GETINFO: &str = "[[grants.rpc]]\nmethod = \"getinfo\"\n";

/// What the host says when it is run as a plugin but is only itself.
const NOT_A_PLUGIN: &str = "this is the cln-wasm-host binary, not a plugin: install a guest with \
    `cln-wasm-host install GUEST.wasm --dir DIR` and start the plugin file DIR/NAME it writes";

fn install(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        std::iter::once(&"install" as &dyn AsRef<std::ffi::OsStr>)
            .chain(args.iter().copied())
            .collect();
    support::host_tool_output(&args)
}

/// `install` failed, saying `why`.
fn refused(out: &Output, why: &str) {
    assert!(!out.status.success(), "accepted: {}", text(&out.stdout));
    assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn seed_answer(cli_params: Value) -> Value {
    json!({"node_id": NODE_ID, "option": {"foo_opt": "bar"}, "cli_params": cli_params})
}

/// Start the installed plugin `file` as lightningd would, through init.
fn start(file: &Path) -> (Plugin, Node, Value) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut plugin = Plugin::spawn_exe(name, dir, file, shared_cache());
    let node = Node::start();
    let (manifest, init) = plugin.handshake(json!({}), &node);
    assert_eq!(init["result"], json!({}), "{init}");
    (plugin, node, manifest)
}

/// The installed myplugin at `file` starts and answers the seed's call.
fn answers_like_the_seed(file: &Path) {
    let (mut plugin, _node, _) = start(file);
    let answer = plugin.request(json!(1), "myplugin", json!([]));
    assert_eq!(answer["result"], seed_answer(json!([])));
}

#[test]
fn a_link_to_the_host_runs_as_the_host_and_disables_itself() {
    // The old layout: `myplugin -> cln-wasm-host`, with myplugin.wasm and
    // myplugin.toml beside it. lightningd resolves the link and runs the host.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("myplugin");
    std::os::unix::fs::symlink(host_bin(), &link).unwrap();
    std::fs::copy(guest_wasm("myplugin"), dir.path().join("myplugin.wasm")).unwrap();
    std::fs::write(dir.path().join("myplugin.toml"), GRANT_GETINFO).unwrap();
    let mut plugin = Plugin::spawn_exe("myplugin", dir, &link, shared_cache());
    let answer = plugin.request(json!(1), "getmanifest", json!({}));
    // `disable` at getmanifest: lightningd logs it and goes on starting (the
    // host binary in a --plugin-dir must not stop the node).
    assert_eq!(answer["result"], json!({ "disable": NOT_A_PLUGIN }));
    assert!(plugin.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn a_plugin_file_keeps_its_name_through_links_and_any_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = support::plugin_file(
        dir.path(),
        "myplugin",
        &guest_wasm("myplugin"),
        GRANT_GETINFO,
    );
    // A link elsewhere, named otherwise: lightningd runs the file it names.
    let elsewhere = tempfile::tempdir().unwrap();
    let link = elsewhere.path().join("other-name");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let (mut plugin, _node, manifest) = start(&link);
    let methods: Vec<&str> = manifest["result"]["rpcmethods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["myplugin", "myplugin-reload", "myplugin-audit"]);
    let answer = plugin.request(json!(1), "myplugin", json!(["a"]));
    assert_eq!(answer["result"], seed_answer(json!(["a"])));
}

#[test]
fn the_guest_is_found_relative_to_the_plugin_file() {
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins");
    let guests = root.path().join("guests");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(&guests).unwrap();
    std::fs::copy(guest_wasm("myplugin"), guests.join("g.wasm")).unwrap();
    let policy = format!("# (the guest is named below)\n{GRANT_GETINFO}");
    let file = support::write_plugin_file(&plugins, "rel", &policy);
    // write_plugin_file names `rel.wasm`; point it at the shared guest.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("wasm = \"rel.wasm\"", "wasm = \"../guests/g.wasm\"");
    std::fs::write(&file, text).unwrap();
    answers_like_the_seed(&file);
}

#[test]
fn install_writes_a_plugin_that_grants_nothing_and_lists_what_the_guest_asks() {
    let dir = tempfile::tempdir().unwrap();
    let out = install(&[&guest_wasm("myplugin"), &"--dir", &dir.path()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = dir.path().canonicalize().unwrap().join("myplugin");
    let wasm = file.with_file_name("myplugin.wasm");

    let stdout = text(&out.stdout);
    let p = file.display();
    let expected = format!(
        "installed plugin myplugin: {p} (guest {})\n\
         The guest asks for these, not granted (uncomment a grant in {p} to allow it):\n  \
         not granted  node method \"getinfo\": to answer the node's id\n\
         Start it:\n  \
         lightning-cli -k plugin subcommand=start plugin={p} foo_opt=...\n\
         or when the node starts: lightningd --plugin={p}\n\
         (or plugin={p} in the node's config file, or --plugin-dir={})\n",
        wasm.display(),
        dir.path().canonicalize().unwrap().display()
    );
    assert_eq!(stdout, expected);

    let written = std::fs::read_to_string(&file).unwrap();
    let host = host_bin().canonicalize().unwrap();
    assert!(
        written.starts_with(&format!("#!{}\n", host.display())),
        "{written}"
    );
    assert!(
        written.contains("\nwasm = \"myplugin.wasm\"\n"),
        "{written}"
    );
    assert!(
        written.ends_with(
            "[grants]\n\
             # The guest asks for node method \"getinfo\": to answer the node's id\n\
             # [[grants.rpc]]\n\
             # method = \"getinfo\"\n"
        ),
        "{written}"
    );
    // lightningd starts every executable in a plugin dir: only the plugin.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o755);
    assert_eq!(mode(&wasm), 0o644);
    assert_eq!(
        std::fs::read(&wasm).unwrap(),
        std::fs::read(guest_wasm("myplugin")).unwrap()
    );

    // It runs, and the guest's node call is refused: nothing is granted.
    let (mut plugin, node, _) = start(&file);
    let answer = plugin.request(json!(1), "myplugin", json!([]));
    assert_eq!(answer["error"]["code"], json!(-32010), "{answer}");
    assert!(node.requests().is_empty());

    // Uncommenting the grant the file suggests is all it takes.
    let granted = written.replace("# [[grants.rpc]]\n# method", "[[grants.rpc]]\nmethod");
    std::fs::write(&file, granted).unwrap();
    answers_like_the_seed(&file);
}

#[test]
fn install_takes_a_name_and_a_reviewed_policy() {
    let dir = tempfile::tempdir().unwrap();
    let reviewed = format!("[limits]\nmax_instances = 2\n\n{GRANT_GETINFO}");
    let policy = support::text_file(dir.path(), "reviewed.toml", &reviewed);
    let plugins = dir.path().join("plugins");
    let out = install(&[
        &guest_wasm("myplugin"),
        &"--name",
        &"seed",
        &"--dir",
        &plugins,
        &"--policy",
        &policy,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("The guest asks for nothing its policy does not grant."),
        "{}",
        text(&out.stdout)
    );
    let (mut plugin, _node, manifest) = start(&plugins.join("seed"));
    assert_eq!(
        manifest["result"]["rpcmethods"][1]["name"],
        json!("seed-reload")
    );
    let answer = plugin.request(json!(1), "myplugin", json!({"x": 1}));
    assert_eq!(answer["result"], seed_answer(json!({"x": 1})));
}

#[test]
fn install_refuses_what_would_not_work() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = guest_wasm("myplugin");
    let first = install(&[&wasm, &"--dir", &dir.path()]);
    assert!(first.status.success(), "{}", text(&first.stderr));

    // An existing plugin file holds the operator's policy.
    let again = install(&[&wasm, &"--dir", &dir.path()]);
    refused(&again, "myplugin exists: --force replaces it");
    let forced = install(&[&wasm, &"--dir", &dir.path(), &"--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));

    // A name lightningd would skip in a plugin dir, or one that escapes it.
    for name in ["../escape", "my plugin", ".hidden", "x.wasm", ""] {
        let out = install(&[&wasm, &"--dir", &dir.path(), &"--name", &name]);
        refused(&out, &format!("plugin name {name:?}"));
    }

    // Not a component: nothing is written.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let out = install(&[&junk, &"--dir", &dir.path()]);
    refused(&out, "is not a valid WebAssembly component");
    assert!(!dir.path().join("junk").exists());
}
