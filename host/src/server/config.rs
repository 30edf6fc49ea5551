//! What lightningd configures: `init` (options, the node's socket, the
//! guest's own init) and `setconfig` on a dynamic option.

use crate::bindings::OptionValue;
use crate::guest::{LoadedGuest, options};
use crate::protocol::messages::{InitParams, SetConfigParams};
use crate::protocol::{INVALID_PARAMS, Message, RpcError};
use serde_json::Value;
use std::path::PathBuf;

/// `init`: type the options, find the node's socket, run the guest's init.
/// `Err` is the reason lightningd shows when it disables the plugin.
pub fn init(guest: &LoadedGuest, msg: &Message, id: &Value) -> Result<(), String> {
    let params = msg.params.as_ref().ok_or("init without params")?;
    let params: InitParams =
        serde_json::from_str(params.get()).map_err(|e| format!("malformed init params: {e}"))?;
    let path = |key: &str| {
        params
            .configuration
            .get(key)
            .and_then(Value::as_str)
            .map(PathBuf::from)
    };
    let (Some(dir), Some(file)) = (path("lightning-dir"), path("rpc-file")) else {
        return Err("init's configuration lacks lightning-dir or rpc-file".into());
    };
    guest.start_session(
        &params.options,
        &params.configuration,
        Some(dir.join(file)),
        &id_text(id),
    )
}

/// An incoming id as the prefix of the ids of node calls it causes.
pub fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `setconfig` on one of the guest's options: checked against the manifest,
/// typed, then the guest's `set-option` decides.
pub fn setconfig(guest: &LoadedGuest, msg: &Message) -> Result<(), RpcError> {
    let invalid = |m: String| RpcError::new(INVALID_PARAMS, m);
    let params = msg
        .params
        .as_ref()
        .ok_or_else(|| invalid("setconfig without params".into()))?;
    let SetConfigParams { config, val } = serde_json::from_str(params.get())
        .map_err(|e| invalid(format!("setconfig params: {e}")))?;
    let decl = options::find(&guest.manifest.options, &config).map_err(invalid)?;
    if !decl.dynamic {
        return Err(invalid(format!("option {config:?} is not dynamic")));
    }
    // A flag given without a value is being set.
    let typed = options::typed_value(decl, &val.unwrap_or(Value::Bool(true))).map_err(invalid)?;
    let value = typed.clone().unwrap_or(OptionValue::Bool(false));
    match guest.sandbox.set_option(&config, &value) {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(invalid(reason)),
        Err(failure) => return Err(failure.into()),
    }
    let session = guest.sandbox.session();
    let mut settings = session.settings_mut();
    let mut options = settings.options.clone();
    match typed {
        Some(v) => options.insert(config.clone(), v),
        None => options.remove(&config),
    };
    settings.set_options(options);
    log::info!("option {config} changed by setconfig");
    Ok(())
}
