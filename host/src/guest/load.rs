//! Loading a guest: its component compiled (or taken from the cache) into
//! the sandbox, its manifest asked for and checked; and starting its session
//! when lightningd sends `init`.

use super::files::Files;
use super::manifest::Route;
use super::{granted, manifest, options};
use crate::bindings::Manifest;
use crate::caps::dir as sandbox_dir;
use crate::caps::{CallContext, Declared, Session, Settings};
use crate::node::NodeClient;
use crate::policy::Policy;
use crate::protocol::Outbox;
use crate::sandbox;
use anyhow::Context;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// A guest, loaded and asked for its manifest.
pub struct LoadedGuest {
    pub sandbox: Arc<sandbox::Guest>,
    /// The manifest as lightningd sees it: what the policy grants of it.
    pub manifest: Manifest,
    /// The manifest as the guest declared it.
    pub declared: Manifest,
    /// What of it the policy does not grant (left out of `manifest`), a line
    /// each for the operator's log.
    pub left_out: Vec<String>,
    /// What each request lightningd may send is, by its method: one meaning
    /// per name.
    pub routes: HashMap<String, Route>,
}

impl LoadedGuest {
    /// `sandbox`, whose guest declared `declared` (validated).
    pub fn new(sandbox: Arc<sandbox::Guest>, declared: Manifest) -> anyhow::Result<LoadedGuest> {
        let session = sandbox.session();
        let (manifest, left_out) = granted::granted(&declared, &session.policy.grants);
        let routes = manifest::routes(&manifest, &session.name)?;
        Ok(LoadedGuest {
            sandbox,
            manifest,
            declared,
            left_out,
            routes,
        })
    }
}

/// Load the component under `policy`, and get a valid manifest from it.
/// `outbox` is where the guest's custom notifications go (none: the log).
pub fn load(
    files: &Files,
    policy: Policy,
    outbox: Option<Arc<Outbox>>,
) -> anyhow::Result<LoadedGuest> {
    load_with(
        files,
        Arc::new(Session::before_init(&files.name, policy, outbox)),
    )
}

/// Load `files.wasm` into an existing session (a hot swap keeps the options,
/// the node and the policy).
pub fn load_with(files: &Files, session: Arc<Session>) -> anyhow::Result<LoadedGuest> {
    let started = Instant::now();
    let guest = sandbox::Guest::load(&files.wasm, session)?;
    let manifest = fetch_manifest(&guest, &files.wasm)?;
    log::debug!(
        "loaded {} in {:.1} ms",
        files.wasm.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    LoadedGuest::new(Arc::new(guest), manifest)
}

/// Ask the guest in `wasm` for its manifest, and refuse one lightningd would
/// choke on.
pub fn fetch_manifest(guest: &sandbox::Guest, wasm: &Path) -> anyhow::Result<Manifest> {
    let manifest = guest.manifest().map_err(|f| anyhow::anyhow!("{f}"))?;
    manifest::validate(&manifest, &guest.session().name)
        .with_context(|| format!("{}'s manifest", wasm.display()))?;
    Ok(manifest)
}

/// Members of init's configuration a guest gets: not the paths of the
/// node's files (it cannot open them, and they tell it the host's layout).
const HIDDEN_CONFIGURATION: &[&str] = &["lightning-dir", "rpc-file"];

impl LoadedGuest {
    /// Apply `init`: type the options, keep the configuration, connect the
    /// node, then run the guest's own `init`. `Err` is the reason lightningd
    /// shows when it disables the plugin.
    pub fn start_session(
        &self,
        options: &Map<String, Value>,
        configuration: &Map<String, Value>,
        rpc_path: Option<PathBuf>,
        init_id: &str,
    ) -> Result<(), String> {
        let options = options::typed_options(&self.manifest.options, options)?;
        let old = self.sandbox.session();
        let node = rpc_path.map(|path| NodeClient::new(path, &old.name));
        let mut configuration = configuration.clone();
        configuration.retain(|k, _| !HIDDEN_CONFIGURATION.contains(&k.as_str()));
        let mut settings = Settings {
            configuration: Value::Object(configuration).to_string(),
            allow_deprecated_apis: old.settings().allow_deprecated_apis,
            ..Settings::default()
        };
        settings.set_options(options);
        let m = &self.declared;
        let dir = private_dir(&old, m.dir.as_deref())?;
        self.sandbox.set_session(Session {
            name: old.name.clone(),
            policy: old.policy.clone(),
            node,
            outbox: old.outbox.clone(),
            declared: Declared {
                rpc: m.rpc.iter().map(|r| r.method.clone()).collect(),
                store: m.wants_store,
                notifications: m.notifications.iter().map(|t| t.topic.clone()).collect(),
            },
            settings: RwLock::new(settings),
            audit: old.audit.clone(),
            meters: old.meters.clone(),
            dir,
        });
        let call = CallContext {
            id: init_id.to_string(),
            method: "init".into(),
            params: RawValue::from_string("{}".into()).expect("{} is JSON"),
            arrived: Instant::now(),
        };
        match self.sandbox.init(call) {
            Ok(answer) => answer,
            Err(failure) => Err(format!("init failed: {failure}")),
        }
    }
}

/// The guest's private directory, if it asks for one and the policy grants
/// it; kept as it was across a second `init` (a hot swap keeps its session).
/// Either side alone gives no directory, and says so in the log (an
/// ungranted ask is a refusal, in the audit too). `Err` when granted but it
/// cannot be made: better stopped than served without its files.
fn private_dir(
    session: &Session,
    asked: Option<&str>,
) -> Result<Option<Arc<sandbox_dir::PrivateDir>>, String> {
    if let Some(dir) = &session.dir {
        return Ok(Some(dir.clone()));
    }
    match (asked, session.policy.grants.dir) {
        (None, None) => Ok(None),
        (Some(_), None) => {
            session.audit.count("denied", "dir", false);
            log::warn!(
                "refused: the guest asks for a private directory, not granted \
                 ([grants] dir = {{ quota_mib = N }}): it has no files at all"
            );
            Ok(None)
        }
        (None, Some(_)) => {
            log::info!("[grants] dir is granted but the guest does not ask for it: no directory");
            Ok(None)
        }
        (Some(_), Some(grant)) => {
            let base = std::env::current_dir()
                .map_err(|e| format!("cannot find the directory the host runs in: {e}"))?;
            let dir = sandbox_dir::PrivateDir::open(&base, &session.name, grant)
                .map_err(|e| format!("{e:#}"))?;
            dir.recount(&session.name, &session.audit);
            log::info!(
                "private directory {} ({} of {} MiB held)",
                dir.path.display(),
                dir.held(),
                grant.quota_mib
            );
            Ok(Some(Arc::new(dir)))
        }
    }
}
